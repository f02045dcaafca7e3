"""Converters of peer multi-modal entity linking datasets into M3EL's row schema and Hub layout.

Each format is one module with a ``convert(src_dir, out_dir, config)`` function; `CONVERTERS` names them for the
``m3el-dataset convert FORMAT SRC OUT`` command.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..export import ExportConfig, ExportResult
from . import diffusiondb, ghmfc, mimic, wikidiverse, wikiperson
from .common import KEYED_BY_ID_HINT
from .ghmfc_files import holds_records


@dataclass(frozen=True)
class Converter:
    """A source format: its name on the command line, what it reads, and the function that converts it."""

    name: str
    description: str
    convert: Callable[[str | os.PathLike, str | os.PathLike, ExportConfig], ExportResult]


CONVERTERS: dict[str, Converter] = {
    converter.name: converter
    for converter in (
        Converter("mimic", "WikiMEL, RichpediaMEL or WikiDiverse as MIMIC distributes them", mimic.convert),
        Converter("ghmfc", "WikiMEL or RichpediaMEL as MELBench and GHMFC release them (JSON objects keyed by id)",
                  ghmfc.convert),
        Converter("wikidiverse", "WikiDiverse in its original release format (with or without candidates)",
                  wikidiverse.convert),
        Converter("wikiperson", "WIKIPerson (visual person linking, bounding boxes)", wikiperson.convert),
        Converter("diffusiondb", "DiffusionDB 2m_random_1k as prompt-to-image linking", diffusiondb.convert),
    )
}
"""Every converter, by format name."""


def convert(fmt: str, src_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ExportConfig) -> ExportResult:
    """Convert the ``fmt`` dataset in ``src_dir`` into the Hub folder ``out_dir``."""
    if fmt not in CONVERTERS:
        raise ValueError(f"Unknown format {fmt!r}; choose one of {', '.join(CONVERTERS)}.")
    try:
        return CONVERTERS[fmt].convert(src_dir, out_dir, config)
    except (ValueError, FileNotFoundError) as error:
        # A GHMFC/MELBench folder given to another converter fails on its first file, in that converter's terms
        # (no such file, "expected a list", invalid JSON): name the layout seen and the converter that reads it.
        if fmt != "ghmfc" and KEYED_BY_ID_HINT not in str(error) and holds_records(Path(src_dir)):
            raise ValueError(f"{src_dir}: {KEYED_BY_ID_HINT}, e.g. m3el-dataset convert ghmfc {src_dir} OUT "
                             f"(convert {fmt} said: {error})") from error  # fmt: skip
        raise


__all__ = ["CONVERTERS", "Converter", "convert"]
