"""A LoRA run saved as an adapter (``--lora_r N --save_merged false``): a folder that loads back by itself.

peft alone would save the adapter weights, a blank card and a ``base_model_name_or_path`` naming where training
started (a CLIP checkpoint, not a CLIP-ND; nothing loadable at all for ``--init tiny``). So the folder holds the
adapter, the processor and the real card, and in ``base/`` the CLIP-ND the adapter applies to (the weights training
started from, with its remote code). The adapter names that folder (pushed: the ``<repo>-base`` Hub repo) and says
to build it with ``AutoModel`` and ``trust_remote_code``, not with our package's class, which peft's import allow-list
refuses and which a user of the Hub repo does not have. Both loaders then work:

    AutoModel.from_pretrained(folder, trust_remote_code=True)      # CLIP-ND with the adapter (peft installed)
    AutoPeftModel.from_pretrained(folder, trust_remote_code=True)  # the PeftModel; .merge_and_unload() merges

The base is a separate folder, not the adapter's own, because transformers applies an adapter it finds beside a
model's weights: `AutoPeftModel` would then wrap a model that already carries it.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from huggingface_hub import ModelCard

ADAPTER_CONFIG_FILE = "adapter_config.json"
BASE_DIR = "base"
"""The sub-folder holding the CLIP-ND the adapter applies to."""
AUTO_MAPPING = {"base_model_class": "AutoModel", "parent_library": "transformers"}
"""How `AutoPeftModel` builds the base: ``transformers.AutoModel``, which loads CLIP-ND's remote code."""


def is_adapter_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a LoRA adapter (and its base in ``base/``) rather than a whole CLIP-ND."""
    return (Path(folder) / ADAPTER_CONFIG_FILE).is_file()


def model_folder(folder: str | Path) -> Path:
    """Where the CLIP-ND config of a saved run is: ``folder``, or ``folder/base`` for an adapter."""
    return Path(folder) / BASE_DIR if is_adapter_folder(folder) else Path(folder)


def save_adapter_with_base(peft_model, folder: str | Path, model_card: ModelCard, processor, base: str | Path) -> None:
    """Save ``peft_model``'s adapter with ``model_card`` (not peft's blank one) into ``folder``, and the CLIP-ND it
    wraps (without the adapter) with ``processor`` into ``folder/base``; the adapter names ``base`` as its base
    model (the final base folder's absolute path)."""
    folder = Path(folder)
    peft_model.save_pretrained(folder)
    model_card.save(folder / "README.md")
    clip_nd = copy.deepcopy(peft_model).unload()  # the base weights: LoRA layers removed, not merged
    clip_nd.save_pretrained(folder / BASE_DIR)
    processor.save_pretrained(folder / BASE_DIR)
    point_adapter_at(folder, base)


def point_adapter_at(folder: str | Path, base: str | Path) -> None:
    """Rewrite the adapter config of ``folder`` so that its base model is ``base``, built with ``AutoModel``."""
    path = Path(folder) / ADAPTER_CONFIG_FILE
    content = json.loads(path.read_text(encoding="utf-8"))
    content.update(base_model_name_or_path=str(base), revision=None, auto_mapping=AUTO_MAPPING)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(staging, path)


__all__ = ["ADAPTER_CONFIG_FILE", "BASE_DIR", "is_adapter_folder", "model_folder", "point_adapter_at",
           "save_adapter_with_base"]  # fmt: skip
