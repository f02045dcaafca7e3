# Training and encoding throughput of CLIP-ND, each beside the plainest loop that does the same work.
#
#   python benchmark/perf/perf_train.py                                  # one process (CPU, or a GPU if present)
#   ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 benchmark/perf/perf_train.py   # two ranks
#
# 1. Training steps/s of `CLIPNDTrainer` against a minimal hand-written loop at the same batch, hard negatives off:
#    same model, same batches (the same dataset and collator, so the data work is equal), forward, loss, backward,
#    AdamW step, nothing else (no accelerate, no finiteness checks, no logging, no counters). The ratio
#    trainer/minimal is the trainer's overhead (goal: >= 0.95). Tiny CLIP-ND on CPU; ViT-B/32 bf16 too on a GPU.
# 2. The four loss variants of the trainer (gathered or local, with or without hard negatives), samples/s.
# 3. Encoder images/s from JPEG bytes: the benchmark's `encode_unique` against a plain `CLIPModel` loop (PIL decode
#    in DataLoader workers, the CLIP image processor, `get_image_features`). ViT-B/32 bf16 on a GPU; a small CLIP
#    (4 layers, width 256, 224 px) on CPU, which measures the machinery, not the hardware.
"""Training and encoding throughput figures for CLIP-ND (printed, not asserted)."""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

if __package__ in (None, ""):  # run as a file from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from m3el_benchmark.train import parse_arguments  # noqa: E402
from m3el_benchmark.training.data import PairCollator  # noqa: E402
from m3el_benchmark.training.loss import ContrastiveTrainingModule  # noqa: E402
from m3el_benchmark.training.trainer import TRAIN_LOG_FILE, CLIPNDTrainer  # noqa: E402
from m3el_dataset.export import ExportConfig, export_release  # noqa: E402
from m3el_dataset.loading import open_split  # noqa: E402
from m3el_dataset.rows import MENTIONS_CONFIG  # noqa: E402
from m3el_dataset.sample import SAMPLE_DIR  # noqa: E402
from modeling_clip_nd import clip_nd_contrastive_loss  # noqa: E402

VARIANTS = {  # each flag explicit, whatever the defaults (gathered, no hard negatives)
    "gathered + hard negatives": ["--gather_features", "true", "--hard_negatives", "true"],
    "gathered, no hard negatives": ["--gather_features", "true", "--hard_negatives", "false"],
    "local, hard negatives": ["--gather_features", "false", "--hard_negatives", "true"],
    "local, no hard negatives": ["--gather_features", "false", "--hard_negatives", "false"],
}


def measure(argv: list[str], steps: int) -> tuple[float, int]:
    """Samples per second of ``steps`` optimizer steps, as the trainer logs them over its one logging interval
    (the loop only: set-up and saving excluded), and the number of processes."""
    trainer = CLIPNDTrainer(*parse_arguments([*argv, "--max_steps", str(steps), "--logging_steps", str(steps)]))
    trainer.accelerator.wait_for_everyone()
    trainer.train()
    lines = (Path(trainer.args.output_dir) / TRAIN_LOG_FILE).read_text().splitlines()
    return json.loads(lines[-1])["train/samples_per_second"], trainer.accelerator.num_processes


def _to_device(value, device: torch.device):
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    return value


def measure_minimal(argv: list[str], steps: int) -> float:
    """Samples per second of a hand-written loop over the trainer's own model and data (see the banner)."""
    trainer = CLIPNDTrainer(*parse_arguments([*argv, "--max_steps", str(steps)]))
    trainer.lock.release()
    model, args, data_args = trainer.model, trainer.args, trainer.data_args
    device = trainer.accelerator.device
    model.to(device).train()
    collator = PairCollator(trainer.processor, data_args.text_format, train=True, keep_mention=data_args.keep_mention,
                            num_slots=0, missing_image_fallback=model.config.missing_image_fallback)  # fmt: skip
    workers = data_args.dataloader_num_workers
    loader = torch.utils.data.DataLoader(
        trainer.train_pairs, batch_size=args.per_device_train_batch_size, shuffle=True, collate_fn=collator,
        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0, drop_last=True,
    )  # fmt: skip
    module = ContrastiveTrainingModule(model, 0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)
    dtype = torch.bfloat16 if trainer.accelerator.mixed_precision == "bf16" else None
    done, start = 0, time.perf_counter()
    while done < steps:
        for batch in loader:
            batch = _to_device(batch, device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                mentions, entities, _, scale = module(batch)
                masks = {"mention_mask": mentions.usable(), "entity_mask": entities.usable()}
                loss = clip_nd_contrastive_loss(mentions.embeds, entities.embeds, scale, **masks, check_inputs=False)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            done += 1
            if done == steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * args.per_device_train_batch_size / (time.perf_counter() - start)


def compare_with_minimal(name: str, argv: list[str], steps: int, repeats: int) -> None:
    """Trainer and minimal loop alternated ``repeats`` times (best of each), ratio printed."""
    trainer_rates, minimal_rates = [], []
    for repeat in range(repeats):
        minimal_rates.append(measure_minimal([*argv, "--output_dir", f"{argv[-1]}-m{repeat}"], steps))
        trainer_rates.append(measure([*argv, "--output_dir", f"{argv[-1]}-t{repeat}"], steps)[0])
    best_trainer, best_minimal = max(trainer_rates), max(minimal_rates)
    print(f"{name}: trainer {best_trainer:.1f} samples/s, minimal loop {best_minimal:.1f} samples/s, "
          f"trainer/minimal {best_trainer / best_minimal:.3f} (goal >= 0.95; best of {repeats}, {steps} steps each)")


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


def jpeg_images(count: int, size: int = 320) -> dict[str, bytes]:
    """``count`` distinct photo-sized JPEGs (smooth colour fields with noise), keyed like the benchmark's inputs."""
    rng = np.random.default_rng(0)
    axis = np.linspace(0.0, 1.0, size)
    images = {}
    for index in range(count):
        field = np.sin(axis[:, None, None] * rng.uniform(2, 9, 3) + axis[None, :, None] * rng.uniform(2, 9, 3))
        pixels = (128 + 90 * field + rng.normal(0, 10, (size, size, 3))).clip(0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        images[f"{index:08d}"] = buffer.getvalue()
    return images


class _Decoded(torch.utils.data.Dataset):
    def __init__(self, payloads: list[bytes]):
        self.payloads = payloads

    def __len__(self) -> int:
        return len(self.payloads)

    def __getitem__(self, index: int) -> Image.Image:
        return Image.open(io.BytesIO(self.payloads[index])).convert("RGB")


def compare_encoders(count: int, batch_size: int, workers: int, repeats: int) -> None:
    """Images/s of `encode_unique` and of a plain `CLIPModel` loop over the same JPEG bytes, ratio printed."""
    from accelerate import Accelerator
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    from m3el_benchmark.baselines.base import ModelInfo
    from m3el_benchmark.baselines.dual_encoder import CLIPAdapter
    from m3el_benchmark.evaluation.cache import EmbeddingCache
    from m3el_benchmark.evaluation.encoding import IMAGE, EncodingSettings, encode_unique

    gpu = torch.cuda.is_available()
    device, dtype = (torch.device("cuda"), torch.bfloat16) if gpu else (torch.device("cpu"), torch.float32)
    if gpu:
        config, name = CLIPConfig(), "ViT-B/32 bf16"  # CLIPConfig() is ViT-B/32
    else:
        vision = {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4, "num_attention_heads": 4,
                  "image_size": 224, "patch_size": 32}  # fmt: skip
        config, name = CLIPConfig(vision_config=vision), "small CLIP (4 layers, width 256) fp32"
    model = CLIPModel(config).to(device, dtype).eval()
    processor = CLIPImageProcessorPil()
    images = jpeg_images(count)
    payloads = list(images.values())

    def plain_loop() -> None:
        loader = torch.utils.data.DataLoader(
            _Decoded(payloads), batch_size=batch_size, num_workers=workers, pin_memory=gpu,
            collate_fn=lambda batch: processor(images=batch, return_tensors="pt")["pixel_values"],
        )  # fmt: skip
        outputs = []
        with torch.inference_mode():
            for pixels in loader:
                outputs.append(model.get_image_features(pixel_values=pixels.to(device, dtype)).pooler_output)
        torch.cat(outputs).float().cpu()

    info = ModelInfo(name, "random", "none", "clip", "clip", "mean", "bfloat16" if gpu else "float32")
    adapter = CLIPAdapter(model, processor, info)
    settings = EncodingSettings(batch_size=batch_size, num_workers=workers)
    accelerator, cache = Accelerator(), EmbeddingCache(None, "none")  # made once per benchmark run, as there

    def project() -> None:
        encode_unique(adapter, IMAGE, images, cache, accelerator, settings)

    runs = {"plain CLIPModel loop": plain_loop, "encode_unique (project)": project}
    rates: dict[str, float] = {label: 0.0 for label in runs}
    for run in runs.values():
        run()  # warm-up (kernels, worker start-up paths)
    for _ in range(repeats):  # alternated, best of each: a busy machine slows both alike
        for label, run in runs.items():
            start = time.perf_counter()
            run()
            if gpu:
                torch.cuda.synchronize()
            rates[label] = max(rates[label], count / (time.perf_counter() - start))
    for label, rate in rates.items():
        print(f"  {label:<26} {rate:>8.0f} images/s")
    ratio = rates["encode_unique (project)"] / rates["plain CLIPModel loop"]
    print(f"  project/plain {ratio:.3f} ({name}, {count} JPEGs of 320 px, batch {batch_size}, {workers} workers, "
          f"best of {repeats})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--task", default="ITm-ITe")
    parser.add_argument("--repeats", type=int, default=2, help="alternations of trainer and minimal loop")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of every measurement")
    parser.add_argument("--encoder-images", type=int, default=512)
    parser.add_argument("--skip", nargs="*", default=[], choices=["minimal", "variants", "encoder"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    main_process = not (torch.distributed.is_initialized() and torch.distributed.get_rank() != 0)
    with tempfile.TemporaryDirectory() as folder:
        hub = export_release(SAMPLE_DIR, Path(folder) / "hub", ExportConfig()).out_dir
        common = ["--dataset", str(hub), "--task", args.task, "--validation_split", "", "--report_to", "none",
                  "--per_device_train_batch_size", str(args.batch_size),
                  "--dataloader_num_workers", str(args.workers)]  # fmt: skip
        if "minimal" not in args.skip:
            no_negatives = [*common, "--hard_negatives", "false", "--gather_features", "false"]
            compare_with_minimal("tiny CLIP-ND", ["--init", "tiny", *no_negatives, "--output_dir", f"{folder}/tiny"],
                                 args.steps, args.repeats)  # fmt: skip
            if torch.cuda.is_available():
                checkpoint = save_random_vit_b_32(hub, Path(folder) / "vit-b-32")
                vit = ["--init", str(checkpoint), "--mixed_precision", "bf16", *no_negatives,
                       "--output_dir", f"{folder}/vit"]  # fmt: skip
                compare_with_minimal("CLIP-ND ViT-B/32 (random weights), bf16", vit, args.steps, args.repeats)
        if "variants" not in args.skip:
            rows = []
            for name, extra in VARIANTS.items():
                tiny = ["--init", "tiny", "--output_dir", f"{folder}/tiny-{len(rows)}", *common, *extra]
                rows.append((f"tiny CLIP-ND ({name})", *measure(tiny, args.steps)))
            if main_process:
                print(f"{'model':<48} {'processes':>9} {'samples/s':>10}")
                for name, rate, processes in rows:
                    print(f"{name:<48} {processes:>9} {rate:>10.1f}")
    if "encoder" not in args.skip and main_process:
        print("Encoder images/s from JPEG bytes:")
        compare_encoders(args.encoder_images, 64, max(args.workers, 2), args.repeats)


if __name__ == "__main__":
    main()
