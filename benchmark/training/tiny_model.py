"""A small CLIP-ND built from scratch, offline: a BPE tokenizer trained on the data and a tiny config.

No weights can be downloaded here or in CI, so the sample run and the tests train this model. It is a real
CLIP-ND (the same classes and processor as ViT-B/32), only narrower, shallower and with a corpus-specific
vocabulary, so a few minutes on a CPU are enough for it to learn something from the bundled sample.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import CLIPImageProcessorPil, CLIPProcessor, CLIPTokenizer

from modeling_clip_nd import CLIPNDConfig, CLIPNDModel

from .arguments import ModelArguments

BOS_TOKEN, EOS_TOKEN = "<|startoftext|>", "<|endoftext|>"
MAX_TEXT_TOKENS = 77
# CLIP's own pre-tokenisation pattern, so that the trained merges apply exactly as CLIPTokenizer splits words.
_CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def train_clip_tokenizer(texts: Iterable[str], vocab_size: int) -> CLIPTokenizer:
    """Train a byte-level BPE with CLIP's conventions (lower case, ``</w>`` word ends) on ``texts``."""
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        end_of_word_suffix="</w>",
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[BOS_TOKEN, EOS_TOKEN],
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ")) for merge in model["merges"]]
    return CLIPTokenizer(vocab=model["vocab"], merges=merges, model_max_length=MAX_TEXT_TOKENS)


def build_tiny_clip_nd(texts: Iterable[str], args: ModelArguments) -> tuple[CLIPNDModel, CLIPProcessor]:
    """A randomly initialised small CLIP-ND and its `CLIPProcessor`, its tokenizer trained on ``texts``."""
    tokenizer = train_clip_tokenizer(texts, args.tiny_vocab_size)
    vocab = tokenizer.get_vocab()
    tower = {
        "hidden_size": args.tiny_hidden_size,
        "intermediate_size": 4 * args.tiny_hidden_size,
        "num_hidden_layers": args.tiny_layers,
        "num_attention_heads": max(1, args.tiny_hidden_size // 16),
    }
    text_config = {
        **tower,
        "vocab_size": len(vocab),
        "max_position_embeddings": MAX_TEXT_TOKENS,
        "bos_token_id": vocab[BOS_TOKEN],
        "eos_token_id": vocab[EOS_TOKEN],
        "pad_token_id": vocab[EOS_TOKEN],
    }
    vision_config = {**tower, "image_size": args.tiny_image_size, "patch_size": args.tiny_patch_size}
    config = CLIPNDConfig(text_config=text_config, vision_config=vision_config, projection_dim=args.tiny_hidden_size)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": args.tiny_image_size},
        crop_size={"height": args.tiny_image_size, "width": args.tiny_image_size},
    )
    return CLIPNDModel(config), CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
