"""Learning is real: a tiny CLIP-ND trained on the bundled sample beats its untrained self and chance, and the
paper's aug_T (entity descriptions on the text side) beats training on entity names alone."""

from pathlib import Path

import pytest

from m3el_benchmark.train import parse_arguments
from m3el_benchmark.training.trainer import CLIPNDTrainer
from m3el_benchmark.training.validation import evaluate_accuracy
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.sample import SAMPLE_DIR

SEEDS = ("1", "2")


def _train(hub: Path, out: Path, seed: str, description_drop_prob: str) -> tuple[float, float]:
    argv = [
        "--init", "tiny", "--tiny_hidden_size", "64", "--tiny_image_size", "32", "--report_to", "none",
        "--dataset", str(hub), "--task", "Tm-Te", "--text_format", "M-S1", "--output_dir", str(out),
        # validation+test: 64 mentions, so that one mention moves ACC by 1.6 points, not 2.7
        "--validation_split", "validation+test", "--per_device_train_batch_size", "32", "--num_train_epochs", "25",
        "--learning_rate", "1e-3", "--seed", seed, "--description_drop_prob", description_drop_prob,
    ]  # fmt: skip
    trainer = CLIPNDTrainer(*parse_arguments(argv))
    untrained = evaluate_accuracy(trainer.accelerator, trainer.model, trainer.validation_loader, trainer.eval_slots)
    result = trainer.train()
    return untrained["accuracy"], result.history[-1]["accuracy"]  # the last epoch's ACC: no selection on it


@pytest.mark.slow
def test_tiny_clip_nd_learns_and_aug_t_helps(tmp_path):
    hub = export_release(SAMPLE_DIR, tmp_path / "hub", ExportConfig()).out_dir
    runs = {
        (seed, drop): _train(hub, tmp_path / f"run-{seed}-{drop}", seed, drop) for seed in SEEDS for drop in ("0", "1")
    }
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    untrained = mean([runs[seed, "0"][0] for seed in SEEDS])
    with_aug_t = mean([runs[seed, "0"][1] for seed in SEEDS])
    names_only = mean([runs[seed, "1"][1] for seed in SEEDS])
    chance = 1 / 3  # three candidates; mentions without their gold make real chance lower still
    # Measured here (last-epoch ACC, seeds 1-2, mean, in-batch negatives only): untrained 0.55, aug_T 0.74, names
    # only 0.59. Every run is deterministic (seeded, deterministic tokenizer, CPU kernels); the margins leave room
    # for another platform's rounding to move a few of the 64 evaluated mentions.
    assert with_aug_t >= untrained + 0.10, runs
    assert with_aug_t >= chance + 0.25, runs
    assert with_aug_t >= names_only + 0.06, runs
