"""Evaluating one model: collect its unique inputs, encode each once, score every setting, compute the metric.

`needed_inputs` decides what a model must encode for the chosen settings: the mention texts of the chosen
formats (the dataset's, or as the model fits them to its context, `model_mention_texts`), the entity texts, the
images, and, for a model whose fusion is its own multimodal encoder (FLAVA), the (text, image) pairs of the (I+T)
sides. `evaluate_model` returns every figure as flat records, one per (dataset, task, text format, topic), with
``topic = "all"`` for the whole set. Under the ``kb`` protocol the entities are those of the knowledge base
instead of each mention's candidates, ranked by `kb_ranking.KBScorer`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from accelerate import Accelerator

from ..baselines.base import FUSION_MULTIMODAL_ENCODER, EmbeddingAdapter, ModelInfo
from ..m3el_accuracy.ranking_metrics import compute_ranking_metrics_from_ranks
from .cache import EmbeddingCache, model_cache_key
from .data import KnowledgeBase, MentionTable, UniqueInputs, pair_key
from .encoding import IMAGE, PAIR, TEXT, EmbeddingTable, EncodingSettings, EncodingStats, encode_unique
from .kb_ranking import KBRankingSettings, KBScorer
from .retrieval import retrieved_figures, with_optimistic_ties
from .scoring import CandidateScorer, Setting, rank_mentions

logger = logging.getLogger(__name__)

ALL_TOPICS = "all"


@dataclass
class ModelEvaluation:
    """Everything measured for one model."""

    info: ModelInfo
    records: list[dict[str, Any]]
    encoding: dict[str, EncodingStats]
    undecodable_images: int  # distinct images without embedding, whether found undecodable now or in the cache
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pass_ratio(self) -> float:
        """Unique inputs accounted for per unique input over every kind; 1.0 means each was handled once."""
        unique = sum(stats.unique for stats in self.encoding.values())
        done = sum(stats.encoded + stats.cached + stats.undecodable for stats in self.encoding.values())
        return done / unique if unique else 1.0


def model_mention_texts(
    adapter: EmbeddingAdapter, mentions: MentionTable, text_formats: Sequence[str]
) -> MentionTable:
    """``mentions`` with the mention texts as ``adapter`` reads them (`EmbeddingAdapter.mention_texts`), from the
    dataset's texts and, for those the adapter re-renders, their parts.

    Each such text is keyed by its own content, so that the cache key is the text actually encoded; ``mentions``
    itself is left as it is (other models read the dataset's texts). A format the dataset lacks is left alone.
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

    The entities are the mentions' candidates, or with ``kb`` every entity of the knowledge base instead.
    """
    inputs, texts, images, pairs = mentions.inputs, {}, {}, {}
    if kb is None:
        candidates = list(zip(mentions.candidate_texts, mentions.candidate_images, strict=True))
    else:
        candidates = [(kb.texts, kb.images)]

    def add(text_key, image_key, spec_text, spec_image):
        if spec_text and (not spec_image or not pair_fusion):
            texts[text_key] = inputs.texts[text_key]
        if spec_image and image_key is not None and (not spec_text or not pair_fusion):
            images[image_key] = inputs.images[image_key]
        if spec_text and spec_image and pair_fusion and image_key is not None:
            pairs[pair_key(text_key, image_key)] = (inputs.texts[text_key], inputs.images[image_key])

    mention_sides = {(s.text_format, s.task.mention_text, s.task.mention_image) for s in settings}
    for text_format, wants_text, wants_image in sorted(mention_sides):
        for row, image_key in enumerate(mentions.mention_images):
            text_key = mentions.mention_texts[text_format][row] if wants_text else None
            add(text_key, image_key, wants_text, wants_image)
    for wants_text, wants_image in sorted({(s.task.entity_text, s.task.entity_image) for s in settings}):
        for text_keys, image_keys in candidates:
            for text_key, image_key in zip(text_keys, image_keys, strict=True):
                add(text_key, image_key, wants_text, wants_image)
    found = {TEXT: texts, IMAGE: images, PAIR: pairs}
    return {kind: items for kind, items in found.items() if items or kind == TEXT}


def _records(
    base_fields: dict[str, str], settings: Sequence[Setting], figures: np.ndarray, topics: list[str]
) -> list[dict]:
    records = []
    for column, setting in enumerate(settings):
        ranks, missing_scores, missing_mentions = figures[:, column].T
        metrics = compute_ranking_metrics_from_ranks(ranks, groups={"topic": topics})
        by_topic = metrics.pop("by_group")["topic"]
        base = {**base_fields, "task": setting.task.name, "text_format": setting.text_format}
        records.append({**base, "topic": ALL_TOPICS, **metrics, "missing_candidate_scores": int(missing_scores.sum()),
                        "missing_mentions": int(missing_mentions.sum())})  # fmt: skip
        for topic, topic_metrics in by_topic.items():
            selected = np.asarray(topics) == topic
            records.append({**base, "topic": topic, **topic_metrics,
                            "missing_candidate_scores": int(missing_scores[selected].sum()),
                            "missing_mentions": int(missing_mentions[selected].sum())})  # fmt: skip
    return records


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
    protocol: str | None = None,
) -> ModelEvaluation:
    """Encode what ``settings`` need (each unique input once, through the cache) and compute every figure.

    With ``kb``, each mention is ranked against the whole knowledge base (``kb`` protocol), else against its
    candidates; ``dataset`` names the dataset in the records. ``protocol="retrieved"`` (with ``kb``) ranks each
    mention among its top-100 name matches instead (`retrieval`), with DWE's optimistic-tie figures beside ours.
    """
    start = time.perf_counter()
    cache = EmbeddingCache(cache_root, model_cache_key(adapter.info, type(adapter).__name__))
    mentions = model_mention_texts(adapter, mentions, text_formats)
    needed = needed_inputs(mentions, settings, adapter.fusion == FUSION_MULTIMODAL_ENCODER, kb)
    tables: dict[str, EmbeddingTable] = {}
    for kind in (TEXT, IMAGE, PAIR):
        if kind in needed:
            fallback = tuple(tables[TEXT].embeddings.shape[1:]) if TEXT in tables else (1, 1)
            tables[kind] = encode_unique(adapter, kind, needed[kind], cache, accelerator, encoding, fallback)
    protocol = protocol or ("candidates" if kb is None else "kb")
    desc = f"{adapter.info.name} | {dataset or 'dataset'} | score ({protocol})"
    base = {"model": adapter.info.name, "dataset": dataset, "protocol": protocol}
    if protocol == "retrieved":
        ours, dwe = retrieved_figures(mentions, kb, tables, settings, text_formats, accelerator, encoding.batch_size,
                                      kb_settings, adapter.image_weight, desc)  # fmt: skip
        records = with_optimistic_ties(_records(base, settings, ours, mentions.topics),
                                       _records(base, settings, dwe, mentions.topics))  # fmt: skip
    else:
        if kb is None:
            scorer = CandidateScorer(mentions, tables, text_formats, adapter.image_weight)
        else:
            kb_settings = kb_settings or KBRankingSettings()
            scorer = KBScorer(mentions, kb, tables, text_formats, kb_settings, adapter.image_weight)
        figures = rank_mentions(scorer, settings, accelerator, encoding.batch_size, desc)
        records = _records(base, settings, figures, mentions.topics)
    undecodable = {key.split("+")[-1] for kind in (IMAGE, PAIR) if kind in tables  # a pair key ends with its image's
                   for key in tables[kind].undecodable}  # fmt: skip
    return ModelEvaluation(
        info=adapter.info,
        records=records,
        encoding={kind: table.stats for kind, table in tables.items()},
        undecodable_images=len(undecodable),
        seconds=time.perf_counter() - start,
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
    )
