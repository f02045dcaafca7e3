# Times DWE+ (m3el_benchmark.systems.dwe_plus): the head's training on cached features, and feature extraction.
#
#   python benchmark/perf/perf_dwe.py [--steps 50] [--batch_size 64] [--images 64] [--threads 1]
#   python benchmark/perf/perf_dwe.py --clip openai/clip-vit-base-patch32 --detector google/owlvit-base-patch32
#
# 1. Head training: the full-size head (512-d features, hidden 512, 8 heads, ~2.6 M parameters) trained on random
#    cached features (m, t, v, `--crops` person crops, one hard negative), AdamW and gradient clipping as in
#    training.py. Prints training samples/s for each fusion, on the device the script finds (GPU if any).
# 2. Extraction: `extraction.extract_features` on `--images` random images (each with its mention and sentence
#    text), cold (empty embedding cache: detection, crops and CLIP encoding) and warm (every vector from the cache).
#    Prints images/s of each and their ratio. The default models are a tiny random CLIP and OWL-ViT built from
#    tests/ (no download; their boxes are random, so few crops are found); pass Hub names for real figures.

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
from transformers import HfArgumentParser

ROOT = Path(__file__).resolve().parents[2]
if __package__ in (None, ""):  # run as a file from a checkout that is not pip-installed
    sys.path.insert(0, str(ROOT))

from m3el_benchmark.evaluation.encoding import EncodingSettings  # noqa: E402
from m3el_benchmark.systems.dwe_plus.configuration import DWEPlusConfig  # noqa: E402
from m3el_benchmark.systems.dwe_plus.extraction import extract_features  # noqa: E402
from m3el_benchmark.systems.dwe_plus.modeling import DWEPlusHead  # noqa: E402
from m3el_benchmark.systems.dwe_plus.training import DWEPlusTrainingArguments, load_encoders  # noqa: E402


@dataclass
class PerfDWEArguments:
    """What to time."""

    steps: int = field(default=50, metadata={"help": "Timed training steps per fusion (after 5 warm-up steps)."})
    batch_size: int = field(default=64, metadata={"help": "Training batch [paper: 64]."})
    crops: int = field(default=8, metadata={"help": "Person crops per mention (max_crops)."})
    images: int = field(default=64, metadata={"help": "Images of the extraction timing."})
    clip: str = field(default="tiny", metadata={"help": "CLIP for extraction (Hub id or folder), or 'tiny'."})
    detector: str = field(default="tiny", metadata={"help": "Person detector (OWL-ViT/DETR), or 'tiny'."})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0: torch's default)."})


def time_head(args: PerfDWEArguments, device: torch.device) -> None:
    """Training samples/s of the full-size head on random cached features, per fusion."""
    print(f"\nHead training on cached features ({device}, batch {args.batch_size}, {args.crops} crops, 1 negative)")
    print("| fusion | parameters | samples / s | ms / step |")
    print("|:---|---:|---:|---:|")
    generator = torch.Generator().manual_seed(0)
    features = [torch.randn(args.batch_size, 512, generator=generator) for _ in range(3)]
    crops = torch.randn(args.batch_size, args.crops, 512, generator=generator)
    mask = torch.ones(args.batch_size, args.crops, dtype=torch.bool)
    positives, negatives = torch.randn(args.batch_size, 512), torch.randn(args.batch_size, 1, 512)
    inputs = [tensor.to(device) for tensor in (*features, crops, mask)]
    for fusion in ("concat", "sum"):
        torch.manual_seed(0)
        head = DWEPlusHead(DWEPlusConfig(fusion=fusion)).to(device).train()
        optimizer = torch.optim.AdamW(head.parameters(), lr=5e-5, weight_decay=0.001)
        targets = {"positives": positives.to(device), "negatives": negatives.to(device)}
        for number in range(5 + args.steps):  # 5 warm-up steps, then the timed ones
            if number == 5:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            head(*inputs, **targets).loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            optimizer.step(), optimizer.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / args.steps
        parameters = sum(p.numel() for p in head.parameters())
        print(f"| {fusion} | {parameters / 1e6:.2f} M | {args.batch_size / seconds:,.0f} | {1000 * seconds:.1f} |")


def _tiny_models(work: Path) -> tuple[str, str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_baselines import save_tiny_owlvit
    from tiny_clip import save_tiny_clip
    from transformers import OwlViTConfig, OwlViTForObjectDetection

    owl = save_tiny_owlvit(work / "owl")
    torch.manual_seed(0)
    OwlViTForObjectDetection(OwlViTConfig.from_pretrained(owl)).save_pretrained(owl)
    return str(save_tiny_clip(work / "clip")), str(owl)


def _random_images(count: int) -> list[bytes]:
    rng, images = np.random.default_rng(0), []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (320, 320, 3), dtype=np.uint8)).save(buffer, format="JPEG")
        images.append(buffer.getvalue())
    return images


def time_extraction(args: PerfDWEArguments, work: Path, device: torch.device) -> None:
    """Images/s of cold (empty cache) and warm (cached) feature extraction."""
    tiny = _tiny_models(work) if "tiny" in (args.clip, args.detector) else (None, None)
    clip = tiny[0] if args.clip == "tiny" else args.clip
    detector = tiny[1] if args.detector == "tiny" else args.detector
    options = DWEPlusTrainingArguments(clip_model=clip, detector=detector, max_crops=args.crops)
    extractor, info = load_encoders(options, device)
    images = _random_images(args.images)
    names = [f"mention {index}" for index in range(args.images)]
    run = [extractor, info, names, [f"{name} in a sentence." for name in names], images, ["an entity"],
           str(work / "cache"), Accelerator(cpu=device.type == "cpu"), EncodingSettings(batch_size=32, num_workers=0)]
    seconds = []
    for _ in ("cold", "warm"):
        start = time.perf_counter()
        features = extract_features(*run).mentions
        seconds.append(time.perf_counter() - start)
    with_crops = int((features.crops.abs().sum(dim=(1, 2)) > 0).sum())
    print(f"\nExtraction ({Path(clip).name} + {Path(detector).name}, {device}, {args.images} images, "
          f"{with_crops} with a person crop)")  # fmt: skip
    print("| cache | images / s |")
    print("|:---|---:|")
    print(f"| cold (detect, crop, encode) | {args.images / seconds[0]:,.1f} |")
    print(f"| warm (every vector cached) | {args.images / seconds[1]:,.1f} |")
    print(f"Warm / cold: {seconds[0] / seconds[1]:,.1f}x")


def main(argv: list[str] | None = None) -> None:
    (args,) = HfArgumentParser(PerfDWEArguments).parse_args_into_dataclasses(args=argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{device}, {torch.get_num_threads()} CPU threads")
    time_head(args, device)
    with tempfile.TemporaryDirectory() as work:
        time_extraction(args, Path(work), device)


if __name__ == "__main__":
    main()
