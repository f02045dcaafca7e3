"""CLIP-ND: CLIP trained for multi-modal entity linking on M3EL, as a Hub-native transformers model.

Importing this package registers ``clip_nd`` with `AutoConfig` and `AutoModel`, and the ``multimodal-entity-linking``
pipeline task. The configuration, modeling, loss, pipeline and processing files travel to the Hub with every saved
model (``save_pretrained`` copies them and writes their ``auto_map`` and ``custom_pipelines``), so
``AutoModel.from_pretrained(repo, trust_remote_code=True)`` and
``pipeline("multimodal-entity-linking", model=repo, trust_remote_code=True)`` work without this package installed.
"""

from transformers import AutoConfig, AutoModel

from .configuration_clip_nd import CLIPNDConfig
from .modeling_clip_nd import DEFAULT_CLIP_CHECKPOINT, CLIPNDModel, CLIPNDOutput, clip_nd_contrastive_loss
from .pipeline_clip_nd import PIPELINE_TASK, CLIPNDLinkingPipeline, register_pipeline
from .processing_clip_nd import prepare_images, tokenize_texts

AutoConfig.register(CLIPNDConfig.model_type, CLIPNDConfig, exist_ok=True)
AutoModel.register(CLIPNDConfig, CLIPNDModel, exist_ok=True)
register_pipeline()

__all__ = [
    "PIPELINE_TASK",
    "CLIPNDLinkingPipeline",
    "DEFAULT_CLIP_CHECKPOINT",
    "CLIPNDConfig",
    "CLIPNDModel",
    "CLIPNDOutput",
    "clip_nd_contrastive_loss",
    "prepare_images",
    "tokenize_texts",
]
