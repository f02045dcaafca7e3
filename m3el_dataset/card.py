"""The dataset card: YAML metadata (configs as column projections and split globs) and prose from a template."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
from huggingface_hub import DatasetCard, DatasetCardData

from .constants import SPLITS, TASKS, TOPICS, parse_task
from .hub_cards import template_path
from .release import release_extra_fields
from .rows import (
    EXTRA_COLUMNS,
    FEATURES,
    KB_CONFIG,
    KB_SPLIT,
    MENTIONS_CONFIG,
    PART_COLUMNS,
    config_columns,
    config_features,
    text_column,
)
from .stats import DatasetStatistics, format_statistics
from .text_formats import (
    ENTITY_TEXT_TEMPLATE,
    SOURCE_PARTS,
    TEXT_FORMAT_TEMPLATES,
    TEXT_FORMATS,
    available_parts,
    formats_with_parts,
)

DATA_DIR = "data"
KB_DIR = "kb"
DEFAULT_CONFIG = MENTIONS_CONFIG
PRETTY_NAME = "M³EL: Multi-task Multi-topic Multi-modal Entity Linking"


@dataclass(frozen=True)
class HubLayout:
    """What a dataset looks like on the Hub: its groups, splits, configs and card.

    Args:
        name (`str`): short name, e.g. ``"m3el"`` or ``"wikimel"``.
        pretty_name (`str`): the card's title.
        groups (`tuple[str]`): the folders ``data/<group>/`` (M3EL's topics; one group for a peer dataset); a row's
            ``topic`` column names its group.
        splits (`tuple[str]`): the learning splits the rows are written to (a subset of `SPLITS`).
        group_splits (`bool`, defaults to `False`): also offer one split per group (M3EL's topic splits).
        has_kb (`bool`, defaults to `True`): offer the ``kb`` config (an export leaves it out when it has no row).
        tasks (`tuple[str]`, defaults to `TASKS`): the modality tasks the dataset supports; the others are absent.
        text_parts (`frozenset[str]`, defaults to M, S, D): the mention text parts the source provides; text
            formats needing a missing part, and the part's own column, are left out of every config.
        card_template (`str`): the template in ``hub_cards/``.
        kb_description (`str`): what the ``kb`` config holds, in the card's table of configs.
        image_source (`str`): where the images come from, in the card's licence note.
        tags (`tuple[str]`) / task_categories (`tuple[str]`): the card's Hub metadata.
        extra_columns (`tuple[tuple[str, str]]`, defaults to none): ``(name, value type)`` of each source field kept
            beyond `FEATURES` (DifFMEL's ``difficulty``, WIKIPerson's ``source_id``), in every mention config.
        card_fields (`dict`): further template variables (description, citation, published figures, ...).
    """

    name: str
    pretty_name: str
    groups: tuple[str, ...]
    splits: tuple[str, ...]
    group_splits: bool = False
    has_kb: bool = True
    tasks: tuple[str, ...] = TASKS
    text_parts: frozenset[str] = SOURCE_PARTS
    card_template: str = "dataset_card.md"
    kb_description: str = "every candidate entity once"
    image_source: str = "Wikimedia Commons"
    tags: tuple[str, ...] = ("multi-modal-entity-linking", "entity-linking", "wikidata", "image-text")
    task_categories: tuple[str, ...] = ("text-retrieval", "zero-shot-image-classification")
    extra_columns: tuple[tuple[str, str], ...] = ()
    card_fields: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        for task in self.tasks:
            parse_task(task)
        unknown = set(self.splits) - set(SPLITS)
        if unknown or not self.splits or not self.groups:
            raise ValueError(f"{self.name}: splits must be a non-empty subset of {SPLITS}, got {self.splits}.")
        if not self.text_parts <= SOURCE_PARTS:
            raise ValueError(f"{self.name}: text parts must be among {sorted(SOURCE_PARTS)}, got {self.text_parts}.")
        clashing = [name for name, _ in self.extra_columns if name in FEATURES]
        if clashing:
            raise ValueError(f"{self.name}: extra columns {clashing} are already columns of the schema; rename them.")

    @property
    def mention_features(self) -> datasets.Features:
        """The columns of a mention row: `FEATURES`, then the `extra_columns`."""
        return datasets.Features({**FEATURES, **{name: datasets.Value(kind) for name, kind in self.extra_columns}})

    @property
    def config_names(self) -> tuple[str, ...]:
        """The supported tasks (in `TASKS` order), then ``mentions`` and ``kb`` (if `has_kb`)."""
        kb = (KB_CONFIG,) if self.has_kb else ()
        return (*(task for task in TASKS if task in self.tasks), MENTIONS_CONFIG, *kb)

    @property
    def split_names(self) -> tuple[str, ...]:
        """Every split a mention config offers."""
        return self.splits + (self.groups if self.group_splits else ())

    @property
    def text_formats(self) -> tuple[str, ...]:
        """The text formats whose parts the source provides (S1 needs S)."""
        return formats_with_parts(self.text_parts)

    @property
    def excluded_columns(self) -> frozenset[str]:
        """Columns left out of every config because the source cannot fill them.

        A column no supported task needs goes (``mention_image`` for a text-only source); so do the text formats
        needing a missing part and that part's column. The ``kb`` config keeps ``qid`` and the entity side the
        tasks use.
        """
        needed = {column for task in self.tasks for column in config_columns(task)}
        excluded = {column for column in config_columns(MENTIONS_CONFIG) if column not in needed}
        excluded |= {text_column(name) for name in TEXT_FORMATS if name not in self.text_formats}
        parts = available_parts(self.text_parts)
        excluded |= {column for part, column in PART_COLUMNS.items() if part not in parts}
        if "candidate_texts" in excluded:
            excluded |= {"name", "description", "text"}
        if "candidate_images" in excluded:
            excluded.add("image")
        return frozenset(excluded)

    def config_columns(self, config_name: str) -> list[str]:
        """The columns of a config of this dataset; raise ``ValueError`` for a config it does not offer."""
        if config_name not in self.config_names:
            raise ValueError(f"{self.pretty_name} has no config {config_name!r}; choose one of "
                             f"{', '.join(self.config_names)}.")  # fmt: skip
        columns = [column for column in config_columns(config_name) if column not in self.excluded_columns]
        return columns if config_name == KB_CONFIG else columns + [name for name, _ in self.extra_columns]

    def config_features(self, config_name: str) -> datasets.Features:
        """The `datasets.Features` of a config of this dataset."""
        source = config_features(KB_CONFIG) if config_name == KB_CONFIG else self.mention_features
        return datasets.Features({column: source[column] for column in self.config_columns(config_name)})


M3EL_LAYOUT = HubLayout(name="m3el", pretty_name=PRETTY_NAME, groups=TOPICS, splits=SPLITS, group_splits=True)
"""M3EL itself: five topic folders, 8:1:1 splits plus one split per topic, all nine tasks."""


def release_layout(raw_dir: str | os.PathLike) -> HubLayout:
    """`M3EL_LAYOUT`, with a column for each `release.EXTRA_FIELDS` the release's records hold: the DifFMEL release
    (the same records, rooted at ``/DiffMEL/``, with a ``difficulty`` level) keeps its levels."""
    extra = release_extra_fields(raw_dir)
    if not extra:
        return M3EL_LAYOUT
    return dataclasses.replace(M3EL_LAYOUT, pretty_name=f"{PRETTY_NAME} (DifFMEL release, with {', '.join(extra)})",
                               extra_columns=tuple((name, EXTRA_COLUMNS[name]) for name in extra))  # fmt: skip


def split_globs(layout: HubLayout = M3EL_LAYOUT) -> list[dict[str, str]]:
    """Each split of a mention config as a glob over the shards ``data/<group>/<split>-*.parquet``."""
    learning = [{"split": split, "path": f"{DATA_DIR}/*/{split}-*.parquet"} for split in layout.splits]
    if not layout.group_splits:
        return learning
    return learning + [{"split": group, "path": f"{DATA_DIR}/{group}/*.parquet"} for group in layout.groups]


def metadata_configs(layout: HubLayout = M3EL_LAYOUT) -> list[dict[str, Any]]:
    """The YAML ``configs:`` entries: all mention configs share the shards, the ``kb`` config has its own."""
    configs = []
    for name in layout.config_names:
        if name == KB_CONFIG:
            data_files = [{"split": KB_SPLIT, "path": f"{KB_DIR}/*.parquet"}]
        else:
            data_files = split_globs(layout)
        entry: dict[str, Any] = {"config_name": name, "data_files": data_files}
        if name not in (KB_CONFIG, MENTIONS_CONFIG) or layout.config_columns(name) != config_columns(name):
            entry["columns"] = layout.config_columns(name)
        if name == DEFAULT_CONFIG:
            entry["default"] = True
        configs.append(entry)
    return configs


def split_sizes(folder: str | os.PathLike, layout: HubLayout = M3EL_LAYOUT) -> dict[str, dict[str, int]]:
    """Rows and Parquet bytes of each split of an exported folder (``kb`` included), read from its shards."""
    folder = Path(folder)
    patterns = {entry["split"]: entry["path"] for entry in split_globs(layout)}
    patterns[KB_SPLIT] = f"{KB_DIR}/*.parquet"
    sizes = {}
    for split, pattern in patterns.items():
        shards = sorted(folder.glob(pattern))
        sizes[split] = {
            "num_examples": sum(pq.ParquetFile(shard).metadata.num_rows for shard in shards),
            "num_bytes": sum(shard.stat().st_size for shard in shards),
        }
    return sizes


def dataset_info_metadata(
    layout: HubLayout = M3EL_LAYOUT, sizes: dict[str, dict[str, int]] | None = None
) -> list[dict[str, Any]]:
    """The YAML ``dataset_info:`` entries: each config's features and, given ``sizes`` (`split_sizes`), its splits.

    The split sizes let ``datasets`` check the number of rows it loads, and make the metadata, and with it the
    cache key ``datasets`` derives for a local folder, change when a rebuild changes the data: without them, two
    folders of the same name and layout share one cache entry and a rebuilt folder would load stale rows.
    ``num_bytes`` is the size of the Parquet shards a split reads (images included, whatever the projection).
    """
    entries = []
    for name in layout.config_names:
        entry: dict[str, Any] = {"config_name": name, "features": layout.config_features(name)._to_yaml_list()}
        if sizes is not None:
            names = [KB_SPLIT] if name == KB_CONFIG else list(layout.split_names)
            entry["splits"] = [{"name": split, **sizes[split]} for split in names]
            entry["dataset_size"] = sum(sizes[split]["num_bytes"] for split in names)
        entries.append(entry)
    return entries


def size_category(num_mentions: int) -> str:
    """The Hub's ``size_categories`` bucket of a dataset with ``num_mentions`` rows."""
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if num_mentions < bound:
            return label
    return "1M<n<10M"


def _modality_words(side: str) -> str:
    return {"T": "text", "I": "image", "IT": "image + text"}[side.rstrip("me")]


def _config_rows(layout: HubLayout) -> list[dict[str, str]]:
    rows = []
    for name in layout.config_names:
        if name == KB_CONFIG:
            columns = ", ".join(layout.config_columns(KB_CONFIG))
            rows.append({"name": name, "mention": "–", "entity": layout.kb_description, "columns": columns})
            continue
        if name == MENTIONS_CONFIG:
            columns = "every column (default)" if not layout.excluded_columns else "every column it fills (default)"
            rows.append({"name": name, "mention": "all", "entity": "all", "columns": columns})
            continue
        mention, entity = name.split("-")
        rows.append({"name": name, "mention": _modality_words(mention), "entity": _modality_words(entity),
                     "columns": f"{len(layout.config_columns(name))}"})  # fmt: skip
    return rows


def render_dataset_card(
    stats: DatasetStatistics,
    repo_id: str = "<org>/m3el",
    license: str = "unknown",
    layout: HubLayout = M3EL_LAYOUT,
    sizes: dict[str, dict[str, int]] | None = None,
) -> DatasetCard:
    """Render ``layout``'s card template (M3EL's by default) with the YAML metadata and the statistics ``stats``;
    ``sizes`` (`split_sizes` of the folder) adds each split's rows and bytes to the metadata."""
    card_data = DatasetCardData(
        pretty_name=layout.pretty_name,
        license=license,
        language=["en"],
        task_categories=list(layout.task_categories),
        task_ids=["entity-linking-retrieval"],
        size_categories=[size_category(stats.total.mentions)],
        tags=list(layout.tags),
        configs=metadata_configs(layout),
        dataset_info=dataset_info_metadata(layout, sizes),
    )
    license_note = (
        "The release's licence was not stated when this copy was built (`license: unknown`): check the authors' "
        f"terms before redistributing. The images come from {layout.image_source}, each under its own licence."
        if license == "unknown"
        else f"`{license}`. The images come from {layout.image_source}, each under its own licence."
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(template_path(layout.card_template)),
        pretty_name=layout.pretty_name,
        repo_id=repo_id,
        config_rows=_config_rows(layout),
        format_rows=[
            {"name": name, "column": text_column(name), "template": TEXT_FORMAT_TEMPLATES[name]}
            for name in layout.text_formats
        ],
        entity_template=ENTITY_TEXT_TEMPLATE,
        topic_splits=", ".join(f"`{group}`" for group in layout.groups),
        split_names=", ".join(f"`{split}`" for split in layout.split_names),
        statistics=format_statistics(stats),
        license_note=license_note,
        **layout.card_fields,
    )
