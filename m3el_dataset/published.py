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
    "melbench": """@inproceedings{zhou2021weibo,
  title     = {Weibo-MEL, Wikidata-MEL and Richpedia-MEL: Multimodal Entity Linking Benchmark Datasets},
  author    = {Zhou, Xingchen and Wang, Peng and Li, Guozheng and Xie, Jiafeng and Wu, Jiangheng},
  booktitle = {Knowledge Graph and Semantic Computing: Knowledge Graph Empowers New Infrastructure Construction
               (CCKS 2021)},
  series    = {Communications in Computer and Information Science},
  volume    = {1466},
  pages     = {315--320},
  publisher = {Springer},
  year      = {2021}
}""",
    "ghmfc": """@inproceedings{wang2022ghmfc,
  title     = {Multimodal Entity Linking with Gated Hierarchical Fusion and Contrastive Training},
  author    = {Wang, Peng and Wu, Jiangheng and Chen, Xiaohang},
  booktitle = {Proceedings of the 45th International ACM SIGIR Conference on Research and Development in
               Information Retrieval},
  pages     = {938--948},
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
