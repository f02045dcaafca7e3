"""The baseline registry: benchmark names, their Hub ids, and the adapter of each supported architecture.

This is the one place that lists the models of the paper's tables. A model is named in a run's configuration by

* a registry name (``"CLIP"``), which loads its Hub id;
* ``"<label>=<source>"``, any label for any Hub id or local folder (``"CLIP-ND=outputs/clip_nd"``);
* a bare Hub id or local folder, labelled by its last path component;
* a variant of `BASELINE_VARIANTS` (``"FLAVA-MM"``: FLAVA fusing by its multimodal encoder);
* a document-level system over any of these, ``"Gan21-OT(CLIP)"`` (``m3el_benchmark.systems.gan21.SYSTEMS``).

and any of these may end in ``#<fusion>`` (``"MyFLAVA=outputs/flava#multimodal-encoder"``) to pick the (I+T) fusion
(`base.AdapterOptions`). Whatever the source, its ``config.json`` ``model_type`` picks the adapter, so any
checkpoint of a supported architecture works.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import transformers
from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache

from ..systems.dwe_plus.adapter import DWEPlusAdapter
from ..systems.gan21 import SYSTEMS
from .base import FUSION_MEAN, FUSION_MULTIMODAL_ENCODER, FUSIONS, AdapterOptions, EmbeddingAdapter, ModelInfo
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
    processor_of_model: bool = False
    """The loaded model carries its processor (``model.processor``): a system folder whose ``config.json`` names a
    ``model_type`` transformers does not know, so `AutoProcessor` would warn about it."""

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
    "dwe_plus": Architecture("DWEPlusModel", DWEPlusAdapter, module="m3el_benchmark.systems.dwe_plus.adapter",
                             processor_of_model=True),
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

BASELINE_VARIANTS: dict[str, str] = {
    "FLAVA-MM": f"FLAVA#{FUSION_MULTIMODAL_ENCODER}",
}
"""Named options of a baseline, as the model spec they stand for: FLAVA-MM fuses ITm-ITe by FLAVA's multimodal
encoder instead of the normalised mean every model uses by default."""


class ModelNotAvailableError(FileNotFoundError):
    """A model is neither a local folder nor in the local Hugging Face cache, and the Hub cannot be reached."""


@dataclass(frozen=True)
class ModelRequest:
    """A model as named in a run: its label in the tables, where to load it from, which revision, and how it is
    asked to read its inputs (`fusion`, from the spec; `text_tokens`, the run's per-model override)."""

    label: str
    source: str
    revision: str | None = None
    fusion: str | None = None
    text_tokens: int | None = None
    system: str | None = None
    """A document-level system the model is wrapped in (a key of ``SYSTEMS``), or ``None``."""


def _split_fusion(spec: str) -> tuple[str, str | None]:
    """``"spec#fusion"`` into ``("spec", "fusion")``; a spec without ``#`` has no fusion."""
    if "#" not in spec:
        return spec, None
    spec, fusion = (part.strip() for part in spec.rsplit("#", 1))
    if fusion not in FUSIONS:
        raise ValueError(f"Model {spec}#{fusion}: unknown fusion {fusion!r}; end a model name with one of "
                         f"{', '.join('#' + name for name in FUSIONS)}, or with nothing (the mean).")  # fmt: skip
    return spec, fusion


def parse_model_spec(spec: str, revision: str | None = None) -> ModelRequest:
    """Turn ``"CLIP"``, ``"FLAVA-MM"``, ``"label=source"`` or a bare source, each optionally ending in ``#<fusion>``,
    or ``"<system>(<any of these>)"``, into a `ModelRequest`."""
    wrapped = re.fullmatch(r"(?P<system>[\w.-]+)\((?P<inner>.+)\)", spec.strip())
    if wrapped and wrapped["system"] in SYSTEMS:
        inner = parse_model_spec(wrapped["inner"], revision)
        return replace(inner, label=f"{wrapped['system']}({inner.label})", system=wrapped["system"])
    spec, fusion = _split_fusion(spec.strip())
    label = None
    if "=" in spec:
        given = spec
        label, spec = (part.strip() for part in spec.split("=", 1))
        if not label or not spec:
            raise ValueError(f"Model {given!r} must read '<label>=<Hub id or folder>', e.g. 'CLIP-ND=outputs/x'.")
    if spec in BASELINE_VARIANTS:
        baseline, variant_fusion = _split_fusion(BASELINE_VARIANTS[spec])
        return ModelRequest(label or spec, BASELINES[baseline], revision, fusion or variant_fusion)
    if spec in BASELINES:
        return ModelRequest(label or spec, BASELINES[spec], revision, fusion)
    if label is not None or Path(spec).is_dir() or spec.count("/") == 1:
        return ModelRequest(label or Path(spec).name or spec, spec, revision, fusion)
    names = ", ".join([*BASELINES, *BASELINE_VARIANTS])
    raise ValueError(
        f"Unknown model {spec!r}; use one of the baselines {names}, a Hub id ('org/name'), a local folder, or "
        f"'<label>=<source>' (e.g. 'CLIP-ND=outputs/clip_nd'), optionally ending in '#{FUSION_MULTIMODAL_ENCODER}'."
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
    cache_dir: str | None = None, keep_mention: bool = False,
) -> EmbeddingAdapter:  # fmt: skip
    """Load ``request`` with its architecture's model class and processor, and wrap it in its adapter, which reads
    texts as the request and ``keep_mention`` (the run's setting for every model) say (`AdapterOptions`).

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
    if architecture.processor_of_model:
        processor = model.processor
    else:
        processor = transformers.AutoProcessor.from_pretrained(request.source, **hub_kwargs)
    folder = Path(request.source)
    revision = _folder_revision(folder) if folder.is_dir() else _hub_revision(request, cache_dir)
    info = ModelInfo(
        name=request.label,
        source=request.source,
        revision=revision or request.revision or "unknown",
        family=architecture.adapter.family,
        model_type=model_type,
        fusion=request.fusion or FUSION_MEAN,
        dtype=str(dtype).replace("torch.", ""),
    )
    options = AdapterOptions(keep_mention=keep_mention, text_tokens=request.text_tokens, fusion=request.fusion)
    adapter = architecture.adapter(model, processor, info, options)
    info = adapter.info
    logger.info("Loaded %s (%s, %s, revision %s; %s tokens per text, from %s; fusion: %s; %s)", info.name,
                info.source, model_type, info.revision, info.text_tokens, info.text_tokens_source, info.fusion,
                info.dtype)  # fmt: skip
    if request.system is not None:
        from ..systems.gan21.system import attach_system  # the systems build on the evaluation stack

        adapter = attach_system(adapter, request.system, request.label)
    return adapter
