"""Converter of WIKIPerson (Sun et al., Findings of EMNLP 2022), a visual named-entity linking dataset of persons.

Input layout. The annotation format is the released one (github.com/ict-bigdatalab/VNEL,
``released_data/WIKIPerson_Test.json``): a JSON array of
``{"id": int, "image": "462710.jpg", "boundingbox": "[x1, y1, x2, y2]", "wikiid": "Q259082"}``, one per person
in an image (an image showing two persons appears twice). The full images and the 120K-entity knowledge base are
distributed on Kaggle, whose layout could not be looked up; this converter **assumes**::

    WIKIPerson_Train.json / WIKIPerson_Valid.json (or _Dev) / WIKIPerson_Test.json   any of them, as above
    images/<image>          the annotated images (the folder itself is also searched)
    kb_image/<QID>.<ext>    one image per knowledge-base entity

Each mention is the person's bounding box cropped from the image (in pixels, clamped to the image, saved as
RGB PNG): without the crop, an image showing two persons would be two identical mentions with different golds. The
source has no text on either side, so the only task is ``Im-Ie`` (the M³EL paper names ``Im-Te``, ``Im-Ie`` and
``Im-ITe`` for WIKIPerson; the other two need entity texts, which this converter does not read); the ``kb`` config
lists every entity of ``kb_image/`` plus any gold entity without an image there. A ``wikiid`` that is empty or
``nil`` is NIL.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import published
from ..export import ExportConfig, ExportResult, export_rows
from ..images import ImageResolver, ImageStatus, LoadedImage, decode_rgb
from ..release import ReleaseRecordError, require
from ..report import BuildReport
from .common import KBEntity, image_resolver, iter_parsed, kb_row, mention_row, peer_layout, source_folder, tasks_for

IMAGE_DIR = "images"
KB_IMAGE_DIR = "kb_image"
SPLIT_NAMES = {"train": "train", "valid": "validation", "dev": "validation", "val": "validation", "test": "test"}
_FILE = re.compile(r"^WIKIPerson_(?P<split>[A-Za-z]+)\.json$", re.IGNORECASE)


def find_split_files(src: Path) -> dict[str, Path]:
    """Our split name -> its ``WIKIPerson_<Split>.json`` file, in train, validation, test order."""
    files: dict[str, Path] = {}
    for path in sorted(src.glob("*.json")):
        match = _FILE.match(path.name)
        split = SPLIT_NAMES.get(match.group("split").lower()) if match else None
        if split in files:
            raise ValueError(f"Two {split} files in {src}: {files[split].name} and {path.name}; keep one.")
        if split is not None:
            files[split] = path
    if not files:
        raise FileNotFoundError(f"No WIKIPerson_Train/Valid/Test.json file in {src}.")
    return {split: files[split] for split in ("train", "validation", "test") if split in files}


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
    return {"image": image, "box": coordinates, "qid": "" if qid.strip().lower() in ("", "nil") else qid.strip()}


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


def read_kb(src: Path) -> dict[str, KBEntity]:
    """Every ``kb_image/<QID>.<ext>`` file as an entity with that image."""
    folder = src / KB_IMAGE_DIR
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if not files:  # without it every entity would be image-less and Im-Ie unscorable: say so, do not export
        raise FileNotFoundError(
            f"No entity image in {folder}: the WIKIPerson converter reads its knowledge base from "
            f"{KB_IMAGE_DIR}/<QID>.<ext> (one image per entity) and the annotated images from {IMAGE_DIR}/. "
            "Arrange the Kaggle release's files so (this layout is assumed; see the module docstring)."
        )
    return {path.stem: KBEntity(qid=path.stem, name="", image=f"{KB_IMAGE_DIR}/{path.name}") for path in files}


def iter_mention_rows(
    src: Path, split_files: dict[str, Path], kb: dict[str, KBEntity], images: _CroppingResolver, *,
    skip_invalid: bool, report: BuildReport,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """The cropped person of each annotation; its gold entity is its only candidate (NIL: none)."""
    for split, path in split_files.items():
        for index, fields in iter_parsed(path, path.name, _parse, skip_invalid=skip_invalid, report=report):
            folder = IMAGE_DIR if (src / IMAGE_DIR / fields["image"]).is_file() else "."
            gold = kb.setdefault(fields["qid"], KBEntity(qid=fields["qid"], name="")) if fields["qid"] else None
            images.mention, images.box, images.where = f"{folder}/{fields['image']}", fields["box"], (path.name, index)
            try:
                yield mention_row(
                    group="wikiperson", split=split, source_file=path.name, index=index, name="", sentence="",
                    image=images.mention, gold=gold, candidates=[gold] if gold else [], images=images, report=report,
                )  # fmt: skip
            except ReleaseRecordError as error:
                if not skip_invalid:
                    raise
                report.add_skip(error)


def convert(src_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ExportConfig) -> ExportResult:
    """Convert a WIKIPerson folder into our Hub layout (task ``Im-Ie``; ``kb`` = every entity with an image)."""
    src = source_folder(src_dir)
    split_files = find_split_files(src)
    report = BuildReport()
    kb = read_kb(src)
    images = image_resolver(src, config, _CroppingResolver)
    rows = iter_mention_rows(src, split_files, kb, images, skip_invalid=config.skip_invalid, report=report)
    fields = published.card_fields(
        "wikiperson",
        description="WIKIPerson is a visual named-entity linking dataset: each mention is a person's bounding box "
        "in a news image, to be linked to a Wikidata entity of a knowledge base of about 120K persons.",
        source="WIKIPerson (github.com/ict-bigdatalab/VNEL; images and knowledge base from its Kaggle release)",
        citations=("wikiperson",),
        notes="- The mention image is the bounding box cropped from the news image and stored as PNG (the only "
        "re-encoded images of this copy). The source has no text, so `Im-Ie` is the only task.\n"
        "- The layout of the Kaggle release (`images/`, `kb_image/<QID>.<ext>`) was assumed, not looked up.",
    )
    layout = peer_layout("wikiperson", "WIKIPerson", tuple(split_files), fields, tasks=tasks_for("I", "I"),
                         text_parts=frozenset(), image_source="news agencies and Wikimedia")  # fmt: skip

    def entities() -> Iterator[dict[str, Any]]:  # read after the mentions, which add image-less gold entities
        yield from (kb_row(entity, images, report) for entity in kb.values())

    return export_rows(rows, out_dir, layout, config, report=report, kb_entities=entities(), source=src)
