"""Checks that downloaded bytes are a real, decodable, reasonably sized raster image."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

# Magic bytes of the raster formats Commons serves, with their canonical extension.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xd8\xff", "JPEG", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "PNG", ".png"),
    (b"GIF87a", "GIF", ".gif"),
    (b"GIF89a", "GIF", ".gif"),
    (b"II*\x00", "TIFF", ".tif"),
    (b"MM\x00*", "TIFF", ".tif"),
)
_EXTENSIONS = {"JPEG": (".jpg", ".jpeg", ".jpe"), "PNG": (".png",), "GIF": (".gif",), "TIFF": (".tif", ".tiff"),
               "WEBP": (".webp",)}


class ImageCheckError(ValueError):
    """Downloaded bytes are not an acceptable image; the message says why."""


@dataclass
class CheckedImage:
    """A validated image: its format, the extension to store it under, and its decoded size."""

    format: str
    extension: str
    width: int
    height: int


def sniff_format(data: bytes) -> tuple[str, str] | None:
    """``(format, extension)`` from the magic bytes, or `None` when they are no known raster format."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP", ".webp"
    for magic, fmt, ext in _MAGIC:
        if data.startswith(magic):
            return fmt, ext
    return None


def storage_extension(original_name: str, fmt: str, default: str) -> str:
    """Keep the original file's extension (and its case, as the release does) when it matches the real format."""
    dot = original_name.rfind(".")
    ext = original_name[dot:] if dot > 0 else ""
    return ext if ext.lower() in _EXTENSIONS.get(fmt, ()) else default


def check_image(data: bytes, content_type: str | None, original_name: str, max_pixels: int) -> CheckedImage:
    """Validate content type, magic bytes, pixel count and full decoding; raise `ImageCheckError` saying why."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if not kind.startswith("image/"):
        raise ImageCheckError(f"content type {content_type!r} is not an image")
    sniffed = sniff_format(data)
    if sniffed is None:
        raise ImageCheckError(f"bytes starting {data[:8]!r} are no known raster image (content type {kind})")
    fmt, default_ext = sniffed
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageCheckError(f"{width}x{height} pixels exceed the limit of {max_pixels}")
                if image.format != fmt:
                    raise ImageCheckError(f"magic bytes say {fmt} but the decoder says {image.format}")
                image.load()  # decodes every pixel: truncated or corrupt files fail here
    except ImageCheckError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        raise ImageCheckError(f"does not decode as {fmt}: {err}") from err
    return CheckedImage(fmt, storage_extension(original_name, fmt, default_ext), width, height)
