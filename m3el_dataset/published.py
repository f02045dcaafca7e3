"""Published figures and citations of the peer datasets: what a converted copy is compared with, never our results.

Each figure is copied from the source it names; the cards print them under "Published figures" with that source.
The M3EL paper's Table 5 (arXiv:2410.18096) compares models on DiffusionDB ``2m_random_1k``, the WIKIPerson test
set and the WikiDiverse test set; its figures are cited by reference only (they were not available to copy
and check when this module was written), so none are reproduced here for those datasets.
"""

from __future__ import annotations

from dataclasses import dataclass

M3EL_TABLE5 = (
    "Wang et al. (2024), *M³EL: A Multi-task Multi-topic Dataset for Multi-modal Entity Linking*, arXiv:2410.18096, "
    "Table 5"
)
MIMIC_SOURCE = (
    "Luo et al. (2023), *Multi-Grained Multimodal Interaction Network for Entity Linking* (KDD 2023), main results "
    "as listed in github.com/pengfei-luo/MIMIC"
)
MIMIC_METRICS = ("H@1", "H@3", "H@5", "MRR", "MR")


@dataclass(frozen=True)
class PublishedFigure:
    """One published result row: a model's figures (percentages, MR in ranks) on a dataset, and where they are."""

    dataset: str
    model: str
    metrics: dict[str, float]
    source: str
    protocol: str


def _mimic_rows(dataset: str, rows: dict[str, tuple[float, ...]]) -> list[PublishedFigure]:
    protocol = "MIMIC's distribution, ranked against the whole knowledge base, test split, NIL mentions left out"
    return [
        PublishedFigure(dataset, model, dict(zip(MIMIC_METRICS, values, strict=True)), MIMIC_SOURCE, protocol)
        for model, values in rows.items()
    ]


PUBLISHED_FIGURES: dict[str, list[PublishedFigure]] = {
    "wikimel": _mimic_rows("WikiMEL", {"CLIP": (83.23, 92.10, 94.51, 88.23, 17.60),
                                       "MIMIC": (87.98, 95.07, 96.37, 91.82, 11.02)}),
    "richpediamel": _mimic_rows("RichpediaMEL", {"CLIP": (67.78, 85.22, 90.04, 77.57, 107.16),
                                                 "MIMIC": (81.02, 91.77, 94.38, 86.95, 55.11)}),
    "wikidiverse": _mimic_rows("WikiDiverse", {"CLIP": (61.21, 79.63, 85.18, 71.69, 313.35),
                                               "MIMIC": (63.51, 81.04, 86.43, 73.44, 227.08)}),
}  # fmt: skip
"""Published figures per converted dataset name; a dataset without an entry is compared in `M3EL_TABLE5` only."""

GAN21_SOURCE = (
    "Gan et al. (2021), *Multimodal Entity Linking: A New Dataset and A Baseline* (ACM MM 2021, "
    "doi:10.1145/3474085.3475400)"
)
GAN21_PROTOCOL = (
    "Movie-MEL (Gan'21; the paper calls it M3EL, unrelated to ours): 1,000 / 50 / 50 movies, English Wikipedia KB "
    "(2021-03-01), 7 candidates per textual mention; micro-F1 (%) of mention links"
)


def _gan21_rows(table: str, dataset: str, rows: dict[str, dict[str, float]], protocol: str) -> list[PublishedFigure]:
    return [PublishedFigure(dataset, model, metrics, f"{GAN21_SOURCE}, {table}", protocol) for model, metrics in
            rows.items()]  # fmt: skip


_TABLE4_COLUMNS = ("MSNBC", "AQUAINT", "ACE2004", "CWEB", "WIKI", "Movie-MEL val", "Movie-MEL test")


def _table4(train_set: str, rows: dict[str, tuple[float | None, ...]]) -> list[PublishedFigure]:
    protocol = (
        f"textual entity linking trained on {train_set}, one column per test set (Movie-MEL: Gan'21's dataset, "
        "which the paper calls M3EL); English Wikipedia KB (2021-03-01), 7 candidates per mention; micro-F1 (%)"
    )
    return [
        PublishedFigure("textual EL test sets", f"{model} (trained on {train_set})",
                        {column: value for column, value in zip(_TABLE4_COLUMNS, values, strict=True)
                         if value is not None}, f"{GAN21_SOURCE}, Table 4", protocol)
        for model, values in rows.items()
    ]  # fmt: skip


GAN21_FIGURES: list[PublishedFigure] = [
    *_gan21_rows("Table 3", "Movie-MEL (Gan'21)", {
        "Naive": {"val textual": 80.2, "val visual": 20.5, "test textual": 80.3, "test visual": 23.6},
        "MM-nel": {"val textual": 84.2, "val visual": 29.0, "test textual": 83.3, "test visual": 30.7},
    }, f"{GAN21_PROTOCOL}; textual mentions and images (visual mentions) apart"),
    *_table4("AIDA-train", {
        "Hoffart et al.": (79, 56, 80, 58.6, 63, None, None),
        "Ratinov et al.": (75, 83, 82, 56.2, 67.2, None, None),
        "Local p(e|m)": (89.3, 83.2, 84.4, 69.8, 64.2, 70.7, 67.3),
        "Ganea and Hofmann": (93.7, 88.5, 88.5, 77.9, 77.5, None, None),
        "DGCN": (92.5, 89.4, 90.6, 81.2, 77.6, None, None),
        "MulRel": (93.9, 88.3, 89.9, 77.5, 78.0, 75.1, 70.2),
    }),
    *_table4("Movie-MEL", {"Local p(e|m)": (89.9, 82.3, 86.1, 69.4, 67.3, 79.5, 79.3),
                           "Naive": (90.3, 88.9, 88.1, 72.6, 66.6, 80.2, 80.3)}),
    *_table4("Movie-MEL + AIDA-train", {"Local p(e|m)": (92.7, 86.7, 86.9, 74.3, 71.9, 79.9, 79.8),
                                        "Naive": (92.9, 89.7, 88.1, 75.8, 73.8, 80.2, 78.8)}),
]  # fmt: skip
"""Published figures of Gan et al. (2021), Tables 3 and 4, copied from the paper: never our results, and on their
own dataset (no converter reads it yet), so they are kept apart from `PUBLISHED_FIGURES`."""

CITATIONS: dict[str, str] = {
    "mimic": """@inproceedings{luo2023multi,
  title     = {Multi-Grained Multimodal Interaction Network for Entity Linking},
  author    = {Luo, Pengfei and Xu, Tong and Wu, Shiwei and Zhu, Chen and Xu, Linli and Chen, Enhong},
  booktitle = {Proceedings of the 29th ACM SIGKDD Conference on Knowledge Discovery and Data Mining},
  pages     = {1583--1594},
  year      = {2023}
}""",
    "wikidiverse": """@inproceedings{wang2022wikidiverse,
  title     = {WikiDiverse: A Multimodal Entity Linking Dataset with Diversified Contextual Topics and Entity Types},
  author    = {Wang, Xuwu and Tian, Junfeng and Gui, Min and Li, Zhixu and Wang, Rui and Yan, Ming and Chen, Lihan
               and Xiao, Yanghua},
  booktitle = {ACL},
  year      = {2022}
}""",
    "wikiperson": """@article{sun2022VNEL,
  title   = {Visual Named Entity Linking: A New Dataset and A Baseline},
  author  = {Sun, Wen and Fan, Yixing and Guo, Jiafeng and Zhang, Ruqing and Cheng, Xueqi},
  journal = {Findings of EMNLP 2022},
  year    = {2022}
}""",
    "diffusiondb": """@article{wangDiffusionDBLargescalePrompt2022,
  title   = {DiffusionDB: A Large-Scale Prompt Gallery Dataset for Text-to-Image Generative Models},
  author  = {Wang, Zijie J. and Montoya, Evan and Munechika, David and Yang, Haoyang and Hoover, Benjamin and
             Chau, Duen Horng},
  journal = {arXiv:2210.14896 [cs]},
  year    = {2022}
}""",
    "gan2021": """@inproceedings{gan2021multimodal,
  title     = {Multimodal Entity Linking: A New Dataset and A Baseline},
  author    = {Gan, Jingru and Luo, Jinchang and Wang, Haiwei and Wang, Shuhui and He, Wei and Huang, Qingming},
  booktitle = {Proceedings of the 29th ACM International Conference on Multimedia},
  year      = {2021},
  doi       = {10.1145/3474085.3475400}
}""",
    "m3el": """@article{wang2024m3el,
  title   = {M$^3$EL: A Multi-task Multi-topic Dataset for Multi-modal Entity Linking},
  author  = {Wang, Fang and Yin, Shenglin and Bai, Xiaoying and Hu, Minghao and Yan, Tianwei and Liang, Yi},
  journal = {arXiv preprint arXiv:2410.18096},
  year    = {2024}
}""",
}
"""BibTeX of each source paper (and of M3EL, whose Table 5 compares models on the peers)."""


def published_rows(name: str) -> list[dict[str, str]]:
    """The card's rows of published figures for the converted dataset ``name`` (empty when there are none)."""
    return [
        {
            "dataset": figure.dataset,
            "model": figure.model,
            "figures": " / ".join(f"{metric} {value:.2f}" for metric, value in figure.metrics.items()),
            "protocol": figure.protocol,
            "source": figure.source,
        }
        for figure in PUBLISHED_FIGURES.get(name, [])
    ]


def card_fields(name: str, *, description: str, source: str, citations: tuple[str, ...], notes: str) -> dict:
    """The peer card's template variables: what the dataset is, where it comes from, whom to cite, what to compare."""
    return {
        "description": description,
        "source": source,
        "citation": "\n\n".join(CITATIONS[key] for key in (*citations, "m3el")),
        "published_rows": published_rows(name),
        "table5": M3EL_TABLE5,
        "notes": notes,
    }
