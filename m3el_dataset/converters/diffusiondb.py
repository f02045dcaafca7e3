"""Converter of DiffusionDB's ``2m_random_1k`` subset (Wang et al., 2022) into a prompt-to-image linking task.

DiffusionDB pairs Stable Diffusion images with the prompts that made them; it has no entities. Here each prompt is
a text mention (``S``, there is no separate surface form or description) and each image is an entity of a knowledge
base made of the subset's images, seen as an image only: the task is ``Tm-Ie``, ranking the prompt against every
image. The M³EL paper's Table 5 names the reverse direction for DiffusionDB, ``Im-Te`` (the image as mention, the
prompt as entity), which this copy cannot score. The gold entity (the prompt's own image, named by its file) is the
only candidate, and all mentions go to the ``test`` split (DiffusionDB has no splits of its own).

Two input layouts are read, as distributed (github.com/poloclub/diffusiondb, ``scripts/diffusiondb.py``, and the
dataset card of ``poloclub/diffusiondb``):

* the Parquet shards of the ``2m_random_1k`` config (``*.parquet``, at any depth), with columns ``image``
  (``{"bytes", "path"}``) and ``prompt`` (``seed``, ``step``, ``cfg``, ``sampler``, ... are not used);
* the raw parts as the Hub stores them, ``images/part-NNNNNN.zip`` (the loading script downloads these), each
  holding ``part-NNNNNN.json``, which maps each image file name to ``{"p": prompt, "se": seed, "c": cfg, "st":
  steps, "sa": sampler}``, and the PNG files;
* the same parts unzipped: ``part-NNNNNN/part-NNNNNN.json`` with the PNG files beside it.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import published
from ..export import ExportConfig, ExportResult, export_rows
from ..images import ImageResolver, ImageStatus, LoadedImage, too_large
from ..parquet_shards import iter_parquet_batches
from ..release import ReleaseRecordError, read_raw_records, require
from ..report import BuildReport
from .common import KBEntity, image_resolver, mention_row, peer_layout, source_folder, tasks_for

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
    file: str, index: int, prompt: str, name: str, path: str, images: ImageResolver, names: _ImageNames,
    report: BuildReport,
) -> dict:  # fmt: skip
    """The row of one prompt; its gold entity is the image named ``name`` (its id), found at ``path`` by ``images``."""
    names.claim(name, file, index)
    gold = KBEntity(qid=name, name="", image=path)
    return mention_row(group=NAME, split=SPLIT, source_file=file, index=index, name="", sentence=prompt, image="",
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
                    yield _row(file, index, prompt, name, name, images, names, report)
                except ReleaseRecordError as error:
                    if not config.skip_invalid:
                        raise
                    report.add_skip(error)
                index += 1


def _part_rows(
    file: str, table: object, locate: Callable[[str], str], images: ImageResolver, names: _ImageNames,
    config: ExportConfig, report: BuildReport,
) -> Iterator[dict]:  # fmt: skip
    """Rows of one part's table (image file name -> parameters); ``locate`` gives each image's path for ``images``."""
    if not isinstance(table, dict):
        raise ReleaseRecordError(file, None, None, "expected one JSON object: image file name -> parameters")
    for index, (image_name, params) in enumerate(table.items()):
        try:
            prompt = require(params, "p", str, (file, index))
            yield _row(file, index, prompt, image_name, locate(image_name), images, names, report)
        except ReleaseRecordError as error:
            if not config.skip_invalid:
                raise
            report.add_skip(error)


def iter_part_rows(files: list[Path], src: Path, config: ExportConfig, report: BuildReport) -> Iterator[dict]:
    """Rows from raw ``part-NNNNNN/part-NNNNNN.json`` files and the PNG files beside them."""
    images, names = image_resolver(src, config), _ImageNames()
    for path in files:
        file, folder = path.relative_to(src).as_posix(), path.parent.relative_to(src).as_posix()
        (_, table), *rest = list(read_raw_records(path, file)) or [(0, None)]
        if rest:
            raise ReleaseRecordError(file, None, None, "expected one JSON object: image file name -> parameters")
        yield from _part_rows(file, table, lambda name, folder=folder: f"{folder}/{name}", images, names, config,
                              report)


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


def iter_zip_rows(files: list[Path], src: Path, config: ExportConfig, report: BuildReport) -> Iterator[dict]:
    """Rows from zipped parts (``part-NNNNNN.zip`` holding ``part-NNNNNN.json`` and the PNG files), read in place."""
    images, names = image_resolver(src, config, _RowImage), _ImageNames()
    for path in files:
        file = path.relative_to(src).as_posix()
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as error:
            raise ReleaseRecordError(file, None, None, f"not a readable zip archive ({error})") from error
        with archive:
            try:
                table = json.loads(archive.read(f"{path.stem}.json"))
            except KeyError as error:
                raise ReleaseRecordError(file, None, None, f"no {path.stem}.json inside the archive") from error
            except zipfile.BadZipFile as error:
                raise ReleaseRecordError(file, None, None, f"{path.stem}.json is damaged ({error})") from error
            except ValueError as error:
                raise ReleaseRecordError(file, None, None, f"{path.stem}.json is not valid JSON ({error})") from error

            def locate(name: str, file: str = file, archive: zipfile.ZipFile = archive) -> str:
                images.current = read_member(archive, name, f"{file}/{name}", images)
                return images.current.path

            yield from _part_rows(file, table, locate, images, names, config, report)


def convert(src_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ExportConfig) -> ExportResult:
    """Convert DiffusionDB ``2m_random_1k`` (Parquet shards or raw parts) into our Hub layout (task ``Tm-Ie``)."""
    src = source_folder(src_dir)
    report = BuildReport()
    shards = sorted(src.rglob("*.parquet"))
    parts = sorted(p for p in src.rglob("part-*.json") if p.stem == p.parent.name)
    archives = sorted(src.rglob("part-*.zip"))
    if sum(map(bool, (shards, parts, archives))) > 1:
        raise ValueError(f"{src} holds more than one DiffusionDB layout (Parquet shards, part-*.zip archives, "
                         "unzipped part-* folders); keep one, so that no prompt is converted twice.")  # fmt: skip
    if shards:
        rows = iter_parquet_rows(shards, src, config, report)
    elif parts:
        rows = iter_part_rows(parts, src, config, report)
    elif archives:
        rows = iter_zip_rows(archives, src, config, report)
    else:
        raise FileNotFoundError(f"No DiffusionDB data in {src}: expected the 2m_random_1k Parquet shards, "
                                "images/part-NNNNNN.zip archives, or unzipped part-NNNNNN/part-NNNNNN.json files "
                                "with their images.")  # fmt: skip
    fields = published.card_fields(
        NAME,
        description="DiffusionDB pairs images generated by Stable Diffusion with the prompts real users wrote. Here "
        "its `2m_random_1k` subset is a prompt-to-image linking task: each prompt is a text mention and each "
        "image an entity, as the M³EL paper's Table 5 uses it.",
        source="DiffusionDB `2m_random_1k` (huggingface.co/datasets/poloclub/diffusiondb)",
        citations=("diffusiondb",),
        notes="- DiffusionDB has no entities: an image's knowledge-base id is its file name (DiffusionDB's "
        "`image_name`, unique), and a prompt's gold entity is its own image. The only task is `Tm-Ie`; all "
        "mentions are in `test`.\n"
        "- The prompt is the whole context S; there is no surface form M or description D, so only the formats "
        "`S` and `S1` exist.",
    )
    layout = peer_layout(NAME, "DiffusionDB 2m_random_1k", (SPLIT,), fields, tasks=tasks_for("T", "I"),
                         text_parts=frozenset({"S"}), image_source="Stable Diffusion (DiffusionDB, CC0)")  # fmt: skip
    return export_rows(rows, out_dir, layout, config, report=report, source=src)
