# Training throughput of CLIP-ND: samples per second for a tiny model on CPU, with and without the gathered loss
# and the hard negatives, and for ViT-B/32 (random weights, same cost as the real ones) when a GPU is present.
#
#   python benchmark/perf/perf_train.py                                  # one process
#   ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 benchmark/perf/perf_train.py   # two ranks
#
# The gathered loss only differs from the local one with several processes; run it both ways to compare.
"""Training throughput figures for CLIP-ND (printed, not asserted)."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from m3el_benchmark.train import parse_arguments
from m3el_benchmark.training.trainer import CLIPNDTrainer
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.loading import open_split
from m3el_dataset.rows import MENTIONS_CONFIG
from m3el_dataset.sample import SAMPLE_DIR

VARIANTS = {  # each flag explicit, whatever the defaults (gathered, no hard negatives)
    "gathered + hard negatives": ["--gather_features", "true", "--hard_negatives", "true"],
    "gathered, no hard negatives": ["--gather_features", "true", "--hard_negatives", "false"],
    "local, hard negatives": ["--gather_features", "false", "--hard_negatives", "true"],
    "local, no hard negatives": ["--gather_features", "false", "--hard_negatives", "false"],
}


def measure(argv: list[str], steps: int) -> tuple[float, int]:
    """Samples per second of ``steps`` optimizer steps (set-up excluded), and the number of processes."""
    trainer = CLIPNDTrainer(*parse_arguments([*argv, "--max_steps", str(steps)]))
    trainer.accelerator.wait_for_everyone()
    start = time.perf_counter()
    result = trainer.train()
    elapsed = time.perf_counter() - start
    processes = trainer.accelerator.num_processes
    return result.steps * trainer.args.per_device_train_batch_size * processes / elapsed, processes


def save_random_vit_b_32(hub: Path, folder: Path) -> Path:
    """A randomly initialised CLIP-ND with ViT-B/32's exact architecture and a processor for 224-pixel images."""
    from transformers import CLIPImageProcessorPil, CLIPProcessor

    from m3el_benchmark.training.tiny_model import train_clip_tokenizer
    from modeling_clip_nd import CLIPNDConfig, CLIPNDModel

    rows = open_split(str(hub), MENTIONS_CONFIG, "train")
    config = CLIPNDConfig()
    tokenizer = train_clip_tokenizer(rows["text_S"], config.text_config.vocab_size)
    vocab = tokenizer.get_vocab()
    config.text_config.bos_token_id = vocab["<|startoftext|>"]
    config.text_config.eos_token_id = config.text_config.pad_token_id = vocab["<|endoftext|>"]
    CLIPNDModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=CLIPImageProcessorPil(), tokenizer=tokenizer).save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--task", default="ITm-ITe")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        hub = export_release(SAMPLE_DIR, Path(folder) / "hub", ExportConfig()).out_dir
        common = ["--dataset", str(hub), "--task", args.task, "--validation_split", "", "--report_to", "none",
                  "--per_device_train_batch_size", str(args.batch_size), "--logging_steps", "1000"]  # fmt: skip
        rows = []
        for name, extra in VARIANTS.items():
            tiny = ["--init", "tiny", "--output_dir", f"{folder}/tiny-{len(rows)}", *common, *extra]
            rows.append((f"tiny CLIP-ND ({name})", *measure(tiny, args.steps)))
        if torch.cuda.is_available():
            checkpoint = save_random_vit_b_32(hub, Path(folder) / "vit-b-32")
            vit = ["--init", str(checkpoint), "--mixed_precision", "bf16", "--output_dir", f"{folder}/vit", *common]
            rows.append(("CLIP-ND ViT-B/32 (random weights), bf16", *measure(vit, args.steps)))
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return
    print(f"{'model':<48} {'processes':>9} {'samples/s':>10}")
    for name, rate, processes in rows:
        print(f"{name:<48} {processes:>9} {rate:>10.1f}")
    if not torch.cuda.is_available():
        print("No GPU here: the ViT-B/32 figure needs one.")


if __name__ == "__main__":
    main()
