"""Tiny, offline versions of the benchmark's six baseline architectures, saved like Hub checkpoints.

Each ``save_tiny_*`` writes a randomly initialised model (hidden size 32, 2 layers, 4 heads, as transformers' own
model testers) and its processor to a folder, with tokenizers built here: CLIP-style byte-level for CLIP and
OWL-ViT (from `tiny_clip`), WordPiece over characters for the BERT-style towers of ALIGN, BLIP-2 and FLAVA, and a
SentencePiece model trained in a second on a few sentences for SigLIP. `place_in_hub_cache` copies such a folder
into a fake Hugging Face cache, so that a test can load ``openai/clip-vit-base-patch32`` offline.

    from tiny_baselines import TINY_BASELINES, place_in_hub_cache

    folder = TINY_BASELINES["FLAVA"](tmp_path / "flava")
"""

from __future__ import annotations

import shutil
import string
from collections.abc import Callable
from pathlib import Path

import torch
from tiny_clip import IMAGE_SIZE, save_tiny_clip, tiny_processor, tiny_tokenizer, tiny_vocab
from transformers import (
    AlignConfig,
    AlignModel,
    AlignProcessor,
    BertTokenizer,
    Blip2Config,
    Blip2ForImageTextRetrieval,
    Blip2Processor,
    BlipImageProcessorPil,
    EfficientNetImageProcessorPil,
    FlavaConfig,
    FlavaImageProcessorPil,
    FlavaModel,
    FlavaProcessor,
    OwlViTConfig,
    OwlViTImageProcessorPil,
    OwlViTModel,
    OwlViTProcessor,
    SiglipConfig,
    SiglipImageProcessorPil,
    SiglipModel,
    SiglipProcessor,
    SiglipTokenizer,
)

from modeling_clip_nd import CLIPNDModel

TOWER = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
"""Width and depth of every tiny transformer tower."""

SQUARE = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}


def wordpiece_tokenizer() -> BertTokenizer:
    """A lower-casing `BertTokenizer` over single characters (and ``##`` continuations): never an unknown word."""
    characters = string.ascii_lowercase + string.digits + string.punctuation
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = specials + list(characters) + [f"##{char}" for char in characters]
    return BertTokenizer(vocab={token: index for index, token in enumerate(tokens)})


def _save(model: torch.nn.Module, processor, path: str | Path) -> Path:
    path = Path(path)
    model.eval().save_pretrained(path)
    processor.save_pretrained(path)
    return path


def save_tiny_align(path: str | Path, seed: int = 0) -> Path:
    """ALIGN: a tiny EfficientNet image tower and BERT text tower (80 positions, read at its processor's 64)."""
    torch.manual_seed(seed)
    tokenizer = wordpiece_tokenizer()
    config = AlignConfig(
        # More positions than the 64 tokens its processor cuts at, as in ALIGN (512): the processor's length wins.
        text_config={**TOWER, "vocab_size": len(tokenizer), "max_position_embeddings": 80},
        vision_config={
            "image_size": 32,
            "hidden_dim": 64,
            "num_hidden_layers": 2,
            "width_coefficient": 1.0,
            "depth_coefficient": 1.0,
            "kernel_sizes": [3, 3],
            "in_channels": [32, 16],
            "out_channels": [16, 32],
            "depthwise_padding": [],
            "strides": [1, 2],
            "num_block_repeats": [1, 1],
            "expand_ratios": [1, 2],
        },
        projection_dim=32,
    )
    image_processor = EfficientNetImageProcessorPil(size={"height": 32, "width": 32})
    return _save(AlignModel(config), AlignProcessor(image_processor=image_processor, tokenizer=tokenizer), path)


def save_tiny_blip2(path: str | Path, seed: int = 0) -> Path:
    """BLIP-2 for image-text retrieval: a tiny ViT, a tiny Q-Former with 4 query tokens, no language model use."""
    torch.manual_seed(seed)
    tokenizer = wordpiece_tokenizer()
    config = Blip2Config(
        vision_config={**TOWER, "image_size": IMAGE_SIZE, "patch_size": 2},
        qformer_config={
            **TOWER,
            "vocab_size": len(tokenizer) + 1,
            "encoder_hidden_size": 32,
            "use_qformer_text_input": True,
            "max_position_embeddings": 64,
        },
        text_config={
            "model_type": "opt",
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "ffn_dim": 37,
            "num_attention_heads": 4,
            "vocab_size": 99,
            "word_embed_proj_dim": 32,
        },
        num_query_tokens=4,
        image_text_hidden_size=16,
    )
    image_processor = BlipImageProcessorPil(size=SQUARE)
    processor = Blip2Processor(image_processor=image_processor, tokenizer=tokenizer, num_query_tokens=4)
    return _save(Blip2ForImageTextRetrieval(config), processor, path)


def save_tiny_clip_baseline(path: str | Path, seed: int = 0) -> Path:
    """CLIP: the tiny CLIP of `tiny_clip`."""
    return save_tiny_clip(path, seed)


def save_tiny_flava(path: str | Path, seed: int = 0) -> Path:
    """FLAVA: tiny image, text and multimodal encoders, all 32 wide like the projections."""
    torch.manual_seed(seed)
    tokenizer = wordpiece_tokenizer()
    config = FlavaConfig(
        image_config={**TOWER, "image_size": IMAGE_SIZE, "patch_size": 2},
        text_config={**TOWER, "vocab_size": len(tokenizer), "max_position_embeddings": 80},
        multimodal_config=dict(TOWER),
        image_codebook_config={"hidden_size": 8, "num_groups": 1, "num_blocks_per_group": 1, "vocab_size": 16},
        hidden_size=32,
        projection_dim=32,
    )
    image_processor = FlavaImageProcessorPil(size=SQUARE, crop_size=SQUARE)
    return _save(FlavaModel(config), FlavaProcessor(image_processor=image_processor, tokenizer=tokenizer), path)


def save_tiny_owlvit(path: str | Path, seed: int = 0) -> Path:
    """OWL-ViT: a tiny CLIP-like backbone whose texts are 16 tokens long."""
    torch.manual_seed(seed)
    vocab = tiny_vocab()
    eos = vocab["<|endoftext|>"]
    config = OwlViTConfig(
        text_config={
            **TOWER,
            "vocab_size": len(vocab),
            "max_position_embeddings": 16,
            "bos_token_id": eos - 1,
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={**TOWER, "image_size": IMAGE_SIZE, "patch_size": 2},
        projection_dim=32,
    )
    tokenizer = tiny_tokenizer()
    tokenizer.model_max_length = 16
    image_processor = OwlViTImageProcessorPil(size=SQUARE, crop_size=SQUARE)
    return _save(OwlViTModel(config), OwlViTProcessor(image_processor=image_processor, tokenizer=tokenizer), path)


def sentencepiece_tokenizer(folder: Path) -> SiglipTokenizer:
    """A `SiglipTokenizer` over a 50-piece SentencePiece model trained offline on a few invented sentences."""
    import sentencepiece

    words = ["the hidden kingdom", "paper letter", "salt voyage", "lost tower"]
    kinds, colours = ["book", "film", "person", "sport"], ["red", "green", "blue", "white", "black"]
    corpus = [f"{words[i % 4]} {i} is a {kinds[i % 3 % 4]} shown by {colours[i % 5]} shapes." for i in range(100)]
    folder.mkdir(parents=True, exist_ok=True)
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_prefix=str(folder / "spiece"),
        vocab_size=50,
        hard_vocab_limit=False,
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    return SiglipTokenizer(str(folder / "spiece.model"), model_max_length=16)


def save_tiny_siglip(path: str | Path, seed: int = 0) -> Path:
    """SigLIP: tiny towers, texts padded to 16 tokens, a SentencePiece tokenizer trained offline."""
    torch.manual_seed(seed)
    path = Path(path)
    tokenizer = sentencepiece_tokenizer(path / "_spm")
    config = SiglipConfig(
        text_config={
            **TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 16,
            "pad_token_id": 0,
            "eos_token_id": 1,
        },
        vision_config={**TOWER, "image_size": IMAGE_SIZE, "patch_size": 2},
    )
    image_processor = SiglipImageProcessorPil(size=SQUARE)
    folder = _save(SiglipModel(config), SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer), path)
    shutil.rmtree(path / "_spm")
    return folder


TINY_BASELINES: dict[str, Callable[..., Path]] = {
    "ALIGN": save_tiny_align,
    "BLIP-2": save_tiny_blip2,
    "CLIP": save_tiny_clip_baseline,
    "FLAVA": save_tiny_flava,
    "OWL-ViT": save_tiny_owlvit,
    "SigLIP": save_tiny_siglip,
}
"""A builder per baseline name of ``m3el_benchmark.baselines.BASELINES``."""


def place_in_hub_cache(folder: str | Path, cache_dir: str | Path, repo_id: str, commit: str = "0" * 40) -> Path:
    """Copy a saved model into a Hugging Face cache layout (``models--org--name/snapshots/<commit>``)."""
    repo = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(folder, snapshot, dirs_exist_ok=True)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def save_tiny_clip_nd(path: str | Path, seed: int = 0) -> Path:
    """CLIP-ND: the tiny CLIP of `tiny_clip` converted with `CLIPNDModel.from_clip`, saved with its processor."""
    path = Path(path)
    clip = save_tiny_clip(path.with_name(path.name + "-clip"), seed)
    CLIPNDModel.from_clip(clip).save_pretrained(path)
    tiny_processor().save_pretrained(path)
    shutil.rmtree(clip)
    return path


def save_all_tiny_models(folder: str | Path) -> dict[str, Path]:
    """Save the six tiny baselines and a tiny CLIP-ND under ``folder``; return their folders by benchmark label."""
    folder = Path(folder)
    models = {name: build(folder / name) for name, build in TINY_BASELINES.items()}
    models["CLIP-ND"] = save_tiny_clip_nd(folder / "CLIP-ND")
    return models
