"""DWE+ (issue 17): losses, head, feature extraction and the benchmark adapter, on tiny random models offline."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from tiny_baselines import save_tiny_owlvit
from tiny_clip import save_tiny_clip
from transformers import OwlViTConfig, OwlViTForObjectDetection

from m3el_benchmark.systems.dwe_plus.configuration import DWEPlusConfig
from m3el_benchmark.systems.dwe_plus.loss import clip_contrastive_loss, n_pair_loss
from m3el_benchmark.systems.dwe_plus.modeling import DWEPlusHead


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny CLIP and a tiny random OWL-ViT detector, saved like Hub checkpoints."""
    root = tmp_path_factory.mktemp("dwe_models")
    clip = save_tiny_clip(root / "clip")
    owl = save_tiny_owlvit(root / "owl")
    torch.manual_seed(0)
    OwlViTForObjectDetection(OwlViTConfig.from_pretrained(owl)).save_pretrained(owl)
    return clip, owl


def tiny_config(**overrides) -> DWEPlusConfig:
    return DWEPlusConfig(**{"feature_dim": 16, "hidden_size": 16, "num_attention_heads": 4, "dropout": 0.0,
                            **overrides})  # fmt: skip


def test_n_pair_loss_matches_a_hand_computed_case():
    g = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    positive = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    negatives = torch.tensor([[[2.0, 0.0]], [[1.0, 0.0]]])
    # g·p = 1, 2; g·n = 2, 0 -> log(1 + e^{1}) and log(1 + e^{-2}); L2 = (1 + 4 + 2 + 1) / 2
    expected = (math.log(1 + math.e) + math.log(1 + math.exp(-2))) / 2 + 0.02 * 4.0
    assert n_pair_loss(g, positive, negatives, 0.02).item() == pytest.approx(expected, rel=1e-6)
    assert n_pair_loss(g, positive, negatives, 0.0).item() == pytest.approx(expected - 0.08, rel=1e-6)


def test_clip_loss_is_symmetric_and_small_for_matching_pairs():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 8, generator=generator), torch.randn(4, 8, generator=generator)
    scale = torch.tensor(math.log(1 / 0.07))
    assert clip_contrastive_loss(a, b, scale).item() == pytest.approx(clip_contrastive_loss(b, a, scale).item())
    assert clip_contrastive_loss(a, a, scale) < clip_contrastive_loss(a, b, scale)


def test_attention_over_one_key_is_a_linear_map_of_that_key():
    torch.manual_seed(0)
    head = DWEPlusHead(tiny_config()).eval()
    attention = head.crop_attention
    key = torch.randn(3, 1, 16)
    outputs = [head._attend(torch.randn(3, 16), key, None) for _ in range(2)]  # any query: softmax over 1 key = 1
    w_v = attention.in_proj_weight[32:]
    b_v = attention.in_proj_bias[32:]
    expected = attention.out_proj(key[:, 0] @ w_v.T + b_v)
    torch.testing.assert_close(outputs[0], expected)
    torch.testing.assert_close(outputs[1], expected)


def test_key_padding_mask_ignores_padded_crops_and_faithful_padding_does_not():
    torch.manual_seed(0)
    inputs = [torch.randn(2, 16) for _ in range(3)]
    crops = torch.cat([torch.randn(2, 1, 16), torch.zeros(2, 2, 16)], dim=1)
    mask = torch.tensor([[True, False, False]] * 2)
    for masked in (True, False):
        head = DWEPlusHead(tiny_config(key_padding_mask=masked)).eval()
        padded = head(*inputs, crops, mask).mention_embeds
        alone = head(*inputs, crops[:, :1], mask[:, :1]).mention_embeds
        assert torch.allclose(padded, alone, atol=1e-6) is masked


def _synthetic(n: int, num_entities: int, dim: int, seed: int):
    """Mentions whose gold entity is a fixed linear function of their mention feature (plus noise elsewhere)."""
    generator = torch.Generator().manual_seed(seed)
    entities = torch.nn.functional.normalize(torch.randn(num_entities, dim, generator=generator), dim=-1)
    mixing = torch.randn(dim, dim, generator=generator)
    gold = torch.randint(num_entities, (n,), generator=generator)
    mention = entities[gold] @ mixing + 0.05 * torch.randn(n, dim, generator=generator)
    noise = [torch.randn(n, dim, generator=generator) for _ in range(2)]
    crops = torch.randn(n, 2, dim, generator=generator)
    return entities, gold, [mention, noise[0], noise[1], crops, torch.ones(n, 2, dtype=torch.bool)]


def test_head_learns_a_synthetic_set_far_above_chance():
    torch.manual_seed(0)
    num_entities, dim = 20, 16
    entities, gold, features = _synthetic(256, num_entities, dim, seed=1)
    head = DWEPlusHead(tiny_config(dropout=0.1))
    optimizer = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=0.001)
    generator = torch.Generator().manual_seed(2)
    for _ in range(300):
        rows = torch.randint(len(gold), (32,), generator=generator)
        negatives = torch.randint(num_entities, (32, 4), generator=generator)
        output = head(*(tensor[rows] for tensor in features), positives=entities[gold[rows]],
                      negatives=entities[negatives])  # fmt: skip
        output.loss.backward()
        optimizer.step(), optimizer.zero_grad()
    test_entities, test_gold, test_features = _synthetic(200, num_entities, dim, seed=1)
    head.eval()
    with torch.no_grad():
        g = torch.nn.functional.normalize(head(*test_features).mention_embeds, dim=-1)
    accuracy = (g @ entities.T).argmax(dim=1).eq(test_gold).float().mean().item()
    assert accuracy > 0.6, accuracy  # chance is 1/20


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    head = DWEPlusHead(tiny_config(fusion="sum", fine_loss_weight=1.0)).eval()
    loaded = DWEPlusHead.from_pretrained(head.save_pretrained(tmp_path / "dwe"))
    assert loaded.config.fusion == "sum" and loaded.config.fine_loss_weight == 1.0
    inputs = [torch.randn(2, 16) for _ in range(3)] + [torch.randn(2, 3, 16), torch.ones(2, 3, dtype=torch.bool)]
    torch.testing.assert_close(head(*inputs).mention_embeds, loaded(*inputs).mention_embeds)
    with pytest.raises(FileNotFoundError, match="holds no DWE\\+ head"):
        DWEPlusHead.from_pretrained(tmp_path)


def test_config_refuses_unknown_options():
    with pytest.raises(ValueError, match="fusion 'gated' is not available: .*no Hub equivalent"):
        DWEPlusConfig(fusion="gated")
    with pytest.raises(ValueError, match="fusion 'late' is unknown; choose one of concat, sum"):
        DWEPlusConfig(fusion="late")
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        DWEPlusConfig(hidden_size=30, num_attention_heads=8)


def test_retrieved_protocol_equals_brute_force():
    from rapidfuzz import fuzz, utils

    from m3el_benchmark.evaluation.data import KnowledgeBase, MentionTable, UniqueInputs
    from m3el_benchmark.evaluation.encoding import TEXT, EmbeddingTable
    from m3el_benchmark.evaluation.retrieval import RetrievedScorer, retrieve_by_name
    from m3el_benchmark.evaluation.scoring import Setting

    names = ["Paris", "Paris Hilton", "Berlin", "Parrot", "Paris"]
    mentions_names = ["paris", "hilton", "berln"]
    retrieved = retrieve_by_name(mentions_names, names, limit=3)
    for name, found in zip(mentions_names, retrieved, strict=True):
        scores = [fuzz.WRatio(name, entity, processor=utils.default_process) for entity in names]
        assert sorted(scores, reverse=True)[:3] == [scores[index] for index in found]
    generator = torch.Generator().manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(8, 1, 4, generator=generator), dim=-1)
    vectors[4] = vectors[0]  # a duplicate entity: a tie with the gold
    keys = [f"k{i}" for i in range(8)]
    table = EmbeddingTable({key: row for row, key in enumerate(keys)}, vectors)
    kb = KnowledgeBase([f"Q{i}" for i in range(5)], keys[:5], [None] * 5, names=names)
    mentions = MentionTable(["a", "b", "c"], ["t"] * 3, torch.zeros(3, dtype=torch.long).numpy(),
                            {"M-S": keys[5:]}, [None] * 3, [[]] * 3, [[]] * 3, UniqueInputs(),
                            gold_qids=["Q0", "Q1", "Q2"], mention_parts=[{"M": n} for n in mentions_names])
    setting = Setting("Tm-Te", "M-S")
    for ties in ("pessimistic", "optimistic"):
        scorer = RetrievedScorer(mentions, kb, {TEXT: table}, ["M-S"], retrieved, ties)
        ranks = scorer.ranks(setting, torch.arange(3))[:, 0].tolist()
        for row, (found, gold) in enumerate(zip(retrieved, [0, 1, 2], strict=True)):
            score = [float(vectors[5 + row, 0] @ vectors[entity, 0]) for entity in range(5)]
            if ties == "pessimistic":
                expected = 1 + sum(score[c] >= score[gold] - 1e-6 for c in found if c != gold)
            else:
                expected = 1 + sum(score[c] > score[gold] for c in found if c != gold)
            assert ranks[row] == expected, (ties, row)


def _train_tiny_dwe(tiny_models, root) -> str:
    from m3el_benchmark.systems.dwe_plus.training import main

    clip, owl = tiny_models
    return str(main(["--dataset", "sample", "--output_dir", str(root / "dwe"), "--clip_model", str(clip),
                     "--detector", str(owl), "--detector_threshold", "0.0", "--max_steps", "4", "--eval_steps", "2",
                     "--batch_size", "8", "--cache_dir", str(root / "cache")]))  # fmt: skip


def test_dwe_plus_trains_and_runs_under_every_protocol(tiny_models, tmp_path):
    from m3el_benchmark.run import main as benchmark

    folder = _train_tiny_dwe(tiny_models, tmp_path)
    assert {"config.json", "model.safetensors", "training_summary.json"} <= {p.name for p in Path(folder).iterdir()}
    common = ["--models", f"DWE+={folder}", "--tasks", "ITm-Te", "--text_formats", "M-S", "--headline_task",
              "ITm-Te", "--headline_format", "M-S", "--num_workers", "0", "--cache_dir", str(tmp_path / "cache")]
    for protocol in ("candidates", "kb", "retrieved"):
        result = benchmark([*common, "--protocol", protocol, "--output_dir", str(tmp_path / protocol)])
        (evaluation,) = [e for e in result.evaluations if e.info.name == "DWE+"]
        record = next(r for r in evaluation.records if r["topic"] == "all")
        assert record["protocol"] == protocol and 0.0 <= record["accuracy"] <= 1.0
        if protocol == "retrieved":
            assert record["optimistic_top_1"] >= record["top_1"]
    with pytest.raises(ValueError, match="can only be scored on the tasks ITm-Te"):
        benchmark(["--models", f"DWE+={folder}", "--tasks", "ITm-ITe", "--text_formats", "M-S", "--headline_format",
                   "M-S", "--output_dir", str(tmp_path / "refused"), "--num_workers", "0"])


def test_extraction_caches_crops_and_takes_the_no_person_path(tiny_models, tmp_path, monkeypatch):
    from accelerate import Accelerator

    from m3el_benchmark.evaluation.encoding import EncodingSettings
    from m3el_benchmark.systems.dwe_plus.extraction import extract_features
    from m3el_benchmark.systems.dwe_plus.training import DWEPlusTrainingArguments, load_encoders

    clip, owl = tiny_models
    images = [png_image(seed) for seed in range(3)]
    for threshold, expect_crops in ((0.5, True), (0.95, False)):
        args = DWEPlusTrainingArguments(clip_model=str(clip), detector=str(owl), detector_threshold=threshold,
                                        max_crops=2)  # fmt: skip
        extractor, info = load_encoders(args, "cpu")
        monkeypatch.setattr(extractor.detector, "_scores_and_boxes", fixed_boxes)  # tiny random boxes have no width
        run = [extractor, info, ["a", "b", "c"], ["x", "y", "z"], images, ["e1", "e2"], str(tmp_path / "cache"),
               Accelerator(cpu=True), EncodingSettings(batch_size=2, num_workers=0)]  # fmt: skip
        features = extract_features(*run).mentions
        if expect_crops:
            assert features.crop_mask.sum(dim=1).tolist() == [2, 2, 2]  # score >= 0.5, at most max_crops
            assert features.crops.abs().sum() > 0
            assert list((tmp_path / "cache").glob("*/person_boxes/*.npz"))
        else:
            assert features.crops.shape[1] == 1 and features.crop_mask.all() and features.crops.abs().sum() == 0
        again = extract_features(*run).mentions  # from the cache: the same features
        torch.testing.assert_close(again.crops, features.crops)


def fixed_boxes(images):
    """Three person boxes per image, scored 0.9, 0.6 and 0.4 (normalised cx, cy, w, h)."""
    boxes = torch.tensor([[[0.5, 0.5, 0.5, 0.5], [0.3, 0.3, 0.2, 0.4], [0.5, 0.5, 0.1, 0.1]]])
    return torch.tensor([[0.9, 0.6, 0.4]]).expand(len(images), 3), boxes.expand(len(images), 3, 4)


def png_image(seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_retrieved_tables_show_optimistic_ties_beside_ours_and_say_what_they_mean():
    from m3el_benchmark.evaluation.dataset_specs import DatasetSpec
    from m3el_benchmark.evaluation.tables import TableLayout, build_tables

    metrics = {"accuracy": 0.25, "top_1": 0.25, "top_3": 0.5, "top_5": 0.5, "top_10": 0.75, "top_20": 1.0,
               "mrr": 0.4, "mean_rank": 3.0}  # fmt: skip
    optimistic = {f"optimistic_{key}": value + (0.5 if key == "mean_rank" else 0.25) for key, value in metrics.items()}
    record = {"model": "DWE+", "dataset": "WikiMEL", "task": "ITm-Te", "text_format": "M-S", "topic": "all",
              "num_mentions": 4, **metrics, **optimistic}  # fmt: skip
    spec = DatasetSpec("WikiMEL", "data/wikimel", "retrieved", ("ITm-Te",), ("M-S",), ("test",),
                       published="dwe-wikimel")
    layout = TableLayout(["DWE+"], ["ITm-Te"], ["M-S"], [], "ITm-Te", "M-S", "WikiMEL", datasets=[spec],
                         table5_metrics=["top_1", "top_5"])  # fmt: skip
    tables = {table.name: table for table in build_tables([record], layout)}
    table5, ranking = tables["table5"], tables["ranking_WikiMEL"]
    assert table5.header[1:] == ["WikiMEL ITm-Te (M-S) H@1", "WikiMEL ITm-Te (M-S) H@1 (optimistic ties)",
                                 "WikiMEL ITm-Te (M-S) H@5", "WikiMEL ITm-Te (M-S) H@5 (optimistic ties)"]  # fmt: skip
    assert [cell.text() for cell in table5.rows[0].cells] == ["25.00", "50.00", "50.00", "75.00"]
    assert "MR (optimistic ties)" in ranking.header and ranking.rows[0].cells[-1].text() == "3.50"
    for table in (table5, ranking):
        assert "count only the entities scored strictly above the gold, as DWE's code does" in table.title
        published = [row for row in table.rows if row.published]
        assert published and all(row.label.endswith("published (DWE+ paper, Table 3)") for row in published)
    kb = DatasetSpec("WikiMEL", "data/wikimel", "kb", ("ITm-Te",), ("M-S",), ("test",))
    plain = build_tables([record], TableLayout(["DWE+"], ["ITm-Te"], ["M-S"], [], "ITm-Te", "M-S", "WikiMEL",
                                               datasets=[kb]))  # fmt: skip
    assert not any("optimistic" in " ".join(table.header) + table.title for table in plain)


class Interrupted(Exception):
    """Stands for a crash or a kill after a checkpoint."""


def test_an_interrupted_run_resumed_ends_exactly_as_a_straight_run(tiny_models, tmp_path, monkeypatch):
    import json
    from dataclasses import replace

    from safetensors.torch import load_file

    from m3el_benchmark.systems.dwe_plus import training
    from m3el_benchmark.training.checkpointing import CHECKPOINTS_DIR, STATE_FILE

    clip, owl = tiny_models

    def arguments(name: str, resume: bool = False) -> training.DWEPlusTrainingArguments:
        # dropout on, several epochs of the sample's training split: RNG, sampler and schedule states all matter
        return training.DWEPlusTrainingArguments(
            dataset="sample", output_dir=str(tmp_path / name), clip_model=str(clip), detector=str(owl),
            detector_threshold=0.0, max_steps=6, eval_steps=3, batch_size=8, warmup_steps=2, learning_rate=1e-3,
            negatives="tfidf", cache_dir=str(tmp_path / "cache"), resume=resume,
        )  # fmt: skip

    training.train(arguments("straight"))
    validate = training._validate

    def interrupt_after_first_checkpoint(head, validation, state, *rest):
        validate(head, validation, state, *rest)
        raise Interrupted(state.step)

    monkeypatch.setattr(training, "_validate", interrupt_after_first_checkpoint)
    with pytest.raises(Interrupted):
        training.train(arguments("resumed"))
    validated = []

    def record(head, validation, state, *rest):
        validated.append(state.step)
        validate(head, validation, state, *rest)

    monkeypatch.setattr(training, "_validate", record)
    training.train(arguments("resumed", resume=True))
    assert validated == [6]  # it went on from step 3, not from the start
    changed = replace(arguments("resumed", resume=True), learning_rate=2e-3)
    with pytest.raises(ValueError, match=r"trained with other arguments: learning_rate 0.001 -> 0.002"):
        training.train(changed)

    finals = [tmp_path / name / CHECKPOINTS_DIR / "checkpoint-6" for name in ("straight", "resumed")]
    weights = [load_file(str(folder / "model.safetensors")) for folder in finals]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        torch.testing.assert_close(weights[0][name], weights[1][name], rtol=0, atol=0, msg=name)
    histories = [json.loads((folder / STATE_FILE).read_text())["history"] for folder in finals]
    assert [entry["step"] for entry in histories[1]] == [3, 6]
    assert histories[0] == histories[1]  # the same losses and validation T@1 at every evaluation


def _has_person(image) -> bool:
    """Which sample images the stub detector finds a person in: a fixed half of them, by pixel content."""
    import hashlib

    return hashlib.sha256(image.convert("RGB").tobytes()).digest()[0] % 2 == 0


def test_extraction_on_the_bundled_sample_caches_crops_and_gives_a_zero_crop_without_person(
    tiny_models, tmp_path, monkeypatch
):
    from accelerate import Accelerator

    from m3el_benchmark.evaluation.data import load_mentions
    from m3el_benchmark.evaluation.encoding import EncodingSettings
    from m3el_benchmark.systems.dwe_plus.data import usable_rows
    from m3el_benchmark.systems.dwe_plus.extraction import extract_features
    from m3el_benchmark.systems.dwe_plus.training import DWEPlusTrainingArguments, load_encoders
    from m3el_dataset.images import decode_rgb
    from m3el_dataset.loading import resolve_source

    def stub_boxes(images):  # tiny random OWL-ViT boxes have no width: two persons in half the images, none else
        scores, boxes = fixed_boxes(images)
        found = torch.tensor([_has_person(image) for image in images], dtype=torch.float32)[:, None]
        return scores * found, boxes

    mentions = load_mentions(resolve_source("sample", tmp_path / "datasets"), ["test"], None, ["M-S"])
    rows = usable_rows(mentions, "test")
    images = [mentions.inputs.images[mentions.mention_images[row]] for row in rows]
    parts = [mentions.mention_parts[row] for row in rows]
    clip, owl = tiny_models
    extractor, info = load_encoders(DWEPlusTrainingArguments(clip_model=str(clip), detector=str(owl), max_crops=2),
                                    "cpu")  # fmt: skip
    monkeypatch.setattr(extractor.detector, "_scores_and_boxes", stub_boxes)
    run = [extractor, info, [part["M"] for part in parts], [part.get("S") or "" for part in parts], images,
           ["an entity"], str(tmp_path / "cache"), Accelerator(cpu=True),
           EncodingSettings(batch_size=8, num_workers=0)]  # fmt: skip
    features = extract_features(*run).mentions
    person = torch.tensor([_has_person(decode_rgb(image)[0]) for image in images])
    assert 0 < int(person.sum()) < len(rows)  # both paths taken
    assert features.crop_mask[person].sum(dim=1).eq(2).all() and features.crops[person].abs().sum(dim=2).gt(0).all()
    assert features.crops[~person].eq(0).all()  # DWE's single zero vector...
    assert features.crop_mask[~person].tolist() == [[True, False]] * int((~person).sum())  # ...counted as a crop

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(extractor.detector, "_scores_and_boxes", refuse)
    monkeypatch.setattr(extractor.clip, "encode_images", refuse)
    again = extract_features(*run).mentions  # boxes, crops and images all from the cache
    torch.testing.assert_close(again.crops, features.crops)
    torch.testing.assert_close(again.image, features.image)
