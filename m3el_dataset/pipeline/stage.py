"""Resumable stages: per-item atomic commits, skip of finished items, bounded retries of failed ones, a report.

A stage's folder holds ``done/<key>.json`` for every finished item and ``failed/<key>.json`` (attempts and
error) for every item that failed; ``report.json`` lists the failures of the last run. Because an item is
committed by an atomic rename, a run killed at any point loses at most the items in flight, and a re-run
neither duplicates nor drops anything. ``settings.json`` records the settings that shape the stage's results: a
re-run with other ones is refused, so that finished items made under the old settings are never mixed with new
ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .atomic import atomic_write_json, read_json, remove_stale_tmp
from .config import StageSettings

logger = logging.getLogger(__name__)

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")


class StageSettingsChanged(ValueError):
    """A stage folder holds results made with other settings than the run's."""


class ItemFailure(Exception):
    """An item could not be processed for a reason worth reporting (not a bug): dead link, no candidate, …"""


@dataclass
class StageCounts:
    """What one run of a stage did."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    given_up: int = 0


def key_to_filename(key: str) -> str:
    """A file name for an item key: the key itself when safe, else a readable prefix and a hash."""
    if _SAFE_KEY.match(key):
        return f"{key}.json"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:60].lstrip("._") or "item"
    return f"{readable}-{digest}.json"


class StageRunner:
    """Runs one stage's per-item function over its items, resumably.

    Args:
        name (`str`): stage name, shown in progress bars, logs and the report.
        stage_dir (`Path`): the stage's folder.
        settings (`StageSettings`): attempts limit and concurrency.
        on_commit (`Callable[[str], None]`, *optional*): called in the main thread after each committed item
            (tests use it to simulate a crash after N items).
        fingerprint (`dict`, *optional*): the settings that shape this stage's results (JSON-able); `run` refuses
            a folder whose finished items were made with other ones.
    """

    def __init__(
        self,
        name: str,
        stage_dir: Path,
        settings: StageSettings,
        *,
        on_commit: Callable[[str], None] | None = None,
        fingerprint: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.stage_dir = Path(stage_dir)
        self.settings = settings
        self.on_commit = on_commit
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str)) if fingerprint is not None else None

    def check_settings(self) -> None:
        """Record the fingerprint on the first run; raise `StageSettingsChanged` if a later run's differs."""
        if self.fingerprint is None:
            return
        path = self.stage_dir / "settings.json"
        if not path.exists():
            atomic_write_json(path, self.fingerprint)
            return
        recorded = read_json(path)
        if recorded != self.fingerprint:
            keys = sorted(set(recorded) | set(self.fingerprint))
            changed = [f"{key}: {recorded.get(key)!r} -> {self.fingerprint.get(key)!r}" for key in keys
                       if recorded.get(key) != self.fingerprint.get(key)]  # fmt: skip
            raise StageSettingsChanged(
                f"Stage {self.name!r} in {self.stage_dir} holds results made with other settings "
                f"({'; '.join(changed)}). Delete {self.stage_dir} (and the later stages' folders) to redo it with "
                "the new settings, or run with the old ones."
            )

    def done_path(self, key: str) -> Path:
        return self.stage_dir / "done" / key_to_filename(key)

    def failed_path(self, key: str) -> Path:
        return self.stage_dir / "failed" / key_to_filename(key)

    def load(self, key: str) -> dict[str, Any] | None:
        """The committed result of ``key``, or `None` when the item is not finished."""
        path = self.done_path(key)
        return read_json(path)["result"] if path.exists() else None

    def attempts(self, key: str) -> int:
        path = self.failed_path(key)
        return int(read_json(path).get("attempts", 0)) if path.exists() else 0

    def run(self, items: Iterable[tuple[str, Any]], process: Callable[[Any], dict[str, Any]]) -> StageCounts:
        """Process every unfinished item of ``items`` (``(key, payload)`` pairs) with ``process``; write the report."""
        self.check_settings()
        remove_stale_tmp(self.stage_dir)
        counts = StageCounts()
        todo: list[tuple[str, Any]] = []
        for key, payload in items:
            if self.done_path(key).exists():
                counts.skipped += 1
            elif self.attempts(key) >= self.settings.max_attempts:
                counts.given_up += 1
            else:
                todo.append((key, payload))
        with tqdm(total=len(todo), desc=self.name, unit="item", dynamic_ncols=True) as bar:
            bar.set_postfix(self._postfix(counts))
            self._run_pool(todo, process, counts, bar)
        self.write_report(counts)
        logger.info("Stage %s: %s", self.name, self._postfix(counts))
        return counts

    def _run_pool(self, todo: list[tuple[str, Any]], process: Callable, counts: StageCounts, bar: tqdm) -> None:
        workers = max(1, self.settings.workers)
        pending: dict[Future, str] = {}
        queue = iter(todo)
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"m3el-{self.name}")
        try:
            while True:
                # A bounded window of submitted items, so that an interrupt leaves little work to redo.
                while len(pending) < 2 * workers:
                    nxt = next(queue, None)
                    if nxt is None:
                        break
                    pending[executor.submit(process, nxt[1])] = nxt[0]
                if not pending:
                    return
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    self._settle(pending.pop(future), future, counts)
                    bar.update(1)
                    bar.set_postfix(self._postfix(counts))
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    def _settle(self, key: str, future: Future, counts: StageCounts) -> None:
        error = future.exception()
        if error is None:
            atomic_write_json(self.done_path(key), {"key": key, "result": future.result()})
            self.failed_path(key).unlink(missing_ok=True)
            counts.done += 1
            if self.on_commit is not None:
                self.on_commit(key)
            return
        if not isinstance(error, ItemFailure | OSError | ValueError):
            # Bugs are still recorded (the run goes on), but with the type so that they stand out in the report.
            logger.warning("Stage %s: unexpected %s on %s: %s", self.name, type(error).__name__, key, error)
        attempts = self.attempts(key) + 1
        record = {"key": key, "attempts": attempts, "error": f"{type(error).__name__}: {error}", "time": time.time()}
        atomic_write_json(self.failed_path(key), record)
        counts.failed += 1

    def failures(self) -> list[dict[str, Any]]:
        """Every item that is failed now, with its attempts, its last error and whether it was given up."""
        folder = self.stage_dir / "failed"
        rows = [read_json(p) for p in sorted(folder.glob("*.json"))] if folder.exists() else []
        for row in rows:
            row["given_up"] = row.get("attempts", 0) >= self.settings.max_attempts
        return rows

    def write_report(self, counts: StageCounts) -> None:
        """Write ``report.json``: this run's counts and every failed item and why."""
        report = {"stage": self.name, "counts": asdict(counts), "failures": self.failures()}
        atomic_write_json(self.stage_dir / "report.json", report)

    @staticmethod
    def _postfix(counts: StageCounts) -> dict[str, int]:
        return {"done": counts.done, "skipped": counts.skipped, "failed": counts.failed, "given_up": counts.given_up}
