"""The training arguments, as dataclasses that `HfArgumentParser` reads from the command line or a YAML/JSON file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from m3el_benchmark.run_logging import QUIET_HELP, VERBOSE_HELP, verbosity_from_flags
from m3el_dataset.constants import TASKS, TEXT_FORMATS, TaskSpec, check_text_format, parse_task


def default_num_workers() -> int:
    """DataLoader workers by default: JPEG decoding and tokenization off the training process, on up to 4 CPUs."""
    return min(4, os.cpu_count() or 1)


TINY_INIT = "tiny"
"""``--init tiny``: a small CLIP-ND built from scratch, with a tokenizer trained on the training texts."""

HUB_STRATEGIES = ("end", "checkpoint")
"""``--hub_strategy`` values, transformers' meanings: the model at the end; also each checkpoint as it is saved."""

PUBLISHING_ARGUMENTS = frozenset({"push_to_hub", "hub_model_id", "hub_strategy", "hub_token", "hub_private_repo"})
"""Where a model is published, not how it was trained: never recorded in its config or card (a token is a secret)."""


@dataclass
class ModelArguments:
    """Which model to start from."""

    init: str = field(
        default="openai/clip-vit-base-patch32",
        metadata={"help": "A CLIP or CLIP-ND checkpoint (Hub id or folder), or 'tiny' (a small model from scratch)."},
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision of --init."})
    tiny_hidden_size: int = field(default=64, metadata={"help": "Width of both towers with --init tiny."})
    tiny_layers: int = field(default=2, metadata={"help": "Layers of both towers with --init tiny."})
    tiny_image_size: int = field(default=32, metadata={"help": "Image side with --init tiny."})
    tiny_patch_size: int = field(default=8, metadata={"help": "Patch side with --init tiny."})
    tiny_vocab_size: int = field(default=2000, metadata={"help": "BPE vocabulary trained with --init tiny."})


@dataclass
class DataArguments:
    """What a training pair is (the paper's modality-augmented training)."""

    dataset: str = field(
        default="sample",
        metadata={"help": "An exported M3EL folder, a Hub dataset id, a raw release folder, or 'sample' (bundled)."},
    )
    dataset_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Where a raw release (or 'sample') is exported once (default: $HF_HOME/m3el/datasets)."},
    )
    task: str = field(
        default="ITm-ITe",
        metadata={
            "help": f"Modality task, or several joined by ',' to mix them: {', '.join(TASKS)}. The default ITm-ITe "
            "trains both towers and the fusion (Tm-Te would train the text tower only)."
        },
    )
    text_format: str = field(default="M-S1", metadata={"help": f"Mention text format: {', '.join(TEXT_FORMATS)}."})
    train_split: str = field(
        default="train", metadata={"help": "Split to train on (a learning split or a topic split)."}
    )
    validation_split: str = field(default="validation", metadata={"help": "Split of the per-epoch ACC; '' for none."})
    name_drop_prob: float = field(
        default=0.0, metadata={"help": "aug_T: probability of dropping the entity name (1.0 = 'w/o T_name')."}
    )
    description_drop_prob: float = field(
        default=0.0,
        metadata={"help": "aug_T: probability of dropping the description (1.0 = 'w/o T_description', plain CLIP)."},
    )
    image_augmentation: bool = field(
        default=True,
        metadata={"help": "aug_I as CLIP trained: a random square crop of side the image's shorter side, only."},
    )
    image_flip_and_jitter: bool = field(
        default=False,
        metadata={"help": "Also random horizontal flips and brightness/contrast jitter (+-10 pct); not the paper's."},
    )
    hard_negatives: bool = field(
        default=False,
        metadata={
            "help": "Also use each mention's non-gold candidates as negatives of every mention of the batch. Off by "
            "default: the paper's loss (Eq. 2) has in-batch negatives only."
        },
    )
    keep_mention: bool = field(default=True, metadata={"help": "Shorten the sentence before cutting the mention."})
    dataloader_num_workers: int = field(
        default_factory=default_num_workers,
        metadata={"help": "DataLoader processes decoding images, augmenting and tokenizing, beside training (default: "
                          "min(4, CPU count); 0: in the training process). They persist across epochs."},
    )

    @property
    def tasks(self) -> list[TaskSpec]:
        """The ``--task`` names, parsed (each once: `parse_task` is cached)."""
        return [parse_task(task.strip()) for task in self.task.split(",") if task.strip()]

    def __post_init__(self):
        if self.image_flip_and_jitter and not self.image_augmentation:
            raise ValueError(
                "--image_flip_and_jitter adds to the random crop of --image_augmentation, which is off; turn "
                "--image_augmentation on, or --image_flip_and_jitter off."
            )
        if not self.task.replace(",", "").strip():
            raise ValueError(f"--task is empty; choose one or more of {', '.join(TASKS)}.")
        self.tasks  # noqa: B018 - parses every name: an unknown task is refused here, naming the valid ones
        check_text_format(self.text_format)
        for name in ("name_drop_prob", "description_drop_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--{name} must be a probability in [0, 1], got {getattr(self, name)}.")


@dataclass
class TrainingArguments:
    """Optimisation, checkpoints and logging.

    Defaults are the paper's recipe ("Implementation Details"): AdamW, learning rate 1e-5, betas (0.9, 0.98), eps
    1e-6, weight decay 0.001, a batch of 256 on one GPU, 35 epochs. Like transformers' `Trainer`, the model saved at
    the end is the last one; ``load_best_model_at_end`` keeps the one of the best validation ACC instead.
    """

    output_dir: str = field(default="outputs/clip_nd", metadata={"help": "Where checkpoints and the model go."})
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak AdamW learning rate (the paper's 1e-5)."})
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW beta1 (the paper's 0.9)."})
    adam_beta2: float = field(
        default=0.98, metadata={"help": "AdamW beta2 (the paper's 0.98, CLIP's choice for contrastive training)."}
    )
    adam_epsilon: float = field(default=1e-6, metadata={"help": "AdamW epsilon (the paper's 1e-6)."})
    weight_decay: float = field(default=0.001, metadata={"help": "Not applied to biases, norms and the temperature."})
    per_device_train_batch_size: int = field(default=256, metadata={"help": "The paper's batch of 256 on one GPU."})
    per_device_eval_batch_size: int = field(
        default=256, metadata={"help": "Mentions per validation batch on each process."}
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Batches whose gradients are summed before each optimizer step."}
    )
    num_train_epochs: int = field(
        default=35, metadata={"help": "Epochs over the training split (the paper's 35); --max_steps > 0 overrides it."}
    )
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many steps (> 0 overrides epochs)."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "'constant' (paper) or 'cosine'."})
    warmup_steps: int = field(
        default=0, metadata={"help": "Linear warm-up steps of the learning rate (the paper: none)."}
    )
    max_grad_norm: float = field(
        default=0.0, metadata={"help": "Clip the gradient norm at this value (0: no clipping, as the paper)."}
    )
    gather_features: bool = field(
        default=True,
        metadata={
            "help": "Negatives from the whole global batch, gathered across processes with their gradients (on by "
            "default: N processes then train exactly like one process with their global batch, as the paper's one "
            "GPU did); off: each process's own batch only (cheaper, fewer negatives). No effect on one process."
        },
    )
    mixed_precision: str | None = field(
        default=None,
        metadata={"help": "'no', 'bf16' or 'fp16'; unset: what `accelerate launch` or its config chose, else 'no'."},
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in the backward pass: less memory, slower steps."}
    )
    torch_compile: bool = field(default=False, metadata={"help": "Compile the training step with torch.compile."})
    seed: int = field(
        default=42, metadata={"help": "Seed of the weights' initialisation, the data order and the augmentations."}
    )
    logging_steps: int = field(
        default=10,
        metadata={"help": "Log loss, learning rate, temperature and samples/s every N steps; the steps' losses and "
                          "embeddings are checked for NaN/inf at the same interval (and before each save)."},
    )
    checkpointing_steps: int = field(default=0, metadata={"help": "Resumable checkpoint every N steps (0: off)."})
    checkpoints_total_limit: int = field(default=2, metadata={"help": "Complete checkpoints kept on disk."})
    resume: bool = field(default=False, metadata={"help": "Continue from the last complete checkpoint."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Delete an earlier run's checkpoints in --output_dir instead of refusing."}
    )
    allow_changed_arguments: bool = field(
        default=False,
        metadata={"help": "With --resume: continue although arguments that shape the results differ from the run's."},
    )
    early_stopping_patience: int = field(default=0, metadata={"help": "Epochs without a better val. ACC (0: off)."})
    load_best_model_at_end: bool = field(
        default=False,
        metadata={
            "help": "Save the weights of the best validation ACC (the first epoch reaching it) instead of the last "
            "ones; the model card then names the step kept. Needs a validation split."
        },
    )
    lora_r: int = field(default=0, metadata={"help": "Train a LoRA adapter of this rank instead of the whole model."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha (with --lora_r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA branches (with --lora_r)."})
    save_merged: bool = field(default=True, metadata={"help": "With LoRA: save the merged CLIP-ND, else the adapter."})
    report_to: str = field(
        default="auto",
        metadata={"help": "'none', 'auto' (tensorboard if installed) or trackers joined by ',': tensorboard, wandb, "
                          "mlflow, comet_ml, aim, clearml, dvclive, swanlab, trackio (a missing one is an error)."},
    )
    verbose: bool = field(default=False, metadata={"aliases": ["-v"], "help": VERBOSE_HELP})
    quiet: bool = field(default=False, metadata={"aliases": ["-q"], "help": QUIET_HELP})

    push_to_hub: bool = field(
        default=False,
        metadata={"help": "At the end, upload the model, processor, card and remote code to the Hub (main process)."},
    )
    hub_model_id: str | None = field(
        default=None,
        metadata={"help": "Hub repo to push to, 'name' (your namespace) or 'org/name'; unset: --output_dir's name."},
    )
    hub_strategy: str = field(
        default="end",
        metadata={"help": "'end': push the model at the end; 'checkpoint': also push each resumable checkpoint to "
                          "'last-checkpoint/' of the repo as it is saved."},
    )
    hub_token: str | None = field(
        default=None,
        metadata={"help": "Hub token; unset: $HF_TOKEN or the token of `hf auth login`. Never recorded."},
    )
    hub_private_repo: bool | None = field(
        default=None,
        metadata={"help": "Create the repo private (true) or public (false); unset: the account's or org's default "
                          "visibility. An existing repo keeps its visibility."},
    )

    @property
    def verbosity(self) -> int:
        """The run's logging verbosity (`m3el_benchmark.run_logging`), from ``--verbose``/``--quiet``."""
        return verbosity_from_flags(self.verbose, self.quiet)

    def __post_init__(self):
        self.verbosity  # noqa: B018 - refuses -v with -q
        if self.hub_strategy not in HUB_STRATEGIES:
            raise ValueError(f"--hub_strategy {self.hub_strategy!r}: choose one of {', '.join(HUB_STRATEGIES)}.")
        if self.lr_scheduler_type not in ("constant", "cosine"):
            raise ValueError(f"--lr_scheduler_type {self.lr_scheduler_type!r}: choose 'constant' or 'cosine'.")
        if self.mixed_precision not in (None, "no", "bf16", "fp16"):
            raise ValueError(f"--mixed_precision {self.mixed_precision!r}: choose 'no', 'bf16' or 'fp16'.")
        if self.per_device_train_batch_size < 1:
            size = self.per_device_train_batch_size
            raise ValueError(f"--per_device_train_batch_size must be at least 1, got {size}.")
