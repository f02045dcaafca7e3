"""Published figures and citations: what our tables and cards print beside our results, never as our results.

Each figure is copied from the source it names and carries a `PublishedFigure.mark`, e.g. ``published (paper,
Table 4)``, wherever it is printed. Two sources are reproduced:

* the M3EL paper (arXiv:2410.18096, text in ``../shared/papers/000_*.txt`` of the project): Table 4, ACC of seven
  models per mention text format on M3EL, and Table 5, ACC of the same models on DiffusionDB ``2m_random_1k``, the
  WIKIPerson test set, the WikiDiverse test set and M3EL (that column is Table 4's M-S column). The paper gives ACC
  as a fraction with three decimals; it is stored here as a percentage (0.683 -> 68.3).
* MIMIC's main results (H@1, H@3, H@5, MRR, MR) on its distributions of WikiMEL, RichpediaMEL and WikiDiverse.
* the DWE+ paper (Song et al., ``../shared/papers/003_*.txt``), Tables 3-7: T@1/5/10/20 (stored as H@k) on its copies
  of WikiMEL, RichpediaMEL and WikiDiverse with original, static (-S) and dynamic (-D) entity texts, each under
  `DWE_PLUS_PROTOCOL` (gold-entity KB, 100 fuzzy candidates, optimistic ties, best dev evaluation). As printed,
  Table 3's CLIP row equals Table 6's GHMFC row, and the prose's T@1 (64.6/44.7/47.5, 67.0/72.8/51.2) match
  neither table; we copy the tables. Gan et al. (2021) are kept apart (`GAN21_FIGURES`).

What the paper does not state is recorded as such: Table 4 names no task (its text speaks of "multi-modal task
performance" on versions "made up of composite text and images", which we read as ITm-ITe), Table 5 gives one
figure per dataset although it names several tasks for WIKIPerson and WikiDiverse (``task=None``), and neither
table says how mentions whose gold is not among the candidates were counted (CLIP-ND's 88.2-90.2 % exceed the
85.2 % that counting the paper's 14.8 % gold-absent mentions as wrong would allow, so they cannot have been).
"""

from __future__ import annotations

from dataclasses import dataclass, field

M3EL_PAPER = (
    "Wang et al. (2024), *M³EL: A Multi-task Multi-topic Dataset for Multi-modal Entity Linking*, arXiv:2410.18096"
)
M3EL_TABLE5 = f"{M3EL_PAPER}, Table 5"
MIMIC_SOURCE = (
    "Luo et al. (2023), *Multi-Grained Multimodal Interaction Network for Entity Linking* (KDD 2023), main results "
    "as listed in github.com/pengfei-luo/MIMIC"
)
MIMIC_METRICS = ("H@1", "H@3", "H@5", "MRR", "MR")
PAPER_MODELS = ("ALIGN", "BLIP-2", "CLIP", "FLAVA", "OWL-ViT", "SigLIP", "CLIP-ND")
"""The seven models of the paper's Tables 4 and 5, in their order (the paper writes CLIP_ND)."""
PAPER_TABLE4_FORMATS = ("S1", "S", "M-S1", "M-S", "S1-M", "S-M", "S1-M-D", "S-M-D")
PAPER_TABLE5_DATASETS = ("DiffusionDB", "WIKIPerson", "WikiDiverse", "M3EL")
PAPER_TABLE4_TASK = "ITm-ITe"
PAPER_TABLE4_READING = (
    "the paper's Table 4 names no task; its text reports 'multi-modal task performance' on M3EL versions 'made up "
    "of composite text and images', which we read as ITm-ITe"
)
"""Which task the paper's Table 4 reports, as we read it, and why (the tables' captions quote it)."""


@dataclass(frozen=True)
class PublishedFigure:
    """One published result: a model's figures on a dataset (percentages, MR in ranks) and where they come from.

    Args:
        dataset (`str`): the dataset as the source names it.
        model (`str`): the model as the source names it.
        metrics (`dict[str, float]`): figures by label (``ACC``, ``H@1``, ``MRR``, ...).
        source (`str`): the publication.
        protocol (`str`): what the figures were measured on, as far as the source says.
        short_source (`str`): the source in a few words, for the mark (``paper``, ``MIMIC``).
        table (`str`): where in the source (``Table 4``, ``main results``).
        task (`str`, *optional*): the task the figures are for; `None` when the source does not say which.
        text_format (`str`, *optional*): the mention text format; `None` when the source has no such notion.
    """

    dataset: str
    model: str
    metrics: dict[str, float]
    source: str
    protocol: str
    short_source: str = "paper"
    table: str = ""
    task: str | None = None
    text_format: str | None = field(default=None)

    @property
    def mark(self) -> str:
        """How every printed copy of the figure is labelled, e.g. ``published (paper, Table 4)``."""
        return f"published ({self.short_source}, {self.table})"


def _mimic_rows(dataset: str, rows: dict[str, tuple[float, ...]]) -> list[PublishedFigure]:
    protocol = "MIMIC's distribution, ranked against the whole knowledge base, test split, NIL mentions left out"
    return [
        PublishedFigure(dataset, model, dict(zip(MIMIC_METRICS, values, strict=True)), MIMIC_SOURCE, protocol,
                        short_source="MIMIC", table="main results", task="ITm-ITe")  # fmt: skip
        for model, values in rows.items()
    ]


_TABLE4_ACC = {
    "ALIGN": (0.674, 0.675, 0.683, 0.683, 0.680, 0.681, 0.701, 0.697),
    "BLIP-2": (0.738, 0.739, 0.745, 0.746, 0.743, 0.744, 0.759, 0.753),
    "CLIP": (0.742, 0.748, 0.754, 0.758, 0.749, 0.753, 0.771, 0.763),
    "FLAVA": (0.654, 0.649, 0.661, 0.655, 0.659, 0.653, 0.681, 0.699),
    "OWL-ViT": (0.487, 0.487, 0.495, 0.494, 0.489, 0.488, 0.490, 0.492),
    "SigLIP": (0.711, 0.714, 0.722, 0.724, 0.715, 0.717, 0.736, 0.726),
    "CLIP-ND": (0.885, 0.882, 0.899, 0.897, 0.890, 0.888, 0.902, 0.898),
}
"""The paper's Table 4 as printed: ACC per model, one value per format of `PAPER_TABLE4_FORMATS`."""
_TABLE5_ACC = {
    "ALIGN": (0.468, 0.826, 0.707, 0.683),
    "BLIP-2": (0.552, 0.652, 0.677, 0.746),
    "CLIP": (0.517, 0.873, 0.762, 0.758),
    "FLAVA": (0.582, 0.529, 0.718, 0.655),
    "OWL-ViT": (0.421, 0.348, 0.609, 0.494),
    "SigLIP": (0.539, 0.771, 0.743, 0.724),
    "CLIP-ND": (0.724, 0.916, 0.796, 0.897),
}
"""The paper's Table 5 as printed: ACC per model, one value per dataset of `PAPER_TABLE5_DATASETS`."""

_M3EL_PROTOCOL = (
    "M3EL test split, each mention against its own candidates; handling of gold-absent mentions not stated (the "
    "figures exceed the 85.2 % ceiling of counting them wrong)"
)
_TABLE5_SETTINGS = {
    # dataset: (task or None when the paper names several, text format, protocol as the paper describes it)
    "DiffusionDB": ("Im-Te", None, "DiffusionDB 2m_random_1k (1,000 image-prompt pairs); the paper names Im-Te"),
    "WIKIPerson": (None, None, "WIKIPerson test set (6,142 images); the paper names Im-Te, Im-Ie and Im-ITe "
                               "without saying which task this figure is"),
    "WikiDiverse": (None, None, "WikiDiverse test set (1,570 image-caption pairs); the paper names Tm-Te, Im-Ie, "
                                "ITm-Ie and ITm-ITe without saying which task this figure is"),
    "M3EL": ("ITm-ITe", "M-S", f"{_M3EL_PROTOCOL}; the same figures as Table 4's M-S column"),
}  # fmt: skip


def _percent(fraction: float) -> float:
    return round(100 * fraction, 1)


def _paper_table4() -> list[PublishedFigure]:
    protocol = f"{_M3EL_PROTOCOL}; task {PAPER_TABLE4_TASK} as we read the paper (Table 4 names none)"
    return [
        PublishedFigure("M3EL", model, {"ACC": _percent(value)}, M3EL_PAPER, protocol, table="Table 4",
                        task=PAPER_TABLE4_TASK, text_format=text_format)  # fmt: skip
        for model, values in _TABLE4_ACC.items()
        for text_format, value in zip(PAPER_TABLE4_FORMATS, values, strict=True)
    ]


def _paper_table5(dataset: str) -> list[PublishedFigure]:
    task, text_format, protocol = _TABLE5_SETTINGS[dataset]
    column = PAPER_TABLE5_DATASETS.index(dataset)
    return [
        PublishedFigure(dataset, model, {"ACC": _percent(values[column])}, M3EL_PAPER, protocol, table="Table 5",
                        task=task, text_format=text_format)  # fmt: skip
        for model, values in _TABLE5_ACC.items()
    ]


PUBLISHED_FIGURES: dict[str, list[PublishedFigure]] = {
    "wikimel": _mimic_rows("WikiMEL", {"CLIP": (83.23, 92.10, 94.51, 88.23, 17.60),
                                       "MIMIC": (87.98, 95.07, 96.37, 91.82, 11.02)}),
    "richpediamel": _mimic_rows("RichpediaMEL", {"CLIP": (67.78, 85.22, 90.04, 77.57, 107.16),
                                                 "MIMIC": (81.02, 91.77, 94.38, 86.95, 55.11)}),
    "wikidiverse": _mimic_rows("WikiDiverse", {"CLIP": (61.21, 79.63, 85.18, 71.69, 313.35),
                                               "MIMIC": (63.51, 81.04, 86.43, 73.44, 227.08)}),
    "m3el": _paper_table4() + _paper_table5("M3EL"),
    "diffusiondb": _paper_table5("DiffusionDB"),
    "wikiperson": _paper_table5("WIKIPerson"),
    "wikidiverse-release": _paper_table5("WikiDiverse"),
}  # fmt: skip
"""Published figures by set: the key a ``datasets`` entry names (``published: m3el``) to print them beside ours.

``wikidiverse`` is MIMIC's copy of WikiDiverse; ``wikidiverse-release`` the paper's Table 5 on the original
release's test set."""

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

DWE_PLUS_SOURCE = (
    "Song et al., *DWE+: Dual-Way Matching Enhanced Framework for Multimodal Entity Linking* (the journal extension "
    "of DWE, AAAI 2024)"
)
DWE_PLUS_METRICS = ("H@1", "H@5", "H@10", "H@20")
"""The paper's T@1/5/10/20 (Top-k accuracy, %), under our labels for the same figures."""
DWE_PLUS_PROTOCOL = (
    "DWE+ paper's setting, not ours: {data}, {texts}; KB = the dataset's gold entities; each mention ranked among "
    "λ = 100 candidates ({candidates}), the gold ranked whether retrieved or not, ties optimistic (DWE's code); "
    "T@k of the best dev evaluation during training (the code has no test pass), the best of 10 runs (§5.3); task "
    "ITm-Te (text-only systems read only the text)"
)
_DWE_DATA = {
    "Wiki": ("GHMFC's release of WikiMEL", "fuzzywuzzy name matches"),
    "Rich": ("GHMFC's release of RichpediaMEL", "fuzzywuzzy name matches"),
    "Diverse": ("DWE's processing of WikiDiverse", "its 10 candidates + 90 same-type fuzzy matches per the paper, "
                "random same-type entities in the code"),
}  # fmt: skip
_DWE_TEXTS = {
    "": "original entity texts (Wikidata properties)",
    "-S": "static entity texts (first two Wikipedia paragraphs; entities without a page dropped)",
    "-D": "dynamic entity texts (ChatGPT descriptions, version unspecified: not reproducible)",
}
_DWE_TABLES = {
    # table: (entity texts, columns as the paper names them, {model: T@1/5/10/20 per column, None: not in the table})
    "Table 3": ("", ("Wiki",), {
        "BLINK": [(30.8, 44.6, 56.7, 66.4)], "DZMNED": [(30.9, 50.7, 56.9, 65.1)],
        "JMEL": [(31.3, 49.4, 57.9, 64.8)], "BERT": [(31.7, 48.8, 57.8, 70.3)], "ARNN": [(32.0, 45.8, 56.6, 65.0)],
        "MEL-HI": [(38.7, 55.1, 65.2, 75.7)], "HieCoAtt": [(40.5, 57.6, 69.6, 78.6)],
        "GHMFC": [(43.6, 64.0, 74.4, 85.8)], "CLIP": [(36.1, 81.3, 92.8, 98.3)], "DWE": [(44.5, 66.3, 80.7, 93.1)],
        "DWE+": [(44.9, 67.2, 81.8, 93.8)]}),
    "Table 4": ("", ("Rich",), {
        "BLINK": [(30.8, 38.8, 44.5, 53.6)], "DZMNED": [(29.5, 41.6, 45.8, 55.2)],
        "JMEL": [(29.6, 42.3, 46.6, 54.1)], "BERT": [(31.6, 42.0, 47.6, 57.3)], "ARNN": [(31.2, 39.3, 45.9, 54.5)],
        "MEL-HI": [(34.9, 43.1, 50.6, 58.4)], "HieCoAtt": [(37.2, 46.8, 54.2, 62.4)],
        "GHMFC": [(38.7, 50.9, 58.5, 66.7)], "CLIP": [(60.4, 96.1, 98.3, 99.2)], "DWE": [(64.6, 96.6, 98.0, 99.0)],
        "DWE+": [(67.0, 97.1, 98.6, 99.5)]}),
    "Table 5": ("", ("Diverse",), {
        "JMEL": [(21.9, 54.5, 69.9, 76.3)], "BERT": [(22.2, 53.8, 69.8, 82.8)], "ARNN": [(22.4, 50.5, 68.4, 76.6)],
        "MEL-HI": [(27.1, 60.7, 78.7, 89.2)], "HieCoAtt": [(28.4, 63.5, 84.0, 92.6)],
        "GHMFC": [(46.0, 77.5, None, None)], "CLIP": [(42.4, 80.5, 91.7, 96.6)], "DWE": [(46.6, 80.9, 91.8, 96.7)],
        "DWE+": [(47.1, 81.3, 92.0, 96.9)]}),
    "Table 6": ("-S", ("Wiki", "Rich", "Diverse"), {
        "GHMFC": [(36.1, 81.3, 92.8, 98.3), (33.4, 75.7, 84.9, 93.7), (34.3, 70.8, 82.8, 92.0)],
        "CLIP-text": [(50.2, 87.4, 93.5, 97.2), (59.2, 91.1, 94.6, 97.4), (35.8, 79.6, 89.1, 95.3)],
        "CLIP": [(58.0, 95.9, 98.3, 99.5), (63.9, 96.2, 98.3, 99.2), (37.0, 80.2, 90.7, 96.2)],
        "DWE": [(71.1, 97.1, 98.8, 99.6), (66.1, 96.8, 98.7, 99.6), (51.2, 91.0, 96.3, 98.9)],
        "DWE+": [(73.0, 97.4, 98.9, 99.7), (67.6, 97.3, 98.8, 99.6), (52.5, 91.3, 96.4, 99.0)]}),
    "Table 7": ("-D", ("Wiki", "Rich", "Diverse"), {
        "BERT": [(32.0, 75.7, 88.2, 95.5), (35.5, 77.7, 87.8, 94.3), (10.3, 23.9, 33.8, 47.3)],
        "GHMFC": [(33.3, 75.9, 88.4, 95.0), (34.6, 77.0, 87.1, 93.8), (14.8, 29.9, 39.3, 53.8)],
        "CLIP": [(63.0, 96.2, 98.6, 99.6), (63.5, 95.4, 97.5, 98.6), (45.7, 88.9, 96.4, 99.3)],
        "DWE": [(66.9, 97.7, 99.2, 99.7), (64.3, 95.9, 97.7, 99.1), (51.3, 93.7, 98.8, 99.5)],
        "DWE+": [(68.1, 98.4, 99.5, 99.9), (65.1, 96.6, 98.3, 99.5), (53.4, 95.5, 99.2, 99.7)]}),
}  # fmt: skip
"""The DWE+ paper's Tables 3-7 as printed ("-" as `None`); `../shared/seed-systems.md` B3 lists them too."""
DWE_PLUS_SETS = {"Wiki": "wikimel", "Rich": "richpediamel", "Diverse": "wikidiverse"}
"""Our name of each of the paper's datasets, in the `PUBLISHED_FIGURES` keys ``dwe-wikimel``, ``dwe-wikimel-s``."""


def _dwe_plus_figures() -> dict[str, list[PublishedFigure]]:
    """Tables 3-7 by set (``dwe-<dataset>[-s|-d]``), each figure with the protocol of its table and column."""
    sets: dict[str, list[PublishedFigure]] = {}
    for table, (texts, columns, rows) in _DWE_TABLES.items():
        for column, name in enumerate(columns):
            data, candidates = _DWE_DATA[name]
            protocol = DWE_PLUS_PROTOCOL.format(data=data, texts=_DWE_TEXTS[texts], candidates=candidates)
            key = f"dwe-{DWE_PLUS_SETS[name]}{texts.lower()}"
            for model, values in rows.items():
                metrics = {label: value for label, value in zip(DWE_PLUS_METRICS, values[column], strict=True)
                           if value is not None}  # fmt: skip
                sets.setdefault(key, []).append(PublishedFigure(
                    f"{name}{texts} (DWE+ paper)", model, metrics, f"{DWE_PLUS_SOURCE}, {table}", protocol,
                    short_source="DWE+ paper", table=table, task="ITm-Te"))  # fmt: skip
    return sets


DWE_PLUS_FIGURES = _dwe_plus_figures()
"""Published figures of the DWE+ paper, Tables 3-7, by set; never our results and never under our protocols (see
`DWE_PLUS_PROTOCOL`); a ``datasets`` entry names one (``published: dwe-wikimel``) to print it beside ours."""
PUBLISHED_FIGURES.update(DWE_PLUS_FIGURES)

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


def _figures_text(figures: list[PublishedFigure]) -> str:
    """``ACC 68.30`` for one figure; ``ITm-ITe ACC: S1 67.40 / S 67.50 / ...`` for one per text format."""
    if len(figures) == 1 and figures[0].text_format is None:
        return " / ".join(f"{metric} {value:.2f}" for metric, value in figures[0].metrics.items())
    task = figures[0].task or "task not stated"
    values = " / ".join(f"{figure.text_format} {value:.2f}" for figure in figures for value in figure.metrics.values())
    return f"{task} {' / '.join(figures[0].metrics)}: {values}"


def published_rows(name: str | None = None) -> list[dict[str, str]]:
    """The card rows of every published figure on the dataset ``name`` (``wikidiverse``, ``m3el``; any case; `None`
    for every dataset), one row per model and source table, the text formats of one table joined in one row."""
    grouped: dict[tuple, list[PublishedFigure]] = {}
    for figures in PUBLISHED_FIGURES.values():
        for figure in figures:
            if name is None or figure.dataset.lower() == name.lower():
                grouped.setdefault((figure.dataset, figure.model, figure.source, figure.table), []).append(figure)
    return [
        {
            "dataset": figures[0].dataset,
            "model": figures[0].model,
            "figures": _figures_text(figures),
            "protocol": figures[0].protocol,
            "source": figures[0].source + ("" if figures[0].table in figures[0].source else f", {figures[0].table}"),
            "mark": figures[0].mark,
        }
        for figures in grouped.values()
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
