# Times the benchmark runner (benchmark/run.py) on the bundled sample, and a ViT-B/32 image encoder on a GPU.
#
#   python benchmark/perf/perf_benchmark.py [--train_max_steps 20] [--gpu_images 4096]
#
# Prints, for the tiny CLIP-ND models of the sample run on this machine: unique inputs encoded per second, and the
# wall-clock of the whole sample run cold (empty embedding cache, tiny CLIP-ND trained) and warm (second run: the
# trained model and every embedding reused). With a GPU, also images/s of a ViT-B/32 (CLIP's architecture with
# random weights, so nothing is downloaded) in bf16, model only and end to end (JPEG decoding in DataLoader
# workers, preprocessing, encoding).

from __future__ import annotations

import io
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, HfArgumentParser

if __package__ in (None, ""):  # run as a file from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from m3el_benchmark.baselines.base import ModelInfo  # noqa: E402
from m3el_benchmark.baselines.dual_encoder import CLIPAdapter  # noqa: E402
from m3el_benchmark.evaluation.cache import EmbeddingCache  # noqa: E402
from m3el_benchmark.evaluation.encoding import IMAGE, EncodingSettings, encode_unique  # noqa: E402
from m3el_benchmark.run import main as run_benchmark  # noqa: E402


@dataclass
class PerfArguments:
    """What to time."""

    train_max_steps: int = field(default=20, metadata={"help": "Training steps of the sample's tiny CLIP-ND."})
    gpu_images: int = field(default=4096, metadata={"help": "Images encoded by ViT-B/32 on a GPU."})
    gpu_batch_size: int = field(default=256)
    num_workers: int = field(default=8, metadata={"help": "DataLoader workers decoding images on the GPU run."})


def time_sample_run(args: PerfArguments, work_dir: Path) -> dict[str, float]:
    """Wall-clock of the sample run cold and warm, and the tiny models' unique inputs encoded per second."""
    argv = ["--output_dir", str(work_dir / "out"), "--cache_dir", str(work_dir / "cache"),
            "--train_max_steps", str(args.train_max_steps), "--skip_unavailable", "true"]  # fmt: skip
    start = time.perf_counter()
    cold = run_benchmark(argv)
    cold_seconds = time.perf_counter() - start
    start = time.perf_counter()
    run_benchmark(argv)
    warm_seconds = time.perf_counter() - start
    encoded = seconds = 0.0
    for model in cold.results["models"]:
        for stats in model["encoding"].values():
            encoded += stats["encoder_passes"]
            seconds += stats["seconds"]
    return {"cold_s": cold_seconds, "warm_s": warm_seconds, "inputs_per_s": encoded / seconds, "inputs": encoded}


def _jpeg_images(count: int, size: int = 256) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    images = {}
    for index in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, format="JPEG")
        images[f"{index:08d}"] = buffer.getvalue()
    return images


def time_vit_b32(args: PerfArguments) -> dict[str, float]:
    """Images/s of a bf16 ViT-B/32 on the GPU: the model alone, and `encode_unique` from JPEG bytes."""
    device = torch.device("cuda")
    model = CLIPModel(CLIPConfig()).to(device, torch.bfloat16).eval()  # CLIPConfig() is ViT-B/32
    info = ModelInfo("ViT-B/32", "random", "none", "clip", "clip", "mean", "bfloat16")
    adapter = CLIPAdapter(model, CLIPImageProcessorPil(), info)
    pixels = torch.randn(args.gpu_batch_size, 3, 224, 224, device=device)
    for _ in range(3):  # warm-up: kernels and cuDNN autotuning
        adapter.encode_images({"pixel_values": pixels})
    torch.cuda.synchronize()
    batches = max(1, args.gpu_images // args.gpu_batch_size)
    start = time.perf_counter()
    for _ in range(batches):
        adapter.encode_images({"pixel_values": pixels})
    torch.cuda.synchronize()
    model_only = batches * args.gpu_batch_size / (time.perf_counter() - start)
    images = _jpeg_images(args.gpu_images)
    settings = EncodingSettings(batch_size=args.gpu_batch_size, num_workers=args.num_workers)
    start = time.perf_counter()
    encode_unique(adapter, IMAGE, images, EmbeddingCache(None, "none"), Accelerator(), settings)
    torch.cuda.synchronize()
    return {"model_only": model_only, "end_to_end": len(images) / (time.perf_counter() - start)}


def main(argv: list[str] | None = None) -> None:
    (args,) = HfArgumentParser(PerfArguments).parse_args_into_dataclasses(args=argv)
    with tempfile.TemporaryDirectory() as work_dir:
        sample = time_sample_run(args, Path(work_dir))
    print(f"Sample run, tiny CLIP-ND on {'GPU' if torch.cuda.is_available() else 'CPU'}:")
    print(f"  unique inputs encoded per second: {sample['inputs_per_s']:.0f} ({sample['inputs']:.0f} inputs)")
    print(f"  whole sample run, cold (training + empty cache): {sample['cold_s']:.1f} s")
    print(f"  whole sample run, warm (trained model and embeddings cached): {sample['warm_s']:.1f} s")
    if torch.cuda.is_available():
        vit = time_vit_b32(args)
        print(f"ViT-B/32 bf16 on {torch.cuda.get_device_name()}:")
        print(f"  images/s, model only: {vit['model_only']:.0f}")
        print(f"  images/s, end to end from JPEG ({args.num_workers} decoding workers): {vit['end_to_end']:.0f}")
    else:
        print("No GPU: ViT-B/32 images/s not measured.")


if __name__ == "__main__":
    main()
