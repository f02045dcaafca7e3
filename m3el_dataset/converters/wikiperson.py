"""Converter of WIKIPerson (Sun et al., Findings of EMNLP 2022), a visual named-entity linking dataset of persons.

Input layout. The annotation format is the released one (github.com/ict-bigdatalab/VNEL,
``released_data/WIKIPerson_Test.json``): a JSON array of
``{"id": int, "image": "462710.jpg", "boundingbox": "[x1, y1, x2, y2]", "wikiid": "Q259082"}``, one per person
in an image (an image showing two persons appears twice). The release (Kaggle) holds::

    WIKIPerson_Train_Dev.json, WIKIPerson_Test.json    the annotations (a ``_V1.0`` suffix is allowed; files
                                   a user split themselves, WIKIPerson_Train/Valid (or _Dev)/Test.json, are read too)
    <image>                        the annotated 224x224 images, beside the files or in images/
    <QID>.jpg                      the visual knowledge base, one image per entity: in kb_image/, or the one folder
                                   (this one or a subfolder) holding files named <QID>.<ext>
    a JSON array of entities       the textual knowledge base the VNEL README describes:
                                   {"id": "Q4842236", "name": ..., "description": ..., "image_url": ..., ...}; any
                                   *.json here or one folder down whose records have a QID ``id`` and a ``name``

The Kaggle page itself could not be read, so where the knowledge bases lie is found by content, not by name.
``WIKIPerson_Train_Dev.json`` is split 8:1 into ``train`` and ``validation`` by a hash of the image name (the
authors' own split is not published; both persons of an image stay together).

Each mention is the person's bounding box cropped from the image (in pixels, clamped to the image, saved as RGB PNG):
without the crop, an image showing two persons would be two identical mentions with different golds. The mention side
has no text, so the tasks are ``Im-Ie`` (visual KB), ``Im-Te`` (textual KB) and ``Im-ITe`` (both): the three the M³EL
paper names for WIKIPerson. The ``kb`` config lists every entity of either knowledge base plus any gold entity in
neither (kept, without name or image, and counted in the log). A ``wikiid`` that is empty or ``nil`` is NIL. The
annotation's ``id`` is kept as the ``source_id`` column.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import published
from ..export import ExportConfig, ExportResult, export_rows
from ..images import ImageResolver, ImageStatus, LoadedImage, decode_rgb
from ..json_records import first_record
from ..release import ReleaseRecordError, require
from ..report import BuildReport
from ..splits import split_of
from .common import KBEntity, image_resolver, iter_parsed, kb_row, mention_row, peer_layout, source_folder, tasks_for

logger = logging.getLogger(__name__)

IMAGE_DIR = "images"
KB_IMAGE_DIR = "kb_image"
TRAIN_DEV = "train_dev"
SPLIT_NAMES = {"train": "train", "valid": "validation", "dev": "validation", "val": "validation", "test": "test",
               "train_dev": TRAIN_DEV}  # fmt: skip
TRAIN_DEV_SPLITS, TRAIN_DEV_RATIOS = ("train", "validation"), (8, 1)
SOURCE_ID = ("source_id", "int64")
_FILE = re.compile(r"^WIKIPerson_(?P<split>[A-Za-z]+(?:_[A-Za-z]+)?)(?:_V[0-9.]+)?\.json$", re.IGNORECASE)
_QID = re.compile(r"Q[1-9][0-9]*")
_KB_IMAGE = re.compile(r"^Q[1-9][0-9]*\.(?:jpe?g|png|gif|webp|bmp)$", re.IGNORECASE)
_KB_FIELDS = ("id", "name", "description")


def find_split_files(src: Path) -> dict[str, Path]:
    """Our split name (or `TRAIN_DEV`) -> its ``WIKIPerson_<Split>.json`` file, in train, validation, test order."""
    files: dict[str, Path] = {}
    for path in sorted(src.glob("*.json")):
        match = _FILE.match(path.name)
        split = SPLIT_NAMES.get(match.group("split").lower()) if match else None
        if split in files:
            raise ValueError(f"Two {split} files in {src}: {files[split].name} and {path.name}; keep one.")
        if split is not None:
            files[split] = path
    if TRAIN_DEV in files and files.keys() & set(TRAIN_DEV_SPLITS):
        others = ", ".join(files[split].name for split in TRAIN_DEV_SPLITS if split in files)
        raise ValueError(f"{src} holds {files[TRAIN_DEV].name} and {others}: the first is split into train and "
                         "validation here, so the same persons would be read twice; keep one or the other.")
    if not files:
        raise FileNotFoundError(f"No WIKIPerson annotation file in {src}: expected WIKIPerson_Train_Dev.json and "
                                "WIKIPerson_Test.json (or WIKIPerson_Train/Valid/Test.json); pass the folder the "
                                "Kaggle download unpacks to.")  # fmt: skip
    return {split: files[split] for split in (TRAIN_DEV, "train", "validation", "test") if split in files}


def _parse(value: Any, file: str, index: int) -> dict[str, Any]:
    where = (file, index)
    image, box, qid = (require(value, key, str, where) for key in ("image", "boundingbox", "wikiid"))
    try:
        coordinates = json.loads(box)
    except (ValueError, RecursionError) as error:
        raise ReleaseRecordError(file, index, "boundingbox", f"expected '[x1, y1, x2, y2]' ({error})") from error
    # json reads NaN, Infinity and 1e999 (infinite), which no pixel position can be: refuse them by name.
    if not isinstance(coordinates, list) or len(coordinates) != 4 or not all(map(_finite_number, coordinates)):
        raise ReleaseRecordError(file, index, "boundingbox", f"expected four finite numbers [x1, y1, x2, y2], "
                                 f"got {box}")  # fmt: skip
    if coordinates[2] <= coordinates[0] or coordinates[3] <= coordinates[1]:
        raise ReleaseRecordError(file, index, "boundingbox", f"expected x1 < x2 and y1 < y2, got {box}")
    if not image.strip():
        raise ReleaseRecordError(file, index, "image", "empty image name")
    source_id = require(value, "id", int, where) if "id" in value else None
    qid = "" if qid.strip().lower() in ("", "nil") else qid.strip()
    return {"image": image, "box": coordinates, "qid": qid, "id": source_id}


def _finite_number(value: Any) -> bool:
    """An int (of any size: the crop clamps it to the image) or a finite float; not a bool."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


class _CroppingResolver(ImageResolver):
    """Serves the mention image of the annotation being converted cropped to its box (``mention`` and ``box`` are
    set before each row); every other image is served as stored."""

    mention = ""  # set, with ``box`` and ``where`` (file, record), before each row
    box: list[float]
    where: tuple[str, int]

    def load(self, local_path: str) -> LoadedImage:
        loaded = super().load(local_path)
        if local_path != self.mention or loaded.data is None:
            return loaded
        return crop(loaded, self.box, self.where, self.max_pixels)


def crop(loaded: LoadedImage, box: list[float], where: tuple[str, int], max_pixels: int | None = None) -> LoadedImage:
    """The image cropped to ``box`` (pixels, clamped to the image) as RGB PNG bytes, or why it cannot be decoded.

    A box outside the image raises `ReleaseRecordError` (the record is wrong, not the image).
    """
    image, problem = decode_rgb(loaded.data, max_pixels)  # RGB: a CMYK JPEG cannot be stored as PNG
    if image is None:
        return LoadedImage(ImageStatus.UNREADABLE, loaded.path, detail=f"{loaded.path}: {problem}")
    left, top = max(0, round(box[0])), max(0, round(box[1]))
    right, bottom = min(image.width, round(box[2])), min(image.height, round(box[3]))
    if right <= left or bottom <= top:
        raise ReleaseRecordError(*where, "boundingbox", f"box {box} lies outside the {image.size} image")
    buffer = io.BytesIO()
    image.crop((left, top, right, bottom)).save(buffer, format="PNG")
    path = f"{Path(loaded.path).stem}-{left}-{top}-{right}-{bottom}.png"
    return LoadedImage(ImageStatus.OK, path, buffer.getvalue())


def find_text_kb(src: Path, annotation_files: list[Path]) -> Path | None:
    """The textual knowledge base: the JSON file here or one folder down whose records have a QID ``id`` and a
    ``name``; ``None`` when there is none, ``ValueError`` when several files look like one."""
    found = []
    for path in sorted({*src.glob("*.json"), *src.glob("*.jsonl"), *src.glob("*/*.json"), *src.glob("*/*.jsonl")}):
        first = first_record(path, path.name) if path.is_file() and path not in annotation_files else None
        if isinstance(first, dict) and _QID.fullmatch(str(first.get("id", ""))) and isinstance(first.get("name"), str):
            found.append(path)
    if len(found) > 1:
        names = ", ".join(path.relative_to(src).as_posix() for path in found)
        raise ValueError(f"Several files in {src} look like WIKIPerson's textual knowledge base ({names}); keep one.")
    return found[0] if found else None


def _parse_entity(value: Any, file: str, index: int) -> tuple[KBEntity, list[str]]:
    """An entity of the textual knowledge base, and the fields no column keeps (``image_url``, ``lastrevid``, ...)."""
    where = (file, index)
    qid, name = require(value, "id", str, where), require(value, "name", str, where)
    if not _QID.fullmatch(qid.strip()):
        raise ReleaseRecordError(file, index, "id", f"{qid!r} is not a Wikidata item id (Q followed by digits)")
    description = value.get("description") or ""
    if not isinstance(description, str):
        raise ReleaseRecordError(file, index, "description", f"expected str, got {type(description).__name__}")
    return KBEntity(qid=qid.strip(), name=name, description=description), [k for k in value if k not in _KB_FIELDS]


def read_text_kb(path: Path, src: Path, *, skip_invalid: bool, report: BuildReport) -> dict[str, KBEntity]:
    """The entities of the textual knowledge base, in file order; the fields not kept are counted in ``report``."""
    file = path.relative_to(src).as_posix()
    entities: dict[str, KBEntity] = {}
    for index, (entity, ignored) in iter_parsed(path, file, _parse_entity, skip_invalid=skip_invalid, report=report):
        if entity.qid in entities:
            error = ReleaseRecordError(file, index, "id", f"duplicate entity {entity.qid}")
            if not skip_invalid:
                raise error
            report.add_skip(error)
            continue
        entities[entity.qid] = entity
        for key in ignored:
            report.add_ignored_field(f"kb.{key}", f"{file}, record {index}")
    return entities


def find_image_kb(src: Path) -> list[str]:
    """The visual knowledge base: the files ``<QID>.<ext>`` of ``kb_image/``, or of the one folder (``src`` or a
    subfolder) holding such files, as paths relative to ``src``; ``ValueError`` when several folders hold some."""
    folders = [src / KB_IMAGE_DIR] if (src / KB_IMAGE_DIR).is_dir() else [src, *sorted(p for p in src.iterdir()
                                                                                      if p.is_dir())]  # fmt: skip
    found = {}
    for folder in folders:
        with os.scandir(folder) as entries:
            names = sorted(entry.name for entry in entries if _KB_IMAGE.match(entry.name) and entry.is_file())
        if names:
            found[folder] = names
    if len(found) > 1:
        listed = ", ".join(f"{folder.relative_to(src).as_posix()}/ ({len(names)})" for folder, names in found.items())
        raise ValueError(f"Several folders of {src} hold entity images named <QID>.<ext>: {listed}. Keep the visual "
                         f"knowledge base in one of them (or in {KB_IMAGE_DIR}/).")  # fmt: skip
    return [(folder / name).relative_to(src).as_posix() for folder, names in found.items() for name in names]


@dataclass
class _KnowledgeBase:
    """The merged entities, the textual file read (if any) and whether entities have images."""

    entities: dict[str, KBEntity]
    text_file: str | None
    has_images: bool


def read_kb(src: Path, annotation_files: list[Path], *, skip_invalid: bool, report: BuildReport) -> _KnowledgeBase:
    """Both knowledge bases merged: the textual one's entities in file order, then image-only ones; raise when
    neither is found (without one, no entity could be ranked)."""
    text_kb = find_text_kb(src, annotation_files)
    images = find_image_kb(src)
    if text_kb is None and not images:
        raise FileNotFoundError(
            f"No knowledge base in {src}: the WIKIPerson converter reads the visual knowledge base (one image per "
            f"entity named <QID>.<ext>, in {KB_IMAGE_DIR}/ or any one folder) and/or the textual one (a JSON array "
            'of {"id": QID, "name", "description", ...}). Put the Kaggle release\'s knowledge-base files in the '
            "folder you convert."
        )
    entities = read_text_kb(text_kb, src, skip_invalid=skip_invalid, report=report) if text_kb else {}
    for path in images:
        qid = Path(path).stem
        entities[qid] = dataclasses.replace(entities.get(qid, KBEntity(qid=qid, name="")), image=path)
    return _KnowledgeBase(entities, text_kb.relative_to(src).as_posix() if text_kb else None, bool(images))


def _split_of(split: str, image: str) -> str:
    """The split of an annotation: its file's, or for ``Train_Dev`` a hash of its image (persons stay together)."""
    return split_of(image, TRAIN_DEV_SPLITS, TRAIN_DEV_RATIOS) if split == TRAIN_DEV else split


def _image_folder(src: Path, image: str) -> str:
    """Where an annotated image lies: ``images/``, else beside the annotation files."""
    return IMAGE_DIR if (src / IMAGE_DIR / image).is_file() else "."


def iter_mention_rows(
    src: Path, split_files: dict[str, Path], kb: dict[str, KBEntity], images: _CroppingResolver, *,
    skip_invalid: bool, report: BuildReport,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """The cropped person of each annotation; its gold entity is its only candidate (NIL: none)."""
    for split, path in split_files.items():
        for index, fields in iter_parsed(path, path.name, _parse, skip_invalid=skip_invalid, report=report):
            gold = kb.setdefault(fields["qid"], KBEntity(qid=fields["qid"], name="")) if fields["qid"] else None
            images.mention = f"{_image_folder(src, fields['image'])}/{fields['image']}"
            images.box, images.where = fields["box"], (path.name, index)
            try:
                row = mention_row(
                    group="wikiperson", split=_split_of(split, fields["image"]), source_file=path.name, index=index,
                    name="", sentence="", image=images.mention, gold=gold, candidates=[gold] if gold else [],
                    images=images, report=report,
                )  # fmt: skip
            except ReleaseRecordError as error:
                if not skip_invalid:
                    raise
                report.add_skip(error)
                continue
            yield {**row, SOURCE_ID[0]: fields["id"]}


def _splits(split_files: dict[str, Path]) -> tuple[str, ...]:
    """The splits the annotation files fill, in train, validation, test order."""
    filled = {split for name in split_files for split in (TRAIN_DEV_SPLITS if name == TRAIN_DEV else (name,))}
    return tuple(split for split in ("train", "validation", "test") if split in filled)


def _card_fields(kb: _KnowledgeBase, split_files: dict[str, Path]) -> dict[str, Any]:
    read = [f"the textual knowledge base `{kb.text_file}` (names, descriptions)"] if kb.text_file else []
    read += ["the visual knowledge base (`<QID>.<ext>` images)"] if kb.has_images else []
    notes = [
        "- The mention image is the bounding box cropped from the news image and stored as PNG (the only "
        "re-encoded images of this copy). The mention side has no text.",
        f"- Entities come from {' and '.join(read)}; a gold entity in neither is kept in `kb` without name or image.",
        "- The annotation's own `id` is the `source_id` column.",
        "- Where the Kaggle release keeps its knowledge bases was not documented: they were found by content "
        "(a folder of `<QID>.<ext>` files, a JSON array of `{id, name, description, ...}`).",
    ]
    if TRAIN_DEV in split_files:
        notes.append(f"- `{split_files[TRAIN_DEV].name}` is split 8:1 into `train` and `validation` by a hash of the "
                     "image name (the authors' split is not published; persons of one image stay together).")
    return published.card_fields(
        "wikiperson",
        description="WIKIPerson is a visual named-entity linking dataset: each mention is a person's bounding box "
        "in a news image, to be linked to a Wikidata entity of a knowledge base of about 120K persons.",
        source="WIKIPerson (github.com/ict-bigdatalab/VNEL; images and knowledge base from its Kaggle release)",
        citations=("wikiperson",),
        notes="\n".join(notes),
    )


def convert(src_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ExportConfig) -> ExportResult:
    """Convert a WIKIPerson folder into our Hub layout: ``Im-Ie``, ``Im-Te`` and ``Im-ITe``, as far as its
    knowledge bases (images, texts) allow; ``kb`` = every entity of either, and every gold entity."""
    src = source_folder(src_dir)
    split_files = find_split_files(src)
    report = BuildReport()
    kb = read_kb(src, list(split_files.values()), skip_invalid=config.skip_invalid, report=report)
    known = len(kb.entities)
    images = image_resolver(src, config, _CroppingResolver)
    rows = iter_mention_rows(src, split_files, kb.entities, images, skip_invalid=config.skip_invalid, report=report)
    entity_side = ("I" if kb.has_images else "") + ("T" if kb.text_file else "")
    layout = peer_layout("wikiperson", "WIKIPerson", _splits(split_files), _card_fields(kb, split_files),
                         tasks=tasks_for("I", entity_side), text_parts=frozenset(),
                         image_source="news agencies and Wikimedia", extra_columns=(SOURCE_ID,))  # fmt: skip

    def entities() -> Iterator[dict[str, Any]]:  # read after the mentions, which add the golds outside the KB
        if len(kb.entities) > known:
            logger.warning("%d gold entities of the annotations are in neither knowledge base: kept in kb without "
                           "name or image.", len(kb.entities) - known)  # fmt: skip
        yield from (kb_row(entity, images, report) for entity in kb.entities.values())

    return export_rows(rows, out_dir, layout, config, report=report, kb_entities=entities(), source=src)
