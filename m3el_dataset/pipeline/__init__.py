"""The M3EL construction pipeline (the paper's Figure 1), rebuilt so anyone can refresh or extend the dataset.

Stages, one module each, every one reading and writing files under a work folder so that it can be re-run alone:

1. `sources`: read the raw topic sources and extract mentions (`mentions/<topic>.jsonl`).
2. `candidates`: Wikidata search of each mention, entity details, gold resolution or disambiguation.
3. `images`: download, check and store the mention and candidate images (optionally CLIP-filtered).
4. `records`: write the release-format records (`release/<topic>.json`) that `m3el_dataset.release` reads.

All network traffic goes through one `PipelineHttpClient` (rate limits, retries, cache); all stages are resumable
through `StageRunner` (atomic per-item commits, bounded retries of failed items, a failure report).
"""

from .config import (
    CandidateSettings,
    DisambiguationSettings,
    EndpointSettings,
    HttpSettings,
    ImageSettings,
    PipelineConfig,
    StageSettings,
)
from .run import run_pipeline

__all__ = [
    "CandidateSettings",
    "DisambiguationSettings",
    "EndpointSettings",
    "HttpSettings",
    "ImageSettings",
    "PipelineConfig",
    "StageSettings",
    "run_pipeline",
]
