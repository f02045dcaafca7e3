"""A restricted unpickler for the AIDA-CoNLL pickle: plain containers, strings and numbers only.

``pickle.load`` on an untrusted file runs whatever its ``__reduce__`` asks for (``os.system`` and friends). This
unpickler resolves no global except a few harmless builtin containers, so such a file is refused before anything
runs; prefer the public AIDA-YAGO TSV (`m3el_dataset.pipeline.sources`) when you have it.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {("builtins", "set"), ("builtins", "frozenset"), ("builtins", "list"), ("builtins", "dict"),
     ("builtins", "tuple"), ("__builtin__", "set"), ("__builtin__", "frozenset"), ("collections", "OrderedDict")}
)
"""Callables that a container pickle may need (e.g. protocol 2 pickles a set as ``set([...])``); all harmless."""


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something other than plain containers and strings."""


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that admits only the globals in `_ALLOWED_GLOBALS` and no persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(f"global {module}.{name} is not allowed")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("persistent ids are not allowed")


def restricted_loads(data: bytes, *, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with `RestrictedUnpickler`; raise `UnsafePickleError` naming ``source`` when refused."""
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as err:
        raise UnsafePickleError(
            f"Refusing to unpickle {source}: {err}. Only plain containers, strings and numbers are accepted; "
            "convert the file to JSON or use the AIDA-YAGO TSV instead."
        ) from err


def restricted_load(path: Path) -> Any:
    """`restricted_loads` on the file at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"AIDA pickle {path} does not exist; check the sports source path.")
    return restricted_loads(path.read_bytes(), source=str(path))
