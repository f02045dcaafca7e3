"""The baseline registry and adapters: tiny offline models of every architecture, a fake Hub cache, errors."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from tiny_baselines import TINY_BASELINES, place_in_hub_cache, save_tiny_clip_nd
from tiny_clip import random_images
from transformers import BertConfig, BertModel

from m3el_benchmark.baselines import (
    ARCHITECTURES,
    BASELINES,
    FUSION_MULTIMODAL_ENCODER,
    ModelNotAvailableError,
    ModelRequest,
    fuse_mean,
    is_available_locally,
    load_adapter,
    parse_model_spec,
    similarity,
)
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
    if adapter.fusion == FUSION_MULTIMODAL_ENCODER:
        pairs = adapter.encode_pairs(adapter.collate_pairs(TEXTS[:2], random_images(2)))
        assert pairs.shape == (2, 1, texts.shape[-1])
    assert adapter.info.revision.startswith("local-") and adapter.info.model_type in ARCHITECTURES


def test_only_flava_fuses_with_its_own_encoder(tiny_folders):
    fusions = {name: load_adapter(ModelRequest(name, str(folder))).fusion for name, folder in tiny_folders.items()}
    assert {name for name, fusion in fusions.items() if fusion == FUSION_MULTIMODAL_ENCODER} == {"FLAVA"}


def test_similarity_takes_the_best_query_token():
    queries = torch.tensor([[[1.0, 0.0]]])  # one text vector
    keys = torch.tensor([[[[0.0, 1.0], [0.6, 0.8]], [[-1.0, 0.0], [0.0, -1.0]]]])  # two images, two queries each
    torch.testing.assert_close(similarity(queries, keys), torch.tensor([[0.6, 0.0]]))


def test_model_names():
    assert parse_model_spec("CLIP") == ModelRequest("CLIP", "openai/clip-vit-base-patch32")
    assert parse_model_spec("Mine=CLIP").source == BASELINES["CLIP"]
    assert parse_model_spec("CLIP-ND=org/clip_nd") == ModelRequest("CLIP-ND", "org/clip_nd")
    assert parse_model_spec("org/other").label == "other"
    with pytest.raises(ValueError, match="ALIGN, BLIP-2, CLIP, FLAVA, OWL-ViT, SigLIP"):
        parse_model_spec("clip-large")


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
    assert load_adapter(ModelRequest("CLIP-ND", str(tiny_folders["CLIP-ND"]))).info.fusion == "weighted mean (w=0.5)"
    adapter = load_adapter(ModelRequest("CLIP-ND", str(_clip_nd_with_weight(tiny_folders["CLIP-ND"], tmp_path, 0.8))))
    assert adapter.info.fusion == "weighted mean (w=0.8)" and adapter.image_weight == 0.8
    texts, images = adapter.collate_texts(TEXTS[:2]), adapter.collate_images(random_images(2, size=40))
    fused = fuse_mean(adapter.encode_texts(texts), adapter.encode_images(images), adapter.image_weight)
    with torch.no_grad():
        expected = adapter.model.get_multimodal_features(pixel_values=images["pixel_values"], **texts)
    torch.testing.assert_close(fused[:, 0], expected)


def test_clip_nd_keeps_the_mention_of_m_formats_and_keys_the_text_it_encodes(tiny_folders, tmp_path):
    path = resolve_source("sample", tmp_path / "datasets")
    mentions = load_mentions(path, ["test"], text_formats=["S-M", "M-S"])
    mentions.mention_parts[0]["S"] = "a very long sentence that goes on " * 30
    mentions.mention_parts[1].update(S="Short.", M="Paris")
    for row in (0, 1):  # the dataset's texts are rendered from its parts: keep them in step
        text = mention_text("S-M", mentions.mention_parts[row])
        mentions.mention_texts["S-M"][row] = mentions.inputs.add_text(text)
    clip_nd = load_adapter(ModelRequest("CLIP-ND", str(tiny_folders["CLIP-ND"])))
    fitted = model_mention_texts(clip_nd, mentions, ["S-M", "M-S"])
    for key, parts in zip(fitted.mention_texts["S-M"], mentions.mention_parts, strict=True):
        text = fitted.inputs.texts[key]  # the tiny tokenizer reads characters: every sample text is shortened
        assert key == content_key(text) and text.endswith(" " + parts["M"])
        assert len(clip_nd.tokenizer(text)["input_ids"]) <= 77
    assert fitted.inputs.texts[fitted.mention_texts["S-M"][1]] == "Short. Paris"  # a text that fits, as formatted
    assert fitted.mention_texts["M-S"] is mentions.mention_texts["M-S"]  # the mention comes first: nothing to fit
    assert fitted.mention_texts["S-M"][0] not in mentions.inputs.texts  # the dataset's table is left as it was
    clip = load_adapter(ModelRequest("CLIP", str(tiny_folders["CLIP"])))
    assert model_mention_texts(clip, mentions, ["S-M", "M-S"]) is mentions
