"""Gan et al. (ACM MM 2021), *Multimodal Entity Linking: A New Dataset and A Baseline*, as a benchmark baseline.

The paper links the textual and the visual mentions of one document jointly: an entropic (fused) Gromov-Wasserstein
coupling aligns the two mention graphs, and each modality's scores are rescored with those of its matched mention
in the other modality. Its specification, with what the paper leaves open and the proposals that fill it, is Part A
of the project's ``seed-systems.md``. Modules, one concept each:

* `documents`: which mentions form a document (rows sharing topic and context, or a ``document_id``);
* `coupling`: the GW coupling and its differentiable value (POT, torch backend);
* `rescoring`: the training-free joint step, ``"Gan21-OT(<model>)"``;
* `naive`: the paper's naive baseline, ``"Gan21-Naive(<model>)"`` (visual candidates = the textual predictions);
* `heads`, `training`: the trained version (text scorer, 64-patch visual transformer, the three loss terms);
* `system`: the model-spec names and how a joint step is attached to any loaded adapter.

Nothing is imported here, so that the registry can read `SYSTEMS` without loading the evaluation stack.
"""

SYSTEMS: dict[str, str] = {"Gan21-OT": "ot", "Gan21-Naive": "naive"}
"""Model-spec prefixes (``"Gan21-OT(CLIP)"``) and the joint step each names."""
