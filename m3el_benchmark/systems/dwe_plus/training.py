# Copyright 2025 The M3EL authors. Licensed under the Apache License, Version 2.0.
"""Train a DWE+ head on cached frozen features and save it as a benchmark model folder.

    python -m m3el_benchmark.systems.dwe_plus.training --dataset data/wikimel --output_dir outputs/dwe_plus
    python benchmark/run.py --config dwe          # then evaluate it beside CLIP

A small accelerate loop of its own (the CLIP-ND trainer is built around its own model and batches), on the
CLIP-ND trainer's modules: atomic checkpoints and exact resume (`training.checkpointing`), trackers
(`training.tracking`). Defaults are DWE's [paper §5.1.4 and code]: AdamW 5e-5, weight decay 0.001 (not on biases),
linear warm-up over 100 steps then linear decay, gradient norm clipped at 1.0, dropout 0.4, one hard negative.
Unlike the authors, who reported their best dev evaluation, the head kept is the one with the best validation T@1
and figures are meant to be computed on test by the benchmark.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import HfArgumentParser, get_linear_schedule_with_warmup

from m3el_dataset import loading

from ...baselines.base import ModelInfo
from ...baselines.registry import BASELINES, ModelRequest, load_adapter
from ...evaluation.data import load_mentions
from ...evaluation.encoding import EncodingSettings
from ...m3el_accuracy.ranking_metrics import gold_ranks
from ...run_logging import QUIET_HELP, VERBOSE_HELP, main_process_from_environment, run_logging, verbosity_from_flags
from ...training.checkpointing import (
    TrainerState,
    changed_arguments,
    describe_changes,
    resume_state,
    save_checkpoint,
)
from ...training.tracking import trackers
from .configuration import DWEPlusConfig
from .data import NegativeSampler, TrainingExamples, usable_rows
from .detection import PersonDetector
from .extraction import extract_features
from .features import DWEPlusFeatureExtractor, MentionFeatures
from .modeling import DWEPlusHead

logger = logging.getLogger(__name__)


@dataclass
class DWEPlusTrainingArguments:
    """What to train on and how; every model option is a `DWEPlusConfig` field (see its provenance notes)."""

    dataset: str = field(default="sample", metadata={"help": "Exported folder, raw release, Hub id or 'sample'."})
    output_dir: str = field(default="outputs/dwe_plus", metadata={"help": "The saved DWE+ folder."})
    clip_model: str = field(default=BASELINES["CLIP"], metadata={"help": "Frozen CLIP [DWE: OpenAI ViT-B/32]."})
    detector: str = field(default="google/owlvit-base-patch32", metadata={"help": "Person detector (OWL-ViT/DETR)."})
    detector_threshold: float = field(default=0.5, metadata={"help": "Minimal person score [proposal: 0.5]."})
    max_crops: int = field(default=8, metadata={"help": "Persons kept per image, best first [ours; DWE: all]."})
    train_split: str = field(default="train")
    validation_split: str = field(default="validation", metadata={"help": "Split that picks the kept head."})
    negatives: str = field(default="candidates", metadata={"help": "Hard negatives: candidates or tfidf."})
    num_negatives: int = field(default=1, metadata={"help": "Hard negatives per mention [code: 1]."})
    fusion: str = field(default="concat", metadata={"help": "concat [code 0af9140] or sum [paper Eq. 8]; the paper's "
                        "gated Eq. 9 and its face/identity units need features with no Hub equivalent (not offered)."})
    key_padding_mask: bool = field(default=False, metadata={"help": "Mask padded crops [ours; code: no mask]."})
    coarse_loss_weight: float = field(default=1.0, metadata={"help": "Contrastive (v', t') [code 0af9140: 1]."})
    fine_loss_weight: float = field(default=0.0, metadata={"help": "Contrastive (m', m_d) [code 1957100: 1]."})
    ranking_loss_weight: float = field(default=1.0, metadata={"help": "N-pair loss [code 0af9140: 1; paper: 10]."})
    contrastive_loss: str = field(default="clip", metadata={"help": "clip [code] or msc [paper §4.5]."})
    dropout: float = field(default=0.4)
    learning_rate: float = field(default=5e-5)
    weight_decay: float = field(default=0.001)
    warmup_steps: int = field(default=100)
    max_grad_norm: float = field(default=1.0)
    batch_size: int = field(default=64, metadata={"help": "Paper: 64 (code: 128 WikiMEL, 32 Richpedia)."})
    num_train_epochs: int = field(default=300)
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many steps (-1: the epochs decide)."})
    eval_steps: int = field(default=500, metadata={"help": "Validate (and checkpoint) every this many steps."})
    checkpoints_total_limit: int = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    resume: bool = field(default=False, metadata={"help": "Continue from the latest checkpoint of output_dir."})
    report_to: str = field(default="none", metadata={"help": "none, auto, tensorboard, wandb, ..."})
    cache_dir: str | None = field(default=None, metadata={"help": "Embedding cache (default: no cache)."})
    model_cache_dir: str | None = field(default=None, metadata={"help": "Hugging Face Hub cache for the models."})
    seed: int = field(default=114514, metadata={"help": "DWE's seed."})
    verbose: bool = field(default=False, metadata={"aliases": ["-v"], "help": VERBOSE_HELP})
    quiet: bool = field(default=False, metadata={"aliases": ["-q"], "help": QUIET_HELP})

    def head_config(self, feature_dim: int, clip_revision: str) -> DWEPlusConfig:
        """The `DWEPlusConfig` these arguments describe, on features of width ``feature_dim``."""
        return DWEPlusConfig(
            clip_model=self.clip_model, clip_revision=clip_revision, detector=self.detector,
            detector_threshold=self.detector_threshold, max_crops=self.max_crops, feature_dim=feature_dim,
            hidden_size=min(feature_dim, 512), dropout=self.dropout, fusion=self.fusion,
            key_padding_mask=self.key_padding_mask, coarse_loss_weight=self.coarse_loss_weight,
            fine_loss_weight=self.fine_loss_weight, ranking_loss_weight=self.ranking_loss_weight,
            contrastive_loss=self.contrastive_loss,
            num_attention_heads=8 if feature_dim % 8 == 0 else 1,
        )  # fmt: skip


def split_examples(args, extractor, detector_info: ModelInfo, path: str, split: str, accelerator) -> TrainingExamples:
    """Features of the usable mentions of ``split`` (see `data.usable_rows`) and of their candidates' texts."""
    mentions = load_mentions(path, [split], None, ["M-S"])
    rows = usable_rows(mentions, split)
    if not rows:
        raise ValueError(f"No usable mention in split {split!r} of {path} (see the warning above).")
    texts = mentions.inputs.texts
    entity_keys = sorted({key for row in rows for key in mentions.candidate_texts[row]})
    entity_row = {key: index for index, key in enumerate(entity_keys)}
    parts = [mentions.mention_parts[row] for row in rows]
    extracted = extract_features(
        extractor, detector_info, [part["M"] for part in parts], [part.get("S") or "" for part in parts],
        [mentions.inputs.images[mentions.mention_images[row]] for row in rows], [texts[key] for key in entity_keys],
        args.cache_dir, accelerator, EncodingSettings(batch_size=args.batch_size, num_workers=0),
    )  # fmt: skip
    candidates = [[entity_row[key] for key in mentions.candidate_texts[row]] for row in rows]
    gold = torch.tensor([candidates[index][mentions.gold[row]] for index, row in enumerate(rows)])
    entity_texts = [texts[key] for key in entity_keys]
    return TrainingExamples(extracted.mentions, extracted.entities, gold, candidates, entity_texts)


def _features(features: MentionFeatures, rows: torch.Tensor, device) -> list[torch.Tensor]:
    return [getattr(features, name)[rows].to(device) for name in ("mention", "text", "image", "crops", "crop_mask")]


@torch.no_grad()
def validation_accuracy(head: DWEPlusHead, examples: TrainingExamples, device, batch_size: int = 256) -> float:
    """T@1 (pessimistic ties) of ``examples`` among their own candidates, by cosine of g and the entity features;
    when every mention lists its gold alone (a converted peer), among every entity of the split instead (DWE's
    gold-entity KB), since ranking one candidate would always give 1."""
    head.eval()
    entities = torch.nn.functional.normalize(examples.entities, dim=-1).to(device)
    lists = examples.candidates
    if all(len(row) < 2 for row in lists):
        lists = [list(range(len(examples.entities)))] * len(examples)
    width = max(len(row) for row in lists)
    ranks = []
    for start in range(0, len(examples), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(examples)))
        g = torch.nn.functional.normalize(head(*_features(examples.features, rows, device)).mention_embeds, dim=-1)
        index = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        gold = []
        for i, row in enumerate(rows.tolist()):
            candidates = lists[row]
            index[i, : len(candidates)], mask[i, : len(candidates)] = torch.tensor(candidates), True
            gold.append(candidates.index(int(examples.gold[row])))
        scores = torch.einsum("bd,bkd->bk", g, entities[index.to(device)]).float().cpu()
        ranks.append(torch.from_numpy(gold_ranks(scores, torch.tensor(gold), mask=mask)))
    head.train()
    return float((torch.cat(ranks) == 1).float().mean())


def _optimizer(head: DWEPlusHead, args: DWEPlusTrainingArguments) -> torch.optim.AdamW:
    """AdamW without decay on biases [code: its LayerNorm exclusion matched no name, so LayerNorm is decayed]."""
    decay = [p for name, p in head.named_parameters() if not name.endswith("bias")]
    no_decay = [p for name, p in head.named_parameters() if name.endswith("bias")]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.learning_rate, eps=1e-8)


def save_dwe_plus(head: DWEPlusHead, extractor: DWEPlusFeatureExtractor, folder: str | Path) -> Path:
    """Write the DWE+ folder the benchmark loads: config, head weights and the CLIP processor."""
    folder = head.save_pretrained(folder)
    extractor.clip.processor.save_pretrained(folder)
    return folder


def load_encoders(args: DWEPlusTrainingArguments, device) -> tuple[DWEPlusFeatureExtractor, ModelInfo]:
    """The frozen CLIP (through the baseline registry) and the person detector, with the detector's `ModelInfo`."""
    from ...baselines.registry import _folder_revision, _hub_revision, hub_cache_dir, is_offline

    clip = load_adapter(ModelRequest("CLIP", args.clip_model), device, torch.float32, args.model_cache_dir)
    hub = {"cache_dir": hub_cache_dir(args.model_cache_dir), "local_files_only": is_offline()}
    detector = PersonDetector.from_pretrained(args.detector, args.detector_threshold, args.max_crops, **hub)
    detector.model.to(device)
    folder = Path(args.detector)
    request = ModelRequest("detector", args.detector)
    revision = _folder_revision(folder) if folder.is_dir() else _hub_revision(request, args.model_cache_dir)
    info = ModelInfo(Path(args.detector).name, args.detector, revision or "unknown", "detector",
                     detector.model.config.model_type, "-", "float32")  # fmt: skip
    return DWEPlusFeatureExtractor(clip, detector), info


def train(args: DWEPlusTrainingArguments) -> Path:
    """Extract features, train the head, keep the best on validation; return the saved folder."""
    # 1. Accelerator, seed, encoders and features (each unique input encoded once, through the cache).
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), log_with=trackers(args.report_to) or None,
                              project_dir=args.output_dir)  # fmt: skip
    set_seed(args.seed)
    extractor, detector_info = load_encoders(args, accelerator.device)
    path = loading.resolve_source(args.dataset, Path(args.output_dir) / "datasets")
    train_set = split_examples(args, extractor, detector_info, path, args.train_split, accelerator)
    validation = split_examples(args, extractor, detector_info, path, args.validation_split, accelerator)
    sampler = NegativeSampler(args.negatives, train_set, train_set.entity_texts)

    # 2. Head, optimizer, schedule; resume exactly where a checkpoint left off.
    head = DWEPlusHead(args.head_config(train_set.entities.shape[-1], extractor.clip.info.revision))
    steps_per_epoch = -(-len(train_set) // args.batch_size)
    total = args.max_steps if args.max_steps > 0 else steps_per_epoch * args.num_train_epochs
    optimizer = _optimizer(head, args)
    schedule = get_linear_schedule_with_warmup(optimizer, args.warmup_steps, total)
    head, optimizer, schedule = accelerator.prepare(head, optimizer, schedule)
    state = TrainerState(arguments=asdict(args))
    resumed = resume_state(accelerator, args.output_dir) if args.resume else None
    if resumed:
        state = _resumed_state(*resumed, args)
    if accelerator.log_with:
        accelerator.init_trackers("dwe_plus", config=asdict(args))

    # 3. Train: a seeded permutation per epoch and seeded negatives per step, so a resumed run draws the same.
    entities, device = train_set.entities.to(accelerator.device), accelerator.device
    head.train()
    while state.step < total:
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(args.seed + state.epoch))
        batches = order.split(args.batch_size)
        for rows in batches[state.batches_done_in_epoch :]:
            step_generator = torch.Generator().manual_seed(args.seed * 7 + state.step)
            negatives = sampler.sample(rows, args.num_negatives, step_generator)
            output = head(*_features(train_set.features, rows, device), positives=entities[train_set.gold[rows]],
                          negatives=entities[negatives.to(device)])  # fmt: skip
            accelerator.backward(output.loss)
            accelerator.clip_grad_norm_(head.parameters(), args.max_grad_norm)
            optimizer.step(), schedule.step(), optimizer.zero_grad()
            state.step, state.batches_done_in_epoch = state.step + 1, state.batches_done_in_epoch + 1
            if state.step % args.eval_steps == 0 or state.step == total:
                _validate(head, validation, state, accelerator, extractor, args, output.loss)
            if state.step >= total:
                break
        else:
            state.epoch, state.batches_done_in_epoch = state.epoch + 1, 0
    accelerator.end_training()
    return Path(args.output_dir)


def _resumed_state(state: TrainerState, path: Path, args: DWEPlusTrainingArguments) -> TrainerState:
    """The checkpoint's state, if it was trained with the same arguments (where features are cached aside)."""
    where = {"cache_dir", "model_cache_dir"}
    saved = {key: value for key, value in state.arguments.items() if key not in where}
    changes = changed_arguments(saved, {key: value for key, value in asdict(args).items() if key not in where})
    if changes:
        raise ValueError(f"--resume: {path} was trained with other arguments: {describe_changes(changes)}. Resume "
                         "with the same arguments, or train into a new --output_dir.")  # fmt: skip
    logger.info("DWE+: resumed from %s (step %d)", path, state.step)
    return state


def _validate(head, validation, state, accelerator, extractor, args, loss) -> None:
    """Validation T@1; the best head is saved as the DWE+ folder; a resumable checkpoint is written."""
    accuracy = validation_accuracy(accelerator.unwrap_model(head), validation, accelerator.device)
    state.history.append({"step": state.step, "loss": loss.item(), "validation_top1": accuracy})
    accelerator.log({"train/loss": loss.item(), "validation/top1": accuracy}, step=state.step)
    logger.info("DWE+ step %d: loss %.4f, validation T@1 %.4f", state.step, loss.item(), accuracy)
    if state.best_accuracy is None or accuracy > state.best_accuracy:
        state.best_accuracy = accuracy
        if accelerator.is_main_process:
            save_dwe_plus(accelerator.unwrap_model(head), extractor, args.output_dir)
            history = {"best_step": state.step, "best_validation_top1": accuracy, "arguments": asdict(args)}
            (Path(args.output_dir) / "training_summary.json").write_text(json.dumps(history, indent=1))
    save_checkpoint(accelerator, args.output_dir, state, args.checkpoints_total_limit)


def main(argv: list[str] | None = None) -> Path:
    """Parse ``argv`` (``None``: ``sys.argv``) and train."""
    (args,) = HfArgumentParser(DWEPlusTrainingArguments).parse_args_into_dataclasses(
        args=list(sys.argv[1:] if argv is None else argv)
    )
    with run_logging(verbosity_from_flags(args.verbose, args.quiet), *main_process_from_environment()):
        return train(args)


if __name__ == "__main__":
    main()
