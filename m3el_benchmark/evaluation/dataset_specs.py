"""Which datasets a run evaluates: each with its name (the table column), protocol, tasks and published figures.

A run evaluates either the one dataset of ``--dataset`` with every chosen task, format and topic, or the list of
``datasets`` of a Table 5 / MIMIC-style config, each on its task(s) and one format. A YAML entry is a mapping::

    datasets:
      - {name: WikiMEL, path: data/wikimel, protocol: kb, task: ITm-ITe, published: wikimel}
      - {name: WIKIPerson, path: data/wikiperson, protocol: kb, tasks: [Im-Ie], nil_policy: exclude}

with ``name`` and ``path`` required; the others default to the run's ``protocol``, ``headline_task`` (``task``
names one task, ``tasks`` a list), ``headline_format``, ``splits`` and ``nil_policy`` (`figures.NIL_POLICIES`:
what a mention whose gold is absent counts as), and to no published figures. On the command line an entry is
``NAME=PATH``.
Topics are M3EL's; a converted peer dataset has one group named after it, so a listed dataset keeps every group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from m3el_dataset.constants import ALL_SPLITS, TASKS, TEXT_FORMATS, TaskSpec, parse_task
from m3el_dataset.published import PUBLISHED_FIGURES

from .data import check_names
from .figures import NIL_POLICIES

PROTOCOLS = ("candidates", "kb", "retrieved")
"""Ranking protocols: each mention against its own candidates, against every entity of the ``kb`` config, or
against its top-100 fuzzy name matches in it (DWE+'s published setting, `retrieval`)."""

ENTRY_KEYS = ("name", "path", "protocol", "task", "tasks", "text_format", "splits", "published", "drop_nil",
              "nil_policy")


@dataclass(frozen=True)
class DatasetSpec:
    """One evaluated dataset.

    Args:
        name (`str`): its column in Table 5 and its name in the records.
        path (`str`): exported folder, raw release folder, Hub id or ``"sample"`` (`m3el_dataset.loading`).
        protocol (`str`): one of `PROTOCOLS`.
        tasks (`tuple[TaskSpec]`, names accepted): the scored tasks; the first one heads the tables.
        text_formats, splits (`tuple[str]`): the scored formats (the first heads the tables) and splits.
        topics (`tuple[str]` or `None`): M3EL topics to keep; `None` keeps every group.
        published (`str`, *optional*): key of `PUBLISHED_FIGURES` shown beside ours, marked "published".
        drop_nil (`bool`, defaults to `False`): leave out NIL mentions (no gold entity at all) when reading, as
            MIMIC's published figures do; by default they stay in and `nil_policy` decides how they count.
        nil_policy (`str`, defaults to ``"wrong"``): what a mention whose gold is not among the entities it is
            ranked against counts as: ``wrong`` at every k, or left out (``exclude``); see `figures`.
    """

    name: str
    path: str
    protocol: str
    tasks: tuple[TaskSpec, ...]
    text_formats: tuple[str, ...]
    splits: tuple[str, ...]
    topics: tuple[str, ...] | None = None
    published: str | None = None
    drop_nil: bool = False
    nil_policy: str = "wrong"

    def __post_init__(self):
        check_names([self.protocol], PROTOCOLS, f"protocol of dataset {self.name!r}")
        check_names([self.nil_policy], NIL_POLICIES, f"nil_policy of dataset {self.name!r}")
        check_names([str(task) for task in self.tasks], TASKS, f"task of dataset {self.name!r}")
        object.__setattr__(self, "tasks", tuple(map(parse_task, self.tasks)))
        check_names(self.text_formats, TEXT_FORMATS, f"text format of dataset {self.name!r}")
        check_names(self.splits, ALL_SPLITS, f"split of dataset {self.name!r}")
        if self.published is not None:
            check_names([self.published], list(PUBLISHED_FIGURES), f"published figures of dataset {self.name!r}")

    @property
    def mention_text_formats(self) -> tuple[str, ...]:
        """The text formats read: none when no task has a mention text (an image-only dataset has no text)."""
        return self.text_formats if any(task.mention_text for task in self.tasks) else ()


def _entry_mapping(entry: Any) -> dict[str, Any]:
    if isinstance(entry, str):
        name, separator, path = entry.partition("=")
        if not separator or not name or not path:
            raise ValueError(f"Dataset entry {entry!r} is not NAME=PATH; e.g. WikiMEL=data/wikimel.")
        return {"name": name, "path": path}
    if not isinstance(entry, dict):
        raise ValueError(f"Dataset entry {entry!r} is neither NAME=PATH nor a mapping with keys {ENTRY_KEYS}.")
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    missing = [key for key in ("name", "path") if not entry.get(key)]
    if unknown or missing:
        raise ValueError(
            f"Dataset entry {entry!r}: unknown keys {unknown}, missing keys {missing}; valid keys: {ENTRY_KEYS}."
        )
    if "task" in entry and "tasks" in entry:
        raise ValueError(f"Dataset entry {entry!r} has both task and tasks: give one task, or a list as tasks.")
    return dict(entry)


def _tasks(tasks: str | Sequence[str]) -> tuple[str, ...]:
    return (tasks,) if isinstance(tasks, str) else tuple(tasks)


def dataset_specs(
    entries: Sequence[Any],
    *,
    protocol: str,
    task: str,
    text_format: str,
    splits: Sequence[str],
    nil_policy: str = "wrong",
) -> list[DatasetSpec]:
    """`DatasetSpec` of each ``datasets`` entry (a mapping or ``NAME=PATH``), defaults from the run's arguments."""
    specs = []
    for entry in entries:
        values = _entry_mapping(entry)
        specs.append(
            DatasetSpec(
                name=str(values["name"]),
                path=str(values["path"]),
                protocol=values.get("protocol", protocol),
                tasks=_tasks(values.get("tasks", values.get("task", task))),
                text_formats=(values.get("text_format", text_format),),
                splits=tuple(values.get("splits", splits)),
                published=values.get("published"),
                drop_nil=bool(values.get("drop_nil", False)),
                nil_policy=values.get("nil_policy", nil_policy),
            )
        )
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"Dataset names must differ (they are table columns), got {names}.")
    return specs
