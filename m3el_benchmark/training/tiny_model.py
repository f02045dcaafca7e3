"""A small CLIP-ND built from scratch, offline: a BPE tokenizer trained on the data and a tiny config.

No weights can be downloaded here or in CI, so the sample run and the tests train this model. It is a real
CLIP-ND (the same classes and processor as ViT-B/32), only narrower, shallower and with a corpus-specific
vocabulary, so a few minutes on a CPU are enough for it to learn something from the bundled sample.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tokenizers import Regex, normalizers, pre_tokenizers
from transformers import CLIPImageProcessorPil, CLIPProcessor, CLIPTokenizer

from modeling_clip_nd import CLIPNDConfig, CLIPNDModel
from modeling_clip_nd.processing_clip_nd import CLIP_MAX_TOKENS

from .arguments import ModelArguments

BOS_TOKEN, EOS_TOKEN = "<|startoftext|>", "<|endoftext|>"
# CLIP's own pre-tokenisation pattern, so that the trained merges apply exactly as CLIPTokenizer splits words.
_CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def _clip_pre_tokenizer():
    """CLIP's normalisation and word splitting, as the fast `CLIPTokenizer` applies them."""
    normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    splitter = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    return normalizer, splitter


def train_clip_tokenizer(texts: Iterable[str], vocab_size: int) -> CLIPTokenizer:
    """A `CLIPTokenizer` whose BPE merges spell out the most frequent words of ``texts`` whole.

    Each word, most frequent first (ties by the word itself), gets the merges that build it left to right, until
    ``vocab_size`` is reached. Unlike a trained BPE (whose tie-breaking varies from run to run), the result depends
    on the texts alone, so a seeded run is reproducible; and frequent words become single tokens, which is what a
    small model learning from a few hundred examples needs.
    """
    normalizer, splitter = _clip_pre_tokenizer()
    counts = Counter(word for text in texts for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = alphabet + [f"{char}</w>" for char in alphabet] + [BOS_TOKEN, EOS_TOKEN]
    vocab = {token: index for index, token in enumerate(tokens)}
    merges: list[tuple[str, str]] = []
    for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        symbols = [*word[:-1], f"{word[-1]}</w>"]
        built = symbols[0]
        for symbol in symbols[1:]:
            if built + symbol not in vocab:
                if len(vocab) >= vocab_size:
                    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_MAX_TOKENS)
                vocab[built + symbol] = len(vocab)
                merges.append((built, symbol))
            built += symbol
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_MAX_TOKENS)


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
        "max_position_embeddings": CLIP_MAX_TOKENS,
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
