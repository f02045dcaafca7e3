"""A tiny, offline CLIP for tests: config, tokenizer, image processor, processor and a saved checkpoint.

Mirrors the ``CLIPModelTester`` of transformers (hidden 32, 2 layers, 4 heads, image 30, patch 2) so a whole
model builds and runs in milliseconds on a CPU. Nothing is downloaded: the tokenizer's vocabulary is the 256
byte-level characters (each alone and as a word end ``</w>``) plus CLIP's two special tokens, so every character
of a text is one token and a string of ~80 letters is already longer than CLIP's 77-token context.

Import it by plain name from any test (pytest puts ``tests/`` on ``sys.path``)::

    from tiny_clip import save_tiny_clip, tiny_clip_config, tiny_processor

    model = CLIPNDModel.from_clip(save_tiny_clip(tmp_path / "clip"))  # a tiny CLIP-ND, as from openai's CLIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tokenizers.pre_tokenizers import ByteLevel
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

from modeling_clip_nd.processing_clip_nd import CLIP_MAX_TOKENS

IMAGE_SIZE = 30
"""Side of the (square) images the tiny vision tower takes."""

MAX_TEXT_TOKENS = CLIP_MAX_TOKENS
"""CLIP's text context, special tokens included; the tiny model keeps it so truncation tests are realistic."""

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"


def tiny_vocab() -> dict[str, int]:
    """Return the byte-level vocabulary: every byte character alone, then as a word end, then the specials."""
    alphabet = sorted(ByteLevel.alphabet())
    tokens = alphabet + [f"{char}</w>" for char in alphabet] + [BOS_TOKEN, EOS_TOKEN]
    return {token: index for index, token in enumerate(tokens)}


def tiny_tokenizer() -> CLIPTokenizer:
    """Return a `CLIPTokenizer` over `tiny_vocab` (no merges: one token per character), built fully offline."""
    return CLIPTokenizer(vocab=tiny_vocab(), merges=[], model_max_length=MAX_TEXT_TOKENS)


def tiny_image_processor() -> CLIPImageProcessorPil:
    """Return CLIP's PIL image processor resizing and centre-cropping to `IMAGE_SIZE` (torchvision is not needed)."""
    return CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )


def tiny_processor() -> CLIPProcessor:
    """Return a standard `CLIPProcessor` made of `tiny_image_processor` and `tiny_tokenizer`."""
    return CLIPProcessor(image_processor=tiny_image_processor(), tokenizer=tiny_tokenizer())


def tiny_clip_config(**overrides) -> CLIPConfig:
    """Return the tiny `CLIPConfig` of transformers' CLIP tests; ``overrides`` go to `CLIPConfig` itself."""
    vocab = tiny_vocab()
    text_config = {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "intermediate_size": 37,
        "projection_dim": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": MAX_TEXT_TOKENS,
        "bos_token_id": vocab[BOS_TOKEN],
        "eos_token_id": vocab[EOS_TOKEN],
        "pad_token_id": vocab[EOS_TOKEN],
    }
    vision_config = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "projection_dim": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": IMAGE_SIZE,
        "patch_size": 2,
    }
    return CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=32, **overrides)


def tiny_clip_model(seed: int = 0) -> CLIPModel:
    """Return a randomly initialised tiny `CLIPModel` in eval mode; ``seed`` makes its weights reproducible."""
    torch.manual_seed(seed)
    return CLIPModel(tiny_clip_config()).eval()


def save_tiny_clip(path: str | Path, seed: int = 0) -> Path:
    """Save a tiny `CLIPModel` and its `CLIPProcessor` to ``path``, like a local copy of a CLIP Hub checkpoint."""
    path = Path(path)
    tiny_clip_model(seed).save_pretrained(path)
    tiny_processor().save_pretrained(path)
    return path


def random_images(count: int, seed: int = 0, size: int = IMAGE_SIZE) -> list[Image.Image]:
    """Return ``count`` random RGB images of ``size`` x ``size`` pixels."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]
