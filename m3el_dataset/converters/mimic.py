"""Converter of the MIMIC distribution of WikiMEL, RichpediaMEL and WikiDiverse (Luo et al., KDD 2023).

Input layout, as read by MIMIC's own loader (github.com/pengfei-luo/MIMIC, ``codes/utils/dataset.py`` and
``config/*.yaml``)::

    kb_entity.json        JSON array: {"id", "type", "entity_name", "attr" (or "desc"), "image_list": [file, ...]}
    qid2id.json           one JSON object: Wikidata QID -> the "id" of kb_entity.json (MIMIC reads one line)
    <Name>_train.json     JSON array: {"mentions", "sentence", "imgPath", "answer" (a QID or "nil"), ...}
    <Name>_dev.json       (``dev`` becomes our ``validation``)
    <Name>_test.json
    kb_image/             the files of ``image_list``, relative to this folder
    mention_image/        mention images (RichpediaMEL ships ``mention_images/``: both are accepted)

As MIMIC does, names are URL-unquoted, an entity shows its first image, and a mention image is looked up as
``<stem of imgPath>.jpg`` (MIMIC converted them all to JPEG), falling back to the file name as given. A mention
whose ``answer`` is ``nil`` is kept as NIL (MIMIC's loader leaves them out of its figures). The ``entities``
field of a mention is not used.

Assumed where MIMIC's code does not say: a KB entity's QID is the key of ``qid2id.json`` that maps to its
``id`` (or its ``id`` itself when that is a key), else ``str(id)``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .. import published
from ..export import ExportConfig, ExportResult, export_rows
from ..images import ImageResolver
from ..release import ReleaseRecordError, require
from ..report import BuildReport
from .common import (
    KBEntity,
    image_resolver,
    iter_parsed,
    kb_row,
    mention_row,
    peer_layout,
    read_json_object,
    source_folder,
    tasks_for,
)

logger = logging.getLogger(__name__)

KB_FILE = "kb_entity.json"
QID2ID_FILE = "qid2id.json"
KB_IMAGE_DIR = "kb_image"
MENTION_IMAGE_DIRS = ("mention_image", "mention_images")
SPLIT_SUFFIXES = {"train": "train", "dev": "validation", "test": "test"}
NIL = "nil"
_KNOWN_NAMES = {"wikimel": "WikiMEL", "richpediamel": "RichpediaMEL", "wikidiverse": "WikiDiverse"}


def find_split_files(src: Path) -> dict[str, Path]:
    """Our split name -> the ``<Name>_<train|dev|test>.json`` file holding it; raise if none or several match."""
    files = {}
    for suffix, split in SPLIT_SUFFIXES.items():
        matches = sorted(src.glob(f"*_{suffix}.json"))
        if len(matches) > 1:
            raise ValueError(f"Several {suffix} files in {src}: {', '.join(p.name for p in matches)}; keep one.")
        if matches:
            files[split] = matches[0]
    if not files:
        raise FileNotFoundError(f"No mention files (*_train.json, *_dev.json, *_test.json) in {src}.")
    return files


def dataset_name(split_files: dict[str, Path]) -> tuple[str, str]:
    """``(name, pretty name)`` from the mention files' prefix: ``WikiMEL_train.json`` gives ``wikimel``."""
    prefix = next(iter(split_files.values())).name.rsplit("_", 1)[0]
    name = re.sub(r"[^a-z0-9]", "", prefix.lower()) or "mimic"
    return name, _KNOWN_NAMES.get(name, prefix)


def _parse_entity(value: Any, file: str, index: int) -> dict[str, Any]:
    where = (file, index)
    entity_id = require(value, "id", (int, str), where)
    name = require(value, "entity_name", str, where)
    key = "attr" if isinstance(value, dict) and "attr" in value else "desc"
    description = require(value, key, str, where)
    image_list = require(value, "image_list", list, where)
    if not all(isinstance(image, str) for image in image_list):
        raise ReleaseRecordError(file, index, "image_list", "expected a list of file names (strings)")
    return {"id": entity_id, "name": unquote(name), "description": description, "images": image_list}


def read_kb(src: Path, qid2id: dict[str, Any], *, skip_invalid: bool, report: BuildReport) -> dict[str, KBEntity]:
    """The whole knowledge base of ``kb_entity.json``, keyed by its ``id`` (as a string), in file order."""
    id2qid = {str(entity_id): qid for qid, entity_id in qid2id.items() if qid.lower() != NIL}
    entities: dict[str, KBEntity] = {}
    for index, raw in iter_parsed(src / KB_FILE, KB_FILE, _parse_entity, skip_invalid=skip_invalid, report=report):
        key = str(raw["id"])
        if key in entities:
            raise ReleaseRecordError(KB_FILE, index, "id", f"duplicate entity id {raw['id']!r}")
        qid = key if key in qid2id else id2qid.get(key, key)
        image = f"{KB_IMAGE_DIR}/{raw['images'][0]}" if raw["images"] else ""
        entities[key] = KBEntity(qid=qid, name=raw["name"], description=raw["description"], image=image)
    if not entities:
        raise ReleaseRecordError(KB_FILE, None, None, "no entity")
    return entities


def _parse_mention(value: Any, file: str, index: int) -> dict[str, str]:
    where = (file, index)
    fields = {key: require(value, key, str, where) for key in ("mentions", "sentence", "imgPath", "answer")}
    if not fields["answer"].strip():
        raise ReleaseRecordError(file, index, "answer", "empty answer; write a QID or 'nil'")
    return fields


def _mention_image(src: Path, image_path: str) -> str:
    """The mention image's path relative to ``src``, found as MIMIC finds it."""
    folder = next((name for name in MENTION_IMAGE_DIRS if (src / name).is_dir()), MENTION_IMAGE_DIRS[0])
    base = image_path.replace("\\", "/").split("/")[-1]
    if not base:
        return ""
    converted = f"{base.split('.')[0]}.jpg"
    return f"{folder}/{converted}" if (src / folder / converted).is_file() else f"{folder}/{base}"


def _gold(answer: str, qid2id: dict[str, Any], kb: dict[str, KBEntity], where: tuple[str, int]) -> KBEntity | None:
    if answer.strip().lower() == NIL:
        return None
    key = str(qid2id[answer]) if answer in qid2id else answer
    if key not in kb:
        raise ReleaseRecordError(*where, "answer", f"gold entity {answer!r} is in neither {QID2ID_FILE} nor {KB_FILE}")
    return kb[key]


def iter_mention_rows(
    src: Path, split_files: dict[str, Path], name: str, qid2id: dict[str, Any], kb: dict[str, KBEntity],
    images: ImageResolver, *, skip_invalid: bool, report: BuildReport,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """The rows of every mention file, split by split; the gold entity is the only candidate (NIL: none)."""
    for split, path in split_files.items():
        file = path.name
        for index, fields in iter_parsed(path, file, _parse_mention, skip_invalid=skip_invalid, report=report):
            try:
                gold = _gold(fields["answer"], qid2id, kb, (file, index))
            except ReleaseRecordError as error:
                if not skip_invalid:
                    raise
                report.add_skip(error)
                continue
            yield mention_row(
                group=name, split=split, source_file=file, index=index, name=unquote(fields["mentions"]),
                sentence=fields["sentence"], image=_mention_image(src, fields["imgPath"]), gold=gold,
                candidates=[gold] if gold is not None else [], images=images, report=report,
            )  # fmt: skip


def convert(src_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ExportConfig) -> ExportResult:
    """Convert a MIMIC-format folder into our Hub layout (all nine tasks; ``kb`` = every entity of the KB)."""
    src = source_folder(src_dir)
    split_files = find_split_files(src)
    name, pretty = dataset_name(split_files)
    report = BuildReport()
    qid2id = read_json_object(src / QID2ID_FILE, QID2ID_FILE)
    kb = read_kb(src, qid2id, skip_invalid=config.skip_invalid, report=report)
    images = image_resolver(src, config)
    rows = iter_mention_rows(src, split_files, name, qid2id, kb, images, skip_invalid=config.skip_invalid,
                             report=report)  # fmt: skip
    fields = published.card_fields(
        name,
        description=f"{pretty} is a multi-modal entity linking dataset: each mention, in a sentence with an image, "
        f"links to one of the {len(kb):,} entities of its knowledge base, or is NIL.",
        source=f"the MIMIC distribution of {pretty} (github.com/pengfei-luo/MIMIC)",
        citations=("mimic", "wikidiverse") if name == "wikidiverse" else ("mimic",),
        notes="- Converted from MIMIC's files: `kb_entity.json` (every entity is in `kb`), `qid2id.json` and the "
        "mention files. An entity shows the first image of its `image_list`.",
    )
    layout = peer_layout(name, f"{pretty} (MIMIC format)", tuple(split_files), fields, tasks=tasks_for("TI", "TI"))
    entities = (kb_row(entity, images, report) for entity in kb.values())
    return export_rows(rows, out_dir, layout, config, report=report, kb_entities=entities, source=src)
