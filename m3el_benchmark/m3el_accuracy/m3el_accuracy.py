"""M3EL accuracy: ACC, Top-k (Hits@k), MRR and mean rank of entity linking, overall and per group.

Where the code lives: the figures are computed by ``ranking_metrics.py``, the numpy-only core beside this file,
imported with ``from .ranking_metrics import ...``. ``evaluate.load`` (0.4.6, ``loading.get_imports``) reads a
relative import in a module script as "a file next to the script", copies it into the module cache with the
script, and hashes both, for a local folder and a Hub repository alike. So this folder is self-sufficient when
loaded with ``evaluate.load("m3el_benchmark/m3el_accuracy")`` or uploaded alone to the Hub, while the benchmark imports
the same file as ``m3el_benchmark.m3el_accuracy.ranking_metrics``: one implementation, no copy.
"""

import datasets
import evaluate

from .ranking_metrics import DEFAULT_KS, compute_ranking_metrics

_DESCRIPTION = """
M3EL accuracy scores multi-modal entity linking (MEL) as ranking: for each mention, a model scores its candidate
entities, and the metric finds the rank of the gold entity among them. It reports

* `accuracy`: the share of mentions whose gold is ranked first (ACC in the M3EL paper, i.e. Top-1),
* `top_<k>`: the share whose gold is among the k best (Top-k, Hits@k / H@k),
* `mrr`: the mean reciprocal rank, and `mean_rank` (MR) over the mentions whose gold is among the candidates.

A mention whose gold is not among its candidates (reference -1) counts as wrong for every k and adds 0 to the MRR.
Ties are pessimistic: the gold ranks below every other candidate with an equal score, so a constant scorer earns
no credit; `ties="optimistic"` counts only strictly higher scores, like DWE's `metric_topk`. With `nil_threshold`,
a mention whose best score is below the threshold is predicted NIL, which is correct exactly when the gold is
absent. With `groups`, every figure is also given per task, topic, text format or any other label.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of `float`): for each mention, the scores of its candidates (higher is better).
        Mentions may have different numbers of candidates.
    references (`list` of `int`): for each mention, the index of the gold candidate, or -1 if it is not among them.
    groups (`list` of `str`, or `list` of `list` of `str`, *optional*): for each mention, its label (e.g. its topic),
        or one label per grouping (e.g. `["MEL", "sports"]` for task and topic).
    group_names (`list` of `str`, *optional*): the name of each grouping, e.g. `["task", "topic"]`. Defaults to
        `["group"]` for one label per mention and to `group_0`, `group_1`, ... for several.
    ks (`list` of `int`, *optional*, defaults to `[1, 3, 5, 10, 20]`): report `top_<k>` for each of these k >= 1.
    ties (`str`, *optional*, defaults to `"pessimistic"`): `"pessimistic"` ranks the gold below the candidates with
        an equal score; `"optimistic"` above them.
    nil_threshold (`float`, *optional*): predict NIL for a mention whose best score is below this threshold.

Returns:
    accuracy (`float`): the share of mentions whose gold is ranked first.
    top_<k> (`float`): for each k, the share of mentions whose gold is among the k best.
    mrr (`float`): the mean of 1 / rank over all mentions (0 where the gold is absent).
    mean_rank (`float`): the mean rank over the mentions whose gold is among the candidates (NaN if none is).
    num_mentions (`int`): the number of mentions.
    num_no_gold (`int`): the number of mentions whose gold is not among the candidates.
    nil_accuracy (`float`): with `nil_threshold`, the share of mentions without gold that are predicted NIL.
    accuracy_with_nil (`float`): with `nil_threshold`, the accuracy when NIL predictions count.
    num_predicted_nil (`int`): with `nil_threshold`, the number of mentions predicted NIL.
    by_group (`dict`): with `groups`, `{grouping name: {label: the figures above}}`.

Examples:

    Four mentions whose gold ranks 1, 1, 2 and 4:

    >>> import evaluate
    >>> m3el_accuracy = evaluate.load("m3el_benchmark/m3el_accuracy")
    >>> results = m3el_accuracy.compute(
    ...     predictions=[[0.9, 0.1, 0.3], [0.2, 0.8], [0.4, 0.6, 0.5, 0.1], [0.1, 0.2, 0.3, 0.4]],
    ...     references=[0, 1, 2, 0],
    ...     ks=[1, 2],
    ... )
    >>> print(results)  # doctest: +NORMALIZE_WHITESPACE
    {'accuracy': 0.5, 'top_1': 0.5, 'top_2': 0.75, 'mrr': 0.6875, 'mean_rank': 2.0,
     'num_mentions': 4, 'num_no_gold': 0}

    Ties give no credit by default; the optimistic rule is there to compare with code that uses it:

    >>> constant = {"predictions": [[0.5, 0.5], [0.5, 0.5]], "references": [0, 1], "ks": [1]}
    >>> print(m3el_accuracy.compute(**constant)["accuracy"])
    0.0
    >>> print(m3el_accuracy.compute(**constant, ties="optimistic")["accuracy"])
    1.0

    NIL prediction and a breakdown by topic; the second mention's gold is not among its candidates:

    >>> results = m3el_accuracy.compute(
    ...     predictions=[[0.9, 0.2], [0.1, 0.3], [0.2, 0.1], [0.7, 0.8]],
    ...     references=[0, -1, 1, 1],
    ...     groups=["sports", "music", "music", "sports"],
    ...     group_names=["topic"],
    ...     ks=[1],
    ...     nil_threshold=0.5,
    ... )
    >>> print(results["accuracy"], results["accuracy_with_nil"], results["nil_accuracy"], results["num_no_gold"])
    0.5 0.75 1.0 1
    >>> print({topic: figures["accuracy_with_nil"] for topic, figures in results["by_group"]["topic"].items()})
    {'music': 0.5, 'sports': 1.0}

    Batches accumulate; several groupings at once:

    >>> batches = [([[0.9, 0.1]], [0], [["MEL", "sports"]]), ([[0.3, 0.6]], [0], [["MEL", "music"]])]
    >>> for scores, gold, labels in batches:
    ...     m3el_accuracy.add_batch(predictions=scores, references=gold, groups=labels)
    >>> results = m3el_accuracy.compute(group_names=["task", "topic"], ks=[1])
    >>> by_group = results["by_group"]
    >>> print(results["accuracy"], by_group["task"]["MEL"]["accuracy"], by_group["topic"]["music"]["accuracy"])
    0.5 0.5 0.0
"""

_CITATION = """
@article{wang2024m3el,
  title   = {{M$^3$EL}: A Multi-task Multi-topic Dataset for Multi-modal Entity Linking},
  author  = {Wang, Fang and Yin, Shenglin and Bai, Xiaoying and Hu, Minghao and Yan, Tianwei and Liang, Yi},
  journal = {arXiv preprint arXiv:2410.18096},
  year    = {2024}
}
"""


def _integer_golds(references):
    """``references`` unchanged if every gold index is an integer (``None`` passes), else a ``ValueError``."""
    if references is None:
        return None
    for position, gold in enumerate(references):
        if isinstance(gold, bool) or not float(gold).is_integer():
            raise ValueError(f"references[{position}] is {gold!r}; a gold index must be an integer (-1: no gold).")
    return references


def _groups_by_name(groups: list | None, group_names: list[str] | None) -> dict[str, list[str]] | None:
    """Turn per-mention label rows (``[["MEL", "sports"], ...]`` or ``["sports", ...]``) into ``{name: labels}``."""
    if not groups:
        return None
    rows = [[labels] if isinstance(labels, str) else list(labels) for labels in groups]
    width = len(rows[0])
    mismatch = next((i for i, row in enumerate(rows) if len(row) != width), None)
    if mismatch is not None:
        raise ValueError(
            f"groups of mention {mismatch} has {len(rows[mismatch])} labels but mention 0 has {width}: give every "
            "mention one label per grouping (or leave groups out for every mention)."
        )
    if width == 0:
        if group_names:
            raise ValueError(f"group_names is {group_names!r} but no mention has group labels: pass groups too.")
        return None
    if group_names is None:
        group_names = ["group"] if width == 1 else [f"group_{i}" for i in range(width)]
    if len(group_names) != width:
        raise ValueError(f"group_names is {group_names!r} but each mention has {width} group labels: name each one.")
    return {name: [row[i] for row in rows] for i, name in enumerate(group_names)}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class M3elAccuracy(evaluate.Metric):
    """ACC, Top-k, MRR and mean rank of the gold entity among each mention's scored candidates."""

    def _info(self) -> evaluate.MetricInfo:
        scores_and_gold = {
            "predictions": datasets.Sequence(datasets.Value("float64")),
            "references": datasets.Value("int64"),
        }
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # One label per grouping per mention, or one plain label; an empty list means "no groups".
            features=[
                datasets.Features({**scores_and_gold, "groups": datasets.Sequence(datasets.Value("string"))}),
                datasets.Features({**scores_and_gold, "groups": datasets.Value("string")}),
            ],
            reference_urls=["https://arxiv.org/abs/2410.18096"],
        )

    # evaluate requires every feature in every batch; `groups` is optional for users, so fill in "no labels".
    # evaluate also casts references to int64 before `_compute` sees them: check them first, so that a gold index
    # of 0.5 is refused rather than silently read as 0.
    def add_batch(self, *, predictions=None, references=None, groups=None) -> None:
        """Add a batch of candidate scores, gold indices and, optionally, group labels."""
        if groups is None and predictions is not None:
            groups = [[] for _ in range(len(predictions))]
        super().add_batch(predictions=predictions, references=_integer_golds(references), groups=groups)

    def add(self, *, prediction=None, reference=None, groups=None) -> None:
        """Add one mention's candidate scores, gold index and, optionally, group labels."""
        reference = None if reference is None else _integer_golds([reference])[0]
        super().add(prediction=prediction, reference=reference, groups=[] if groups is None else groups)

    def compute(self, *, predictions=None, references=None, groups=None, **kwargs) -> dict | None:
        """Compute the figures over everything added so far and the inputs given here; see below."""
        if groups is None and predictions is not None:
            groups = [[] for _ in range(len(predictions))]
        references = _integer_golds(references)
        return super().compute(predictions=predictions, references=references, groups=groups, **kwargs)

    def _compute(
        self,
        predictions: list[list[float]],
        references: list[int],
        groups: list | None = None,
        group_names: list[str] | None = None,
        ks: tuple[int, ...] | list[int] = DEFAULT_KS,
        ties: str = "pessimistic",
        nil_threshold: float | None = None,
    ) -> dict:
        return compute_ranking_metrics(
            predictions,
            references,
            ks=ks,
            groups=_groups_by_name(groups, group_names),
            ties=ties,
            nil_threshold=nil_threshold,
        )
