"""One array of an uncompressed ``.npz`` archive (what `numpy.savez` writes) as a read-only memory map.

`numpy.load` reads a whole member to return any of its rows; an embedding cache that holds 300K rows and is asked
for 3,000 of them should read those 3,000. A member stored without compression is a plain ``.npy`` file inside the
zip archive, at an offset its local header gives, so `numpy.memmap` can open it where it lies.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

_LOCAL_HEADER = struct.Struct("<4s22xHH")
"""A zip local file header up to its name and extra-field lengths (30 bytes)."""

_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def stored_arrays(path: str | Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Members ``names`` of the ``.npz`` at ``path``, memory-mapped where stored uncompressed (else read whole);
    the archive is opened once for all of them.

    Raises what `numpy.load` raises on a damaged archive (`zipfile.BadZipFile`, `KeyError`, `ValueError`, `OSError`).
    """
    arrays = {}
    with open(path, "rb") as stream, zipfile.ZipFile(stream) as archive:
        for name in names:
            info = archive.getinfo(f"{name}.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                with archive.open(info) as member:
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            shape, fortran_order, dtype, offset = _member_header(stream, info, f"{path}: member {name}.npy")
            if not np.prod(shape, dtype=np.int64):
                arrays[name] = np.empty(shape, dtype=dtype)
            else:
                arrays[name] = np.memmap(stream, dtype=dtype, mode="r", offset=offset, shape=shape,
                                         order="F" if fortran_order else "C")  # fmt: skip
    return arrays


def _member_header(stream, info: zipfile.ZipInfo, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, data offset)`` of the stored ``.npy`` member ``info``."""
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
    return shape, fortran_order, dtype, stream.tell()
