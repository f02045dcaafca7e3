"""Attaching a Gan21 joint step to any loaded adapter, under the model-spec names of `SYSTEMS`.

``"Gan21-OT(CLIP)"`` loads CLIP as usual and gives it a `rescoring.Gan21JointStep` (``"Gan21-Naive(CLIP)"``: a
`naive.Gan21NaiveStep`); the label says which encoder the system sits on. The adapter itself is unchanged, so the
embeddings are those of the plain model and its cache is shared; the evaluation finds the step as the adapter's
``joint_step`` (`evaluation.evaluate.evaluate_model`).
"""

from __future__ import annotations

from dataclasses import replace

from ...baselines.base import EmbeddingAdapter
from . import SYSTEMS
from .naive import Gan21NaiveStep
from .rescoring import DocumentStep, Gan21JointStep, JointConfig


def make_step(system: str, config: JointConfig | None = None) -> DocumentStep:
    """The joint step that the system name ``system`` (a key of `SYSTEMS`) stands for."""
    kinds = {"ot": Gan21JointStep, "naive": Gan21NaiveStep}
    if system not in SYSTEMS:
        raise ValueError(f"Unknown system {system!r}; choose one of {', '.join(SYSTEMS)}.")
    return kinds[SYSTEMS[system]](config)


def attach_system(
    adapter: EmbeddingAdapter, system: str, label: str, config: JointConfig | None = None
) -> EmbeddingAdapter:
    """``adapter`` renamed ``label``, with the joint step of ``system`` as its ``joint_step``."""
    adapter.joint_step = make_step(system, config)
    adapter.info = replace(adapter.info, name=label, family=f"{system}+{adapter.info.family}")
    return adapter
