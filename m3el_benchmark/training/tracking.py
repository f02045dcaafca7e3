"""Experiment trackers: what ``--report_to`` asks accelerate to log to.

``--report_to`` takes ``none``, ``auto`` (tensorboard when it is installed, else nothing, said in the log), or one or
more of the trackers accelerate knows, joined by ``,`` (``tensorboard,wandb``). A named tracker that is not installed
is an error naming the package to install, never a silent no-op: ``pip install m3el[track]`` brings tensorboard.
"""

from __future__ import annotations

import importlib
import logging

from accelerate.tracking import LOGGER_TYPE_TO_CLASS

logger = logging.getLogger(__name__)

TRACKERS: tuple[str, ...] = tuple(LOGGER_TYPE_TO_CLASS)
"""Every tracker accelerate knows (tensorboard, wandb, mlflow, comet_ml, aim, clearml, dvclive, swanlab, trackio)."""

PACKAGES = {"comet_ml": "comet-ml"}
"""The pip name of a tracker's package where it differs from its name."""


def _available(name: str) -> bool:
    checker = getattr(importlib.import_module("accelerate.utils.imports"), f"is_{name}_available", None)
    return bool(checker()) if checker is not None else False


def trackers(report_to: str) -> list[str]:
    """The accelerate trackers of ``--report_to``; raise ``ValueError`` for an unknown or a missing one."""
    names = [name.strip() for name in report_to.split(",") if name.strip()]
    if names in ([], ["none"]):
        return []
    if names == ["auto"]:
        if _available("tensorboard"):
            return ["tensorboard"]
        logger.info("--report_to auto: tensorboard is not installed, so nothing is tracked (pip install m3el[track]).")
        return []
    unknown = [name for name in names if name not in TRACKERS]
    if unknown:
        raise ValueError(f"--report_to {report_to!r}: unknown tracker {unknown[0]!r}; choose none, auto or any of "
                         f"{', '.join(TRACKERS)} (several joined by ',').")  # fmt: skip
    missing = [name for name in names if not _available(name)]
    if missing:
        packages = " ".join(PACKAGES.get(name, name) for name in missing)
        raise ValueError(f"--report_to {report_to!r}: {', '.join(missing)} is not installed; `pip install {packages}` "
                         "or choose another tracker (none to track nothing).")  # fmt: skip
    return names
