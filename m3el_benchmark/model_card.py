"""The CLIP-ND model card, filled from the template ``m3el_dataset/hub_cards/model_card.md`` and benchmark results.

This module does not travel to the Hub (the model files do not import it): it is for whoever publishes a model::

    card = build_model_card(model.config, results={"ITm-ITe": {"accuracy": 0.81}}, repo_id="org/clip_nd")
    model.save_pretrained("out", model_card=card)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from m3el_dataset import hub_cards
from m3el_dataset.published import M3EL_TABLE5, PUBLISHED_FIGURES, published_rows
from modeling_clip_nd import DEFAULT_CLIP_CHECKPOINT, CLIPNDConfig

TEMPLATE_NAME = "model_card.md"
DEFAULT_REPO_ID = "m3el/clip_nd"
DEFAULT_DATASET_ID = "m3el/M3EL"


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
    """Fill the CLIP-ND model card from ``config`` (fusion and training recipe) and benchmark ``results``.

    ``results`` maps a task (``"ITm-ITe"``, ...) to ``{metric: value}``; when given, the card's body carries a
    results table and, if the data is a Hub dataset (``dataset_on_hub``), its metadata a ``model-index`` with one
    entry per value: a figure measured on a local copy is not claimed as a result on the Hub dataset. ``base_model``
    is ``None`` for a model trained from scratch.
    """
    config = config if config is not None else CLIPNDConfig()
    eval_results, rows = _eval_results(results or {}, dataset_id, split)
    if not dataset_on_hub:
        eval_results = []
    card_data = ModelCardData(
        model_name=model_name,
        base_model=base_model,
        datasets=[dataset_id] if dataset_on_hub else None,
        library_name="transformers",
        license="apache-2.0",
        pipeline_tag="feature-extraction",
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
        adam_betas=tuple(config.adam_betas),
        adam_epsilon=config.adam_epsilon,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        train_batch_size=config.train_batch_size,
        num_train_epochs=config.num_train_epochs,
    )


__all__ = ["build_model_card"]
