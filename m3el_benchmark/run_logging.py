"""The logging of a run (benchmark, CLIP-ND training, DWE+ training): one owner for levels, handlers and bars.

``with run_logging(verbosity, main_process):`` around a run gives a log a person can read:

- Levels follow ``-q``/``-v`` (`verbosity_from_flags`): our loggers at INFO (DEBUG with ``-v``, WARNING with
  ``-q``); transformers, datasets and accelerate at WARNING (INFO with ``-v``). A process other than the main one
  prints errors live and its warnings, counted, when the run ends, each line prefixed with its rank.
- Every record is written through ``tqdm.write``, so a log line never lands on the end of a progress bar.
- Each warning kind (logger and message template; for a Python warning, its file, line and text) is printed the
  first time only; the repeats are counted and listed, with their counts, when the run ends (`RepeatedWarnings`).
  Python ``warnings`` go through logging too (``logging.captureWarnings``), so library warnings count the same way.
- Progress bars (`progress_bar`) are off with ``-q`` and on other processes, absent for work of zero length (a warm
  run that finds everything cached), and a bar opened inside another is not drawn when stderr is not a terminal
  (where the cursor moves of nested bars would leave ``ESC[A`` escapes in the log). transformers' weight-loading
  bars show with ``-v`` only; datasets' bars (long data preparation) show unless ``-q``.

A DataLoader worker process inherits the handler with a copy of the counter: it prints the first warning of each
kind it meets itself, and its repeats are not in the main process's summary (log such a warning in the main process,
from the batch, to have it counted).

Leaving the ``with`` block logs the summary and restores every setting it changed, so a test (or a notebook) that
runs `main` twice starts each run afresh.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

QUIET, DEFAULT, VERBOSE = -1, 0, 1
"""The three verbosities: ``-q``, none, ``-v``."""

OUR_LOGGERS = ("m3el_benchmark", "m3el_dataset", "modeling_clip_nd")
LIBRARY_LOGGERS = ("transformers", "datasets", "accelerate", "huggingface_hub")
VERBOSE_HELP = "More output: debug messages of m3el, info of transformers/datasets/accelerate, their progress bars."
QUIET_HELP = "Less output: warnings and errors only, no progress bars (repeated warnings are still counted)."
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SUMMARY_LOGGER = "m3el_benchmark.run_logging"

logger = logging.getLogger(SUMMARY_LOGGER)

_bars_enabled = True  # set by `run_logging` for the run's verbosity; `progress_bar` reads it


def verbosity_from_flags(verbose: bool, quiet: bool) -> int:
    """``VERBOSE`` for ``-v``, ``QUIET`` for ``-q``, else ``DEFAULT``; ``ValueError`` for both at once."""
    if verbose and quiet:
        raise ValueError("--verbose and --quiet contradict each other; pass one of them, or neither.")
    return VERBOSE if verbose else QUIET if quiet else DEFAULT


def main_process_from_environment() -> tuple[bool, int]:
    """``(is_main_process, rank)`` from the variables ``accelerate launch`` (or torchrun) sets, before any
    `Accelerator` exists; ``(True, 0)`` for a plain ``python`` run."""
    rank = int(os.environ.get("RANK", "0"))
    return rank == 0, rank


class TqdmHandler(logging.Handler):
    """Writes each record through ``tqdm.write`` to the current ``sys.stderr``: an open bar is cleared, the line
    written, and the bar redrawn below it, never glued to it. (The stream is looked up at each record, so a handler
    outliving a redirected stderr, as in tests, never writes to a closed file.)"""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging's own contract: report through handleError, never raise
            self.handleError(record)


def warning_kind(record: logging.LogRecord) -> tuple[str, str]:
    """What makes two warnings "the same kind": the logger and the message template (its ``%`` arguments left out);
    for a Python warning, the first line of its text (file, line, category and message)."""
    if record.name == "py.warnings":
        return record.name, record.getMessage().strip().splitlines()[0]
    return record.name, str(record.msg)


class RepeatedWarnings(logging.Filter):
    """A filter that lets the first warning of each kind (`warning_kind`) through and counts the others.

    With ``hold_all`` (a process other than the main one) no warning passes live: each is counted and listed at the
    end, since a line written by another process would land on the main process's bar. Errors and other levels
    always pass. ``counts`` holds every kind seen and how often; ``first`` its first text.
    """

    def __init__(self, hold_all: bool = False):
        super().__init__()
        self.hold_all = hold_all
        self.counts: dict[tuple[str, str], int] = {}
        self.first: dict[tuple[str, str], str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or getattr(record, "m3el_summary", False):
            return True
        kind = warning_kind(record)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] > 1:
            return False
        self.first[kind] = record.getMessage().strip().splitlines()[0]
        return not self.hold_all

    def repeated(self) -> list[tuple[str, str, int]]:
        """``(logger name, first text, times seen)`` of each kind seen and not printed every time, in order of
        first sight: seen more than once, or (``hold_all``) at all."""
        least = 1 if self.hold_all else 2
        return [(kind[0], self.first[kind], count) for kind, count in self.counts.items() if count >= least]

    def log_summary(self) -> None:
        """One WARNING line per kind of `repeated`: how many times it was seen in all, and its first text."""
        shown = "only the first printed above"
        if self.hold_all:
            shown = "none printed live (only the main process prints them)"
        for name, text, count in self.repeated():
            times = "once" if count == 1 else f"{count} times"
            logger.warning("%s warned %s in this run with this kind of message, %s: %r", name, times, shown, text,
                           extra={"m3el_summary": True})  # fmt: skip


def _library_levels(verbosity: int) -> dict[str, int]:
    ours = {QUIET: logging.WARNING, DEFAULT: logging.INFO, VERBOSE: logging.DEBUG}[verbosity]
    libraries = logging.INFO if verbosity == VERBOSE else logging.WARNING
    return {**dict.fromkeys(OUR_LOGGERS, ours), **dict.fromkeys(LIBRARY_LOGGERS, libraries)}


@contextmanager
def _library_bars(verbosity: int) -> Iterator[None]:
    """transformers' bars with ``-v`` only; datasets' bars unless ``-q``; both restored afterwards."""
    import datasets.utils.logging as datasets_logging
    import transformers.utils.logging as transformers_logging

    switches = ((transformers_logging, verbosity == VERBOSE), (datasets_logging, verbosity != QUIET))
    before = [module.is_progress_bar_enabled() for module, _ in switches]
    for module, enabled in switches:
        module.enable_progress_bar() if enabled else module.disable_progress_bar()
    try:
        yield
    finally:
        for (module, _), enabled in zip(switches, before, strict=True):
            module.enable_progress_bar() if enabled else module.disable_progress_bar()


@contextmanager
def _routed_through(handler: logging.Handler) -> Iterator[None]:
    """Install ``handler`` on the root logger and make transformers' and datasets' records reach it, and only it:
    their own default stderr handlers are taken off (transformers stopped its records there; datasets wrote through
    its own and propagated too, which printed each of its warnings twice). Python warnings become records.
    Everything is put back afterwards."""
    root, libraries = logging.getLogger(), [logging.getLogger(name) for name in ("transformers", "datasets")]
    saved = [(library, list(library.handlers), library.propagate) for library in libraries]
    capturing = getattr(logging, "_warnings_showwarning", None) is not None
    root.addHandler(handler)
    for library in libraries:
        for default in [h for h in library.handlers if type(h) is logging.StreamHandler]:  # not a user's FileHandler
            library.removeHandler(default)
        library.propagate = True
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(capturing)
        for library, handlers, propagate in saved:
            library.handlers[:] = handlers
            library.propagate = propagate
        root.removeHandler(handler)


@contextmanager
def run_logging(verbosity: int = DEFAULT, main_process: bool = True, rank: int = 0) -> Iterator[RepeatedWarnings]:
    """Set up the logging of one run (see the module docstring); on leaving, log the repeated warnings' counts and
    restore the previous settings. Yields the run's `RepeatedWarnings` counter."""
    global _bars_enabled
    if verbosity not in (QUIET, DEFAULT, VERBOSE):
        raise ValueError(f"verbosity must be one of {QUIET}, {DEFAULT}, {VERBOSE} (quiet, default, verbose), got "
                         f"{verbosity!r}.")  # fmt: skip
    counter = RepeatedWarnings(hold_all=not main_process)
    handler = TqdmHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT if main_process else LOG_FORMAT.replace(
        "%(levelname)s", f"[rank {rank}] %(levelname)s")))  # fmt: skip
    handler.addFilter(counter)
    levels = _library_levels(verbosity if main_process else QUIET)  # another process: WARNING and above
    saved = {name: logging.getLogger(name).level for name in levels}
    saved_bars, _bars_enabled = _bars_enabled, main_process and verbosity != QUIET
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        with _routed_through(handler), _library_bars(verbosity if main_process else QUIET):
            yield counter
            counter.log_summary()
    finally:
        _bars_enabled = saved_bars
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _length(iterable: Iterable | None, total: float | None) -> float | None:
    if total is not None:
        return total
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def progress_bar(iterable: Iterable | None = None, *, disable: bool = False, **kwargs) -> tqdm:
    """A tqdm bar that follows the run's logging: off with ``-q``, off when ``disable`` (e.g. not the main
    process), off for zero-length work, and off when opened inside another bar while stderr is not a terminal.
    Other keyword arguments go to ``tqdm`` (``desc``, ``unit``, ``total``, ``initial``...)."""
    length = _length(iterable, kwargs.get("total"))
    nested = any(not bar.disable for bar in list(getattr(tqdm, "_instances", ())))
    on_terminal = sys.stderr.isatty()
    off = disable or not _bars_enabled or length == 0 or (nested and not on_terminal)
    if not on_terminal:  # a log file: a line every few seconds, not one per update
        kwargs.setdefault("mininterval", 5.0)
    if iterable is not None and not hasattr(iterable, "__next__"):
        # tqdm.auto's class calls iter() on an iterable when the bar is made and tqdm again when it is iterated: a
        # DataLoader would start its workers twice, the first set decoding batches nobody reads (a quarter of the
        # encoder's throughput on two cores). The bar gets one iterator and the length it could not read from it.
        kwargs.setdefault("total", length)
        iterable = iter(iterable)
    return tqdm(iterable, disable=off, file=sys.stderr, **kwargs)
