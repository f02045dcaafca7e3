"""Gan et al. (2021) joint text-image linking as a baseline: documents, the GW coupling, the joint step, the naive
baseline, under both protocols (`m3el_benchmark.systems.gan21`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from tiny_clip import save_tiny_clip

from m3el_benchmark.baselines import load_adapter, parse_model_spec
from m3el_benchmark.evaluation.data import KnowledgeBase, MentionTable, UniqueInputs, load_kb, load_mentions
from m3el_benchmark.evaluation.encoding import IMAGE, TEXT, EmbeddingTable, EncodingSettings
from m3el_benchmark.evaluation.evaluate import evaluate_model
from m3el_benchmark.evaluation.kb_ranking import KBRankingSettings, KBScorer
from m3el_benchmark.evaluation.scoring import CandidateScorer, settings_for
from m3el_benchmark.systems.gan21.documents import document_report, group_documents
from m3el_benchmark.systems.gan21.naive import Gan21NaiveStep
from m3el_benchmark.systems.gan21.rescoring import Gan21JointStep, JointConfig
from m3el_benchmark.systems.gan21.system import attach_system
from m3el_dataset.loading import resolve_source

ot = pytest.importorskip("ot")

from m3el_benchmark.systems.gan21.coupling import (  # noqa: E402
    CouplingConfig,
    gw_coupling,
    gw_couplings,
    product_coupling,
)

FORMAT = "M-S1"
TASKS = ["Tm-Te", "Tm-Ie", "Im-Ie", "Im-Te"]


def test_gw_recovers_a_known_permutation():
    generator = torch.Generator().manual_seed(0)
    texts = F.normalize(torch.randn(6, 8, generator=generator, dtype=torch.float64), dim=1)
    permutation = torch.randperm(6, generator=generator)
    images = texts[permutation]  # C2 = P C1 P^T
    plan, solved = gw_coupling(texts, images, CouplingConfig(alpha=1.0, epsilon=0.01))  # pure GW: structure only
    assert solved
    assert plan.argmax(dim=1).tolist() == torch.argsort(permutation).tolist()
    assert torch.allclose(plan.sum(dim=1), torch.full((6,), 1 / 6, dtype=torch.float64), atol=1e-6)


@pytest.mark.parametrize(("n", "m"), [(1, 4), (3, 1), (1, 1)])
def test_one_mention_on_a_side_gives_the_product_coupling(n, m):
    plan, solved = gw_coupling(torch.randn(n, 8), torch.randn(m, 8), CouplingConfig())
    assert solved and torch.equal(plan, product_coupling(n, m)) and plan.sum().item() == pytest.approx(1.0)


def test_batched_solver_gives_pots_plans():
    generator = torch.Generator().manual_seed(1)
    shapes = [(2, 2), (3, 5), (5, 3), (4, 4), (4, 4), (4, 4), (1, 3)]
    documents = [(torch.randn(n, 16, generator=generator), torch.randn(m, 16, generator=generator)) for n, m in shapes]
    config = CouplingConfig(epsilon=0.2, max_iter=12, batch_size=2)  # the three 4 x 4 documents in two batches
    batched = gw_couplings(documents, config)
    for (texts, images), (plan, solved) in zip(documents, batched, strict=True):
        expected, expected_solved = gw_coupling(texts, images, config)  # POT, one document
        assert solved == expected_solved and plan.shape == expected.shape
        torch.testing.assert_close(plan, expected, rtol=0, atol=1e-12)
        assert torch.equal(plan.argmax(dim=0), expected.argmax(dim=0))
        assert torch.equal(plan.argmax(dim=1), expected.argmax(dim=1))


def synthetic_world(seed: int = 0, entities: int = 9, documents: int = 5, dim: int = 8):
    """Mentions in documents of 1-3 rows (some sharing an image), every mention's candidates = the whole KB, and
    random unit embeddings; a few entity images missing."""
    rng = np.random.default_rng(seed)
    qids = [f"Q{k}" for k in range(entities)]
    texts, images = {f"te{k}": None for k in range(entities)}, {f"ie{k}": None for k in range(entities) if k % 4}
    table = MentionTable([], [], np.zeros(0), {FORMAT: []}, [], [], [], UniqueInputs())
    gold = []
    for doc in range(documents):
        for row in range(int(rng.integers(1, 4))):
            index = len(table.ids)
            table.ids.append(f"m{index}")
            table.topics.append("movies")
            table.contexts.append(f"context {doc}")
            label = int(rng.integers(entities))
            gold.append(label)
            table.gold_qids.append(qids[label])
            table.mention_texts[FORMAT].append(f"tm{index}")
            texts[f"tm{index}"] = None
            image = None if index % 7 == 3 else f"im{doc}-{row % 2}"
            table.mention_images.append(image)
            images[image] = None
            table.candidate_texts.append([f"te{k}" for k in range(entities)])
            table.candidate_images.append([f"ie{k}" if k % 4 else None for k in range(entities)])
            table.candidate_qids.append(list(qids))
    images.pop(None, None)
    table.gold = np.asarray(gold)
    table.columns = frozenset({"candidate_images", "candidate_texts", "mention_image", f"text_{FORMAT}"})

    def embeddings(keys):
        vectors = F.normalize(torch.from_numpy(rng.standard_normal((len(keys), 1, dim))).float(), dim=-1)
        return EmbeddingTable({key: row for row, key in enumerate(keys)}, vectors)

    tables = {TEXT: embeddings(list(texts)), IMAGE: embeddings(list(images))}
    kb = KnowledgeBase(
        qids, [f"te{k}" for k in range(entities)], [f"ie{k}" if k % 4 else None for k in range(entities)]
    )
    return table, tables, kb


def _ranks(scorer, settings) -> np.ndarray:
    every = torch.arange(len(scorer.mentions))
    return torch.stack([scorer.ranks(setting, every) for setting in settings], dim=1).numpy()


def _scorers(step_class, config, adjust: bool = True):
    mentions, tables, kb = synthetic_world()
    settings = settings_for(TASKS, [FORMAT])
    scorers = []
    for protocol in ("candidates", "kb"):
        step = step_class(config) if adjust else None
        if step is not None:
            step.plan(mentions, settings, kb if protocol == "kb" else None)
        if protocol == "candidates":
            scorer = CandidateScorer(mentions, tables, [FORMAT], adjustment=step)
        else:
            scorer = KBScorer(mentions, kb, tables, [FORMAT], KBRankingSettings(chunk_size=4), adjustment=step)
        if step is not None:
            step.fit(scorer)
        scorers.append(scorer)
    return scorers, settings


def test_documents_group_rows_sharing_topic_and_context():
    mentions, _, _ = synthetic_world()
    documents = group_documents(mentions)
    assert len(documents) == 5
    assert all(len({mentions.contexts[row] for row in rows}) == 1 for rows in documents.members())
    report = document_report(mentions, documents)
    assert report["documents"] == 5 and report["documents_with_several_mentions"] >= 1
    mentions.document_ids = [f"d{row % 2}" for row in range(len(mentions))]  # a document_id column wins
    assert len(group_documents(mentions)) == 2


@pytest.mark.parametrize("rule", ["hard", "soft"])
def test_candidates_and_kb_protocols_agree_when_the_kb_is_the_candidates(rule):
    (candidates, kb), settings = _scorers(Gan21JointStep, JointConfig(lambda_t=0.5, lambda_v=1.0, rule=rule))
    joint = _ranks(candidates, settings)
    np.testing.assert_array_equal(joint, _ranks(kb, settings))
    (plain, _), _ = _scorers(Gan21JointStep, None, adjust=False)
    assert not np.array_equal(joint[:, :, 0], _ranks(plain, settings)[:, :, 0])  # the joint step changed ranks


@pytest.mark.parametrize("rule", ["hard", "soft"])
def test_batched_and_pot_solvers_give_the_same_figures(rule):
    config = JointConfig(lambda_t=0.5, lambda_v=1.0, rule=rule, coupling=CouplingConfig(epsilon=0.2, max_iter=12))
    (candidates, kb), settings = _scorers(Gan21JointStep, config)
    report = candidates.adjustment.report
    assert report["documents_with_several_mentions"] and report["documents_with_several_images"]  # real couplings
    pot = replace(config, coupling=replace(config.coupling, solver="pot"))
    (pot_candidates, pot_kb), _ = _scorers(Gan21JointStep, pot)
    np.testing.assert_array_equal(_ranks(candidates, settings), _ranks(pot_candidates, settings))
    np.testing.assert_array_equal(_ranks(kb, settings), _ranks(pot_kb, settings))
    for name, partner in candidates.adjustment.partner_images.items():
        torch.testing.assert_close(partner, pot_candidates.adjustment.partner_images[name], equal_nan=True)


def test_lambda_zero_is_the_base_scorer_exactly_under_both_protocols():
    (candidates, kb), settings = _scorers(Gan21JointStep, JointConfig(lambda_t=0.0, lambda_v=0.0))
    (plain_candidates, plain_kb), _ = _scorers(Gan21JointStep, None, adjust=False)
    np.testing.assert_array_equal(_ranks(candidates, settings), _ranks(plain_candidates, settings))
    np.testing.assert_array_equal(_ranks(kb, settings), _ranks(plain_kb, settings))


def test_hard_rule_adds_the_matched_image_scores():
    (candidates, _), settings = _scorers(Gan21JointStep, JointConfig(lambda_t=1.0))
    step, mentions = candidates.adjustment, candidates.mentions
    setting = settings[0]  # Tm-Te
    every = torch.arange(len(mentions))
    raw = candidates.candidate_columns(every).score(candidates.mention_vectors(setting, every), True, False)
    adjusted = step.adjust(setting, every, raw, candidates.candidate_columns(every))
    partner = step.partner_images[FORMAT]
    for row in range(len(mentions)):
        if torch.isnan(partner[row]).all():  # a document without images: unchanged
            assert torch.equal(adjusted[row], raw[row])
            continue
        images = candidates.vectors[IMAGE][candidates.rows["candidate_image"][row]]
        expected = raw[row] + (images[:, 0] @ partner[row, 0]).nan_to_num(nan=0.0)
        torch.testing.assert_close(adjusted[row], expected)


def test_naive_restricts_visual_candidates_to_the_documents_textual_predictions():
    (candidates, kb), settings = _scorers(Gan21NaiveStep, JointConfig())
    ranks = _ranks(candidates, settings)
    np.testing.assert_array_equal(ranks, _ranks(kb, settings))
    (plain, _), _ = _scorers(Gan21NaiveStep, None, adjust=False)
    base = _ranks(plain, settings)
    text_columns = [i for i, s in enumerate(settings) if s.task.mention_text]
    np.testing.assert_array_equal(ranks[:, text_columns], base[:, text_columns])  # textual linking alone
    step, mentions = candidates.adjustment, candidates.mentions
    assert "textual top-1 predictions" in step.describe()["note"]  # printed under the tables
    image_column = next(i for i, s in enumerate(settings) if s.task.name == "Im-Ie")
    for row in range(len(mentions)):
        allowed = step.allowed[step.documents.index[row]]
        if mentions.mention_images[row] is not None and mentions.gold_qids[row] not in allowed:
            assert ranks[row, image_column, 0] > 1  # the gold was not chosen by the textual stage: wrong


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("gan21_clip") / "clip")


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> str:
    return resolve_source("sample", tmp_path_factory.mktemp("datasets"))


def test_model_spec_names_the_system_and_its_encoder(clip):
    request = parse_model_spec(f"Gan21-OT(CLIP={clip})")
    assert (request.label, request.system, request.source) == ("Gan21-OT(CLIP)", "Gan21-OT", str(clip))
    assert parse_model_spec("Gan21-Naive(CLIP)").label == "Gan21-Naive(CLIP)"
    adapter = load_adapter(request)
    assert isinstance(adapter.joint_step, Gan21JointStep) and adapter.info.name == "Gan21-OT(CLIP)"


def test_lambda_zero_reproduces_the_plain_adapters_figures_on_the_sample(clip, sample, tmp_path):
    mentions = load_mentions(sample, ["test"], text_formats=[FORMAT])
    settings = settings_for(TASKS, [FORMAT])
    run = (Accelerator(cpu=True), EncodingSettings(batch_size=8, num_workers=0), tmp_path / "cache", [FORMAT])
    plain = evaluate_model(load_adapter(parse_model_spec(f"CLIP={clip}")), mentions, settings, *run, "M3EL")
    joint_adapter = attach_system(load_adapter(parse_model_spec(f"CLIP={clip}")), "Gan21-OT", "Gan21-OT(CLIP)",
                                  JointConfig(lambda_t=0.0, lambda_v=0.0))  # fmt: skip
    joint = evaluate_model(joint_adapter, mentions, settings, *run, "M3EL")
    strip = lambda records: [{k: v for k, v in r.items() if k != "model"} for r in records]  # noqa: E731
    assert strip(joint.records) == strip(plain.records)
    assert joint.extra["M3EL"]["documents_with_several_mentions"] == 0  # M3EL: one mention per document
    from m3el_benchmark.evaluation.results import model_summary

    recorded = model_summary(joint)["system"]["M3EL"]  # what results.json says of the step
    assert recorded["system"] == "Gan21-OT" and recorded["lambda_t"] == 0.0 and "system" not in model_summary(plain)


def synthetic_documents(count: int = 4, seed: int = 0):
    """Documents whose gold entity features are noisy copies of the mention's, and whose mention images are noisy
    copies of the gold entity image: learnable in a few steps."""
    from m3el_benchmark.systems.gan21.training import Gan21Document

    generator = torch.Generator().manual_seed(seed)
    documents = []
    for _ in range(count):
        entity_features = torch.randn(5, 16, generator=generator)
        entity_images = torch.rand(5, 3, 16, 16, generator=generator)
        text_gold, image_gold = (
            torch.randint(0, 5, (3,), generator=generator),
            torch.randint(0, 5, (2,), generator=generator),
        )
        mention_features = entity_features[text_gold] + 0.3 * torch.randn(3, 16, generator=generator)
        images = entity_images[image_gold] + 0.1 * torch.rand(2, 3, 16, 16, generator=generator)
        documents.append(Gan21Document(mention_features, entity_features.expand(3, 5, 16).clone(), text_gold,
                                       images, entity_images.expand(2, 5, 3, 16, 16).clone(), image_gold))  # fmt: skip
    return documents


def test_trained_version_lowers_its_three_loss_terms_on_cpu(tmp_path):
    from m3el_benchmark.systems.gan21.heads import Gan21HeadsConfig
    from m3el_benchmark.systems.gan21.training import Gan21Model, Gan21TrainingArguments, train_gan21

    torch.manual_seed(0)
    config = Gan21HeadsConfig(text_feature_size=16, hidden_size=32, image_size=16, grid=8, num_layers=2,
                              num_heads=4, ffn_size=64, dropout=0.0)  # fmt: skip
    args = Gan21TrainingArguments(str(tmp_path), epochs=15, learning_rate=3e-3, ranking_margin=0.2, gw_weight=0.1,
                                  coupling=CouplingConfig(max_iter=20))  # fmt: skip
    history = train_gan21(Gan21Model(config), synthetic_documents(), args)
    first, last = history[0], history[-1]
    for term in ("ranking_loss", "triplet_loss", "gw_loss", "loss"):
        assert last[term] < first[term], (term, first, last)
    assert (tmp_path / "checkpoint-60").is_dir()


def test_micro_f1_equals_top1_when_every_mention_is_linked():
    from m3el_benchmark.m3el_accuracy.ranking_metrics import compute_ranking_metrics_from_ranks, micro_f1

    ranks = np.random.default_rng(0).integers(1, 6, size=50)
    ranks[::7] = -1  # golds outside the candidates: wrong, as in MulRel's evaluation
    assert micro_f1(ranks) == pytest.approx(compute_ranking_metrics_from_ranks(ranks)["accuracy"])
    abstained = np.zeros(50, dtype=bool)
    abstained[::7] = True  # no link for those: precision rises, recall stays
    assert micro_f1(ranks, predicted=~abstained) > micro_f1(ranks)


def test_gan21_published_figures_are_marked_with_source_and_protocol():
    from m3el_dataset.published import GAN21_FIGURES, PUBLISHED_FIGURES

    table3 = {figure.model: figure for figure in GAN21_FIGURES if figure.source.endswith("Table 3")}
    assert table3["MM-nel"].metrics == {"val textual": 84.2, "val visual": 29.0, "test textual": 83.3,
                                        "test visual": 30.7}  # fmt: skip
    assert all("Gan et al. (2021)" in f.source and "micro-F1" in f.protocol for f in GAN21_FIGURES)
    assert not any("Gan" in f.source for figures in PUBLISHED_FIGURES.values() for f in figures)  # not M3EL's


def test_weights_are_chosen_on_validation_from_the_grid(clip, sample, tmp_path, monkeypatch):
    from m3el_benchmark.evaluation import evaluate
    from m3el_benchmark.systems.gan21.selection import choose_weights

    def no_gallery(*args, **kwargs):
        raise AssertionError("a weight choice reads only the figures: no gallery of mistakes is built")

    monkeypatch.setattr(evaluate, "build_gallery", no_gallery)
    validation = load_mentions(sample, ["validation"], text_formats=[FORMAT])
    run = (Accelerator(cpu=True), EncodingSettings(batch_size=8, num_workers=0), tmp_path / "cache", [FORMAT])
    adapter, settings = load_adapter(parse_model_spec(f"CLIP={clip}")), settings_for(["Tm-Te", "Im-Ie"], [FORMAT])
    config, accuracies = choose_weights(adapter, validation, settings, run, grid=(0.0, 0.5))
    assert set(accuracies["lambda_t"]) == {0.0, 0.5} and set(accuracies["lambda_v"]) == {0.0, 0.5}
    assert accuracies["lambda_t"][config.lambda_t] == max(accuracies["lambda_t"].values())
    assert not hasattr(adapter, "joint_step")
    own = attach_system(adapter, "Gan21-OT", "Gan21-OT(CLIP)").joint_step
    kb = load_kb(sample, validation.inputs)  # the kb protocol: ranked against the whole knowledge base
    config, over_kb = choose_weights(adapter, validation, settings, run, grid=(0.0, 0.5), kb=kb)
    assert over_kb["lambda_t"][config.lambda_t] == max(over_kb["lambda_t"].values())
    assert over_kb != accuracies and adapter.joint_step is own  # another protocol; the system's own step is back


def test_trained_version_reads_its_documents_from_a_converted_dataset(clip, sample, tmp_path):
    from m3el_benchmark.systems.gan21.document_data import DocumentDataConfig, load_gan21_documents
    from m3el_benchmark.systems.gan21.heads import Gan21HeadsConfig
    from m3el_benchmark.systems.gan21.training import Gan21Model, Gan21TrainingArguments, train_gan21

    adapter, config = load_adapter(parse_model_spec(f"CLIP={clip}")), DocumentDataConfig(("validation",), FORMAT, 16)
    documents = load_gan21_documents(sample, adapter, config, tmp_path / "cache")
    report = documents.report
    assert 0 < report["used"] == len(documents) <= report["documents"]
    assert report["documents"] - report["used"] <= report["without_textual_mention"] + report["without_visual_mention"]
    mentions, texts = documents.mentions, documents.texts
    checked = 0
    for index, layout in enumerate(documents.layouts):
        document = documents[index]
        n, m = len(layout.text_rows), len(layout.image_rows)
        assert document.mention_features.shape == (n, documents.feature_size)
        assert document.images.shape == (m, 3, 16, 16) and 0 <= document.images.min() <= document.images.max() <= 1
        assert document.text_mask.shape == document.candidate_features.shape[:2]
        assert document.image_mask.shape == document.candidate_images.shape[:2]
        for i, row in enumerate(layout.text_rows):  # the gold is the row's own gold candidate, with its features
            gold = int(mentions.gold[row])
            assert int(document.text_gold[i]) in (gold, -1)
            assert not document.text_mask[i, len(mentions.candidate_texts[row]) :].any()  # the padding
            if document.text_gold[i] >= 0:
                key = mentions.candidate_texts[row][gold]
                assert torch.equal(document.candidate_features[i, gold], texts.embeddings[texts.index[key], 0])
                checked += 1
    assert checked > 0
    again = load_gan21_documents(sample, adapter, config, tmp_path / "cache")
    assert again.texts.stats.encoded == 0 and again.texts.stats.cached == len(texts.index)  # read from the cache
    heads = Gan21HeadsConfig(text_feature_size=documents.feature_size, hidden_size=32, image_size=16, grid=8,
                             num_layers=1, num_heads=4, ffn_size=64, dropout=0.0)  # fmt: skip
    args = Gan21TrainingArguments(str(tmp_path / "run"), epochs=2, coupling=CouplingConfig(max_iter=20))
    history = train_gan21(Gan21Model(heads), documents, args)
    assert len(history) == 2 and all(np.isfinite(value) for epoch in history for value in epoch.values())
    assert (tmp_path / "run" / f"checkpoint-{2 * len(documents)}").is_dir()
