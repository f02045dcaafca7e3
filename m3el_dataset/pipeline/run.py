"""Running the stages in order, each resumable, and the run report that gathers every failure."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from .atomic import atomic_write_json, remove_stale_tmp
from .candidates import CandidateGenerator
from .config import PipelineConfig
from .disambiguation import build_disambiguator
from .http_client import PipelineHttpClient
from .image_fetcher import ImageFetcher
from .image_selection import build_image_selector
from .records import write_records
from .sources import load_source_mentions, write_mentions
from .stage import StageRunner
from .wikidata import WikidataClient

logger = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("sources", "candidates", "images", "records")


def stage_fingerprint(config: PipelineConfig, stage: str) -> dict[str, Any]:
    """The settings that shape a network stage's results, flat (``candidates.k``); politeness and retry settings
    (HTTP, workers, attempts) are left out, since they change how results are fetched, not what they are."""
    parts: dict[str, Any] = {"endpoints": asdict(config.endpoints)}
    parts["endpoints"].pop("maxlag")
    if stage == "candidates":
        parts.update(candidates=asdict(config.candidates), disambiguation=asdict(config.disambiguation))
    elif stage == "images":  # its input is the candidates stage's output: a change there changes it too
        parts.update(images=asdict(config.images), release={"dir": str(config.release_dir)},
                     candidates=asdict(config.candidates), disambiguation=asdict(config.disambiguation))  # fmt: skip
    return {f"{group}.{key}": value for group, values in parts.items() for key, value in values.items()}


def _runner(config: PipelineConfig, stage: str, on_commit: Callable[[str], None] | None) -> StageRunner:
    return StageRunner(stage, config.stage_dir(stage), config.stage, on_commit=on_commit,
                       fingerprint=stage_fingerprint(config, stage))  # fmt: skip


def run_sources(config: PipelineConfig) -> dict[str, int]:
    """Stage 1 for every configured topic; mention counts by topic."""
    return {topic: write_mentions(config.work_dir, topic, config.sources[topic]) for topic in config.topics}


def run_candidates(config: PipelineConfig, http: PipelineHttpClient, on_commit=None) -> dict[str, Any]:
    """Stage 2 over the mentions of every configured topic."""
    generator = CandidateGenerator(WikidataClient(http, config.endpoints), config.candidates,
                                   build_disambiguator(config.disambiguation, http))
    items = [(m.key, m) for topic in config.topics for m in load_source_mentions(config.work_dir, topic)]
    return asdict(_runner(config, "candidates", on_commit).run(items, generator))


def run_images(config: PipelineConfig, http: PipelineHttpClient, on_commit=None) -> dict[str, Any]:
    """Stage 3 over the mentions whose candidates stage finished."""
    fetcher = ImageFetcher(http, config.endpoints, config.images, build_image_selector(config.images.clip_model),
                           config.release_dir, config.candidates.k)
    upstream = _runner(config, "candidates", None)
    items = [(m.key, found) for topic in config.topics for m in load_source_mentions(config.work_dir, topic)
             if (found := upstream.load(m.key)) is not None]
    return asdict(_runner(config, "images", on_commit).run(items, fetcher))


def run_records(config: PipelineConfig) -> dict[str, int]:
    """Stage 4 for every configured topic; record counts by topic."""
    images = _runner(config, "images", None)
    return {topic: write_records(config.work_dir, config.release_dir, topic, images.load) for topic in config.topics}


def remove_interrupted_writes(config: PipelineConfig) -> int:
    """Delete the temporary files a killed run left between writing and renaming, in the work folder and in the
    release folder (where the images and records stage write); return how many."""
    folders = [config.work_dir]
    if not config.release_dir.resolve().is_relative_to(config.work_dir.resolve()):
        folders.append(config.release_dir)
    removed = sum(remove_stale_tmp(folder) for folder in folders)
    if removed:
        logger.info("Removed %d temporary file(s) an interrupted run left in %s.", removed,
                    " and ".join(map(str, folders)))  # fmt: skip
    return removed


def run_pipeline(config: PipelineConfig, stages: tuple[str, ...] = STAGES, *,
                 http: PipelineHttpClient | None = None,
                 on_commit: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run ``stages`` (in pipeline order) and write ``<work>/report.json``; return the report.

    Args:
        config (`PipelineConfig`): the run's settings.
        stages (`tuple[str, ...]`, *optional*): a subset of `STAGES`; each can be re-run alone.
        http (`PipelineHttpClient`, *optional*): the client to use (one is built from ``config.http`` otherwise).
        on_commit (`Callable[[str], None]`, *optional*): called after each committed item of the network stages.
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"Unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}.")
    if not config.topics:
        raise ValueError("No topic to build: give at least one source, e.g. --source movies=plots.csv.")
    remove_interrupted_writes(config)
    http = http or PipelineHttpClient(config.http)
    summary: dict[str, Any] = {}
    for stage in STAGES:
        if stage not in stages:
            continue
        if stage == "sources":
            summary[stage] = {"mentions": run_sources(config)}
        elif stage == "candidates":
            summary[stage] = run_candidates(config, http, on_commit)
        elif stage == "images":
            summary[stage] = run_images(config, http, on_commit)
        else:
            summary[stage] = {"records": run_records(config)}
    report = {"stages": summary,
              "failures": {s: _runner(config, s, None).failures() for s in ("candidates", "images")}}
    atomic_write_json(config.work_dir / "report.json", report)
    return report
