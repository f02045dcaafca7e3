"""Command line of the construction pipeline: one subcommand per stage, and ``run`` for all of them.

Example::

    m3el-dataset pipeline run --work-dir build --source movies=wiki_movie_plots_deduped.csv \
        --source sports=AIDA-YAGO2-dataset.tsv --user-agent "my-m3el/1.0 (me@example.org)"

Settings can also come from a JSON file (``--settings``) with the fields of `PipelineConfig` and its sections
(``http``, ``endpoints``, ``candidates``, ``images``, ``disambiguation``, ``stage``); flags override it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .atomic import read_json
from .config import PipelineConfig, config_from_dict
from .run import STAGES, run_pipeline

logger = logging.getLogger(__name__)

# flag dest -> (section, field) of PipelineConfig; None section = top level.
_OVERRIDES: dict[str, tuple[str | None, str]] = {
    "work_dir": (None, "work_dir"),
    "release_dir": (None, "release_dir"),
    "user_agent": ("http", "user_agent"),
    "timeout": ("http", "timeout_s"),
    "wikidata_api": ("endpoints", "wikidata_api"),
    "commons_file_path": ("endpoints", "commons_file_path"),
    "k": ("candidates", "k"),
    "search_limit": ("candidates", "search_limit"),
    "clip_model": ("images", "clip_model"),
    "llm_endpoint": ("disambiguation", "llm_endpoint"),
    "llm_model": ("disambiguation", "llm_model"),
    "max_attempts": ("stage", "max_attempts"),
    "workers": ("stage", "workers"),
}


def _common_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--settings", type=Path, help="JSON file with PipelineConfig fields (flags override it).")
    parent.add_argument("--work-dir", type=Path, help="Folder of stage outputs, cache and reports.")
    parent.add_argument("--release-dir", type=Path, help="Where records and images go (default: WORK_DIR/M3EL).")
    parent.add_argument("--source", action="append", default=[], metavar="TOPIC=PATH",
                        help="Raw source of a topic; repeat per topic (movies, common, person, books, sports).")
    parent.add_argument("--user-agent", help="Descriptive User-Agent with a contact (Wikimedia policy).")
    parent.add_argument("--timeout", type=float, help="Seconds before one request times out.")
    parent.add_argument("--wikidata-api", help="Wikidata action API URL.")
    parent.add_argument("--commons-file-path", help="Commons Special:FilePath/ prefix.")
    parent.add_argument("--k", type=int, help="Candidates per mention.")
    parent.add_argument("--search-limit", type=int, help="Search hits read per mention.")
    parent.add_argument("--clip-model", help="CLIP-compatible model for the image relevance filter.")
    parent.add_argument("--llm-endpoint", help="OpenAI-compatible base URL for disambiguation (common, books).")
    parent.add_argument("--llm-model", help="Model name sent to the LLM endpoint.")
    parent.add_argument("--max-attempts", type=int, help="Runs in which a failed item is retried.")
    parent.add_argument("--workers", type=int, help="Items processed concurrently.")
    parent.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")
    return parent


def build_parser(prog: str = "m3el-pipeline") -> argparse.ArgumentParser:
    """The argument parser: subcommands ``sources``, ``candidates``, ``images``, ``records`` and ``run``."""
    parser = argparse.ArgumentParser(prog=prog, description="Build M3EL-style data from raw sources "
                                     "and Wikidata. Every stage is resumable; re-run a command to continue.")
    sub = parser.add_subparsers(dest="stage", required=True)
    parent = _common_options()
    for stage in STAGES:
        sub.add_parser(stage, parents=[parent], help=f"Run only the {stage} stage.")
    sub.add_parser("run", parents=[parent], help="Run every stage in order.")
    return parser


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """Merge ``--settings`` and the flags into a `PipelineConfig`."""
    data = read_json(args.settings) if args.settings else {}
    source = str(args.settings) if args.settings else "command line"
    for item in args.source:
        topic, sep, path = item.partition("=")
        if not sep or not path:
            raise ValueError(f"--source {item!r} must look like TOPIC=PATH, e.g. movies=plots.csv.")
        data.setdefault("sources", {})[topic] = path
    for dest, (section, name) in _OVERRIDES.items():
        value = getattr(args, dest)
        if value is not None:
            (data.setdefault(section, {}) if section else data)[name] = value
    if "work_dir" not in data:
        raise ValueError("Pass --work-dir (or 'work_dir' in the --settings file).")
    return config_from_dict(data, source=source)


def main(argv: list[str] | None = None, prog: str = "m3el-pipeline") -> int:
    """Entry point; returns the exit status: 0, 1 when some item failed (so scripts notice), 2 on a user error.

    ``prog`` names the command in help and errors (``"m3el-dataset pipeline"`` when called from that command).
    """
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stages = STAGES if args.stage == "run" else (args.stage,)
    try:
        config = config_from_args(args)
        report = run_pipeline(config, stages)
    except (ValueError, FileNotFoundError) as error:
        print(f"{prog} {args.stage}: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report["stages"], indent=1))
    failed = sum(len(rows) for rows in report["failures"].values())
    if failed:
        logger.warning("%d item(s) failed; see %s", failed, config.work_dir / "report.json")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
