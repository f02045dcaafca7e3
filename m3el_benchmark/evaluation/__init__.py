"""The M3EL benchmark's evaluation library: unique inputs, embedding cache, encoding, scoring, sharding, outputs.

``benchmark/run.py`` composes these modules; each is usable alone (e.g. `encode_unique` for knowledge-base ranking).
"""

from .cache import EmbeddingCache, model_cache_key
from .data import MentionTable, UniqueInputs, content_key, load_mentions
from .encoding import EmbeddingTable, EncodingSettings, EncodingStats, encode_unique
from .evaluate import ModelEvaluation, evaluate_model, needed_inputs
from .scoring import NO_FORMAT, CandidateScorer, Setting, settings_for

__all__ = [
    "NO_FORMAT",
    "CandidateScorer",
    "EmbeddingCache",
    "EmbeddingTable",
    "EncodingSettings",
    "EncodingStats",
    "MentionTable",
    "ModelEvaluation",
    "Setting",
    "UniqueInputs",
    "content_key",
    "encode_unique",
    "evaluate_model",
    "load_mentions",
    "model_cache_key",
    "needed_inputs",
    "settings_for",
]
