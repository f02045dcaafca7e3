"""Rendering an HTML file in headless Chromium (Debian's ``chromium`` package): its DOM after parsing, a screenshot.

Tests that use it skip where ``/usr/bin/chromium`` is absent (`requires_chromium`); CI installs it (``.ci/run``).
A screenshot is also copied to ``$M3EL_SCREENSHOT_DIR`` when that is set, for a person or a CI artifact to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")  # fmt: skip
SCREENSHOT_DIR_VARIABLE = "M3EL_SCREENSHOT_DIR"

requires_chromium = pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no {CHROMIUM}: apt-get install chromium")


def _chromium(page: Path, work: Path, *flags: str) -> subprocess.CompletedProcess:
    work.mkdir(parents=True, exist_ok=True)
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={work / 'profile'}", *flags, page.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


def dump_dom(page: Path, work: Path) -> str:
    """The DOM Chromium built from ``page``, serialised (``--dump-dom``)."""
    return _chromium(page, work, "--dump-dom").stdout


def screenshot(page: Path, png: Path, work: Path, size: tuple[int, int] = (1280, 2400)) -> Path:
    """A PNG of ``page`` rendered in a ``size`` window; copied to ``$M3EL_SCREENSHOT_DIR`` when that is set."""
    _chromium(page, work, f"--window-size={size[0]},{size[1]}", f"--screenshot={png}")
    if os.environ.get(SCREENSHOT_DIR_VARIABLE):
        folder = Path(os.environ[SCREENSHOT_DIR_VARIABLE])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(png, folder / png.name)
    return png


class Elements(HTMLParser):
    """Every start tag of a document as ``(tag, attributes)``, to count elements by tag and class."""

    def __init__(self, text: str):
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, {name: value or "" for name, value in attrs}))

    def having(self, tag: str, css_class: str | None = None, **attributes: str) -> list[dict[str, str]]:
        """The attributes of each ``tag`` element with ``css_class`` among its classes and those attribute values."""
        return [attrs for name, attrs in self.found if name == tag
                and (css_class is None or css_class in attrs.get("class", "").split())
                and all(attrs.get(key) == value for key, value in attributes.items())]  # fmt: skip
