"""The baseline registry: benchmark names, their Hub ids, and the adapter of each supported architecture.

This is the one place that lists the models of the paper's tables. A model is named in a run's configuration by

* a registry name (``"CLIP"``), which loads its Hub id;
* ``"<label>=<source>"``, any label for any Hub id or local folder (``"CLIP-ND=outputs/clip_nd"``);
* a bare Hub id or local folder, labelled by its last path component.

Whatever the source, its ``config.json`` ``model_type`` picks the adapter, so any checkpoint of a supported
architecture works.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache

from ..systems.dwe_plus.adapter import DWEPlusAdapter
from .base import EmbeddingAdapter, ModelInfo
from .blip2 import Blip2Adapter
from .dual_encoder import ALIGNAdapter, CLIPAdapter, CLIPNDAdapter, OwlViTAdapter, SiglipAdapter
from .flava import FlavaAdapter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Architecture:
    """How to load one architecture: its model class (by name, in ``module``) and its adapter."""

    model_class: str
    adapter: type[EmbeddingAdapter]
    module: str = "transformers"

    def load_class(self) -> type:
        """Import the model class (CLIP-ND's module also registers it with transformers' Auto classes)."""
        return getattr(importlib.import_module(self.module), self.model_class)


ARCHITECTURES: dict[str, Architecture] = {
    "align": Architecture("AlignModel", ALIGNAdapter),
    "blip-2": Architecture("Blip2ForImageTextRetrieval", Blip2Adapter),
    "clip": Architecture("CLIPModel", CLIPAdapter),
    "clip_nd": Architecture("CLIPNDModel", CLIPNDAdapter, module="modeling_clip_nd"),
    "flava": Architecture("FlavaModel", FlavaAdapter),
    "owlvit": Architecture("OwlViTModel", OwlViTAdapter),
    "siglip": Architecture("SiglipModel", SiglipAdapter),
    "dwe_plus": Architecture("DWEPlusModel", DWEPlusAdapter, module="m3el_benchmark.systems.dwe_plus.adapter"),
}
"""Supported ``model_type`` values of ``config.json``."""

BASELINES: dict[str, str] = {
    "ALIGN": "kakaobrain/align-base",
    "BLIP-2": "Salesforce/blip2-itm-vit-g",
    "CLIP": "openai/clip-vit-base-patch32",
    "FLAVA": "facebook/flava-full",
    "OWL-ViT": "google/owlvit-base-patch32",
    "SigLIP": "google/siglip-base-patch16-224",
}
"""The Hub baselines of the paper's tables. CLIP-ND is named with its source: ``"CLIP-ND=<folder or repo id>"``."""


class ModelNotAvailableError(FileNotFoundError):
    """A model is neither a local folder nor in the local Hugging Face cache, and the Hub cannot be reached."""


@dataclass(frozen=True)
class ModelRequest:
    """A model as named in a run: its label in the tables, where to load it from, and which revision."""

    label: str
    source: str
    revision: str | None = None


def parse_model_spec(spec: str, revision: str | None = None) -> ModelRequest:
    """Turn ``"CLIP"``, ``"label=source"`` or a bare source into a `ModelRequest`."""
    spec = spec.strip()
    if "=" in spec:
        label, source = (part.strip() for part in spec.split("=", 1))
        if not label or not source:
            raise ValueError(f"Model {spec!r} must read '<label>=<Hub id or folder>', e.g. 'CLIP-ND=outputs/clip_nd'.")
        return ModelRequest(label, BASELINES.get(source, source), revision)
    if spec in BASELINES:
        return ModelRequest(spec, BASELINES[spec], revision)
    if Path(spec).is_dir() or spec.count("/") == 1:
        return ModelRequest(Path(spec).name or spec, spec, revision)
    raise ValueError(
        f"Unknown model {spec!r}; use one of the baselines {', '.join(BASELINES)}, a Hub id ('org/name'), a local "
        "folder, or '<label>=<source>' (e.g. 'CLIP-ND=outputs/clip_nd')."
    )


def is_offline() -> bool:
    """Whether the Hub must not be contacted (``HF_HUB_OFFLINE=1``, read now so that tests can set it)."""
    value = os.environ.get("HF_HUB_OFFLINE", str(hub_constants.HF_HUB_OFFLINE))
    return value.strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_cache_dir(cache_dir: str | None = None) -> str:
    """The Hugging Face cache in use: ``cache_dir``, else ``HF_HUB_CACHE``/``HF_HOME``, read now."""
    if cache_dir:
        return str(cache_dir)
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return hub_constants.HF_HUB_CACHE


def is_available_locally(request: ModelRequest, cache_dir: str | None = None) -> bool:
    """Whether ``request`` is a local folder or has its ``config.json`` in the local Hugging Face cache."""
    if Path(request.source).is_dir():
        return True
    cached = try_to_load_from_cache(
        request.source, "config.json", cache_dir=hub_cache_dir(cache_dir), revision=request.revision
    )
    return isinstance(cached, str)


def not_available_message(request: ModelRequest, cache_dir: str | None = None) -> str:
    """What to tell a user whose model is not downloaded."""
    revision = f" --revision {request.revision}" if request.revision else ""
    return (
        f"Model {request.label!r} ({request.source}) is not in the local Hugging Face cache "
        f"({hub_cache_dir(cache_dir)}) and the Hub is offline. Download it once with "
        f"`hf download {request.source}{revision}` (or run without HF_HUB_OFFLINE=1), or point to a local folder "
        f"with '{request.label}=<folder>'."
    )


def _model_type(request: ModelRequest, cache_dir: str | None, local_only: bool) -> str:
    config, _ = transformers.PreTrainedConfig.get_config_dict(
        request.source, revision=request.revision, cache_dir=hub_cache_dir(cache_dir), local_files_only=local_only
    )
    model_type = config.get("model_type")
    if model_type not in ARCHITECTURES:
        raise ValueError(
            f"Model {request.label!r} ({request.source}) has architecture {model_type!r}, which the benchmark does "
            f"not support; supported architectures: {', '.join(ARCHITECTURES)} (baselines: {', '.join(BASELINES)})."
        )
    return model_type


def _folder_revision(folder: Path) -> str:
    """A content hash of a local checkpoint's config and weights, so that retrained weights get a new cache key."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.suffix in (".json", ".safetensors", ".bin", ".txt", ".model") and path.is_file():
            digest.update(path.name.encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return f"local-{digest.hexdigest()[:16]}"


def _hub_revision(request: ModelRequest, cache_dir: str | None) -> str | None:
    """The commit of a Hub model as loaded: the snapshot folder that holds its cached ``config.json``."""
    cached = try_to_load_from_cache(
        request.source, "config.json", cache_dir=hub_cache_dir(cache_dir), revision=request.revision
    )
    return Path(cached).parent.name if isinstance(cached, str) else None


def load_adapter(
    request: ModelRequest, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
    cache_dir: str | None = None,
) -> EmbeddingAdapter:  # fmt: skip
    """Load ``request`` with its architecture's model class and processor, and wrap it in its adapter.

    Raises `ModelNotAvailableError` (saying how to download it) when the Hub is offline and the model is not
    cached, and ``ValueError`` listing the supported architectures for any other ``model_type``.
    """
    local_only = is_offline()
    if local_only and not is_available_locally(request, cache_dir):
        raise ModelNotAvailableError(not_available_message(request, cache_dir))
    model_type = _model_type(request, cache_dir, local_only)
    architecture = ARCHITECTURES[model_type]
    model_class = architecture.load_class()
    hub_kwargs = {"revision": request.revision, "cache_dir": hub_cache_dir(cache_dir), "local_files_only": local_only}
    model = model_class.from_pretrained(request.source, dtype=dtype, **hub_kwargs).to(device).eval()
    processor = transformers.AutoProcessor.from_pretrained(request.source, **hub_kwargs)
    folder = Path(request.source)
    revision = _folder_revision(folder) if folder.is_dir() else _hub_revision(request, cache_dir)
    info = ModelInfo(
        name=request.label,
        source=request.source,
        revision=revision or request.revision or "unknown",
        family=architecture.adapter.family,
        model_type=model_type,
        fusion=architecture.adapter.fusion,
        dtype=str(dtype).replace("torch.", ""),
    )
    logger.info("Loaded %s (%s, %s, revision %s)", info.name, info.source, model_type, info.revision)
    return architecture.adapter(model, processor, info)
