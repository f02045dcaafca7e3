"""Templates of the Hub cards (dataset card, model card), shipped with the package as plain Markdown files."""

from __future__ import annotations

from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent


def template_path(name: str) -> Path:
    """The path of the card template ``name`` (e.g. ``"dataset_card.md"``); raise if there is no such template."""
    path = TEMPLATE_DIR / name
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in TEMPLATE_DIR.glob("*.md")))
        raise FileNotFoundError(f"No card template {name!r} in {TEMPLATE_DIR}; available: {available}.")
    return path
