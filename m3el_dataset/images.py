"""Resolving and reading the release's local image paths, safely and without re-encoding."""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath

from PIL import Image

RELEASE_ROOT_NAME = "M3EL"
"""The release's local paths start with ``/M3EL/``: the root of the unpacked archive, i.e. the folder users give."""


class ImageStatus(str, Enum):
    """What happened when an image of the release was looked up."""

    OK = "ok"
    MISSING = "missing"
    UNREADABLE = "unreadable"
    OUTSIDE_FOLDER = "outside_folder"


@dataclass(frozen=True)
class LoadedImage:
    """An image cell ready for a `datasets.Image` feature, or the reason there is none.

    ``path`` is the image's path relative to the release folder (posix), kept for provenance; ``data`` holds the
    file's bytes exactly as stored (never re-encoded) when ``status`` is ``OK``, else ``None``.
    """

    status: ImageStatus
    path: str
    data: bytes | None = None
    detail: str = ""

    def to_cell(self) -> dict[str, object] | None:
        """The value for an `Image` feature: ``{"bytes", "path"}``, or ``None`` for an empty cell."""
        return {"bytes": self.data, "path": self.path} if self.data is not None else None


def release_image_root(raw_dir: str | os.PathLike) -> Path:
    """The folder that ``/M3EL/`` stands for: ``raw_dir`` itself, or ``raw_dir/M3EL`` if the user gave its parent."""
    raw_dir = Path(raw_dir)
    nested = raw_dir / RELEASE_ROOT_NAME
    if nested.is_dir() and not any(p.name.endswith("_candidates_images") for p in raw_dir.iterdir() if p.is_dir()):
        return nested
    return raw_dir


def is_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path``, once ``..`` and symbolic links are resolved, lies inside the folder ``root``: the rule
    for every file of a release that is read (images, record files) or uploaded."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def relative_release_path(local_path: str) -> PurePosixPath | None:
    """Turn a release path (``/M3EL/a/b.jpg`` or ``a/b.jpg``) into a relative one; ``None`` if it names no file.

    Any other absolute path (``/etc/passwd``, ``C:\\x``) is returned unchanged so that the caller's containment
    check rejects it, rather than being silently re-rooted inside the folder.
    """
    normalised = local_path.strip().replace("\\", "/")
    if not normalised:
        return None
    path = PurePosixPath(normalised)
    if path.is_absolute() and len(path.parts) > 1 and path.parts[1] == RELEASE_ROOT_NAME:
        return PurePosixPath(*path.parts[2:]) if len(path.parts) > 2 else None
    return path


class ImageResolver:
    """Finds the release's images inside one folder and reads their bytes.

    Args:
        root (`str` or `os.PathLike`):
            The folder that ``/M3EL/`` stands for (see `release_image_root`). Nothing outside it is ever opened:
            a path that leaves it (``..``, an absolute path, a symbolic link pointing out) gets ``OUTSIDE_FOLDER``.
        decode_check (`bool`, *optional*, defaults to `True`):
            Decode each image once with PIL to catch truncated or corrupt files (the bytes kept are the file's own).
    """

    def __init__(self, root: str | os.PathLike, decode_check: bool = True):
        self.root = Path(root).resolve()
        self.decode_check = decode_check
        self._listings: dict[Path, dict[tuple[str, str], str]] = {}

    def _find_case_insensitive(self, candidate: Path) -> Path | None:
        """The file ``candidate`` names, allowing its extension to differ in case (``.JPG`` for ``.jpg``)."""
        if candidate.is_file():
            return candidate
        folder = candidate.parent
        if folder not in self._listings:
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                names = []
            self._listings[folder] = {_stem_and_lower_suffix(name): name for name in reversed(names)}
        actual = self._listings[folder].get(_stem_and_lower_suffix(candidate.name))
        return folder / actual if actual is not None else None

    def load(self, local_path: str) -> LoadedImage:
        """Look up ``local_path`` (as written in a record) and return its bytes or why there are none."""
        relative = relative_release_path(local_path)
        if relative is None:
            return LoadedImage(ImageStatus.MISSING, local_path, detail="empty image path")
        # Resolving follows ".." and symbolic links without opening anything; only a path inside is read.
        candidate = (self.root / relative).resolve()
        if relative.is_absolute() or not candidate.is_relative_to(self.root):
            return LoadedImage(ImageStatus.OUTSIDE_FOLDER, local_path, detail=f"leaves the release folder {self.root}")
        found = self._find_case_insensitive(candidate)
        if found is None:
            return LoadedImage(ImageStatus.MISSING, relative.as_posix(), detail=f"no file {candidate}")
        # The case-insensitive match may be a symbolic link pointing out: check the file actually found.
        if not is_inside(found, self.root):
            return LoadedImage(ImageStatus.OUTSIDE_FOLDER, relative.as_posix(), detail="link points outside")
        path = found.relative_to(self.root).as_posix()
        try:
            data = found.read_bytes()
        except OSError as error:
            return LoadedImage(ImageStatus.UNREADABLE, path, detail=f"cannot read {found}: {error}")
        problem = image_decode_problem(data) if self.decode_check else None
        if problem:
            return LoadedImage(ImageStatus.UNREADABLE, path, detail=f"{found}: {problem}")
        return LoadedImage(ImageStatus.OK, path, data)


def _stem_and_lower_suffix(file_name: str) -> tuple[str, str]:
    stem, suffix = os.path.splitext(file_name)
    return stem, suffix.lower()


def decode_rgb(data: bytes | None) -> tuple[Image.Image | None, str | None]:
    """Decode image bytes to RGB: ``(image, None)``, or ``(None, why)`` when they are not a readable image."""
    if not data:
        return None, "empty file"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.convert("RGB"), None
    except Exception as error:  # PIL raises many types for corrupt files; any of them means "unusable image"
        return None, f"not a readable image ({type(error).__name__}: {error})"


def image_decode_problem(data: bytes) -> str | None:
    """Decode ``data`` with PIL and return why it failed, or ``None`` if it is a readable image."""
    return decode_rgb(data)[1]
