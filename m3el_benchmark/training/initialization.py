"""The model a training run starts from: a tiny CLIP-ND built from scratch or any CLIP / CLIP-ND checkpoint,
optionally wrapped in a LoRA adapter, and its AdamW parameter groups."""

from __future__ import annotations

import torch
from transformers import AutoProcessor

from modeling_clip_nd import CLIPNDModel

from .arguments import TINY_INIT, ModelArguments, TrainingArguments
from .tiny_model import build_tiny_clip_nd

LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "out_proj"]
"""The attention projections of both towers, where a LoRA adapter is put."""


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups as open_clip: no weight decay on biases, norms (1-D parameters) and the temperature."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        exempt = parameter.ndim < 2 or "bias" in name or "norm" in name or "logit_scale" in name
        (no_decay if exempt else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_model(model_args: ModelArguments, train_rows) -> tuple[torch.nn.Module, object]:
    """The model to train and its processor: ``tiny`` from scratch, or any CLIP / CLIP-ND checkpoint."""
    if model_args.init == TINY_INIT:
        columns = train_rows.column_names  # an image-only dataset has neither: the vocabulary is then the base one
        texts = list(train_rows["text_S"]) if "text_S" in columns else []
        if "candidate_texts" in columns:
            texts += [text for texts in train_rows["candidate_texts"] for text in texts]
        return build_tiny_clip_nd(texts, model_args)
    model = CLIPNDModel.from_clip(model_args.init, revision=model_args.revision)
    return model, AutoProcessor.from_pretrained(model_args.init, revision=model_args.revision)


def apply_lora(model: CLIPNDModel, args: TrainingArguments) -> torch.nn.Module:
    """Wrap ``model`` in a peft LoRA adapter on the attention projections of both towers."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, target_modules=LORA_TARGET_MODULES
    )
    return get_peft_model(model, config)
