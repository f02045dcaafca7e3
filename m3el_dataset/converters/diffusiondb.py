"""Converter of DiffusionDB (Wang et al., 2022), e.g. its ``2m_random_1k`` subset, into a prompt-to-image linking task.

DiffusionDB pairs Stable Diffusion images with the prompts that made them; it has no entities. Here each prompt is
a text mention (``S``, there is no separate surface form or description) and each image is an entity of a knowledge
base made of the subset's images, seen as an image only: the task is ``Tm-Ie``, ranking the prompt against every
image. The M³EL paper's Table 5 names the reverse direction for DiffusionDB, ``Im-Te`` (the image as mention, the
prompt as entity), which this copy cannot score. The gold entity (the prompt's own image, named by its file) is the
only candidate, and all mentions go to the ``test`` split (DiffusionDB has no splits of its own).

The layouts read are those the dataset is distributed in (github.com/poloclub/diffusiondb, its README,
``scripts/download.py`` and ``scripts/diffusiondb.py``, and the dataset card of ``poloclub/diffusiondb``); see
`diffusiondb_layout`: the ``2m_random_1k`` Parquet shards; the Hub's ``images/part-NNNNNN.zip`` archives, read
in place, with or without ``metadata.parquet`` beside them (when it is there, the prompts are its rows of the
parts present); the parts unzipped into folders of their own, or flat, tables and images side by side, as
``scripts/download.py --unzip`` leaves them.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import published
from ..export import ExportConfig, ExportResult, export_rows
from ..images import ImageResolver, ImageStatus, LoadedImage, too_large
from ..json_records import SKIP_REMEDY
from ..parquet_shards import iter_parquet_batches
from ..release import ReleaseRecordError, read_raw_records, require
from ..report import BuildReport
from .common import KBEntity, image_resolver, mention_row, peer_layout, source_folder, tasks_for
from .diffusiondb_layout import Layout, Part, find_layout, read_metadata

NAME = "diffusiondb"
SPLIT = "test"


class _RowImage(ImageResolver):
    """The image of the Parquet row (or zip member) being converted, served to `record_to_row` as if it were a file:
    the producer checks it (`ImageResolver.check`) and sets ``current`` before building the row."""

    current = LoadedImage(ImageStatus.MISSING, "")

    def load(self, local_path: str) -> LoadedImage:
        if local_path != self.current.path:
            return LoadedImage(ImageStatus.MISSING, local_path, detail="no image bytes in the source")
        return self.current


class _ImageNames:
    """DiffusionDB's image names (``image_name``, the file name), each the knowledge-base id of one image."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}

    def claim(self, name: str, file: str, index: int) -> None:
        """Record ``name`` as the image of this record; refuse a name that is already another record's."""
        where = f"{file}, record {index}"
        first = self.first.setdefault(name, where)
        if first != where:
            raise ReleaseRecordError(file, index, "image", f"image name {name!r} is already that of {first}; each "
                                     "image is one entity of the knowledge base, so image names must be unique")


def _row(
    source: str, label: str, index: int, prompt: str, name: str, images: _RowImage, names: _ImageNames,
    report: BuildReport,
) -> dict:  # fmt: skip
    """The row of record ``index`` of ``label`` (where its prompt was read; ``source``, the file of its part or
    shard, gives its id); its gold entity is the image named ``name`` (its id), ``images.current``."""
    names.claim(name, label, index)
    gold = KBEntity(qid=name, name="", image=images.current.path)
    return mention_row(group=NAME, split=SPLIT, source_file=source, index=index, name="", sentence=prompt, image="",
                       gold=gold, candidates=[gold], images=images, report=report)  # fmt: skip


def iter_parquet_rows(files: list[Path], src: Path, config: ExportConfig, report: BuildReport) -> Iterator[dict]:
    """Rows from the ``2m_random_1k`` Parquet shards, one batch of rows in memory at a time."""
    images, names = image_resolver(src, config, _RowImage), _ImageNames()
    for path in files:
        file = path.relative_to(src).as_posix()
        index = 0
        for batch in iter_parquet_batches(path, ["image", "prompt"], batch_size=32):  # a damaged file is named
            for value in batch.to_pylist():
                try:
                    prompt = require(value, "prompt", str, (file, index))
                    cell = require(value, "image", dict, (file, index))
                    name = cell.get("path") or f"{Path(file).stem}-{index:06d}.png"
                    data = cell.get("bytes")
                    where = f"{file}, record {index}"
                    images.current = (images.check(name, data, where) if data
                                      else LoadedImage(ImageStatus.MISSING, name, detail=f"{where}: no image bytes"))
                    yield _row(file, file, index, prompt, name, images, names, report)
                except ReleaseRecordError as error:
                    if not config.skip_invalid:
                        raise
                    report.add_skip(error)
                index += 1


def read_member(archive: zipfile.ZipFile, name: str, path: str, images: ImageResolver) -> LoadedImage:
    """The image ``name`` of ``archive`` (``path`` names it in the report), read under ``images``' limits: a member
    larger than ``images.max_bytes`` is refused from the archive's directory, and no more than that is ever read."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        return LoadedImage(ImageStatus.MISSING, path, detail="no such file in the archive")
    if info.file_size > images.max_bytes:
        problem = too_large(info.file_size, images.max_bytes)
        return LoadedImage(ImageStatus.UNREADABLE, path, detail=f"{path}: {problem}")
    try:
        with archive.open(info) as member:
            data = member.read(images.max_bytes + 1)
    except Exception as error:  # zipfile raises many types for a damaged member (BadZipFile, zlib.error, EOFError)
        problem = f"cannot read ({type(error).__name__}: {error})"
        return LoadedImage(ImageStatus.UNREADABLE, path, detail=f"{path}: {problem}")
    return images.check(path, data, path)


def _part_table(
    part: Part, src: Path, metadata: dict[int, list[dict]] | None, metadata_file: str, archive: zipfile.ZipFile | None,
    remedy: str,
) -> tuple[str, list[tuple[Any, Any, str]]]:  # fmt: skip
    """``(where the prompts are read, [(image name, record, prompt field)])`` of a part: its rows of the metadata
    table when there is one, else its own table (unzipped, or inside ``archive``)."""
    if metadata and metadata.get(part.number):
        return f"{metadata_file} ({part.name})", [(row["image_name"], row, "prompt") for row in metadata[part.number]]
    if part.table is not None:
        file = part.table.relative_to(src).as_posix()
        (_, table), *rest = list(read_raw_records(part.table, file)) or [(0, None)]
        table = None if rest else table
    else:
        file, member = part.archive.relative_to(src).as_posix(), f"{part.name}.json"
        try:
            table = json.loads(archive.read(member))
        except KeyError as error:
            raise ReleaseRecordError(file, None, None, f"no {member} inside the archive", remedy) from error
        except zipfile.BadZipFile as error:
            raise ReleaseRecordError(file, None, None, f"{member} is damaged ({error})", remedy) from error
        except ValueError as error:
            raise ReleaseRecordError(file, None, None, f"{member} is not valid JSON ({error})", remedy) from error
    if not isinstance(table, dict):
        raise ReleaseRecordError(file, None, None, "expected one JSON object: image file name -> parameters", remedy)
    return file, [(name, params, "p") for name, params in table.items()]


@contextlib.contextmanager
def _archive_of(part: Part, src: Path, remedy: str) -> Iterator[zipfile.ZipFile | None]:
    """The part's zip archive, opened, when its images are read from it (``None``: they are unzipped)."""
    if part.table is not None:
        yield None
        return
    try:
        archive = zipfile.ZipFile(part.archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise ReleaseRecordError(part.archive.relative_to(src).as_posix(), None, None,
                                 f"not a readable zip archive ({error})", remedy) from error  # fmt: skip
    with archive:
        yield archive


def iter_part_rows(layout: Layout, src: Path, config: ExportConfig, report: BuildReport) -> Iterator[dict]:
    """Rows of every part, its images read unzipped or from its zip archive in place, its prompts from the metadata
    table or its own table. A part that cannot be read is skipped with ``skip_invalid`` only when others remain."""
    files, images, names = image_resolver(src, config), image_resolver(src, config, _RowImage), _ImageNames()
    metadata = read_metadata(layout.metadata, layout.parts) if layout.metadata is not None else None
    metadata_file = layout.metadata.relative_to(src).as_posix() if layout.metadata is not None else ""
    several = len(layout.parts) > 1
    remedy = SKIP_REMEDY if several else "Download this part again (the only one here: skipping it leaves nothing)."
    for part in layout.parts:
        try:
            with _archive_of(part, src, remedy) as archive:
                label, records = _part_table(part, src, metadata, metadata_file, archive, remedy)
                source = (part.table or part.archive).relative_to(src).as_posix()
                folder = part.table.parent.relative_to(src).as_posix() if part.table is not None else ""
                for index, (name, record, field) in enumerate(records):
                    try:
                        prompt = require(record, field, str, (label, index))
                        if not isinstance(name, str) or not name:
                            raise ReleaseRecordError(label, index, "image_name", "expected an image file name")
                        images.current = (files.load(f"{folder}/{name}") if archive is None
                                          else read_member(archive, name, f"{source}/{name}", images))  # fmt: skip
                        yield _row(source, label, index, prompt, name, images, names, report)
                    except ReleaseRecordError as error:
                        if not config.skip_invalid:
                            raise
                        report.add_skip(error)
        except ReleaseRecordError as error:
            if error.index is not None or not (config.skip_invalid and several):
                raise
            report.add_skip(error)
def _what(layout: Layout) -> str:
    """What of DiffusionDB was converted, for the card."""
    if layout.shards:
        return "its `2m_random_1k` subset"
    names = [part.name for part in layout.parts]
    parts = names[0] if len(names) == 1 else f"{len(names)} of its parts ({names[0]} to {names[-1]})"
    return parts + (f", prompts from `{layout.metadata.name}`" if layout.metadata is not None else "")


def convert(src_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ExportConfig) -> ExportResult:
    """Convert DiffusionDB (``2m_random_1k`` shards, or parts zipped or unzipped, with or without the metadata
    table) into our Hub layout (task ``Tm-Ie``)."""
    src = source_folder(src_dir)
    report = BuildReport()
    layout = find_layout(src)
    if layout.shards:
        rows = iter_parquet_rows(layout.shards, src, config, report)
    else:
        rows = iter_part_rows(layout, src, config, report)
    fields = published.card_fields(
        NAME,
        description="DiffusionDB pairs images generated by Stable Diffusion with the prompts real users wrote. Here "
        f"{_what(layout)} is a prompt-to-image linking task: each prompt is a text mention and each image an "
        "entity. The M³EL paper's Table 5 uses the 2m_random_1k subset for the reverse direction, I_m-T_e (an "
        "image as the mention, prompts as entities), which this layout cannot "
        "score: here the prompts are the mentions.",
        source=f"DiffusionDB, {_what(layout)} (huggingface.co/datasets/poloclub/diffusiondb)",
        citations=("diffusiondb",),
        notes="- DiffusionDB has no entities: an image's knowledge-base id is its file name (DiffusionDB's "
        "`image_name`, unique), and a prompt's gold entity is its own image. The only task is `Tm-Ie`; all "
        "mentions are in `test`.\n"
        "- The prompt is the whole context S; there is no surface form M or description D, so only the formats "
        "`S` and `S1` exist.",
    )
    pretty = "DiffusionDB 2m_random_1k" if layout.shards else "DiffusionDB"
    hub_layout = peer_layout(NAME, pretty, (SPLIT,), fields, tasks=tasks_for("T", "I"), text_parts=frozenset({"S"}),
                             image_source="Stable Diffusion (DiffusionDB, CC0)")  # fmt: skip
    return export_rows(rows, out_dir, hub_layout, config, report=report, source=src)
