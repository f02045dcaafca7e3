"""Experiment trackers: what ``--report_to`` asks accelerate to log to."""

from __future__ import annotations


def trackers(report_to: str) -> list[str]:
    """The accelerate trackers of ``--report_to``: none, the named one, or with ``auto`` tensorboard if installed."""
    if report_to == "none":
        return []
    if report_to != "auto":
        return [report_to]
    try:
        import tensorboard  # noqa: F401

        return ["tensorboard"]
    except ImportError:
        return []
