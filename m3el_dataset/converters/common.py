"""What the converters share: field checks, knowledge-base entities, and turning a peer mention into a row.

A converted mention goes through the same `record_to_row` as an M3EL record, so text formats, image reading
(bytes as stored) and the build report behave the same whatever the source.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..card import DATA_DIR, HubLayout
from ..constants import TASKS, parse_task
from ..export import ExportConfig
from ..images import ImageResolver
from ..parquet_shards import iter_parquet_batches
from ..release import Candidate, ImageRef, MentionRecord, ReleaseRecordError, read_raw_records
from ..report import BuildReport
from ..rows import record_to_row
from ..text_formats import entity_text

T = TypeVar("T")

PEER_CARD_TEMPLATE = "peer_dataset_card.md"
NIL_RULE = (
    "Mentions are ranked against the **whole knowledge base** (the `kb` config), as in MIMIC's protocol, so the "
    "candidate columns hold the gold entity alone (`label` 0). A NIL mention (no entity in the knowledge base) has "
    "an empty `gold_qid`, no candidates and `label` -1; it is kept and counted, never dropped."
)
SPLIT_RULE = "as the source files assign them (the source's `dev` is `validation`)"
KEYED_BY_ID_HINT = "this looks like a JSON object keyed by id (GHMFC/MELBench layout); use `convert ghmfc`"
# The opening of a GHMFC/MELBench records file: {"<id>": {... "sentence": ..., "mentions": ...}, ...}.
_KEYED_BY_ID = re.compile(r'^\s*\{\s*"(?:[^"\\]|\\.)*"\s*:\s*\{')
_SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class KBEntity:
    """An entity of a peer dataset's knowledge base; ``image`` is relative to the source folder (``""``: none)."""

    qid: str
    name: str
    description: str = ""
    image: str = ""


def iter_parsed(
    path: Path,
    display_name: str,
    parse: Callable[[Any, str, int], T],
    *,
    skip_invalid: bool = False,
    report: BuildReport | None = None,
) -> Iterator[tuple[int, T]]:
    """``(index, parse(value, display_name, index))`` for each record of a JSON array or JSON Lines file.

    Malformed records raise `ReleaseRecordError` (file, record, field) or, with ``skip_invalid``, are listed in
    ``report`` and skipped, as in the M3EL reader. A file that cannot be read at all always raises.
    """
    if not path.is_file():
        raise FileNotFoundError(f"No file {path}; give the folder the dataset unpacks to.")
    refuse_keyed_by_id(path, display_name)
    for index, value in read_raw_records(path, display_name):
        try:
            if isinstance(value, ReleaseRecordError):
                raise value
            yield index, parse(value, display_name, index)
        except ReleaseRecordError as error:
            if not skip_invalid:
                raise
            if report is not None:
                report.add_skip(error)


def looks_keyed_by_id(path: Path) -> bool:
    """Whether ``path`` opens like a GHMFC/MELBench records file: one JSON object whose values are mention records
    (``{"21717": {"id": ..., "sentence": ..., "mentions": ...}, ...}``), judged from its first 64 KiB."""
    try:
        with open(path, "rb") as file:
            head = file.read(_SNIFF_BYTES).decode("utf-8-sig", errors="ignore")
    except OSError:
        return False
    return bool(_KEYED_BY_ID.match(head)) and '"sentence"' in head and '"mentions"' in head


def refuse_keyed_by_id(path: Path, display_name: str) -> None:
    """Raise ``ValueError`` pointing to ``convert ghmfc`` when ``path`` is a GHMFC/MELBench records file."""
    if looks_keyed_by_id(path):
        raise ValueError(f"{display_name}: {KEYED_BY_ID_HINT} (m3el-dataset convert ghmfc SRC OUT).")


def read_json_object(path: Path, display_name: str) -> dict[str, Any]:
    """A file holding one JSON object (e.g. MIMIC's ``qid2id.json``); raise `ReleaseRecordError` otherwise."""
    if not path.is_file():
        raise FileNotFoundError(f"No file {path}; give the folder the dataset unpacks to.")
    values = [value for _, value in read_raw_records(path, display_name)]
    if len(values) != 1 or not isinstance(values[0], dict):
        raise ReleaseRecordError(display_name, None, None, "expected one JSON object")
    return values[0]


def mention_row(
    *,
    group: str,
    split: str,
    source_file: str,
    index: int,
    name: str,
    sentence: str,
    image: str,
    gold: KBEntity | None,
    candidates: list[KBEntity],
    images: ImageResolver,
    report: BuildReport | None,
) -> dict[str, Any]:
    """The `FEATURES` row of a peer mention; ``gold`` None is NIL. The split comes from the source, not a hash.

    Images are paths relative to the source folder; ``""`` means the source gives none (an empty cell, unreported).
    """
    record = MentionRecord(
        topic=group,
        index=index,
        source_file=source_file,
        qid=gold.qid if gold is not None else "",
        name=name,
        description=gold.description if gold is not None else "",
        sentence=sentence,
        image=ImageRef("", "", image),
        candidates=[Candidate(e.qid, e.name, e.description, ImageRef("", "", e.image)) for e in candidates],
    )
    row_report = BuildReport()
    row = record_to_row(record, images, row_report)
    if report is not None:
        # An image the source does not name (empty path) is an absence in the source, not a problem to report.
        unnamed = {"mention"} if not image else set()
        unnamed |= {f"candidate {i}" for i, entity in enumerate(candidates) if not entity.image}
        row_report.image_problems = [p for p in row_report.image_problems if p.role not in unnamed]
        report.merge(row_report)
    row["split"] = split
    return row


def kb_row(entity: KBEntity, images: ImageResolver, report: BuildReport | None) -> dict[str, Any]:
    """The `KB_FEATURES` row of an entity; an entity the source gives no image has an empty cell, unreported."""
    image = images.load(entity.image) if entity.image else None
    if image is not None and report is not None:
        report.add_image(f"kb:{entity.qid}", "entity", image)
    return {
        "qid": entity.qid,
        "name": entity.name,
        "description": entity.description,
        "text": entity_text(entity.name, entity.description),
        "image": image.to_cell() if image is not None else None,
    }


def tasks_for(mention: str, entity: str) -> tuple[str, ...]:
    """The tasks a dataset supports given its modalities, e.g. ``tasks_for("TI", "T")`` for text+image mentions."""

    def has(spec_needs: bool, modality: str, available: str) -> bool:
        return not spec_needs or modality in available

    specs = [parse_task(task) for task in TASKS]
    return tuple(
        spec.name
        for spec in specs
        if has(spec.mention_text, "T", mention) and has(spec.mention_image, "I", mention)
        and has(spec.entity_text, "T", entity) and has(spec.entity_image, "I", entity)
    )  # fmt: skip


def peer_layout(
    name: str, pretty_name: str, splits: tuple[str, ...], card_fields: dict[str, Any], **kwargs: Any
) -> HubLayout:
    """The `HubLayout` of a peer dataset: one group named after it, its own splits, the peer card template.

    ``card_fields`` are the peer card's variables (see `published.card_fields`); ``nil_rule`` defaults to
    `NIL_RULE`, ``split_rule`` (how rows got their split) to `SPLIT_RULE`. Further keyword arguments (``tasks``,
    ``text_parts``, ``image_source``) go to `HubLayout`.
    """
    fields = {"nil_rule": NIL_RULE, "split_rule": SPLIT_RULE, "example_split": splits[-1], **card_fields}
    return HubLayout(
        name=name,
        pretty_name=pretty_name,
        groups=(name,),
        splits=splits,
        card_template=PEER_CARD_TEMPLATE,
        kb_description="every entity of the knowledge base",
        card_fields=fields,
        **kwargs,
    )


def image_resolver(
    src: Path, config: ExportConfig, kind: type[ImageResolver] = ImageResolver
) -> ImageResolver:  # fmt: skip
    """The ``kind`` of `ImageResolver` for the source folder ``src``, with the export's image checks."""
    return kind(src, decode_check=config.decode_check, max_pixels=config.max_pixels, max_bytes=config.max_image_bytes,
                image_check=config.image_check)


def source_folder(src_dir: str | os.PathLike) -> Path:
    """``src_dir`` as a `Path`, or `FileNotFoundError` saying what to pass."""
    path = Path(src_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"Source folder {path} does not exist; pass the folder the dataset unpacks to.")
    return path


def gold_counts(out_dir: str | os.PathLike) -> tuple[int, int]:
    """``(NIL, missed)`` mentions of an exported folder: those with no gold entity (empty ``gold_qid``), and those
    whose gold entity is not among their candidates (retrieval missed it; ``label`` -1 too, but not NIL)."""
    nil = missed = 0
    for shard in sorted(Path(out_dir).glob(f"{DATA_DIR}/*/*.parquet")):
        for batch in iter_parquet_batches(shard, ["gold_qid", "label"]):
            for row in batch.to_pylist():
                nil += not row["gold_qid"]
                missed += bool(row["gold_qid"]) and row["label"] < 0
    return nil, missed
