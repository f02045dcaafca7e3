"""The build's image check: 'verify' by default (no pixel decoding where the format allows), 'full' on request; a
corrupt image is reported under either, and the build report names the check that ran."""

from __future__ import annotations

import io
import json
import random

import pytest
from PIL import Image
from release_fixtures import small_release

from m3el_dataset.cli import main
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.images import IMAGE_CHECKS, ImageResolver, image_problem


def photo(fmt: str, size: int = 96, seed: int = 0, **save) -> bytes:
    """A noisy RGB image (so that its compressed data spans the file), encoded as ``fmt``."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (size, size), bytes(rng.randrange(256) for _ in range(size * size * 3)))
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


CORRUPT = {
    "truncated JPEG": photo("JPEG")[:-400],
    "truncated progressive JPEG": photo("JPEG", progressive=True)[:-400],
    "JPEG cut after its header": photo("JPEG")[:700],
    "truncated PNG": photo("PNG")[:-400],
    "PNG with a damaged chunk": (lambda data: data[:200] + bytes([data[200] ^ 0xFF]) + data[201:])(photo("PNG")),
    "garbage bytes": b"this is not an image at all" * 20,
    "empty file": b"",
}


@pytest.mark.parametrize("check", list(IMAGE_CHECKS))
@pytest.mark.parametrize("name", list(CORRUPT))
def test_a_corrupt_image_is_reported_under_each_check(name, check):
    assert image_problem(CORRUPT[name], check=check), f"{name} passed the {check!r} check"


@pytest.mark.parametrize("check", list(IMAGE_CHECKS))
@pytest.mark.parametrize("data", [photo("JPEG"), photo("JPEG", progressive=True), photo("PNG"), photo("GIF"),
                                  photo("JPEG") + b"bytes after the end marker", photo("WEBP")])  # fmt: skip
def test_a_sound_image_passes_each_check(data, check):
    assert image_problem(data, check=check) is None


def test_an_unknown_check_is_refused_naming_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown image check 'fast'; choose one of verify, full"):
        ImageResolver(tmp_path, image_check="fast")


@pytest.mark.parametrize("check", [None, "full"])
def test_the_build_reports_the_check_that_ran_and_the_corrupt_image(tmp_path, capsys, check):
    release = small_release(tmp_path / "raw", per_topic=2)
    record = next(iter(release.files.values()))[0]
    release.write_image(record["image"][2], photo("JPEG")[:-400])
    release.write()
    argv = ["build", str(tmp_path / "raw"), str(tmp_path / "hub")] + (["--image-check", check] if check else [])
    assert main(argv) == 0
    report = json.loads((tmp_path / "hub" / "build_report.json").read_text())
    assert report["image_check"] == (check or "verify")
    problems = {(p["path"], p["status"], "truncated" in p["detail"]) for p in report["image_problems"]}
    assert len(problems) == 1 and next(iter(problems))[1:] == ("unreadable", True)  # the one truncated file
    assert f"Images checked: {check or 'verify'} (" in capsys.readouterr().out


def test_without_the_decode_check_the_report_says_header(tmp_path):
    small_release(tmp_path / "raw", per_topic=1).write()
    result = export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig(decode_check=False))
    assert result.report.image_check == "header"
