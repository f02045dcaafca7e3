"""The tiny CLIP-ND of the sample run: trained on the dataset for a few steps, and compared with its untrained twin.

No weights can be downloaded where the benchmark is developed and tested, so the default run trains a small CLIP-ND
from scratch (``--init tiny``) and adds it to the compared models twice, trained and untrained (same config and
tokenizer, fresh random weights), so that the tables show what training adds. A tiny random model is a fixture,
never a result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from modeling_clip_nd import CLIPNDModel

from .baselines import ModelRequest
from .training.arguments import TINY_INIT, DataArguments, ModelArguments, TrainingArguments
from .training.trainer import CLIPNDTrainer

if TYPE_CHECKING:
    from .run import BenchmarkArguments

logger = logging.getLogger(__name__)

TINY_BATCH_SIZE = 32
TINY_LEARNING_RATE = 5e-4
"""The fixed arguments of the tiny CLIP-ND training (the others come from the benchmark's arguments)."""


def tiny_training_arguments(
    args: BenchmarkArguments, dataset_path: str, output_dir: str | Path
) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """The training arguments of the tiny CLIP-ND: task, text format, steps and seed from the benchmark's."""
    return (
        ModelArguments(init=TINY_INIT),
        DataArguments(dataset=dataset_path, task=args.train_task, text_format=args.headline_format),
        TrainingArguments(
            output_dir=str(output_dir),
            max_steps=args.train_max_steps,
            per_device_train_batch_size=TINY_BATCH_SIZE,
            learning_rate=TINY_LEARNING_RATE,
            seed=args.seed,
            report_to="none",
        ),
    )


def tiny_training_fingerprint(arguments: tuple[ModelArguments, DataArguments, TrainingArguments]) -> dict:
    """What the tiny CLIP-ND was trained from: every training argument but the output folder, and the dataset
    (resolved path and README hash)."""
    model_args, data_args, training_args = arguments
    fingerprint = {**asdict(model_args), **asdict(data_args), **asdict(training_args)}
    fingerprint.pop("output_dir")
    dataset = Path(data_args.dataset)
    readme = dataset / "README.md"
    fingerprint["dataset"] = str(dataset.resolve()) if dataset.is_dir() else data_args.dataset
    digest = hashlib.sha256(readme.read_bytes()).hexdigest() if readme.is_file() else None
    fingerprint["dataset_readme_sha256"] = digest
    return json.loads(json.dumps(fingerprint))  # as it reads back from its JSON file (tuples become lists)


def save_untrained_twin(trained_dir: Path, untrained_dir: Path, seed: int) -> None:
    """Save a model with ``trained_dir``'s architecture, tokenizer and image processor, and fresh random weights."""
    config = CLIPNDModel.from_pretrained(trained_dir).config
    config.training_arguments = None  # the twin was never trained: its config must not say it was
    torch.manual_seed(seed)
    CLIPNDModel(config).save_pretrained(untrained_dir)
    for path in trained_dir.iterdir():  # the processor files: same tokenizer and image processor
        if path.suffix in (".json", ".txt", ".model") and path.name not in ("config.json", "model.safetensors"):
            (untrained_dir / path.name).write_bytes(path.read_bytes())


def train_tiny_clip_nd(
    args: BenchmarkArguments, dataset_path: str, output_dir: Path, accelerator: Accelerator
) -> list[ModelRequest]:
    """Train a tiny CLIP-ND on the dataset (`CLIPNDTrainer`, ``--init tiny``) and save its untrained twin.

    Models already in ``output_dir`` are reused only if their fingerprint (`tiny_training_fingerprint`, saved
    beside them) matches this run's, which keeps a second run fast and its cache warm; otherwise they are trained
    again. The main process decides and writes; every process trains, since the trainer shares the run's
    processes (it shards the batches and saves on the main process only).
    """
    models = output_dir / "models"
    trained_dir, untrained_dir = models / "clip_nd_tiny", models / "clip_nd_tiny_untrained"
    fingerprint_file = models / "clip_nd_tiny.fingerprint.json"
    arguments = tiny_training_arguments(args, dataset_path, trained_dir)
    fingerprint = tiny_training_fingerprint(arguments)
    saved = json.loads(fingerprint_file.read_text(encoding="utf-8")) if fingerprint_file.is_file() else None
    complete = all((folder / "config.json").is_file() for folder in (trained_dir, untrained_dir))
    (stale,) = broadcast_object_list([saved != fingerprint or not complete])  # the main process's answer
    if stale:
        if accelerator.is_main_process:
            logger.info("Training the tiny CLIP-ND in %s (no model trained with these arguments there)", trained_dir)
            fingerprint_file.unlink(missing_ok=True)
            for folder in (trained_dir, untrained_dir):
                shutil.rmtree(folder, ignore_errors=True)
        accelerator.wait_for_everyone()
        CLIPNDTrainer(*arguments).train()
        if accelerator.is_main_process:
            save_untrained_twin(trained_dir, untrained_dir, args.seed)
            fingerprint_file.write_text(json.dumps(fingerprint, indent=2) + "\n", encoding="utf-8")
    accelerator.wait_for_everyone()
    return [
        ModelRequest("CLIP-ND (tiny, trained)", str(trained_dir)),
        ModelRequest("CLIP-ND (tiny, untrained)", str(untrained_dir)),
    ]
