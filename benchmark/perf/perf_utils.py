"""Helpers of the ``perf_*`` scripts: a measurement in a fresh process, and its peak resident memory.

``ru_maxrss`` is a high-water mark over a process's lifetime, so a second measurement in the same process would
include the first; each measurement therefore runs in its own spawned process (`run_in_fresh_process`).
"""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable
from typing import Any


def peak_memory_mib(include_children: bool = False) -> float:
    """Peak resident memory of this process (or of its children too, whichever is larger) in MiB (Linux: KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if include_children:
        peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return peak / 1024


def _call(queue: multiprocessing.Queue, function: Callable[..., Any], args: tuple) -> None:
    try:
        queue.put((True, function(*args)))
    except BaseException as error:  # hand any failure back to the parent, which would otherwise wait forever
        queue.put((False, repr(error)))
        raise


def run_in_fresh_process(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a newly spawned process (a module-level function, picklable arguments and result).

    Raises ``RuntimeError`` with the child's error if it fails.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_call, args=(queue, function, args))
    process.start()
    ok, result = queue.get()
    process.join()
    if not ok:
        raise RuntimeError(f"{getattr(function, '__name__', function)}{args!r} failed in its process: {result}")
    return result
