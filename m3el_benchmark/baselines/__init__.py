"""Baseline models of the M3EL benchmark: a registry of names and Hub ids, and one adapter per architecture."""

from .base import (
    FUSION_MEAN,
    FUSION_MULTIMODAL_ENCODER,
    AdapterOptions,
    EmbeddingAdapter,
    ModelInfo,
    fuse_mean,
    similarity,
)
from .registry import (
    ARCHITECTURES,
    BASELINE_VARIANTS,
    BASELINES,
    ModelNotAvailableError,
    ModelRequest,
    is_available_locally,
    load_adapter,
    not_available_message,
    parse_model_spec,
)

__all__ = [
    "ARCHITECTURES",
    "BASELINE_VARIANTS",
    "BASELINES",
    "FUSION_MEAN",
    "FUSION_MULTIMODAL_ENCODER",
    "AdapterOptions",
    "EmbeddingAdapter",
    "ModelInfo",
    "ModelNotAvailableError",
    "ModelRequest",
    "fuse_mean",
    "is_available_locally",
    "load_adapter",
    "not_available_message",
    "parse_model_spec",
    "similarity",
]
