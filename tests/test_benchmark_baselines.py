"""The baseline registry and adapters: tiny offline models of every architecture, a fake Hub cache, errors."""

from __future__ import annotations

import json
import logging
import shutil
from types import SimpleNamespace

import pytest
import torch
from tiny_baselines import TINY_BASELINES, place_in_hub_cache, save_tiny_clip_nd
from tiny_clip import random_images
from transformers import (
    AlignConfig,
    AutoProcessor,
    BertConfig,
    BertModel,
    Blip2Config,
    CLIPConfig,
    FlavaConfig,
    OwlViTConfig,
    SiglipConfig,
)

from m3el_benchmark.baselines import (
    ARCHITECTURES,
    BASELINES,
    FUSION_MEAN,
    FUSION_MULTIMODAL_ENCODER,
    ModelInfo,
    ModelNotAvailableError,
    ModelRequest,
    fuse_mean,
    is_available_locally,
    load_adapter,
    parse_model_spec,
    similarity,
)
from m3el_benchmark.baselines.blip2 import Blip2Adapter
from m3el_benchmark.baselines.dual_encoder import ALIGNAdapter, CLIPAdapter, OwlViTAdapter, SiglipAdapter
from m3el_benchmark.baselines.flava import FlavaAdapter
from m3el_benchmark.evaluation.data import content_key, load_mentions
from m3el_benchmark.evaluation.evaluate import model_mention_texts
from m3el_dataset.loading import resolve_source
from m3el_dataset.text_formats import mention_text

ALL_MODELS = {**TINY_BASELINES, "CLIP-ND": save_tiny_clip_nd}
TEXTS = ["The Hidden Kingdom: 1969 mystery textbook by Paul Varga", "Paris", "a much longer text " * 20]


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    return {name: build(root / name) for name, build in ALL_MODELS.items()}


@pytest.mark.parametrize("name", list(ALL_MODELS))
def test_adapter_gives_normalised_embeddings_in_one_space(name, tiny_folders):
    adapter = load_adapter(ModelRequest(name, str(tiny_folders[name])))
    texts = adapter.encode_texts(adapter.collate_texts(TEXTS))
    images = adapter.encode_images(adapter.collate_images(random_images(2, size=40)))
    assert texts.shape[:2] == (3, 1) and images.shape[0] == 2
    assert texts.shape[-1] == images.shape[-1]
    torch.testing.assert_close(texts.norm(dim=-1), torch.ones(texts.shape[:2]))
    torch.testing.assert_close(images.norm(dim=-1), torch.ones(images.shape[:2]))
    assert images.shape[1] == (4 if name == "BLIP-2" else 1)  # BLIP-2: one vector per query token
    if adapter.pair_encoder:
        pairs = adapter.encode_pairs(adapter.collate_pairs(TEXTS[:2], random_images(2)))
        assert pairs.shape == (2, 1, texts.shape[-1])
    assert adapter.info.revision.startswith("local-") and adapter.info.model_type in ARCHITECTURES


def test_every_model_fuses_by_the_mean_and_only_flava_may_use_its_own_encoder(tiny_folders):
    adapters = {name: load_adapter(ModelRequest(name, str(folder))) for name, folder in tiny_folders.items()}
    assert {name: adapter.fusion for name, adapter in adapters.items()} == dict.fromkeys(tiny_folders, FUSION_MEAN)
    assert {name: adapter.info.fusion for name, adapter in adapters.items()} == dict.fromkeys(tiny_folders, "mean")
    flava = load_adapter(ModelRequest("FLAVA-MM", str(tiny_folders["FLAVA"]), fusion=FUSION_MULTIMODAL_ENCODER))
    assert flava.fusion == FUSION_MULTIMODAL_ENCODER
    assert flava.info.fusion == "multimodal-encoder (ITm-ITe; mean elsewhere)"
    with pytest.raises(ValueError, match="'CLIP' \\(clip\\) has no multimodal encoder of its own"):
        load_adapter(ModelRequest("CLIP", str(tiny_folders["CLIP"]), fusion=FUSION_MULTIMODAL_ENCODER))


NATIVE_TEXT_TOKENS = {
    "ALIGN": (64, "AlignProcessor.text_kwargs['max_length']"),
    "BLIP-2": (64, "config.qformer_config.max_position_embeddings"),
    "CLIP": (77, "config.text_config.max_position_embeddings"),
    "FLAVA": (80, "config.text_config.max_position_embeddings"),
    "OWL-ViT": (16, "config.text_config.max_position_embeddings"),
    "SigLIP": (16, "config.text_config.max_position_embeddings"),
    "CLIP-ND": (77, "config.text_config.max_position_embeddings"),
}
"""Each tiny model's own text length and where it comes from (tiny_baselines: ALIGN's tower has 80 positions)."""


@pytest.mark.parametrize("name", list(ALL_MODELS))
def test_each_model_reads_texts_at_its_own_length_unless_overridden(name, tiny_folders):
    tokens, source = NATIVE_TEXT_TOKENS[name]
    adapter = load_adapter(ModelRequest(name, str(tiny_folders[name])))
    assert adapter.text_context == adapter.info.text_tokens == tokens and adapter.info.text_tokens_source == source
    assert adapter.collate_texts(TEXTS)["input_ids"].shape[1] == tokens  # the long text is cut there
    shorter = load_adapter(ModelRequest(name, str(tiny_folders[name]), text_tokens=12))
    assert shorter.info.text_tokens == 12 and shorter.info.text_tokens_source == "run config (text_tokens)"
    assert shorter.collate_texts(TEXTS)["input_ids"].shape[1] == 12
    positions = shorter.max_text_positions()
    with pytest.raises(ValueError, match=f"text length {positions + 1} is outside 3..{positions}"):
        load_adapter(ModelRequest(name, str(tiny_folders[name]), text_tokens=positions + 1))


@pytest.mark.parametrize(
    ("adapter_class", "config", "tokens"),
    [(FlavaAdapter, FlavaConfig(), 512), (Blip2Adapter, Blip2Config(), 512), (ALIGNAdapter, AlignConfig(), 64),
     (CLIPAdapter, CLIPConfig(), 77), (SiglipAdapter, SiglipConfig(), 64), (OwlViTAdapter, OwlViTConfig(), 16)],
)  # fmt: skip
def test_the_released_architectures_text_lengths(adapter_class, config, tokens, tiny_folders):
    """With their default configs (those of the Hub checkpoints), the lengths come out as the models' own: FLAVA's
    and BLIP-2's 512 positions, not the 77 and 35 that were set by hand; ALIGN's processor's 64."""
    # ALIGN's own processor class (its default length); any other: one whose tokenizer sets no length of its own.
    processor = AutoProcessor.from_pretrained(tiny_folders["ALIGN" if adapter_class is ALIGNAdapter else "FLAVA"])
    model = SimpleNamespace(config=config)  # the length needs the config only, not the weights
    info = ModelInfo("m", "m", "r", adapter_class.family, config.model_type, FUSION_MEAN, "float32")
    assert adapter_class(model, processor, info).text_context == tokens


def test_similarity_takes_the_best_query_token():
    queries = torch.tensor([[[1.0, 0.0]]])  # one text vector
    keys = torch.tensor([[[[0.0, 1.0], [0.6, 0.8]], [[-1.0, 0.0], [0.0, -1.0]]]])  # two images, two queries each
    torch.testing.assert_close(similarity(queries, keys), torch.tensor([[0.6, 0.0]]))


def test_model_names():
    assert parse_model_spec("CLIP") == ModelRequest("CLIP", "openai/clip-vit-base-patch32")
    assert parse_model_spec("Mine=CLIP").source == BASELINES["CLIP"]
    assert parse_model_spec("CLIP-ND=org/clip_nd") == ModelRequest("CLIP-ND", "org/clip_nd")
    assert parse_model_spec("org/other").label == "other"
    with pytest.raises(ValueError, match="ALIGN, BLIP-2, CLIP, FLAVA, OWL-ViT, SigLIP, FLAVA-MM"):
        parse_model_spec("clip-large")
    flava_mm = ModelRequest("FLAVA-MM", BASELINES["FLAVA"], fusion=FUSION_MULTIMODAL_ENCODER)
    assert parse_model_spec("FLAVA-MM") == flava_mm == parse_model_spec("FLAVA-MM=FLAVA#multimodal-encoder")
    mine = ModelRequest("Mine", "org/flava", fusion=FUSION_MULTIMODAL_ENCODER)
    assert parse_model_spec("Mine=org/flava#multimodal-encoder") == mine
    assert parse_model_spec("FLAVA").fusion is None
    with pytest.raises(ValueError, match="unknown fusion 'concat'"):
        parse_model_spec("FLAVA#concat")


def test_unknown_architecture_lists_the_supported_ones(tmp_path):
    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37)
    ).save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match="architecture 'bert'.*align, blip-2, clip, clip_nd, flava, owlvit, siglip"):
        load_adapter(ModelRequest("BERT", str(tmp_path / "bert")))


def test_offline_model_missing_from_the_cache_says_how_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    request = parse_model_spec("SigLIP")
    assert not is_available_locally(request)
    with pytest.raises(ModelNotAvailableError, match="hf download google/siglip-base-patch16-224"):
        load_adapter(request)


def test_hub_id_loads_from_the_local_cache_with_its_revision(tiny_folders, tmp_path, monkeypatch):
    commit = "1234567890abcdef1234567890abcdef12345678"
    place_in_hub_cache(tiny_folders["CLIP"], tmp_path / "hub", BASELINES["CLIP"], commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    request = parse_model_spec("CLIP")
    assert is_available_locally(request)
    adapter = load_adapter(request)
    assert adapter.info.source == "openai/clip-vit-base-patch32" and adapter.info.revision == commit


def test_texts_longer_than_the_context_are_counted_in_one_warning(tiny_folders, caplog):
    adapter = load_adapter(ModelRequest("CLIP", str(tiny_folders["CLIP"])))
    with caplog.at_level(logging.WARNING):
        batch = adapter.collate_texts(TEXTS)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "CLIP: 1 of 3 texts of this batch are longer than its 77-token" in warnings[0]
    assert batch["input_ids"].shape == (3, 77)


def _clip_nd_with_weight(folder, tmp_path, weight: float):
    copy = tmp_path / f"clip_nd_w{weight}"
    shutil.copytree(folder, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "fusion_image_weight": weight}))
    return copy


def test_clip_nd_fuses_with_its_own_image_weight(tiny_folders, tmp_path):
    assert load_adapter(ModelRequest("CLIP-ND", str(tiny_folders["CLIP-ND"]))).info.fusion == "mean"  # as CLIP
    adapter = load_adapter(ModelRequest("CLIP-ND", str(_clip_nd_with_weight(tiny_folders["CLIP-ND"], tmp_path, 0.8))))
    assert adapter.info.fusion == "weighted mean (w=0.8)" and adapter.image_weight == 0.8
    texts, images = adapter.collate_texts(TEXTS[:2]), adapter.collate_images(random_images(2, size=40))
    fused = fuse_mean(adapter.encode_texts(texts), adapter.encode_images(images), adapter.image_weight)
    with torch.no_grad():
        expected = adapter.model.get_multimodal_features(pixel_values=images["pixel_values"], **texts)
    torch.testing.assert_close(fused[:, 0], expected)


def _long_sample_mentions(tmp_path):
    mentions = load_mentions(resolve_source("sample", tmp_path / "datasets"), ["test"], text_formats=["S-M", "M-S"])
    mentions.mention_parts[0]["S"] = "a very long sentence that goes on " * 30
    mentions.mention_parts[1].update(S="Short.", M="Paris")
    for row in (0, 1):  # the dataset's texts are rendered from its parts: keep them in step
        text = mention_text("S-M", mentions.mention_parts[row])
        mentions.mention_texts["S-M"][row] = mentions.inputs.add_text(text)
    return mentions


@pytest.mark.parametrize("name", list(ALL_MODELS))  # SigLIP's SentencePiece tokenizer gives no offsets
def test_keep_mention_fits_every_model_alike_and_keys_the_text_it_encodes(name, tiny_folders, tmp_path):
    mentions = _long_sample_mentions(tmp_path)
    plain = load_adapter(ModelRequest(name, str(tiny_folders[name])))
    assert model_mention_texts(plain, mentions, ["S-M", "M-S"]) is mentions  # default: cut at the end, as the paper
    adapter = load_adapter(ModelRequest(name, str(tiny_folders[name])), keep_mention=True)
    fitted = model_mention_texts(adapter, mentions, ["S-M", "M-S"])
    for key, parts in zip(fitted.mention_texts["S-M"], mentions.mention_parts, strict=True):
        text = fitted.inputs.texts[key]  # the tiny tokenizers read characters: every sample text is shortened
        assert key == content_key(text) and text.endswith(parts["M"])
        # It fits; or, in a 16-token context (OWL-ViT, SigLIP), the mention alone is left, the sentence dropped.
        assert len(adapter.tokenizer(text)["input_ids"]) <= adapter.text_context or text == parts["M"]
    assert fitted.inputs.texts[fitted.mention_texts["S-M"][1]] == "Short. Paris"  # a text that fits, as formatted
    assert fitted.mention_texts["M-S"] is mentions.mention_texts["M-S"]  # the mention comes first: nothing to fit
    assert fitted.mention_texts["S-M"][0] not in mentions.inputs.texts  # the dataset's table is left as it was


def test_clip_and_an_untrained_clip_nd_read_the_same_texts(tiny_folders, tmp_path):
    mentions = _long_sample_mentions(tmp_path)
    for keep_mention in (False, True):
        clip, clip_nd = (load_adapter(ModelRequest(name, str(tiny_folders[name])), keep_mention=keep_mention)
                         for name in ("CLIP", "CLIP-ND"))  # fmt: skip
        texts = [model_mention_texts(adapter, mentions, ["S-M"]) for adapter in (clip, clip_nd)]
        assert texts[0].mention_texts == texts[1].mention_texts
        keys = texts[0].mention_texts["S-M"]
        batches = [adapter.collate_texts([texts[0].inputs.texts[key] for key in keys]) for adapter in (clip, clip_nd)]
        assert all(torch.equal(batches[0][field], batches[1][field]) for field in ("input_ids", "attention_mask"))
