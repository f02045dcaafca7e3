"""The one source of truth for the names that the dataset, the model and the benchmark share.

Topics and modality tasks are defined here and nowhere else; the Hub card, the YAML configs, the training script
and the benchmark all read them from this module (tests check that they agree). The mention text formats and the
entity text are owned by `text_formats`, which defines them with everything else about texts; they are re-exported
here so that every shared name can be imported from one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

# Re-exported: defined once, by their owner.
from .text_formats import ENTITY_TEXT_TEMPLATE, TEXT_FORMAT_TEMPLATES, TEXT_FORMATS, check_text_format  # noqa: F401

TOPICS: tuple[str, ...] = ("movies", "common", "person", "books", "sports")
"""The five topics of M3EL, in the order of the paper's Table 3."""

MENTION_MODALITIES: tuple[str, ...] = ("Tm", "Im", "ITm")
"""How a mention is seen: its text, its image, or both."""

ENTITY_MODALITIES: tuple[str, ...] = ("Te", "Ie", "ITe")
"""How a candidate entity is seen: its text (name and description), its image, or both."""

TASKS: tuple[str, ...] = tuple(f"{m}-{e}" for m in MENTION_MODALITIES for e in ENTITY_MODALITIES)
"""The nine modality tasks ``Tm-Te, Tm-Ie, Tm-ITe, Im-Te, Im-Ie, Im-ITe, ITm-Te, ITm-Ie, ITm-ITe``."""

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


def check_topic(topic: str) -> str:
    """Return ``topic`` if it is one of `TOPICS`, else raise ``ValueError`` naming the valid ones."""
    if topic not in TOPICS:
        raise ValueError(f"Unknown topic {topic!r}; choose one of {', '.join(TOPICS)}.")
    return topic

