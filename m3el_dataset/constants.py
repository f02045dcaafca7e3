"""The one source of truth for the names that the dataset, the model and the benchmark share.

Topics, modality tasks and mention text formats are defined here and nowhere else; the Hub card, the YAML
configs, the training script and the benchmark all read them from this module (tests check that they agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

TOPICS: tuple[str, ...] = ("movies", "common", "person", "books", "sports")
"""The five topics of M3EL, in the order of the paper's Table 3."""

MENTION_MODALITIES: tuple[str, ...] = ("Tm", "Im", "ITm")
"""How a mention is seen: its text, its image, or both."""

ENTITY_MODALITIES: tuple[str, ...] = ("Te", "Ie", "ITe")
"""How a candidate entity is seen: its text (name and description), its image, or both."""

TASKS: tuple[str, ...] = tuple(f"{m}-{e}" for m in MENTION_MODALITIES for e in ENTITY_MODALITIES)
"""The nine modality tasks ``Tm-Te, Tm-Ie, Tm-ITe, Im-Te, Im-Ie, Im-ITe, ITm-Te, ITm-Ie, ITm-ITe``."""

TEXT_FORMAT_TEMPLATES: dict[str, str] = {
    "S1": "{S1}",
    "S": "{S}",
    "M-S1": "{M}: {S1}",
    "M-S": "{M}: {S}",
    "S1-M": "{S1} {M}",
    "S-M": "{S} {M}",
    "S1-M-D": "{S1} {M}: {D}",
    "S-M-D": "{S} {M}: {D}",
}
"""Mention text formats. M = surface form, S = whole context, S1 = the sentence holding M, D = gold description."""

TEXT_FORMATS: tuple[str, ...] = tuple(TEXT_FORMAT_TEMPLATES)

ENTITY_TEXT_TEMPLATE = "{name}: {description}"
"""Entity text Te."""

SPLITS: tuple[str, ...] = ("train", "validation", "test")
"""The 8:1:1 splits, assigned within each topic from a stable hash of the mention id."""

SPLIT_RATIOS: tuple[int, ...] = (8, 1, 1)

ALL_SPLITS: tuple[str, ...] = SPLITS + TOPICS
"""Every split an exported M3EL folder offers: the three learning splits and one split per topic."""


@dataclass(frozen=True)
class TaskSpec:
    """What a modality task needs on each side. Parse a task's name once (`parse_task`) and pass the spec on."""

    name: str
    mention_text: bool
    mention_image: bool
    entity_text: bool
    entity_image: bool

    def __str__(self) -> str:
        return self.name


@cache
def parse_task(task: str | TaskSpec) -> TaskSpec:
    """Return the `TaskSpec` of ``task`` (e.g. ``"ITm-Ie"``; a spec is returned as it is); raise ``ValueError``
    naming the valid tasks."""
    if isinstance(task, TaskSpec):
        return task
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; choose one of {', '.join(TASKS)}.")
    mention, entity = task.split("-")
    return TaskSpec(
        name=task,
        mention_text="T" in mention,
        mention_image="I" in mention,
        entity_text="T" in entity,
        entity_image="I" in entity,
    )


def check_text_format(text_format: str) -> str:
    """Return ``text_format`` if it is one of `TEXT_FORMATS`, else raise ``ValueError`` naming the valid ones."""
    if text_format not in TEXT_FORMAT_TEMPLATES:
        raise ValueError(f"Unknown text format {text_format!r}; choose one of {', '.join(TEXT_FORMATS)}.")
    return text_format


def check_topic(topic: str) -> str:
    """Return ``topic`` if it is one of `TOPICS`, else raise ``ValueError`` naming the valid ones."""
    if topic not in TOPICS:
        raise ValueError(f"Unknown topic {topic!r}; choose one of {', '.join(TOPICS)}.")
    return topic
