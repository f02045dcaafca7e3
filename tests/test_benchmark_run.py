"""End to end: `benchmark/run.py` on the bundled sample with tiny offline versions of all seven models."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from benchmark_tables import value_columns
from headless_chromium import Elements, dump_dom, requires_chromium, screenshot
from PIL import Image
from tiny_baselines import save_all_tiny_models
from tiny_clip import tiny_processor

import m3el_benchmark.evaluation.encoding as encoding_module
import m3el_benchmark.run as run_module
from m3el_benchmark.baselines import ModelRequest, load_adapter
from m3el_benchmark.evaluation.data import load_mentions
from m3el_benchmark.evaluation.encoding import EncodingSettings
from m3el_benchmark.evaluation.evaluate import evaluate_model
from m3el_benchmark.evaluation.mistakes import GALLERY_SIZE
from m3el_benchmark.evaluation.scoring import settings_for
from m3el_benchmark.run import BenchmarkArguments, main
from m3el_benchmark.tiny_clip_nd import train_tiny_clip_nd
from m3el_dataset.constants import TASKS, TEXT_FORMATS, TOPICS
from m3el_dataset.images import decode_rgb
from m3el_dataset.loading import resolve_source
from modeling_clip_nd import CLIPNDModel

MODEL_ORDER = ["ALIGN", "BLIP-2", "CLIP", "FLAVA", "OWL-ViT", "SigLIP", "CLIP-ND"]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    return save_all_tiny_models(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="module")
def sample_dataset(tmp_path_factory) -> str:
    return resolve_source("sample", tmp_path_factory.mktemp("datasets"))


def run_args(dataset: str, models: dict[str, Path], out: Path, cache: Path, *extra: str) -> list[str]:
    specs = [f"{label}={path}" for label, path in models.items()]
    return ["--dataset", dataset, "--models", *specs, "--train_tiny", "false", "--skip_unavailable", "false",
            "--output_dir", str(out), "--cache_dir", str(cache), "--num_workers", "0", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def full_run(tiny_models, sample_dataset, tmp_path_factory):
    """Every model, task, format and topic; then the same run again on the warm embedding cache."""
    root = tmp_path_factory.mktemp("full_run")
    models = {label: tiny_models[label] for label in MODEL_ORDER}
    first = main(run_args(sample_dataset, models, root / "first", root / "cache"))
    second = main(run_args(sample_dataset, models, root / "second", root / "cache"))
    return first, second


def _figures(results: dict) -> list[tuple]:
    keys = ("model", "task", "text_format", "topic", "accuracy", "top_5", "mrr", "mean_rank", "num_mentions")
    return [tuple(record[key] for key in keys) for record in results["results"]]


@pytest.mark.slow  # shares the full two-run fixture (about 15 s on 2 cores)
def test_every_model_task_format_and_topic_is_reported(full_run):
    first, _ = full_run
    records = first.results["results"]
    assert [model["name"] for model in first.results["models"]] == MODEL_ORDER
    text_tasks = [task for task in TASKS if not task.startswith("Im-")]
    settings_per_model = len(text_tasks) * len(TEXT_FORMATS) + (len(TASKS) - len(text_tasks))
    assert len(records) == len(MODEL_ORDER) * settings_per_model * (len(TOPICS) + 1)
    for record in records:
        assert 0.0 <= record["accuracy"] <= record["top_5"] <= 1.0
        assert record["missing_candidate_scores"] == 0 and record["missing_mentions"] == 0


@pytest.mark.slow  # shares the full two-run fixture (about 15 s on 2 cores)
def test_each_unique_input_is_encoded_once_and_reused_from_the_cache(full_run):
    first, second = full_run
    for cold, warm in zip(first.results["models"], second.results["models"], strict=True):
        assert cold["pass_ratio"] == 1.0 and warm["pass_ratio"] == 1.0
        for kind, stats in cold["encoding"].items():
            assert stats["encoder_passes"] == stats["unique_inputs"] > 0 and stats["cache_hits"] == 0
            assert warm["encoding"][kind]["encoder_passes"] == 0
            assert warm["encoding"][kind]["cache_hits"] == stats["unique_inputs"]
    fusion = {model["name"]: model["fusion"] for model in first.results["models"]}
    assert fusion == dict.fromkeys(MODEL_ORDER, "mean")  # every model fuses (I+T) alike by default, FLAVA included
    assert not any("pair" in model["encoding"] for model in first.results["models"])
    assert _figures(first.results) == _figures(second.results)


@pytest.mark.slow  # shares the full two-run fixture (about 15 s on 2 cores)
def test_table_layouts(full_run):
    first, _ = full_run
    tables = first.output_dir / "tables"
    with (tables / "table4_ITm-ITe.csv").open() as stream:
        rows = list(csv.reader(stream))
    assert value_columns(rows[0]) == ["Model", *TEXT_FORMATS]
    assert [row[0] for row in rows[1:]] == MODEL_ORDER
    for name, header in [("table5", ["M3EL sample ITm-ITe (M-S1)"]), ("tasks", TASKS), ("topics", [*TOPICS, "all"])]:
        with (tables / f"{name}.csv").open() as stream:
            assert value_columns(next(csv.reader(stream))) == ["Model", *header]
    markdown = (tables / "table5.md").read_text()
    assert "| Model | M3EL sample ITm-ITe (M-S1) |" in markdown and "| CLIP-ND |" in markdown
    assert "| *n (mentions scored)* | 27 |" in markdown  # the sample's 27 test mentions, none left out
    assert not list(tables.glob("table4_Im-*"))  # image-only mentions have no text format
    assert (first.output_dir / "accuracy_by_task.png").read_bytes()[:4] == b"\x89PNG"
    assert (first.output_dir / "accuracy_by_task.pdf").read_bytes()[:5] == b"%PDF-"
    model_index = json.loads((first.output_dir / "model_index.json").read_text())["CLIP-ND"]["M3EL sample"]
    assert (model_index["protocol"], model_index["nil_policy"], model_index["text_format"]) == (
        "candidates", "wrong", "M-S1")  # fmt: skip
    assert set(model_index["results"]) == set(TASKS) and set(model_index["num_mentions"].values()) == {27}
    # Three candidates per mention: top-5 would only repeat the share of mentions whose gold is present.
    assert set(model_index["results"]["ITm-ITe"]) == {"accuracy", "mrr"}


@pytest.mark.slow  # shares the full two-run fixture (about 15 s on 2 cores)
def test_results_json_records_provenance(full_run):
    first, _ = full_run
    saved = json.loads((first.output_dir / "results.json").read_text())
    assert {"date", "versions", "run", "dataset", "models", "skipped_models", "results"} <= set(saved)
    assert saved["versions"]["transformers"] and saved["run"]["seed"] == 42
    assert all(model["revision"].startswith("local-") for model in saved["models"])
    assert saved["dataset"]["num_mentions"] == 27


def test_a_new_text_format_reuses_cached_embeddings(tiny_models, sample_dataset, tmp_path):
    models = {"CLIP": tiny_models["CLIP"]}
    common = ("--tasks", "Tm-Te", "--headline_task", "Tm-Te")
    main(run_args(sample_dataset, models, tmp_path / "a", tmp_path / "cache", *common, "--text_formats", "S1",
                  "--headline_format", "S1"))  # fmt: skip
    second = main(run_args(sample_dataset, models, tmp_path / "b", tmp_path / "cache", *common, "--text_formats",
                           "S1", "M-S1", "--headline_format", "M-S1"))  # fmt: skip
    stats = second.results["models"][0]["encoding"]["text"]
    assert stats["cache_hits"] > 0 and stats["encoder_passes"] == 27  # only the 27 new mention texts
    assert stats["cache_hits"] + stats["encoder_passes"] == stats["unique_inputs"]


def test_images_are_decoded_in_dataloader_workers(tiny_models, sample_dataset, tmp_path):
    args = run_args(sample_dataset, {"CLIP": tiny_models["CLIP"]}, tmp_path / "out", tmp_path / "cache",
                    "--tasks", "Im-Ie", "--headline_task", "Im-Ie")  # fmt: skip
    args[args.index("--num_workers") + 1] = "2"
    result = main(args)
    assert result.results["models"][0]["encoding"]["image"]["encoder_passes"] == 71


class RowCounter:
    """Wraps an adapter's ``encode_*`` methods to count the rows that reach each, by input kind."""

    def __init__(self, monkeypatch):
        self.rows: dict[str, int] = {}
        original = run_module.load_adapter

        def load_counted(*args, **kwargs):
            adapter = original(*args, **kwargs)
            for kind in ("text", "image", "pair"):
                self._wrap(adapter, kind)
            return adapter

        monkeypatch.setattr(run_module, "load_adapter", load_counted)

    def _wrap(self, adapter, kind: str) -> None:
        method = getattr(adapter, f"encode_{kind}s")

        def counted(batch):
            self.rows[kind] = self.rows.get(kind, 0) + next(iter(batch.values())).shape[0]
            return method(batch)

        setattr(adapter, f"encode_{kind}s", counted)

    def take(self) -> dict[str, int]:
        rows, self.rows = self.rows, {}
        return rows


def test_encoder_calls_match_unique_inputs_cold_and_are_none_warm(tiny_models, sample_dataset, tmp_path, monkeypatch):
    counter = RowCounter(monkeypatch)
    models = {"CLIP": tiny_models["CLIP"], "FLAVA-MM": f"{tiny_models['FLAVA']}#multimodal-encoder"}  # pairs too
    extra = ("--text_formats", "M-S1", "S-M", "--headline_format", "M-S1")
    cold = main(run_args(sample_dataset, {"CLIP": models["CLIP"]}, tmp_path / "a", tmp_path / "cache", *extra))
    cold_rows = counter.take()
    warm = main(run_args(sample_dataset, {"CLIP": models["CLIP"]}, tmp_path / "b", tmp_path / "cache", *extra))
    assert counter.take() == {}
    flava_mm = {"FLAVA-MM": models["FLAVA-MM"]}
    flava = main(run_args(sample_dataset, flava_mm, tmp_path / "c", tmp_path / "cache", *extra))
    flava_rows = counter.take()
    for result, rows in ((cold, cold_rows), (flava, flava_rows)):
        encoding = result.results["models"][0]["encoding"]
        assert rows == {kind: stats["unique_inputs"] for kind, stats in encoding.items()}
        assert rows == {kind: stats["encoder_passes"] for kind, stats in encoding.items()}
    assert set(flava_rows) == {"text", "image", "pair"}
    assert all(stats["encoder_passes"] == 0 for stats in warm.results["models"][0]["encoding"].values())


def test_an_input_encoded_twice_is_reported(tiny_models, sample_dataset, tmp_path, monkeypatch):
    counter = RowCounter(monkeypatch)
    order = encoding_module._order
    monkeypatch.setattr(encoding_module, "_order", lambda kind, keys, items: [*order(kind, keys, items), keys[0]])
    args = run_args(sample_dataset, {"CLIP": tiny_models["CLIP"]}, tmp_path / "out", tmp_path / "cache",
                    "--tasks", "Tm-Te", "--headline_task", "Tm-Te", "--text_formats", "M-S1")  # fmt: skip
    model = main(args).results["models"][0]
    stats = model["encoding"]["text"]
    assert counter.take()["text"] == stats["encoder_passes"] == stats["unique_inputs"] + 1
    assert model["pass_ratio"] > 1.0


def test_undecodable_images_count_the_same_cold_and_warm(tiny_models, sample_dataset, tmp_path):
    mentions = load_mentions(sample_dataset, ["test"], text_formats=["M-S1"])
    broken = mentions.candidate_images[0][0]
    mentions.inputs.images[broken] = b"not an image"
    adapter = load_adapter(ModelRequest("CLIP", str(tiny_models["CLIP"])))
    accelerator, settings = Accelerator(cpu=True), settings_for(["Im-Ie"], ["M-S1"])
    runs = [evaluate_model(adapter, mentions, settings, accelerator, EncodingSettings(num_workers=0),
                           tmp_path / "cache", ["M-S1"]) for _ in range(2)]  # fmt: skip
    cold, warm = (run.encoding["image"] for run in runs)
    assert cold.undecodable == warm.undecodable == 1 and runs[0].undecodable_images == runs[1].undecodable_images == 1
    assert cold.encoded == cold.unique - 1 and warm.encoded == 0 and warm.cached == warm.unique - 1
    assert runs[0].pass_ratio == runs[1].pass_ratio == 1.0


def test_clip_nd_scores_use_its_fusion_weight(tiny_models, sample_dataset, tmp_path):
    folder = tmp_path / "clip_nd_text_only"
    shutil.copytree(tiny_models["CLIP-ND"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "fusion_image_weight": 0.0}))
    extra = ("--tasks", "Tm-Te", "ITm-ITe", "--headline_task", "Tm-Te", "--text_formats", "M-S1", "S-M")
    results = {}
    for label, source in (("w0", folder), ("w05", tiny_models["CLIP-ND"])):
        result = main(run_args(sample_dataset, {label: source}, tmp_path / label, tmp_path / "cache", *extra))
        results[label] = {(r["task"], r["text_format"], r["topic"]): r["mrr"] for r in result.results["results"]}
    assert result.results["models"][0]["fusion"] == "mean"  # w = 0.5: the normalised mean, as every model
    for key, mrr in results["w0"].items():  # an image weight of 0 leaves the text alone: ITm-ITe is Tm-Te
        assert mrr == results["w0"][("Tm-Te", *key[1:])]
    assert any(mrr != results["w05"][("Tm-Te", *key[1:])] for key, mrr in results["w05"].items())


def test_tiny_clip_nd_is_retrained_when_its_arguments_change(sample_dataset, tmp_path, monkeypatch):
    from m3el_benchmark.training.trainer import CLIPNDTrainer

    calls = []
    train = CLIPNDTrainer.train
    monkeypatch.setattr(CLIPNDTrainer, "train", lambda trainer: calls.append(trainer.args) or train(trainer))
    accelerator = Accelerator(cpu=True)
    for steps in (1, 1, 2):
        args = BenchmarkArguments(train_tiny=True, train_max_steps=steps, output_dir=str(tmp_path))
        requests = train_tiny_clip_nd(args, sample_dataset, tmp_path, accelerator)
    assert len(calls) == 2 and calls[1].max_steps == 2
    fingerprint = json.loads((tmp_path / "models" / "clip_nd_tiny.fingerprint.json").read_text())
    assert fingerprint["max_steps"] == 2 and fingerprint["dataset_readme_sha256"]
    configs = {name: json.loads((tmp_path / "models" / name / "config.json").read_text())
               for name in ("clip_nd_tiny", "clip_nd_tiny_untrained")}  # fmt: skip
    assert configs["clip_nd_tiny"]["training_arguments"]["max_steps"] == 2
    assert configs["clip_nd_tiny_untrained"]["training_arguments"] is None  # never trained: says so
    assert all((Path(request.source) / "config.json").is_file() for request in requests)


def test_a_rerun_replaces_the_earlier_runs_outputs(tiny_models, sample_dataset, tmp_path):
    out, models = tmp_path / "out", {"CLIP": tiny_models["CLIP"]}
    main(run_args(sample_dataset, models, out, tmp_path / "cache", "--text_formats", "M-S1"))
    assert (out / "tables" / "table4_ITm-ITe.md").is_file() and (out / "accuracy_by_task.png").is_file()
    fewer = ("--tasks", "Im-Ie", "--headline_task", "Im-Ie", "--text_formats", "M-S1")
    result = main(run_args(sample_dataset, models, out, tmp_path / "cache", *fewer))
    tables = sorted(path.name for path in (out / "tables").iterdir())
    expected = [f"{table}.{suffix}" for table in ("table5", "tasks", "topics") for suffix in ("md", "csv", "tex")]
    assert tables == sorted([*expected, "tables.md"])
    assert {record["task"] for record in json.loads((out / "results.json").read_text())["results"]} == {"Im-Ie"}
    assert result.results["results"] and not (out / ".staging-outputs").exists()


def test_a_model_returning_nan_is_reported_as_such_not_as_undecodable_images(
    tiny_models, sample_dataset, tmp_path, caplog, monkeypatch
):
    from m3el_benchmark.baselines.dual_encoder import DualEncoderAdapter

    monkeypatch.setattr(DualEncoderAdapter, "encode_images", lambda self, batch: torch.full(
        (len(batch["pixel_values"]), 1, 8), float("nan")))  # fmt: skip
    mentions = load_mentions(sample_dataset, ["test"], text_formats=["M-S1"])
    adapter = load_adapter(ModelRequest("CLIP", str(tiny_models["CLIP"])))
    settings = settings_for(["Im-Ie"], ["M-S1"])
    with caplog.at_level("WARNING"):
        runs = [evaluate_model(adapter, mentions, settings, Accelerator(cpu=True), EncodingSettings(num_workers=0),
                               tmp_path / "cache", ["M-S1"]) for _ in range(2)]  # fmt: skip
    for run in runs:  # cold and warm: nothing non-finite was cached, so the warm run meets it again
        images = run.encoding["image"]
        assert run.undecodable_images == 0 and images.undecodable == 0 and images.non_finite == images.unique
    assert "CLIP returned NaN or infinite embeddings for" in caplog.text


def test_a_single_value_in_the_yaml_config_is_a_one_item_list(tmp_path):
    from m3el_benchmark.run import parse_arguments

    config = tmp_path / "run.yaml"
    config.write_text("tasks: ITm-ITe\nheadline_task: ITm-ITe\ntext_formats: M-S\nheadline_format: M-S\n"
                      "models: CLIP\n")
    args = parse_arguments(["--config", str(config)])
    assert (args.tasks, args.text_formats, args.models) == (["ITm-ITe"], ["M-S"], ["CLIP"])
    config.write_text("- tasks\n")
    with pytest.raises(ValueError, match=r"run.yaml must be a YAML mapping of argument names"):
        parse_arguments(["--config", str(config)])


def _records_by_model(results: dict) -> dict[str, list[dict]]:
    by_model: dict[str, list[dict]] = {}
    for record in results["results"]:
        by_model.setdefault(record["model"], []).append({k: v for k, v in record.items() if k != "model"})
    return by_model


@pytest.mark.parametrize("keep_mention", ["false", "true"])
def test_an_untrained_clip_nd_scores_exactly_like_its_clip(keep_mention, tiny_models, sample_dataset, tmp_path):
    """Equal treatment: CLIP-ND made from a CLIP (same weights) gives that CLIP's figures for all 9 tasks x 8 formats
    x every topic, whether the run cuts texts at the end or keeps the mention."""
    clip_nd = tmp_path / "clip_nd"
    CLIPNDModel.from_clip(tiny_models["CLIP"]).save_pretrained(clip_nd)
    tiny_processor().save_pretrained(clip_nd)
    models = {"CLIP": tiny_models["CLIP"], "CLIP-ND": clip_nd}
    result = main(run_args(sample_dataset, models, tmp_path / "o", tmp_path / "c", "--keep_mention", keep_mention))
    records = _records_by_model(result.results)
    text_tasks = [task for task in TASKS if not task.startswith("Im-")]
    settings = len(text_tasks) * len(TEXT_FORMATS) + len(TASKS) - len(text_tasks)
    assert len(records["CLIP"]) == settings * (len(TOPICS) + 1)
    assert records["CLIP-ND"] == records["CLIP"]
    assert result.results["run"]["keep_mention"] is (keep_mention == "true")


def test_keep_mention_changes_the_m_formats_only(tiny_models, sample_dataset, tmp_path, capsys):
    models, extra = {"CLIP": tiny_models["CLIP"]}, ("--tasks", "Tm-Te", "--headline_task", "Tm-Te")
    figures = {}
    for keep in ("false", "true"):
        result = main(run_args(sample_dataset, models, tmp_path / keep, tmp_path / "cache", *extra, "--keep_mention",
                               keep))  # fmt: skip
        figures[keep] = {(r["text_format"], r["topic"]): r["mrr"] for r in result.results["results"]}
    printed = capsys.readouterr().out
    assert "Mention texts, every model alike: cut at the end at each model's text length (as in the paper)" in printed
    assert "so the mention is kept" in printed
    changed = {key[0] for key, mrr in figures["true"].items() if mrr != figures["false"][key]}
    assert changed and changed <= {"S1-M", "S-M", "S1-M-D", "S-M-D"}  # the tiny CLIP reads 77 characters


def _flava_expected_figures(adapter, mentions, text_format: str) -> tuple[float, float, int]:
    """ITm-Te by hand: cosine of the normalised mean of FLAVA's projected mention text and image vectors with each
    candidate's projected text vector; gold ranked pessimistically. Returns (correct, sum of 1/rank, mentions scored
    with their gold among the candidates)."""
    def texts(keys):
        return adapter.encode_texts(adapter.collate_texts([mentions.inputs.texts[key] for key in keys]))[:, 0]

    correct, reciprocal, with_gold = 0, 0.0, 0
    for row, gold in enumerate(mentions.gold.tolist()):
        if gold < 0:
            continue
        with_gold += 1
        image = decode_rgb(mentions.inputs.images[mentions.mention_images[row]])[0]
        image_vector = adapter.encode_images(adapter.collate_images([image]))[0, 0]
        text_vector = texts([mentions.mention_texts[text_format][row]])[0]
        query = torch.nn.functional.normalize(0.5 * image_vector + 0.5 * text_vector, dim=-1)
        scores = texts(mentions.candidate_texts[row]) @ query
        rank = 1 + sum(int(scores[i] >= scores[gold]) for i in range(len(scores)) if i != gold)
        correct, reciprocal = correct + (rank == 1), reciprocal + 1.0 / rank
    return correct, reciprocal, with_gold


def test_flava_fuses_in_the_space_of_the_other_side(tiny_models, sample_dataset, tmp_path):
    """FLAVA's (I+T) side is the normalised mean of its projected vectors (ITm-Te compares it with projected text
    vectors); FLAVA-MM uses its multimodal encoder on ITm-ITe only, so its ITm-Te figures are FLAVA's."""
    models = {"FLAVA": tiny_models["FLAVA"], "FLAVA-MM": f"{tiny_models['FLAVA']}#multimodal-encoder"}
    extra = ("--tasks", "ITm-Te", "ITm-ITe", "--headline_task", "ITm-Te", "--text_formats", "M-S1",
             "--headline_format", "M-S1")  # fmt: skip
    result = main(run_args(sample_dataset, models, tmp_path / "out", tmp_path / "cache", *extra))
    summaries = {model["name"]: model for model in result.results["models"]}
    assert summaries["FLAVA"]["fusion"] == "mean" and "pair" not in summaries["FLAVA"]["encoding"]
    assert summaries["FLAVA-MM"]["fusion"] == "multimodal-encoder (ITm-ITe; mean elsewhere)"
    mentions = load_mentions(sample_dataset, ["test"], text_formats=["M-S1"])
    pairs = {(key, image) for key, image in zip(mentions.mention_texts["M-S1"], mentions.mention_images, strict=True)}
    for texts, images in zip(mentions.candidate_texts, mentions.candidate_images, strict=True):
        pairs |= {(key, image) for key, image in zip(texts, images, strict=True) if image is not None}
    assert summaries["FLAVA-MM"]["encoding"]["pair"]["unique_inputs"] == len(pairs)  # the ITm-ITe sides only
    records = _records_by_model(result.results)
    mixed = [record for record in records["FLAVA"] if record["task"] == "ITm-Te"]
    assert mixed == [record for record in records["FLAVA-MM"] if record["task"] == "ITm-Te"]
    adapter = load_adapter(ModelRequest("FLAVA", str(tiny_models["FLAVA"])))
    correct, reciprocal, _ = _flava_expected_figures(adapter, mentions, "M-S1")
    (scored,) = [record for record in mixed if record["topic"] == "all"]
    assert scored["accuracy"] == pytest.approx(correct / scored["num_mentions"], abs=1e-12)
    assert scored["mrr"] == pytest.approx(reciprocal / scored["num_mentions"], abs=1e-9)


def test_each_models_text_length_is_recorded_printed_and_overridable(tiny_models, sample_dataset, tmp_path, capsys):
    models = {name: tiny_models[name] for name in ("BLIP-2", "FLAVA", "ALIGN")}
    extra = ("--tasks", "Tm-Te", "--headline_task", "Tm-Te", "--text_formats", "S-M", "--headline_format", "S-M")
    result = main(run_args(sample_dataset, models, tmp_path / "a", tmp_path / "cache", *extra))
    lengths = {m["name"]: (m["text_tokens"], m["text_tokens_source"]) for m in result.results["models"]}
    assert lengths == {"BLIP-2": (64, "config.qformer_config.max_position_embeddings"),
                       "FLAVA": (80, "config.text_config.max_position_embeddings"),
                       "ALIGN": (64, "AlignProcessor.text_kwargs['max_length']")}  # fmt: skip
    printed = capsys.readouterr().out
    assert "| Model | Fusion | Text tokens | Dtype |" in printed and "| FLAVA | mean | 80 | float32 |" in printed
    cut = main(run_args(sample_dataset, models, tmp_path / "b", tmp_path / "cache", *extra, "--text_tokens",
                        "BLIP-2=35"))  # fmt: skip
    blip2 = cut.results["models"][0]
    assert (blip2["text_tokens"], blip2["text_tokens_source"]) == (35, "run config (text_tokens)")
    assert blip2["encoding"]["text"]["cache_hits"] == 0  # another length: embeddings of its own
    assert cut.results["run"]["text_tokens"] == ["BLIP-2=35"]
    with pytest.raises(ValueError, match=r"--text_tokens names \['BLIP2'\], which are not models of this run"):
        main(run_args(sample_dataset, models, tmp_path / "c", tmp_path / "cache", *extra, "--text_tokens", "BLIP2=35"))
    with pytest.raises(ValueError, match="must read LABEL=TOKENS"):
        BenchmarkArguments(text_tokens=["BLIP-2:35"])


@pytest.mark.parametrize(("precision", "dtype"), [("no", "float32"), ("bf16", "bfloat16")])
def test_evaluation_precision_is_recorded(precision, dtype, tiny_models, sample_dataset, tmp_path):
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    extra = ("--tasks", "Tm-Te", "--headline_task", "Tm-Te", "--text_formats", "M-S1", "--headline_format", "M-S1",
             "--mixed_precision", precision)  # fmt: skip
    result = main(run_args(sample_dataset, {"CLIP": tiny_models["CLIP"]}, tmp_path / "o", tmp_path / "c", *extra))
    assert result.results["models"][0]["dtype"] == dtype
    assert result.results["run"]["precision"]["dtype"] == dtype
    if precision == "no":  # float32 end to end: no TF32 products either
        assert result.results["run"]["precision"]["tf32"] is False
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == tf32  # restored


@pytest.mark.slow  # shares the full two-run fixture (about 15 s on 2 cores)
def test_gallery_mistakes_are_those_the_scores_ranked(full_run):
    first, second = full_run
    for evaluation, again in zip(first.evaluations, second.evaluations, strict=True):
        entries = evaluation.gallery
        assert entries and entries == again.gallery  # seeded: the same mistakes, scores and thumbnails on a re-run
        per_setting = {}
        for entry in entries:
            per_setting[entry.task, entry.text_format] = per_setting.get((entry.task, entry.text_format), 0) + 1
            assert entry.gold_rank != 1 and entry.model == evaluation.info.name
            golds = [position for position, candidate in enumerate(entry.candidates, 1) if candidate.gold]
            if entry.gold_present:  # candidates are in score order, the gold after its ties: its place is its rank
                assert golds == [entry.gold_rank]
            else:
                assert golds == []
            assert all(c.thumbnail.startswith("data:image/jpeg;base64,") for c in entry.candidates)
        assert max(per_setting.values()) <= GALLERY_SIZE
    assert any(not entry.gold_present for entry in first.evaluations[0].gallery)  # under nil_policy: wrong


@requires_chromium
@pytest.mark.slow  # shares the full two-run fixture (about 15 s on 2 cores)
def test_report_html_of_the_sample_run_renders_in_headless_chromium(full_run, tmp_path):
    page = full_run[0].output_dir / "report.html"
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.IGNORECASE)  # self-contained
    assert "<script" not in text.lower()
    dom = Elements(dump_dom(page, tmp_path / "chromium"))
    for section in ("headline", "per-task", "per-topic", "gallery"):
        assert dom.having("section", id=section)
    for table in ("table5", "comparison", "tasks", "topics", *(f"table4_{t}" for t in TASKS if t[:2] != "Im")):
        assert dom.having("figure", "table", id=f"table-{table}"), table
    assert len(dom.having("table", "figures")) == len(dom.having("tr", "n")) >= 10  # each table with its n row
    assert len(dom.having("span", "ci")) >= len(MODEL_ORDER) * len(TASKS)  # intervals under the values
    assert dom.having("figure", "chart", id="chart-tasks") and dom.having("figure", "chart", id="chart-topics")
    assert len(dom.having("svg")) >= 2
    assert len(dom.having("details", "model")) == len(MODEL_ORDER)
    mistakes = dom.having("article", "mistake")
    assert len(mistakes) > len(MODEL_ORDER) and len(dom.having("li", "candidate")) >= 2 * len(mistakes)
    assert len(dom.having("li", "gold")) >= len(mistakes) - len(MODEL_ORDER) * len(TASKS)  # all but gold-absent ones
    assert all(img["src"].startswith("data:image/jpeg;base64,") for img in dom.having("img", "thumb"))
    assert "gold not among candidates" in text and "model's choice" in text
    png = screenshot(page, tmp_path / "report_sample_run.png", tmp_path / "chromium", size=(1280, 9000))
    with Image.open(png) as image:
        darkest, lightest = image.convert("L").getextrema()
        assert image.size == (1280, 9000) and darkest < 64 and lightest > 192  # text on a light page, not blank
