"""The CLIP-ND model card, filled from the template ``m3el_dataset/hub_cards/model_card.md`` and benchmark results.

This module does not travel to the Hub (the model files do not import it): it is for whoever publishes a model::

    card = build_model_card(model.config, results={"ITm-ITe": {"accuracy": 0.81}}, repo_id="org/clip_nd")
    model.save_pretrained("out", model_card=card)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from m3el_dataset import hub_cards
from m3el_dataset.published import M3EL_TABLE5, PUBLISHED_FIGURES, published_rows
from m3el_dataset.sample import SAMPLE_NAME
from modeling_clip_nd import DEFAULT_CLIP_CHECKPOINT, CLIPNDConfig

from .training.arguments import TINY_INIT, DataArguments, ModelArguments, TrainingArguments

TEMPLATE_NAME = "model_card.md"
DEFAULT_REPO_ID = "m3el/clip_nd"
DEFAULT_DATASET_ID = "m3el/M3EL"
NOT_RECORDED = "not recorded"


def _eval_results(
    results: Mapping[str, Mapping[str, float]], dataset_id: str, split: str
) -> tuple[list[EvalResult], list[dict]]:
    """Turn ``{task: {metric: value}}`` into model-index entries and rows of the card's results table."""
    eval_results, rows = [], []
    for task, metrics in results.items():
        if not isinstance(metrics, Mapping) or not metrics:
            raise ValueError(f"Results of task {task!r} must map metric names to values, got {metrics!r}.")
        for metric, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"Result {task!r}/{metric!r} must be a number, got {value!r}.")
            eval_results.append(
                EvalResult(
                    task_type="entity-linking",
                    task_name="Multi-modal entity linking",
                    dataset_type=dataset_id,
                    dataset_name="M3EL",
                    dataset_split=split,
                    metric_type=metric,
                    metric_name=f"{metric} ({task})",
                    metric_value=float(value),
                )
            )
            rows.append({"task": task, "metric": metric, "value": float(value)})
    return eval_results, rows


@dataclass
class TrainingOutcome:
    """What a training run kept, recorded beside its arguments in ``config.training_arguments`` (flat keys) so that
    a card rebuilt from the config alone still says it.

    Args:
        trained_steps (`int`): optimisation steps the run made.
        kept_step (`int`): the step whose weights were saved (the last one, or the best validation epoch's with
            ``load_best_model_at_end``).
        validation_setting (`str`): the task and text format of the validation ACC, e.g. ``"ITm-ITe (M-S1)"``.
        validation_history (`list[dict]`): one ``{"epoch", "step", "accuracy", "mrr"}`` record per validation.
    """

    trained_steps: int
    kept_step: int
    validation_setting: str
    validation_history: list[dict] = field(default_factory=list)

    def record(self) -> dict:
        """The entries this outcome adds to ``config.training_arguments``."""
        return asdict(self)

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, object] | None) -> TrainingOutcome | None:
        """The outcome recorded in ``arguments`` (``config.training_arguments``), or ``None`` if it is not there."""
        names = [item.name for item in fields(cls)]
        if arguments is None or any(name not in arguments for name in names):
            return None
        return cls(**{name: arguments[name] for name in names})

    def kept_validation(self) -> dict | None:
        """The validation record of the kept weights (``None`` if they were not validated)."""
        return next((record for record in self.validation_history if record["step"] == self.kept_step), None)


def _batch_size(arguments: Mapping[str, object]) -> str:
    """The global batch of ``arguments``: per device, times processes and gradient accumulation when they differ."""
    per_device = arguments.get("per_device_train_batch_size")
    if per_device is None:
        return NOT_RECORDED
    processes = arguments.get("num_processes", 1)
    accumulation = arguments.get("gradient_accumulation_steps", 1)
    total = per_device * processes * accumulation
    if total == per_device:
        return str(per_device)
    return f"{total} ({per_device} per device x {processes} processes x {accumulation} accumulation steps)"


def _recorded(arguments: Mapping[str, object], *names: str) -> bool:
    return all(name in arguments for name in names)


def _negatives(arguments: Mapping[str, object]) -> str:
    """Which entities each mention is contrasted with."""
    if not _recorded(arguments, "hard_negatives", "gather_features"):
        return NOT_RECORDED
    processes = arguments.get("num_processes", 1)
    text = "the other pairs of the batch"
    if processes > 1:
        gathered = "global batch, gathered across the processes" if arguments["gather_features"] else "process's batch"
        text = f"the other pairs of the {gathered}"
    if arguments["hard_negatives"]:
        return f"{text}, plus each mention's non-gold candidates (hard negatives)"
    return f"{text} (in-batch negatives only, no hard negatives)"


def _image_augmentation(arguments: Mapping[str, object]) -> str:
    if not _recorded(arguments, "image_augmentation", "image_flip_and_jitter"):
        return NOT_RECORDED
    if not arguments["image_augmentation"]:
        return "none"
    crop = "random square crop of the shorter side (CLIP's)"
    return f"{crop}, random flips, brightness/contrast jitter +-10 %" if arguments["image_flip_and_jitter"] else crop


def _text_augmentation(arguments: Mapping[str, object]) -> str:
    if not _recorded(arguments, "name_drop_prob", "description_drop_prob"):
        return NOT_RECORDED
    return (f'entity text "{{name}}: {{description}}"; name dropped with probability {arguments["name_drop_prob"]}, '
            f'description with {arguments["description_drop_prob"]}')  # fmt: skip


def _precision(arguments: Mapping[str, object]) -> str:
    if "mixed_precision" not in arguments:
        return NOT_RECORDED
    precision = arguments["mixed_precision"]
    if precision is None:  # the defaults: the flag unset
        return "what `accelerate launch` chose, else fp32"
    return "fp32" if precision == "no" else f"{precision} mixed precision"


def _choice(arguments: Mapping[str, object], name: str, when_true: str, when_false: str) -> str:
    return NOT_RECORDED if name not in arguments else when_true if arguments[name] else when_false


def _hyperparameter_rows(arguments: Mapping[str, object]) -> list[tuple[str, str]]:
    """Rows ``(name, value)`` of the card's hyper-parameter table, each read from ``arguments`` (the names of the
    trainer's argument dataclasses), ``not recorded`` where ``arguments`` lack it."""

    def value(name: str) -> str:
        return str(arguments[name]) if name in arguments else NOT_RECORDED

    betas = (arguments.get("adam_beta1", NOT_RECORDED), arguments.get("adam_beta2", NOT_RECORDED))
    max_steps = arguments.get("max_steps", -1)
    epochs = f"stopped after {max_steps} steps (max_steps)" if max_steps > 0 else value("num_train_epochs")
    schedule = NOT_RECORDED
    if _recorded(arguments, "lr_scheduler_type", "warmup_steps"):
        schedule = f"{arguments['lr_scheduler_type']}, {arguments['warmup_steps']} warm-up steps"
    long_texts = _choice(arguments, "keep_mention", "sentence shortened so that the mention stays", "cut at the end")
    saved = _choice(arguments, "load_best_model_at_end", "best validation ACC (load_best_model_at_end)", "last step")
    lora = f"rank {value('lora_r')}, alpha {value('lora_alpha')}" if arguments.get("lora_r") else "none (all weights)"
    return [
        ("Task", value("task")),
        ("Mention text format", value("text_format")),
        ("Negatives", _negatives(arguments)),
        ("Text augmentation (aug_T)", _text_augmentation(arguments)),
        ("Image augmentation (aug_I)", _image_augmentation(arguments)),
        ("Long mention texts", long_texts),
        ("Optimizer", f"AdamW, betas ({betas[0]}, {betas[1]}), eps {value('adam_epsilon')}"),
        ("Learning rate", value("learning_rate")),
        ("Learning-rate schedule", schedule),
        ("Weight decay", value("weight_decay")),
        ("Batch size", _batch_size(arguments)),
        ("Epochs", epochs),
        ("Precision", _precision(arguments)),
        ("LoRA", lora if "lora_r" in arguments else NOT_RECORDED),
        ("Weights saved", saved),
        ("Seed", value("seed")),
    ]


def hub_base_model(base_model: str | None) -> str | None:
    """``base_model`` if it is a Hub id, ``None`` for a local folder (or ``None``): a card never names a local path,
    which would be a broken Hub link and the author's file system."""
    if base_model is None or Path(base_model).expanduser().exists():
        return None
    try:
        validate_repo_id(base_model)
    except HFValidationError:
        return None
    return base_model


def _default_arguments() -> dict:
    """The trainer's defaults (the paper's recipe), as one flat mapping like a recorded ``training_arguments``."""
    return {**asdict(ModelArguments()), **asdict(DataArguments()), **asdict(TrainingArguments())}


def build_model_card(
    config: CLIPNDConfig | None = None,
    results: Mapping[str, Mapping[str, float]] | None = None,
    *,
    repo_id: str = DEFAULT_REPO_ID,
    model_name: str = "CLIP-ND",
    base_model: str | None = DEFAULT_CLIP_CHECKPOINT,
    dataset_id: str = DEFAULT_DATASET_ID,
    dataset_on_hub: bool = True,
    split: str = "test",
    template_path: str | Path | None = None,
) -> ModelCard:
    """Fill the CLIP-ND model card from ``config`` (fusion, training arguments and outcome) and benchmark ``results``.

    ``results`` maps a task (``"ITm-ITe"``, ...) to ``{metric: value}``; when given, the card's body carries a
    results table and, if the data is a Hub dataset (``dataset_on_hub``), its metadata a ``model-index`` with one
    entry per value: a figure measured on a local copy is not claimed as a result on the Hub dataset. ``base_model``
    is what training started from: a Hub id (named in the metadata), a local folder (never named: the card says the
    model started from a local checkpoint) or ``None`` (trained from scratch). The hyper-parameter table shows
    ``config.training_arguments`` (what the model was trained with) when the config records them, else the paper's
    recipe: the defaults of the trainer's arguments, labelled as such. A recorded `TrainingOutcome` adds the step
    whose weights were kept and the validation history.
    """
    config = config if config is not None else CLIPNDConfig()
    recorded = config.training_arguments is not None
    arguments = config.training_arguments if recorded else _default_arguments()
    hub_model = hub_base_model(base_model)
    eval_results, rows = _eval_results(results or {}, dataset_id, split)
    if not dataset_on_hub:
        eval_results = []
    card_data = ModelCardData(
        model_name=model_name,
        base_model=hub_model,
        datasets=[dataset_id] if dataset_on_hub else None,
        library_name="transformers",
        license="apache-2.0",
        pipeline_tag="zero-shot-image-classification",  # loads CLIP-ND as any CLIP (test_clip_nd_pipeline.py)
        tags=["clip", "clip_nd", "multimodal", "entity-linking", "m3el"],
        eval_results=eval_results or None,
    )
    outcome = TrainingOutcome.from_arguments(config.training_arguments)
    hyperparameters = _hyperparameter_rows(arguments)
    lora_adapter = None  # with an adapter saved apart (--save_merged false): its rank and alpha
    if recorded and arguments.get("lora_r") and not arguments.get("save_merged", True):
        lora_adapter = dict(hyperparameters)["LoRA"]
        card_data.tags += ["peft", "lora"]  # the repo also holds a peft adapter: Hub search finds it by these
    shown = {key: value for key, value in arguments.items() if key not in TrainingOutcome.__dataclass_fields__}
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path or hub_cards.template_path(TEMPLATE_NAME)),
        model_name=model_name,
        repo_id=repo_id,
        base_model=hub_model,
        base_model_url=f"https://huggingface.co/{hub_model}" if hub_model else None,
        local_init=base_model is not None and hub_model is None,
        dataset_id=dataset_id,
        dataset_url=f"https://huggingface.co/datasets/{dataset_id}" if dataset_on_hub else None,
        results=rows,
        split=split,
        published=[row for name in PUBLISHED_FIGURES for row in published_rows(name)],
        m3el_table5=M3EL_TABLE5,
        fusion_image_weight=config.fusion_image_weight,
        max_text_tokens=config.text_config.max_position_embeddings,
        training_arguments_recorded=recorded,
        hyperparameters=hyperparameters,
        training_arguments_json=json.dumps(shown, indent=1, sort_keys=True) if recorded else None,
        outcome=outcome,
        load_best_model_at_end=arguments.get("load_best_model_at_end"),
        validation_split=arguments.get("validation_split") or "validation",
        lora_adapter=lora_adapter,
    )


def build_training_card(config: CLIPNDConfig, repo_id: str = DEFAULT_REPO_ID) -> ModelCard:
    """The card the trainer writes beside a model it saved, from ``config.training_arguments`` alone: the start
    (``init``), the dataset, and the kept weights' validation ACC as the results; ``repo_id`` is shown in the usage
    code (the repo it is pushed to)."""
    arguments = config.training_arguments
    if arguments is None:
        raise ValueError("The config records no training_arguments: build_training_card is for a trained model.")
    outcome = TrainingOutcome.from_arguments(arguments)
    kept = outcome.kept_validation() if outcome else None
    dataset = str(arguments["dataset"])
    local = dataset == SAMPLE_NAME or Path(dataset).exists()  # the bundled sample is not a Hub dataset
    return build_model_card(
        config,
        {outcome.validation_setting: {"accuracy": kept["accuracy"]}} if kept else None,
        base_model=None if arguments["init"] == TINY_INIT else str(arguments["init"]),
        dataset_id=Path(dataset).name if local else dataset,
        dataset_on_hub=not local,
        split=arguments.get("validation_split") or "validation",
        repo_id=repo_id,
    )


def build_adapter_base_card(config: CLIPNDConfig, adapter_repo_id: str) -> ModelCard:
    """The card of the CLIP-ND a LoRA adapter applies to (``<repo>-base``): what it is, and to load the adapter."""
    init = str((config.training_arguments or {}).get("init", NOT_RECORDED))
    start = hub_base_model(init) or "a local checkpoint"
    if init in (TINY_INIT, NOT_RECORDED):
        start = "random weights: the run trained from scratch" if init == TINY_INIT else NOT_RECORDED
    card_data = ModelCardData(base_model=hub_base_model(init), library_name="transformers", license="apache-2.0",
                              tags=["clip", "clip_nd", "m3el"])  # fmt: skip
    url = f"https://huggingface.co/{adapter_repo_id}"
    return ModelCard(
        f"---\n{card_data.to_yaml()}\n---\n\n# Base of {adapter_repo_id}\n\nThe CLIP-ND that the LoRA adapter "
        f"[{adapter_repo_id}]({url}) applies to: the weights its training started from ({start}), **not trained** "
        "by it. Load the adapter instead, which loads this repo for you:\n\n```python\nfrom transformers import "
        f'AutoModel\n\nmodel = AutoModel.from_pretrained("{adapter_repo_id}", trust_remote_code=True)\n```\n\n'
        f"Its card says how it was trained and what it scores.\n"
    )


__all__ = ["TrainingOutcome", "build_adapter_base_card", "build_model_card", "build_training_card", "hub_base_model"]
