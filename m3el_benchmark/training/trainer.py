"""The CLIP-ND training loop (accelerate): modality-augmented contrastive training as in the M3EL paper."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from transformers import get_scheduler

from modeling_clip_nd import CLIPNDConfig

from ..model_card import TrainingOutcome, build_training_card
from ..run_logging import progress_bar
from .arguments import PUBLISHING_ARGUMENTS, DataArguments, ModelArguments, TrainingArguments
from .checkpointing import (
    TrainerState,
    changed_arguments,
    describe_changes,
    resume_state,
    save_checkpoint,
)
from .data import check_trainable, open_training_split
from .divergence import StepChecks, check_parameters_finite
from .hub_upload import HubPublisher
from .initialization import apply_lora, build_model, parameter_groups
from .loaders import build_loaders, may_miss_images, needs_unused_parameters
from .lora_adapter import BASE_DIR, model_folder, save_adapter_with_base
from .loss import ContrastiveTrainingModule, GatheredContrastiveLoss
from .run_folder import RunFolderLock, claim_checkpoints
from .tracking import trackers
from .validation import evaluate_accuracy

logger = logging.getLogger(__name__)

NUM_HARD_NEGATIVES = 2  # M3EL has 3 candidates per mention: the gold and (at most) 2 others
TRAIN_LOG_FILE = "train_log.jsonl"
"""One JSON line per logged step (loss, learning rate, temperature, samples/s), appended across resumes."""


@dataclass
class TrainResult:
    """What a training run produced: the saved model folder, the step whose weights it holds (``kept_step``: the
    last, or the best validation epoch's with ``--load_best_model_at_end``) and their validation ACC (``None`` if
    they were not validated), the steps trained and every validation."""

    output_dir: Path
    validation_accuracy: float | None
    steps: int
    undecodable_images: int
    history: list[dict] = field(default_factory=list)
    kept_step: int | None = None


class CLIPNDTrainer:
    """Trains a CLIP-ND model under `accelerate` (one GPU to many nodes, or CPU processes).

    Build it with the three argument dataclasses, then call `train`. Set-up follows accelerate's examples: data,
    model, optimizer, `prepare`; `train` resumes from the last complete checkpoint when asked. ``hub`` (the main
    process's, with ``--push_to_hub``) receives each checkpoint; the caller pushes the model at the end.
    """

    def __init__(self, model_args: ModelArguments, data_args: DataArguments, args: TrainingArguments,
                 hub: HubPublisher | None = None):  # fmt: skip
        self.model_args, self.data_args, self.args, self.hub = model_args, data_args, args, hub
        self.output_dir = Path(args.output_dir)
        self.accelerator = Accelerator(
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            mixed_precision=args.mixed_precision,
            log_with=trackers(args.report_to) or None,
            project_dir=str(self.output_dir),
        )
        set_seed(args.seed)
        self.changed_arguments: dict[str, tuple] = {}  # set by a resume with --allow_changed_arguments
        self.lock = RunFolderLock(self.output_dir)
        if self.accelerator.is_main_process:
            self.lock.acquire()
        try:
            self._set_up()
        except BaseException:
            self.lock.release()
            raise

    def _set_up(self) -> None:
        model_args, data_args, args = self.model_args, self.data_args, self.args
        if self.accelerator.is_main_process:
            claim_checkpoints(self.output_dir, resume=args.resume, overwrite=args.overwrite_output_dir)
        self._check_negatives()
        with self.accelerator.main_process_first():  # the main process may export a raw release and build the cache
            train_rows = open_training_split(data_args, data_args.train_split)
            validation_rows = None
            if data_args.validation_split:
                validation_rows = open_training_split(data_args, data_args.validation_split)
        check_trainable(data_args.dataset, train_rows.column_names, data_args.tasks, data_args.text_format)
        self.model, self.processor = build_model(model_args, train_rows)
        if args.gradient_checkpointing:
            getattr(self.model, "activation_checkpointing_enable", self.model.gradient_checkpointing_enable)()
        if args.lora_r:
            self.model = apply_lora(self.model, args)
        self.num_slots = NUM_HARD_NEGATIVES if data_args.hard_negatives else 0
        # DDP looks for parameters without a gradient (a graph traversal per step) only when a step can leave a
        # tower out: a task without text or without images, or a batch whose images may all be missing.
        unused = needs_unused_parameters(data_args.tasks, may_miss_images(train_rows, data_args.tasks))
        self.accelerator.ddp_handler = DistributedDataParallelKwargs(find_unused_parameters=unused)
        self._build_loaders(train_rows, validation_rows)
        self._prepare_optimization()
        self.loss_fn = GatheredContrastiveLoss(gather=args.gather_features)
        self.state = TrainerState(arguments=self._flat_arguments())
        self.step_checks = StepChecks()
        # Undecodable images, truncated texts and batches without a usable pair, added up on the device; read at
        # each check (the first goes to the state, which checkpoints save).
        self.device_counts = torch.zeros(3, dtype=torch.long, device=self.accelerator.device)
        self.run_counts = [0, 0]
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def _check_negatives(self) -> None:
        """A contrastive loss needs at least one negative per mention: another pair of the batch or a candidate."""
        pairs = self.args.per_device_train_batch_size
        if self.args.gather_features:
            pairs *= self.accelerator.num_processes
        if pairs < 2 and not self.data_args.hard_negatives:
            raise ValueError(
                f"Each mention would have no negative: the batch holds {pairs} pair(s) and hard negatives are off. "
                "Raise --per_device_train_batch_size, or turn --hard_negatives on."
            )

    def _build_loaders(self, train_rows, validation_rows) -> None:
        fallback = self.model.config.missing_image_fallback
        loaders = build_loaders(train_rows, validation_rows, self.processor, fallback, self.data_args, self.args,
                                self.num_slots)  # fmt: skip
        self.train_pairs, self.sampler, self.train_loader = loaders.pairs, loaders.sampler, loaders.train
        self.validation_loader, self.eval_slots = loaders.validation, loaders.eval_slots

    def _prepare_optimization(self) -> None:
        args = self.args
        module = ContrastiveTrainingModule(self.model, self.num_slots)
        if args.torch_compile:
            module = torch.compile(module)
        optimizer = torch.optim.AdamW(
            parameter_groups(self.model, args.weight_decay),
            lr=args.learning_rate,
            betas=(args.adam_beta1, args.adam_beta2),
            eps=args.adam_epsilon,
        )
        batches = math.ceil(len(self.train_loader) / self.accelerator.num_processes)
        self.steps_per_epoch = max(1, math.ceil(batches / args.gradient_accumulation_steps))
        self.total_steps = args.max_steps if args.max_steps > 0 else args.num_train_epochs * self.steps_per_epoch
        scheduler = get_scheduler(
            args.lr_scheduler_type, optimizer, num_warmup_steps=args.warmup_steps, num_training_steps=self.total_steps
        )
        self.module, self.optimizer, self.train_loader, self.scheduler = self.accelerator.prepare(
            module, optimizer, self.train_loader, scheduler
        )
        if self.validation_loader is not None:
            self.validation_loader = self.accelerator.prepare(self.validation_loader)

    # ----------------------------------------------------------------------------------------------- training
    def train(self) -> TrainResult:
        """Run until ``max_steps`` or the last epoch (or early stopping); save the last model (or, with
        ``--load_best_model_at_end``, keep the best validation one) and return its folder."""
        if self.args.load_best_model_at_end and self.validation_loader is None:
            self._finish()
            raise ValueError(
                "--load_best_model_at_end keeps the weights of the best validation ACC, but there is no validation "
                f"split (--validation_split {self.data_args.validation_split!r} is empty or has no mention); give "
                "one, or drop the flag to save the last weights."
            )
        try:
            if self.args.resume:
                self._resume()
            self.accelerator.init_trackers("clip_nd", config=self._flat_arguments())
            progress = progress_bar(total=self.total_steps, initial=self.state.step, desc="Training CLIP-ND",
                                    disable=not self.accelerator.is_local_main_process)  # fmt: skip
            self._last_log = (time.perf_counter(), self.state.step)
            stop = False
            while self.state.step < self.total_steps and not stop:
                epoch_finished = self._train_epoch(progress)
                if epoch_finished or self.state.step >= self.total_steps:
                    stop = self._end_of_epoch()
            progress.close()
            self._check_steps()
            if self.args.load_best_model_at_end:
                self._record_final_outcome()  # the best weights were saved when reached
            else:
                self._save_model()
        finally:  # a failed or interrupted run frees its folder too
            self._finish()
        totals = torch.tensor([self.state.undecodable_images, *self.run_counts], device=self.accelerator.device)
        undecodable, truncated, pairless = self.accelerator.reduce(totals, reduction="sum").tolist()
        if undecodable:
            logger.warning("%d images failed to decode during training; they counted as missing.", undecodable)
        if truncated:
            logger.warning("%d training texts (mentions and entities, counted each time one was drawn) were longer "
                           "than the model's context and were cut at the end.", truncated)  # fmt: skip
        if pairless:
            logger.warning("%d batches (per process) had no mention-entity pair with both sides present (missing "
                           "images); their own pairs added nothing to the loss.", pairless)  # fmt: skip
        outcome = self._outcome()
        kept = outcome.kept_validation()
        return TrainResult(self.output_dir, kept["accuracy"] if kept else None, self.state.step, undecodable,
                           self.state.history, kept_step=outcome.kept_step)  # fmt: skip

    def _train_epoch(self, progress) -> bool:
        """Train on the rest of the current epoch; return whether it was finished (not cut by ``max_steps``)."""
        # Each process batch takes num_processes batches of the sampler (one per process).
        done = self.state.batches_done_in_epoch * self.args.per_device_train_batch_size
        self.sampler.use_epoch(self.state.epoch, skip=done * self.accelerator.num_processes)
        self.train_pairs.use_epoch(self.state.epoch)
        for batch in self.train_loader:
            loss = self._train_step(batch)
            self.state.batches_done_in_epoch += 1
            self.device_counts[:2] += torch.stack([batch["undecodable_images"], batch["truncated_texts"]])
            if not self.accelerator.sync_gradients:
                continue
            self.state.step += 1
            progress.update(1)
            self._log(loss)
            if self.args.checkpointing_steps and self.state.step % self.args.checkpointing_steps == 0:
                self._check_steps()
                self._check_parameters_finite()
                limit = self.args.checkpoints_total_limit
                saved = save_checkpoint(self.accelerator, self.output_dir, self.state, limit)
                if self.hub is not None:
                    self.hub.push_checkpoint(saved)
            if self.state.step >= self.total_steps:
                return False
        return True

    def _train_step(self, batch: dict) -> torch.Tensor:
        with self.accelerator.accumulate(self.module):
            mentions, entities, negatives, logit_scale = self.module(batch)
            ids = {"entity_ids": batch["entity_ids"], "negative_ids": batch.get("negative_ids")}
            loss = self.loss_fn(mentions, entities, logit_scale, negatives, **ids)
            sides = [side for side in (mentions, entities, negatives) if side is not None]
            bad_embeddings = torch.stack([side.non_finite() for side in sides]).any()
            self.device_counts[2] += ~(mentions.usable() & entities.usable()).any()
            self.step_checks.record(loss, bad_embeddings, self.state, batch["ids"])
            self.accelerator.backward(loss)
            if self.accelerator.sync_gradients and self.args.max_grad_norm > 0:
                self.accelerator.clip_grad_norm_(self.module.parameters(), self.args.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
        return loss.detach()

    def _check_steps(self) -> None:
        """Read what the device accumulated since the last check (every process at once): stop if a step was not
        finite, and move the batches' counts to the state (which a checkpoint saves)."""
        self.step_checks.check(self.accelerator, self.state, self.output_dir)
        undecodable, *counts = self.device_counts.tolist()
        self.device_counts.zero_()
        self.state.undecodable_images += undecodable
        self.run_counts = [total + count for total, count in zip(self.run_counts, counts, strict=True)]

    def _check_parameters_finite(self) -> None:
        model = self.accelerator.unwrap_model(self.module).model
        check_parameters_finite(model, self.state.step, self.output_dir)

    def _finish(self) -> None:
        """End the trackers and free the output folder. The process group stays: it belongs to the process (a
        benchmark run keeps using it after training), and ends with it."""
        for tracker in self.accelerator.trackers:
            tracker.finish()
        self.accelerator.trackers.clear()
        self.lock.release()

    def _log(self, loss: torch.Tensor) -> None:
        if self.state.step % max(self.args.logging_steps, 1) and self.state.step != self.total_steps:
            return
        self._check_steps()
        loss = float(self.accelerator.reduce(loss, reduction="mean"))
        now, (since, last_step) = time.perf_counter(), self._last_log
        samples = (self.state.step - last_step) * self.args.per_device_train_batch_size
        samples *= self.accelerator.num_processes * self.args.gradient_accumulation_steps
        logit_scale = self.accelerator.unwrap_model(self.module).model.get_logit_scale().item()
        figures = {
            "train/loss": loss,
            "train/learning_rate": self.scheduler.get_last_lr()[0],
            "train/temperature": 1.0 / logit_scale,
            "train/samples_per_second": samples / max(now - since, 1e-9),
        }
        self._last_log = (now, self.state.step)
        self.accelerator.log(figures, step=self.state.step)
        if self.accelerator.is_main_process:
            with open(self.output_dir / TRAIN_LOG_FILE, "a", encoding="utf-8") as log_file:
                log_file.write(json.dumps({"step": self.state.step, **figures}) + "\n")
            logger.info("step %d: " + ", ".join(f"{k.split('/')[1]} %.4g" for k in figures), self.state.step,
                        *figures.values())  # fmt: skip

    def _end_of_epoch(self) -> bool:
        """Validate (saving the model if it is the best so far and ``--load_best_model_at_end`` asks to keep the
        best), move to the next epoch; return whether early stopping says stop."""
        self._check_steps()
        finished_epoch = self.state.epoch
        self.state.epoch += 1
        self.state.batches_done_in_epoch = 0
        if self.validation_loader is None:
            return False
        model = self.accelerator.unwrap_model(self.module).model
        metrics = evaluate_accuracy(self.accelerator, model, self.validation_loader, self.eval_slots)
        record = {"epoch": finished_epoch, "step": self.state.step, "accuracy": metrics["accuracy"],
                  "mrr": metrics["mrr"]}  # fmt: skip
        self.state.history.append(record)
        self.accelerator.log({"validation/accuracy": metrics["accuracy"], "validation/mrr": metrics["mrr"]},
                             step=self.state.step)  # fmt: skip
        if self.accelerator.is_main_process:
            logger.info("epoch %d: validation ACC %.4f, MRR %.4f", finished_epoch, metrics["accuracy"], metrics["mrr"])
        if self.state.best_accuracy is None or metrics["accuracy"] > self.state.best_accuracy:
            self.state.best_accuracy = metrics["accuracy"]
            self.state.epochs_without_improvement = 0
            if self.args.load_best_model_at_end:
                self._save_model()
            return False
        self.state.epochs_without_improvement += 1
        patience = self.args.early_stopping_patience
        return bool(patience) and self.state.epochs_without_improvement >= patience

    # ------------------------------------------------------------------------------------------------ saving
    def _resume(self) -> None:
        """Continue from the newest loadable checkpoint, if the arguments that shape the results are those it ran."""
        found = resume_state(self.accelerator, self.output_dir)
        if found is None:
            logger.warning("--resume: no complete checkpoint in %s; starting from step 0.", self.output_dir)
            return
        state, path = found
        self.changed_arguments = changed_arguments(state.arguments, self.state.arguments)
        if self.changed_arguments and not self.args.allow_changed_arguments:
            raise ValueError(
                f"--resume: {path} was trained with other arguments: {describe_changes(self.changed_arguments)}. "
                "Resume with the same arguments, or pass --allow_changed_arguments to continue anyway (the saved "
                "config and card then record the earlier values)."
            )
        self.state = replace(state, arguments=self.state.arguments)
        logger.info("Resumed from %s (step %d, epoch %d)", path, self.state.step, self.state.epoch)

    def _flat_arguments(self) -> dict:
        flat = {}
        for group in (self.model_args, self.data_args, self.args):
            flat.update({k: v for k, v in asdict(group).items()
                         if isinstance(v, (int, float, str, bool)) and k not in PUBLISHING_ARGUMENTS})  # fmt: skip
        flat["mixed_precision"] = self.accelerator.mixed_precision  # the launcher's choice when the flag is unset
        return flat

    def _exportable_model(self):
        model = self.accelerator.unwrap_model(self.module).model
        if self.args.lora_r and self.args.save_merged:
            return copy.deepcopy(model).merge_and_unload()
        return model

    def _outcome(self) -> TrainingOutcome:
        """What the run has kept so far: the best validation epoch's step with ``--load_best_model_at_end`` (the
        first to reach the best ACC, as `_end_of_epoch` saves only on a strict improvement), else the last step."""
        kept_step = self.state.step
        if self.args.load_best_model_at_end and self.state.history:
            kept_step = max(self.state.history, key=lambda record: record["accuracy"])["step"]  # first of the best
        setting = f"{self.data_args.tasks[0]} ({self.data_args.text_format})"  # what `evaluate_accuracy` measures
        return TrainingOutcome(self.state.step, kept_step, setting, [dict(record) for record in self.state.history])

    def _recorded_arguments(self) -> dict:
        """What ran (not the defaults) and what was kept: saved in the model's config, shown on its card."""
        recorded = {**self._flat_arguments(), "num_processes": self.accelerator.num_processes}
        recorded.update(self._outcome().record())
        if self.changed_arguments:  # what the resumed checkpoint was trained with, before the change
            recorded["changed_on_resume"] = {name: old for name, (old, _) in self.changed_arguments.items()}
        return recorded

    def _publish(self, staging: Path) -> None:
        """Move the files of ``staging`` into ``output_dir``, each replaced atomically."""
        for path in staging.iterdir():
            if path.is_dir():  # a LoRA run's base/: a folder replaces the earlier one whole
                shutil.rmtree(self.output_dir / path.name, ignore_errors=True)
            os.replace(path, self.output_dir / path.name)
        staging.rmdir()

    def _save_model(self) -> None:
        """Write the model (merged or adapter with LoRA), its processor and card to ``output_dir``, atomically."""
        self._check_steps()
        self._check_parameters_finite()
        if self.accelerator.is_main_process:
            model = self._exportable_model()  # a merged LoRA model is a copy: make it where it is saved
            model.config.training_arguments = self._recorded_arguments()
            staging = self.output_dir / ".staging-model"
            shutil.rmtree(staging, ignore_errors=True)
            if self.args.lora_r and not self.args.save_merged:  # the adapter, and its base in base/ which it names
                base = (self.output_dir / BASE_DIR).resolve()
                save_adapter_with_base(model, staging, build_training_card(model.config), self.processor, base)
            else:
                model.save_pretrained(staging, model_card=build_training_card(model.config))
            self.processor.save_pretrained(staging)
            self._publish(staging)
        self.accelerator.wait_for_everyone()

    def _record_final_outcome(self) -> None:
        """With ``--load_best_model_at_end`` the best weights were saved when they were reached; now that training
        is over, rewrite their config and card with the whole run (steps trained, every validation)."""
        if self.accelerator.is_main_process:
            folder = model_folder(self.output_dir)  # a LoRA adapter's base/ records the run; its weights stay
            config = CLIPNDConfig.from_pretrained(folder)
            config.training_arguments = self._recorded_arguments()
            staging = self.output_dir / ".staging-model"
            shutil.rmtree(staging, ignore_errors=True)
            config.save_pretrained(staging if folder == self.output_dir else folder)
            staging.mkdir(exist_ok=True)
            build_training_card(config).save(staging / "README.md")
            self._publish(staging)
        self.accelerator.wait_for_everyone()
