"""Evaluating one model: collect its unique inputs, encode each once, score every setting, compute the metric.

`needed_inputs` decides what a model must encode for the chosen settings: the mention texts of the chosen formats (the
dataset's, or fitted to the model's context when the run keeps mentions, `model_mention_texts`), the entity texts, the
images, and, for a model whose fusion is its own multimodal encoder (FLAVA-MM), the (text, image) pairs of the ITm-ITe
sides. `evaluate_model` returns every figure as flat records, one per (dataset, task, text format, topic), with ``topic
= "all"`` for the whole set, with n and bootstrap intervals under the dataset's nil policy (`figures`). Under the
``kb`` protocol the entities are those of the knowledge base instead of each mention's candidates, ranked by
`kb_ranking.KBScorer`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from ..baselines.base import FUSION_MULTIMODAL_ENCODER, EmbeddingAdapter, ModelInfo
from .cache import EmbeddingCache, model_cache_key
from .data import KnowledgeBase, MentionTable, UniqueInputs, pair_key
from .encoding import IMAGE, PAIR, TEXT, EmbeddingTable, EncodingSettings, EncodingStats, encode_unique
from .figures import ALL_TOPICS, FigureSettings, SettingRanks, figure_records, setting_ranks
from .kb_ranking import KBRankingSettings, KBScorer
from .mistakes import GalleryEntry, MistakeSample, build_gallery
from .retrieval import RETRIEVED_LIMIT, retrieved_figures, with_optimistic_ties
from .scoring import CandidateScorer, Setting, rank_mentions, uses_pair_encoder

logger = logging.getLogger(__name__)

__all__ = ["ALL_TOPICS", "ModelEvaluation", "evaluate_model", "merge_evaluations", "needed_inputs"]


@dataclass
class ModelEvaluation:
    """Everything measured for one model."""

    info: ModelInfo
    records: list[dict[str, Any]]
    encoding: dict[str, EncodingStats]
    undecodable_images: int  # distinct images without embedding, whether found undecodable now or in the cache
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    ranks: dict[str, SettingRanks] = field(default_factory=dict)  # by dataset, for paired comparisons
    gallery: list[GalleryEntry] = field(default_factory=list)  # a seeded sample of mistakes, for the report

    @property
    def pass_ratio(self) -> float:
        """Unique inputs accounted for per unique input over every kind; 1.0 means each was handled once."""
        unique = sum(stats.unique for stats in self.encoding.values())
        done = sum(stats.encoded + stats.cached + stats.undecodable for stats in self.encoding.values())
        return done / unique if unique else 1.0


def model_mention_texts(
    adapter: EmbeddingAdapter, mentions: MentionTable, text_formats: Sequence[str]
) -> MentionTable:
    """``mentions`` with the mention texts as ``adapter`` reads them (`EmbeddingAdapter.mention_texts`: the
    dataset's texts, or with the run's ``keep_mention`` those of the ``-M`` formats fitted to the model's context),
    from the dataset's texts and, for those the adapter re-renders, their parts.

    Each such text is keyed by its own content, so that the cache key is the text actually encoded; ``mentions``
    itself is left as it is (another model fits to another context). A format the dataset lacks is left alone.
    """
    if not mentions.mention_parts:
        return mentions
    texts, changed = None, {}
    for name in text_formats:
        keys = mentions.mention_texts[name]
        if None in keys:
            continue
        given = [mentions.inputs.texts[key] for key in keys]
        fitted = adapter.mention_texts(name, given, mentions.mention_parts)
        if fitted is None:
            continue
        texts = texts or UniqueInputs(dict(mentions.inputs.texts), mentions.inputs.images)
        changed[name] = [texts.add_text(text) for text in fitted]
    if not changed:
        return mentions
    return replace(mentions, mention_texts={**mentions.mention_texts, **changed}, inputs=texts)


def needed_inputs(
    mentions: MentionTable, settings: Sequence[Setting], pair_fusion: bool, kb: KnowledgeBase | None = None
) -> dict[str, dict[str, object]]:
    """Each unique input the settings need, by kind: key to text, image bytes or (text, image bytes).

    With ``pair_fusion`` (a model fusing by its own multimodal encoder), the (I+T) sides of the settings that use it
    (`uses_pair_encoder`: ITm-ITe) are (text, image) pairs; every other (I+T) side needs its text and its image.
    The entities are the mentions' candidates, or with ``kb`` every entity of the knowledge base instead.
    """
    inputs, texts, images, pairs = mentions.inputs, {}, {}, {}
    if kb is None:
        candidates = list(zip(mentions.candidate_texts, mentions.candidate_images, strict=True))
    else:
        candidates = [(kb.texts, kb.images)]

    def add(text_key, image_key, spec_text, spec_image, fused):
        if spec_text and not (spec_image and fused):
            texts[text_key] = inputs.texts[text_key]
        if spec_image and image_key is not None and not (spec_text and fused):
            images[image_key] = inputs.images[image_key]
        if spec_text and spec_image and fused and image_key is not None:
            pairs[pair_key(text_key, image_key)] = (inputs.texts[text_key], inputs.images[image_key])

    def fused(setting: Setting) -> bool:
        return pair_fusion and uses_pair_encoder(setting.task)

    mention_sides = {(s.text_format, s.task.mention_text, s.task.mention_image, fused(s)) for s in settings}
    for text_format, wants_text, wants_image, pair_side in sorted(mention_sides):
        for row, image_key in enumerate(mentions.mention_images):
            text_key = mentions.mention_texts[text_format][row] if wants_text else None
            add(text_key, image_key, wants_text, wants_image, pair_side)
    entity_sides = {(s.task.entity_text, s.task.entity_image, fused(s)) for s in settings}
    for wants_text, wants_image, pair_side in sorted(entity_sides):
        for text_keys, image_keys in candidates:
            for text_key, image_key in zip(text_keys, image_keys, strict=True):
                add(text_key, image_key, wants_text, wants_image, pair_side)
    found = {TEXT: texts, IMAGE: images, PAIR: pairs}
    return {kind: items for kind, items in found.items() if items or kind == TEXT}


def evaluate_model(
    adapter: EmbeddingAdapter,
    mentions: MentionTable,
    settings: Sequence[Setting],
    accelerator: Accelerator,
    encoding: EncodingSettings,
    cache_root: str | Path | None,
    text_formats: Sequence[str],
    dataset: str = "",
    kb: KnowledgeBase | None = None,
    kb_settings: KBRankingSettings | None = None,
    figure_settings: FigureSettings | None = None,
    protocol: str | None = None,
    *,
    gallery: bool = True,
) -> ModelEvaluation:
    """Encode what ``settings`` need (each unique input once, through the cache) and compute every figure.

    With ``kb``, each mention is ranked against the whole knowledge base (``kb`` protocol), else against its
    candidates; ``protocol="retrieved"`` (with ``kb``) ranks it among its top-100 name matches instead
    (`retrieval`), with DWE's optimistic-tie figures beside ours. ``dataset`` names the dataset in the records;
    ``figure_settings`` sets the nil policy and the bootstrap (default: gold-absent mentions count as wrong).
    ``gallery`` keeps a seeded sample of mistakes for the report (candidates protocol); a caller that reads only
    the figures (e.g. a weight choice on validation) turns it off.
    """
    start = time.perf_counter()
    cache = EmbeddingCache(cache_root, model_cache_key(adapter.info, type(adapter).__name__))
    joint = getattr(adapter, "joint_step", None)  # a document-level system on this adapter (`systems`)
    encoded = settings
    if joint is not None:
        settings, encoded = joint.plan(mentions, settings, kb)
        formats = [s.text_format for s in encoded if s.task.mention_text]
        text_formats = list(dict.fromkeys([*text_formats, *formats]))
    mentions = model_mention_texts(adapter, mentions, text_formats)
    needed = needed_inputs(mentions, encoded, adapter.fusion == FUSION_MULTIMODAL_ENCODER, kb)
    tables: dict[str, EmbeddingTable] = {}
    for kind in (TEXT, IMAGE, PAIR):
        if kind in needed:
            fallback = tuple(tables[TEXT].embeddings.shape[1:]) if TEXT in tables else (1, 1)
            tables[kind] = encode_unique(adapter, kind, needed[kind], cache, accelerator, encoding, fallback)
    protocol = protocol or ("candidates" if kb is None else "kb")
    desc = f"{adapter.info.name} | {dataset or 'dataset'} | score ({protocol})"
    figure_settings = figure_settings or FigureSettings()
    optimistic, mistakes = None, None
    if protocol == "retrieved":
        scored = (mentions, kb, tables, settings, text_formats, accelerator, encoding.batch_size, kb_settings)
        figures, optimistic = retrieved_figures(*scored, adapter.image_weight, desc)
        ranked_against = RETRIEVED_LIMIT
    else:
        if kb is None:
            scorer = CandidateScorer(mentions, tables, text_formats, adapter.image_weight, joint)
        else:
            kb_settings = kb_settings or KBRankingSettings()
            scorer = KBScorer(mentions, kb, tables, text_formats, kb_settings, adapter.image_weight, joint)
        if joint is not None:
            joint.fit(scorer)
        if kb is None and gallery:  # the gallery shows a mention's candidates
            mistakes = MistakeSample.for_mentions(len(mentions), len(settings), figure_settings.seed,
                                                  include_absent=figure_settings.nil_policy == "wrong")  # fmt: skip
        batch_size = encoding.batch_size if kb is None else kb_settings.mention_batch  # a KB tile wants more rows
        figures = rank_mentions(scorer, settings, accelerator, batch_size, desc, mistakes)
        ranked_against = len(kb) if kb is not None else max(map(len, mentions.candidate_texts))
    base = {"model": adapter.info.name, "dataset": dataset, "protocol": protocol, "max_candidates": ranked_against}
    records = figure_records(base, settings, figures, mentions.topics, figure_settings)
    if optimistic is not None:
        records = with_optimistic_ties(records, figure_records(base, settings, optimistic, mentions.topics,
                                                               figure_settings))  # fmt: skip
    undecodable = {key.split("+")[-1] for kind in (IMAGE, PAIR) if kind in tables  # a pair key ends with its image's
                   for key in tables[kind].undecodable}  # fmt: skip
    return ModelEvaluation(
        info=adapter.info,
        records=records,
        encoding={kind: table.stats for kind, table in tables.items()},
        undecodable_images=len(undecodable),
        seconds=time.perf_counter() - start,
        ranks={dataset: setting_ranks(settings, figures, figure_settings.nil_policy)},
        extra={dataset: joint.describe()} if joint is not None else {},
        gallery=[] if mistakes is None else build_gallery(mistakes, settings, mentions, adapter.info.name, dataset),
    )


def merge_evaluations(evaluations: Sequence[ModelEvaluation]) -> ModelEvaluation:
    """One model's evaluations on several datasets as one: every record, and the work summed per input kind."""
    encoding: dict[str, EncodingStats] = {}
    for evaluation in evaluations:
        for kind, stats in evaluation.encoding.items():
            total = encoding.setdefault(kind, EncodingStats())
            for name in ("unique", "encoded", "cached", "undecodable", "non_finite", "seconds"):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
    return ModelEvaluation(
        info=evaluations[0].info,
        records=[record for evaluation in evaluations for record in evaluation.records],
        encoding=encoding,
        undecodable_images=sum(evaluation.undecodable_images for evaluation in evaluations),
        seconds=sum(evaluation.seconds for evaluation in evaluations),
        ranks={name: ranks for evaluation in evaluations for name, ranks in evaluation.ranks.items()},
        extra={key: value for evaluation in evaluations for key, value in evaluation.extra.items()},
        gallery=[entry for evaluation in evaluations for entry in evaluation.gallery],
    )
