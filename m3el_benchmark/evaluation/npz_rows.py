"""One array of an uncompressed ``.npz`` archive (what `numpy.savez` writes) as a read-only memory map.

`numpy.load` reads a whole member to return any of its rows; an embedding cache that holds 300K rows and is asked
for 3,000 of them should read those 3,000. A member stored without compression is a plain ``.npy`` file inside the
zip archive, at an offset its local header gives, so a memory map of the file can show it where it lies.
"""

from __future__ import annotations

import mmap
import os
import struct
import zipfile
from pathlib import Path

import numpy as np

_LOCAL_HEADER = struct.Struct("<4s22xHH")
"""A zip local file header up to its name and extra-field lengths (30 bytes)."""

_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


Layout = tuple[int, str, tuple[int, ...], bool]
"""Where a stored member's array lies: ``(data offset, dtype string, shape, fortran order)``."""


def stored_arrays(path: str | Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Members ``names`` of the ``.npz`` at ``path``, memory-mapped where stored uncompressed (else read whole);
    the archive is opened once for all of them.

    Raises what `numpy.load` raises on a damaged archive (`zipfile.BadZipFile`, `KeyError`, `ValueError`, `OSError`).
    """
    arrays = {}
    with open(path, "rb") as stream, zipfile.ZipFile(stream) as archive:
        for name in names:
            info = archive.getinfo(f"{name}.npy")
            if info.compress_type == zipfile.ZIP_STORED:
                layout = _member_layout(stream, info, f"{path}: member {name}.npy")
                arrays[name] = open_stored(path, {name: layout})[name]
            else:
                with archive.open(info) as member:
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


def stored_layouts(path: str | Path, names: tuple[str, ...]) -> dict[str, Layout] | None:
    """Where members ``names`` of the ``.npz`` at ``path`` lie, to open them later without parsing the archive
    again (`open_stored`); `None` if one of them is compressed."""
    with open(path, "rb") as stream, zipfile.ZipFile(stream) as archive:
        infos = {name: archive.getinfo(f"{name}.npy") for name in names}
        if any(info.compress_type != zipfile.ZIP_STORED for info in infos.values()):
            return None
        return {name: _member_layout(stream, info, f"{path}: member {name}.npy") for name, info in infos.items()}


def open_stored(path: str | Path, layouts: dict[str, Layout]) -> dict[str, np.ndarray]:
    """The arrays at ``layouts`` in the file ``path``, as views of one read-only memory map of it (`ValueError` if
    the file is too short to hold them)."""
    with open(path, "rb") as stream:
        length = os.fstat(stream.fileno()).st_size
        for offset, dtype, shape, _ in layouts.values():
            size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            if length < offset + size:
                raise ValueError(f"{path} is shorter than the {size} bytes it should hold at offset {offset}")
        mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) if length else None
    arrays = {}
    for name, (offset, dtype, shape, fortran_order) in layouts.items():
        count = int(np.prod(shape, dtype=np.int64))
        flat = np.frombuffer(mapped, dtype=dtype, count=count, offset=offset) if count else np.empty(0, dtype)
        arrays[name] = flat.reshape(tuple(shape), order="F" if fortran_order else "C")
    return arrays


def _member_layout(stream, info: zipfile.ZipInfo, where: str) -> Layout:
    """The `Layout` of the stored ``.npy`` member ``info``."""
    stream.seek(info.header_offset)
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(stream.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise ValueError(f"{where} has no local zip header where the archive says")
    stream.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
    version = np.lib.format.read_magic(stream)
    if version not in _HEADER_READERS:
        raise ValueError(f"{where} has .npy format version {version}, which is not supported")
    shape, fortran_order, dtype = _HEADER_READERS[version](stream)
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects, which a cache never stores")
    return stream.tell(), dtype.str, tuple(shape), bool(fortran_order)
