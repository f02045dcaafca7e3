"""Reading images safely: only regular files, a pixel limit and a byte limit, each hit reported by name."""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from pathlib import Path

import pytest
from PIL import Image
from release_fixtures import FakeRelease, image_bytes

from m3el_dataset.cli import main
from m3el_dataset.images import ImageResolver, ImageStatus, decode_rgb
from m3el_dataset.report import BuildReport
from m3el_dataset.rows import iter_release_rows


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels and holds almost no pixel data: PIL opens it and reads its
    size; decoding it fails."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def within(seconds: float, function, unblock):
    """``function()``, run in a thread; if it has not returned after ``seconds`` the test fails instead of hanging
    (``unblock()`` then releases the thread)."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as error:  # handed to the test below
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        unblock()
        thread.join(seconds)
        pytest.fail(f"still blocked after {seconds} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _make_fifo(path: Path):
    os.mkfifo(path)

    def unblock() -> None:  # a reader blocked in open() proceeds once a writer opens the pipe
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    return unblock


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_where_an_image_should_be_is_reported_not_read(tmp_path):
    release = FakeRelease(tmp_path)
    record = release.add("movies")
    release.write()
    image = release.path_of(record["candidates"][1]["image"][2])
    image.unlink()
    unblock = _make_fifo(image)
    report = BuildReport()
    (row,) = within(5, lambda: list(iter_release_rows(tmp_path, report=report)), unblock)
    assert row["candidate_images"][1] is None and row["candidate_images"][0] is not None
    (problem,) = report.image_problems
    assert (problem.record_id, problem.role, problem.status) == ("movies-000000", "candidate 1", "unreadable")
    assert image.name in problem.detail and "not a regular file (a named pipe)" in problem.detail


def test_a_folder_named_like_an_image_is_reported(tmp_path):
    (tmp_path / "x.jpg").mkdir()
    loaded = ImageResolver(tmp_path).load("/M3EL/x.jpg")
    assert loaded.status is ImageStatus.UNREADABLE and "not a regular file (a folder)" in loaded.detail


def test_images_over_the_pixel_limit_are_refused_from_their_header():
    huge = png_header(12000, 12000)  # 144 M pixels, about 430 MB once decoded: nothing is decoded
    image, problem = decode_rgb(huge)
    assert image is None
    assert problem.startswith("too large: 12000x12000 = 144,000,000 pixels exceed the limit of 89,478,485")
    assert "max_pixels" in problem
    # Raised limit: the size no longer stops it (this header has no pixel data, so it fails as a corrupt image).
    assert decode_rgb(huge, max_pixels=150_000_000)[1].startswith("not a readable image")
    assert decode_rgb(image_bytes("a", size=8), max_pixels=64)[1] is None
    assert decode_rgb(image_bytes("a", size=9), max_pixels=64)[1].startswith("too large: 9x9 = 81 pixels")


@pytest.mark.parametrize("decode_check", [True, False])
def test_pixel_limit_is_a_build_setting_and_its_hits_are_reported(tmp_path, capsys, decode_check):
    release = FakeRelease(tmp_path / "raw")
    record = release.add("movies")
    release.write_image(record["candidates"][0]["image"][2], image_bytes("big", size=20))  # 400 pixels
    release.write()
    argv = ["build", str(tmp_path / "raw"), str(tmp_path / "hub"), "--max-pixels", "100"]
    assert main(argv + ([] if decode_check else ["--no-decode-check"])) == 0
    report = json.loads((tmp_path / "hub" / "build_report.json").read_text(encoding="utf-8"))
    (problem,) = report["image_problems"]
    assert (problem["role"], problem["status"]) == ("candidate 0", "unreadable")
    assert "too large: 20x20 = 400 pixels exceed the limit of 100" in problem["detail"]
    assert "empty image: movies-000000 (candidate 0) unreadable" in capsys.readouterr().out


def test_image_files_over_the_byte_limit_are_not_read(tmp_path):
    (tmp_path / "a.png").write_bytes(image_bytes("a", size=32))
    size = (tmp_path / "a.png").stat().st_size
    loaded = ImageResolver(tmp_path, max_bytes=size - 1).load("a.png")
    assert loaded.status is ImageStatus.UNREADABLE
    assert f"{size:,} bytes exceed the limit of {size - 1:,}" in loaded.detail
    assert ImageResolver(tmp_path, max_bytes=size).load("a.png").status is ImageStatus.OK
    with pytest.raises(ValueError, match="must be positive"):
        ImageResolver(tmp_path, max_pixels=0)


def test_a_raised_pixel_limit_keeps_the_image_without_a_warning(tmp_path, recwarn):
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = 50  # a PIL limit below the image, as a 12000x12000 image is above the default
        image, problem = decode_rgb(image_bytes("a", size=8), max_pixels=64)
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    assert problem is None and image.size == (8, 8)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
