"""Finding and reading the files of a GHMFC or MELBench folder of WikiMEL or RichpediaMEL (see `ghmfc`).

The records files are JSON objects keyed by record id, read whole (MELBench's largest is 5.6 MB), from a ``.zip``
as MELBench's clone holds them or unzipped; a key that appears twice is an error, never a silent overwrite.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..release import ReleaseRecordError
from .common import looks_keyed_by_id

MELBENCH_FILES = {"wikidata-mel": ("wikimel", "WikiMEL"), "richpedia-mel": ("richpediamel", "RichpediaMEL")}
"""MELBench's records files (by lower-case stem; ``.json`` or ``.zip``) -> (name, pretty name)."""
_FOLDER_NAMES = {"wikimel": MELBENCH_FILES["wikidata-mel"], "wikidatamel": MELBENCH_FILES["wikidata-mel"],
                 "richpediamel": MELBENCH_FILES["richpedia-mel"]}  # fmt: skip
"""A GHMFC folder's name, lower-case letters and digits only -> (name, pretty name)."""
SPLIT_STEMS = {"train": "train", "dev": "validation", "valid": "validation", "validation": "validation",
               "test": "test"}  # fmt: skip
SIDE_FILES = ("splits.json", "qid2ne.json", "qid2abs.json")
INPUT_DIR = "input_data"
IMAGE_DIR = "images"


@dataclass(frozen=True)
class GhmfcLayout:
    """Where one dataset's files are: its records (by split, ``""`` for a file without one), side files, images."""

    name: str
    pretty_name: str
    records: dict[str, Path]
    melbench: bool
    side_files: dict[str, Path]
    image_dir: Path | None


def _record_sets(folder: Path) -> dict[str, Path]:
    """The records files of ``folder``: MELBench's (a ``.json`` preferred to its ``.zip``) and GHMFC's split files."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        stem, suffix = path.stem.lower(), path.suffix.lower()
        if not path.is_file() or path.name.startswith("."):
            continue
        if stem in MELBENCH_FILES and suffix in (".json", ".zip") and (suffix == ".json" or stem not in found):
            found[stem] = path
        elif stem in SPLIT_STEMS and suffix == ".json" and looks_keyed_by_id(path):
            found[f"split:{stem}"] = path
    return found


def _folders(src: Path) -> Iterator[Path]:
    """``src`` and its sub-folders two levels down, image folders left out (they can hold many thousand files)."""
    yield src
    for child in sorted(p for p in src.iterdir() if p.is_dir() and p.name != IMAGE_DIR and p.name[:1] != "."):
        yield child
        yield from sorted(p for p in child.iterdir() if p.is_dir() and p.name != IMAGE_DIR and p.name[:1] != ".")


def holds_records(src: Path) -> bool:
    """Whether ``src`` (or a folder up to two levels down) holds GHMFC/MELBench records; False if unreadable."""
    try:
        return any(_record_sets(folder) for folder in _folders(src))
    except OSError:
        return False


def _one_set(src: Path) -> tuple[Path, list[Path], dict[str, Path]]:
    """The folder holding the records, its MELBench file (if any) and its GHMFC split files (stem -> path)."""
    sets = {folder: found for folder in _folders(src) if (found := _record_sets(folder))}
    if not sets:
        side = next((p for folder in _folders(src) for n in SIDE_FILES if (p := folder / n).is_file()), None)
        hint = (f" {side.parent} holds GHMFC's {side.name} but no records (GHMFC's WikiMEL folder has none): put "
                "MELBench's Wikidata-MEL.json or Wikidata-MEL.zip (github.com/seukgcode/MELBench) into that "
                "folder and convert again." if side else "")  # fmt: skip
        raise FileNotFoundError(f"No GHMFC/MELBench records in {src}: expected Wikidata-MEL.json, Richpedia-MEL.json "
                                f"(or their .zip), or train.json/test.json keyed by record id.{hint}")  # fmt: skip
    (folder, found), *others = sets.items()
    melbench = [path for key, path in found.items() if not key.startswith("split:")]
    if others or len(melbench) > 1 or (melbench and len(found) > 1):
        listing = "; ".join(f"{folder}: {', '.join(p.name for p in found.values())}" for folder, found in sets.items())
        raise ValueError(f"{src} holds more than one set of records ({listing}); pass the folder of one dataset, "
                         "with one set of records, so that no mention is converted twice.")  # fmt: skip
    return folder, melbench, {key.removeprefix("split:"): path for key, path in found.items()}


def find_layout(src: Path) -> GhmfcLayout:
    """The one dataset in ``src``; raise naming what is missing or ambiguous."""
    folder, melbench, split_files = _one_set(src)
    root = folder.parent if folder.name == INPUT_DIR and folder != src else folder
    side_files = {}
    for name in SIDE_FILES:
        path = next((p for p in (root / name, root / INPUT_DIR / name, folder / name) if p.is_file()), None)
        if path is not None:
            side_files[name] = path
    if melbench:
        name, pretty = MELBENCH_FILES[melbench[0].stem.lower()]
        records = {"": melbench[0]}
    else:
        name, pretty = _FOLDER_NAMES.get(re.sub(r"[^a-z0-9]", "", root.name.lower()), ("ghmfc", "GHMFC"))
        records = {SPLIT_STEMS[stem]: path for stem, path in split_files.items()}
        if len(records) < len(split_files):
            listing = ", ".join(path.name for path in split_files.values())
            raise ValueError(f"{folder} holds two files of one split ({listing}); keep one.")
        records = {split: records[split] for split in ("train", "validation", "test") if split in records}
    image_dir = root / IMAGE_DIR if (root / IMAGE_DIR).is_dir() else None
    return GhmfcLayout(name, pretty, records, bool(melbench), side_files, image_dir)


def _no_duplicate_keys(display_name: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(pairs)
        if len(value) < len(pairs):
            key = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
            raise ReleaseRecordError(display_name, None, None, f"the key {key!r} appears twice in one object; JSON "
                                     "readers keep only one of them, so remove the other")  # fmt: skip
        return value

    return hook


def read_object(path: Path, src: Path) -> tuple[str, dict[str, Any]]:
    """``(display name, object)`` of a JSON object file, or of the one ``.json`` inside a ``.zip``."""
    display = path.relative_to(src).as_posix()
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if m.lower().endswith(".json") and "__MACOSX" not in m]
                if len(members) != 1:
                    raise ReleaseRecordError(display, None, None, f"expected one .json file inside, found {members}")
                display = f"{display}/{members[0]}"
                data = archive.read(members[0])
        else:
            data = path.read_bytes()
        value = json.loads(data.decode("utf-8-sig"), object_pairs_hook=_no_duplicate_keys(display))
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ReleaseRecordError(display, None, None, f"unreadable ({type(error).__name__}: {error})") from error
    if not isinstance(value, dict):
        raise ReleaseRecordError(display, None, None, f"expected one JSON object keyed by id, got a "
                                 f"{type(value).__name__}")  # fmt: skip
    return display, value


def read_strings(path: Path, src: Path) -> dict[str, str]:
    """A ``qid2ne.json``/``qid2abs.json`` map of QID to text."""
    display, value = read_object(path, src)
    for index, (key, text) in enumerate(value.items()):
        if not isinstance(text, str):
            raise ReleaseRecordError(display, index, key, f"expected a string, got {type(text).__name__}")
    return value


def read_splits(path: Path, src: Path) -> dict[str, str]:
    """Record id -> our split, from GHMFC's ``splits.json`` (``{"train": [ids], "dev": [ids], "test": [ids]}``)."""
    display, value = read_object(path, src)
    assigned: dict[str, str] = {}
    for key, ids in value.items():
        split = SPLIT_STEMS.get(key.lower())
        if split is None or not isinstance(ids, list):
            raise ReleaseRecordError(display, None, key, f"expected a list of record ids under one of "
                                     f"{', '.join(SPLIT_STEMS)}")  # fmt: skip
        for record_id in map(str, ids):
            if assigned.setdefault(record_id, split) != split:
                raise ReleaseRecordError(display, None, key, f"record id {record_id!r} is in two splits")
    return assigned
