"""CLIP-ND: CLIP trained for multi-modal entity linking on M3EL, as a Hub-native transformers model.

Importing this package registers ``clip_nd`` with `AutoConfig` and `AutoModel`. The configuration, modeling and
loss files travel to the Hub with every saved model (``save_pretrained`` copies them and writes their ``auto_map``),
so ``AutoModel.from_pretrained(repo, trust_remote_code=True)`` works without this package installed.
"""

from transformers import AutoConfig, AutoModel

from .configuration_clip_nd import CLIPNDConfig
from .modeling_clip_nd import DEFAULT_CLIP_CHECKPOINT, CLIPNDModel, CLIPNDOutput, clip_nd_contrastive_loss
from .processing_clip_nd import prepare_images, tokenize_texts

AutoConfig.register(CLIPNDConfig.model_type, CLIPNDConfig, exist_ok=True)
AutoModel.register(CLIPNDConfig, CLIPNDModel, exist_ok=True)

__all__ = [
    "DEFAULT_CLIP_CHECKPOINT",
    "CLIPNDConfig",
    "CLIPNDModel",
    "CLIPNDOutput",
    "clip_nd_contrastive_loss",
    "prepare_images",
    "tokenize_texts",
]
