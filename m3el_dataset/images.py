"""Resolving and reading the release's local image paths, safely and without re-encoding."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath

from PIL import Image

RELEASE_ROOT_NAME = "M3EL"
"""The release's local paths start with ``/M3EL/``: the root of the unpacked archive, i.e. the folder users give."""
RELEASE_ROOT_NAMES = (RELEASE_ROOT_NAME, "DiffMEL")
"""The roots a release's paths may start with: the DifFMEL README shows the same records rooted at ``/DiffMEL/``."""


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
    """The folder that ``/M3EL/`` (or ``/DiffMEL/``) stands for: ``raw_dir`` itself, or ``raw_dir/M3EL`` (or
    ``raw_dir/DiffMEL``) if the user gave its parent."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir() or any(p.name.endswith("_candidates_images") for p in raw_dir.iterdir() if p.is_dir()):
        return raw_dir
    return next((raw_dir / name for name in RELEASE_ROOT_NAMES if (raw_dir / name).is_dir()), raw_dir)


def is_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path``, once ``..`` and symbolic links are resolved, lies inside the folder ``root``: the rule
    for every file of a release that is read (images, record files) or uploaded."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def relative_release_path(local_path: str) -> PurePosixPath | None:
    """Turn a release path (``/M3EL/a/b.jpg``, ``/DiffMEL/a/b.jpg`` or ``a/b.jpg``) into a relative one; ``None`` if
    it names no file.

    Any other absolute path (``/etc/passwd``, ``C:\\x``) is returned unchanged so that the caller's containment
    check rejects it, rather than being silently re-rooted inside the folder.
    """
    normalised = local_path.strip().replace("\\", "/")
    if not normalised:
        return None
    path = PurePosixPath(normalised)
    if path.is_absolute() and len(path.parts) > 1 and path.parts[1] in RELEASE_ROOT_NAMES:
        return PurePosixPath(*path.parts[2:]) if len(path.parts) > 2 else None
    return path


IMAGE_CHECKS = {
    "verify": "every image's structure read through to its end: a JPEG's markers (header, scan data, end-of-image "
              "marker), a PNG's chunk checksums; other formats decoded",
    "full": "every image decoded at full size and converted to RGB, as training reads it",
}
"""The ways a build can check that an image is readable (``--image-check``), and what each one does. ``verify`` (the
default) finds non-image, truncated and checksum-damaged files at a fraction of ``full``'s cost on large images;
``full`` also finds JPEG scan data that libjpeg refuses (much of the damage it only warns about, in either case)."""
HEADER_ONLY_CHECK = "header"
"""What the report names when no image is decoded (``--no-decode-check``): only the header (and pixel count)."""

DEFAULT_MAX_IMAGE_BYTES = 100_000_000
"""Image files larger than this (100 MB) are not read: memory stays bounded whatever a source holds."""


class ImageResolver:
    """Finds the release's images inside one folder, reads their bytes and checks them.

    Args:
        root (`str` or `os.PathLike`):
            The folder that ``/M3EL/`` stands for (see `release_image_root`). Nothing outside it is ever opened:
            a path that leaves it (``..``, an absolute path, a symbolic link pointing out) gets ``OUTSIDE_FOLDER``.
        decode_check (`bool`, *optional*, defaults to `True`):
            Check each image once with PIL to catch truncated or corrupt files (the bytes kept are the file's own).
        image_check (`str`, *optional*, defaults to ``"verify"``):
            How, with ``decode_check``: one of `IMAGE_CHECKS` (``"verify"``, or ``"full"`` to decode every pixel).
        max_pixels (`int`, *optional*, defaults to PIL's ``Image.MAX_IMAGE_PIXELS``, about 89 M):
            Images with more pixels (read from the header, even without ``decode_check``) are not kept.
        max_bytes (`int`, *optional*, defaults to `DEFAULT_MAX_IMAGE_BYTES`):
            Image files larger than this are not read.

    Only regular files are opened: a named pipe, socket or device where an image should be is ``UNREADABLE``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        decode_check: bool = True,
        max_pixels: int | None = None,
        max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        image_check: str = "verify",
    ):
        check_image_check(image_check)
        if (max_pixels is not None and max_pixels < 1) or max_bytes < 1:
            raise ValueError(f"max_pixels and max_image_bytes must be positive, got {max_pixels} and {max_bytes}.")
        self.root = Path(root).resolve()
        self.decode_check = decode_check
        self.image_check = image_check
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self._listings: dict[Path, dict[tuple[str, str], str]] = {}

    def _find_case_insensitive(self, candidate: Path) -> Path | None:
        """The entry ``candidate`` names, allowing its extension to differ in case (``.JPG`` for ``.jpg``)."""
        if candidate.exists():
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
            data = read_regular_file(found, self.max_bytes)
        except OSError as error:
            return LoadedImage(ImageStatus.UNREADABLE, path, detail=f"cannot read {found}: {error}")
        except ValueError as error:
            return LoadedImage(ImageStatus.UNREADABLE, path, detail=f"{found}: {error}")
        return self.check(path, data, str(found))

    def check(self, path: str, data: bytes, where: str) -> LoadedImage:
        """The checks every image gets, whatever it was read from (a file, a zip member, a Parquet cell): its size,
        its pixel count and, with ``decode_check``, the ``image_check``. ``where`` names it in the reason."""
        if len(data) > self.max_bytes:
            return LoadedImage(ImageStatus.UNREADABLE, path, detail=f"{where}: {too_large(len(data), self.max_bytes)}")
        problem = image_problem(data, max_pixels=self.max_pixels, decode=self.decode_check, check=self.image_check)
        if problem:
            return LoadedImage(ImageStatus.UNREADABLE, path, detail=f"{where}: {problem}")
        return LoadedImage(ImageStatus.OK, path, data)


def _stem_and_lower_suffix(file_name: str) -> tuple[str, str]:
    stem, suffix = os.path.splitext(file_name)
    return stem, suffix.lower()


def too_large(size: int, max_bytes: int) -> str:
    """Why a file of ``size`` bytes is not read."""
    return f"{size:,} bytes exceed the limit of {max_bytes:,} (setting max_image_bytes, --max-image-bytes)"


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``; ``ValueError`` says why not.

    The file is opened without blocking and checked before anything is read: opening a named pipe waits for a
    writer that never comes, and reading a device (``/dev/zero``) never ends.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise ValueError(f"not a regular file ({_file_kind(status.st_mode)}); only image files are read")
        if status.st_size > max_bytes:
            raise ValueError(too_large(status.st_size, max_bytes))
        with open(descriptor, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:  # the file grew after the check
        raise ValueError(too_large(len(data), max_bytes))
    return data


def _file_kind(mode: int) -> str:
    kinds = {stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a named pipe", stat.S_ISSOCK: "a socket",
             stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}  # fmt: skip
    return next((name for test, name in kinds.items() if test(mode)), "not a file")


class _TooLarge(ValueError):
    """An image with more pixels than allowed."""


@contextlib.contextmanager
def _opened(data: bytes, max_pixels: int | None) -> Iterator[Image.Image]:
    """The image of ``data``, opened lazily (header only), or `_TooLarge` when it has more than ``max_pixels``
    pixels (default: PIL's ``Image.MAX_IMAGE_PIXELS``)."""
    with warnings.catch_warnings():
        # PIL warns above its limit and decodes anyway: the explicit check below refuses, with the reason, whatever
        # PIL would warn about, and keeps what a caller allowed by raising ``max_pixels``.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as error:  # more than twice PIL's own limit: PIL refuses in any case
            raise _TooLarge(f"too large: {error}") from error
    with image:
        limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
        width, height = image.size
        if limit is not None and width * height > limit:
            raise _TooLarge(f"too large: {width}x{height} = {width * height:,} pixels exceed the limit of {limit:,} "
                            "(setting max_pixels, --max-pixels)")  # fmt: skip
        yield image


def decode_rgb(data: bytes | None, max_pixels: int | None = None) -> tuple[Image.Image | None, str | None]:
    """Decode image bytes to RGB: ``(image, None)``, or ``(None, why)`` when they are not a readable image.

    Images of more than ``max_pixels`` pixels (default: PIL's ``Image.MAX_IMAGE_PIXELS``) are refused from their
    header, before anything is decoded.
    """
    if not data:
        return None, "empty file"
    try:
        with _opened(data, max_pixels) as image:
            return image.convert("RGB"), None
    except _TooLarge as error:
        return None, str(error)
    except Exception as error:  # PIL raises many types for corrupt files; any of them means "unusable image"
        return None, f"not a readable image ({type(error).__name__}: {error})"


def check_image_check(image_check: str) -> None:
    """Raise ``ValueError`` naming the choices if ``image_check`` is not one of `IMAGE_CHECKS`."""
    if image_check not in IMAGE_CHECKS:
        raise ValueError(f"Unknown image check {image_check!r}; choose one of {', '.join(IMAGE_CHECKS)} "
                         "(--image-check).")  # fmt: skip


def described_check(decode_check: bool, image_check: str) -> str:
    """The check a build ran, as its report names it: ``image_check``, or ``"header"`` without ``decode_check``."""
    return image_check if decode_check else HEADER_ONLY_CHECK


def _verify(image: Image.Image, data: bytes) -> None:
    """Read an opened image through to its end without decoding its pixels where the format allows it (see
    ``IMAGE_CHECKS["verify"]``); raise ``OSError`` if it is cut short."""
    if image.format == "JPEG":
        # Inside the scan data every 0xFF byte is stuffed (0xFF00), so the end-of-image marker cannot occur there by
        # chance: a file cut anywhere after its header lacks it. Bytes after the marker are allowed, as PIL reads on.
        scan_start = image.tile[0][2] if image.tile else 0
        if data.find(b"\xff\xd9", scan_start) < 0:
            raise OSError("image file is truncated (no end-of-image marker after the scan data)")
    elif image.format == "PNG":
        image.verify()  # every chunk's CRC, and the end of the stream
    else:
        image.load()


def image_problem(
    data: bytes, *, max_pixels: int | None = None, decode: bool = True, check: str = "verify"
) -> str | None:
    """Why ``data`` is not a usable image, or ``None``. ``check`` is one of `IMAGE_CHECKS`; with ``decode`` False
    only the pixel count is checked, from the header, when PIL can read one."""
    if decode and check == "full":
        return decode_rgb(data, max_pixels)[1]
    if decode and not data:
        return "empty file"
    try:
        with _opened(data, max_pixels) as image:
            if decode:
                _verify(image, data)
            return None
    except _TooLarge as error:
        return str(error)
    except Exception as error:  # PIL raises many types for corrupt files; any of them means "unusable image"
        if decode:
            return f"not a readable image ({type(error).__name__}: {error})"
        return None  # no decoding was asked for (--no-decode-check): an unreadable header is the reader's to find
