"""The CLIP-ND model card, filled from the template ``m3el_dataset/hub_cards/model_card.md`` and benchmark results.

This module does not travel to the Hub (the model files do not import it): it is for whoever publishes a model::

    card = build_model_card(model.config, results={"ITm-ITe": {"accuracy": 0.81}}, repo_id="org/clip_nd")
    model.save_pretrained("out", model_card=card)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from m3el_dataset import hub_cards
from m3el_dataset.published import M3EL_TABLE5, PUBLISHED_FIGURES, published_rows
from modeling_clip_nd import DEFAULT_CLIP_CHECKPOINT, CLIPNDConfig

from .training.arguments import TrainingArguments

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


def _hyperparameter_rows(arguments: Mapping[str, object]) -> list[tuple[str, str]]:
    """Rows ``(name, value)`` of the card's hyper-parameter table, from the names of `TrainingArguments`."""

    def value(name: str) -> str:
        return str(arguments[name]) if name in arguments else NOT_RECORDED

    betas = (arguments.get("adam_beta1", NOT_RECORDED), arguments.get("adam_beta2", NOT_RECORDED))
    max_steps = arguments.get("max_steps", -1)
    epochs = f"stopped after {max_steps} steps (max_steps)" if max_steps > 0 else value("num_train_epochs")
    return [
        ("Optimizer", f"AdamW, betas ({betas[0]}, {betas[1]}), eps {value('adam_epsilon')}"),
        ("Learning rate", value("learning_rate")),
        ("Weight decay", value("weight_decay")),
        ("Batch size", _batch_size(arguments)),
        ("Epochs", epochs),
    ]


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
    """Fill the CLIP-ND model card from ``config`` (fusion, training arguments) and benchmark ``results``.

    ``results`` maps a task (``"ITm-ITe"``, ...) to ``{metric: value}``; when given, the card's body carries a
    results table and, if the data is a Hub dataset (``dataset_on_hub``), its metadata a ``model-index`` with one
    entry per value: a figure measured on a local copy is not claimed as a result on the Hub dataset. ``base_model``
    is ``None`` for a model trained from scratch. The hyper-parameter table shows ``config.training_arguments``
    (what the model was trained with) when the config records them, else the paper's recipe: the defaults of
    `TrainingArguments`, labelled as such.
    """
    config = config if config is not None else CLIPNDConfig()
    recorded = config.training_arguments is not None
    arguments = config.training_arguments if recorded else asdict(TrainingArguments())
    eval_results, rows = _eval_results(results or {}, dataset_id, split)
    if not dataset_on_hub:
        eval_results = []
    card_data = ModelCardData(
        model_name=model_name,
        base_model=base_model,
        datasets=[dataset_id] if dataset_on_hub else None,
        library_name="transformers",
        license="apache-2.0",
        pipeline_tag="zero-shot-image-classification",  # loads CLIP-ND as any CLIP (test_clip_nd_pipeline.py)
        tags=["clip", "clip_nd", "multimodal", "entity-linking", "m3el"],
        eval_results=eval_results or None,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path or hub_cards.template_path(TEMPLATE_NAME)),
        model_name=model_name,
        repo_id=repo_id,
        base_model=base_model,
        base_model_url=f"https://huggingface.co/{base_model}" if base_model else None,
        dataset_id=dataset_id,
        dataset_url=f"https://huggingface.co/datasets/{dataset_id}" if dataset_on_hub else None,
        results=rows,
        split=split,
        published=[row for name in PUBLISHED_FIGURES for row in published_rows(name)],
        m3el_table5=M3EL_TABLE5,
        fusion_image_weight=config.fusion_image_weight,
        max_text_tokens=config.text_config.max_position_embeddings,
        training_arguments_recorded=recorded,
        hyperparameters=_hyperparameter_rows(arguments),
    )


__all__ = ["build_model_card"]
