"""The ``m3el-dataset`` command: build, inspect and upload M3EL in its Hub layout, and convert peer MEL datasets."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from .export import ExportConfig, NothingToExportError, export_release
from .images import DEFAULT_MAX_IMAGE_BYTES, IMAGE_CHECKS
from .parquet_shards import ShardLimits
from .report import BuildReport
from .stats import compute_statistics, format_statistics

logger = logging.getLogger(__name__)


def _size(text: str) -> int:
    """Parse ``500MB``, ``2GB``, ``64KiB`` or a plain number of bytes."""
    units = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "kb": 10**3, "mb": 10**6, "gb": 10**9, "b": 1}
    lowered = text.strip().lower()
    for unit, factor in units.items():
        if lowered.endswith(unit) and lowered[: -len(unit)].strip().replace(".", "", 1).isdigit():
            return int(float(lowered[: -len(unit)]) * factor)
    if lowered.isdigit():
        return int(lowered)
    raise argparse.ArgumentTypeError(f"invalid size {text!r}; write e.g. 500MB, 2GB or a number of bytes")


def _add_export_options(command: argparse.ArgumentParser) -> None:
    """The options that ``build`` and ``convert`` share, read back by `_export_config`."""
    command.add_argument("--skip-invalid", action="store_true", help="skip malformed records and list them")
    command.add_argument("--no-decode-check", action="store_true", help="do not decode images to find corrupt ones")
    command.add_argument("--image-check", choices=list(IMAGE_CHECKS), default="verify",
                         help="how images are checked: 'verify' reads each to its end (JPEG markers, PNG checksums) "
                              "without decoding its pixels; 'full' decodes every pixel (slower)")
    command.add_argument("--max-pixels", type=int, default=None,
                         help="images with more pixels become reported empty cells (default: PIL's limit, ~89M)")
    command.add_argument("--max-image-bytes", type=_size, default=DEFAULT_MAX_IMAGE_BYTES,
                         help="image files larger than this are not read (reported empty cells), e.g. 100MB")
    command.add_argument("--max-shard-size", type=_size, default=ShardLimits.max_shard_bytes, help="e.g. 500MB")
    command.add_argument("--row-group-rows", type=int, default=ShardLimits.row_group_rows)
    command.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    command.add_argument("--drop-duplicates", action="store_true",
                         help="leave out later copies of a duplicated mention (listed either way)")  # fmt: skip
    command.add_argument(
        "--repo-id", default=None, help="repository named in the card's examples (default <org>/<dataset name>)"
    )
    command.add_argument("--license", default="unknown", help="licence field of the card")


PRINTED_PER_KIND = 20
"""How many entries of each kind the build prints; build_report.json lists them all."""


def _print_entries(kind: str, lines: list[str]) -> None:
    for line in lines[:PRINTED_PER_KIND]:
        print(f"{kind}: {line}")
    if len(lines) > PRINTED_PER_KIND:
        print(f"{kind}: ... and {len(lines) - PRINTED_PER_KIND} more (see build_report.json)")


def _where(file: str, index: int | None, field: str | None) -> str:
    """``file, record 3, field Qid``, leaving out what is not known (a whole file has no record)."""
    record = [f"record {index}"] if index is not None else []
    return ", ".join([file, *record, *([f"field {field}"] if field else [])])


def _print_report(report: BuildReport) -> None:
    """What ``build`` and ``convert`` skipped, normalised, did not keep, found duplicated or found empty, a line
    each."""
    if report.image_check:
        how = IMAGE_CHECKS.get(report.image_check, "header and pixel count only")
        print(f"Images checked: {report.image_check} ({how})")
    _print_entries("skipped", [f"{_where(s.file, s.index, s.field)}: {s.problem}" for s in report.skipped_records])
    _print_entries("empty file", [f"{file} holds no record" for file in report.empty_files])
    _print_entries("normalised", [f"{_where(v.file, v.index, v.field)}: {v.original!r} read as {v.value!r}"
                                  for v in report.normalised_values])  # fmt: skip
    _print_entries("ignored field", [f"{f.field} of {f.records} record(s), the first {f.first}: no column keeps it"
                                     for f in report.ignored_fields])  # fmt: skip
    _print_entries("duplicate", [f"{d.id} ({d.split}) repeats {d.duplicate_of} ({d.duplicate_of_split})"
                                 + (", dropped" if d.dropped else "") for d in report.duplicates])  # fmt: skip
    if report.duplicates and not any(d.dropped for d in report.duplicates):
        print(f"{len(report.duplicates)} duplicate mention(s) kept; pass --drop-duplicates to leave them out.")


def _export_config(args: argparse.Namespace) -> ExportConfig:
    """The `ExportConfig` of the options that ``build`` and ``convert`` share (``--num-proc`` is build's only)."""
    return ExportConfig(
        skip_invalid=args.skip_invalid,
        num_proc=getattr(args, "num_proc", 1),
        decode_check=not args.no_decode_check,
        image_check=args.image_check,
        max_pixels=args.max_pixels,
        max_image_bytes=args.max_image_bytes,
        overwrite=args.overwrite,
        drop_duplicates=args.drop_duplicates,
        repo_id=args.repo_id,
        license=args.license,
        limits=ShardLimits(max_shard_bytes=args.max_shard_size, row_group_rows=args.row_group_rows),
    )


def _build(args: argparse.Namespace) -> int:
    result = export_release(args.raw_dir, args.out_dir, _export_config(args))
    report = result.report
    print(f"Wrote {result.statistics.total.mentions} mentions, {result.num_kb_entities} KB entities and "
          f"{len(result.shards)} shards to {result.out_dir}")  # fmt: skip
    _print_report(report)
    for problem in report.image_problems:
        print(f"empty image: {problem.record_id} ({problem.role}) {problem.status}: {problem.path}")
    print(f"Build report: {result.out_dir / 'build_report.json'}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from .converters import convert
    from .converters.common import gold_counts

    result = convert(args.format, args.src_dir, args.out_dir, _export_config(args))
    nil, missed = gold_counts(result.out_dir)
    print(f"Wrote {result.statistics.total.mentions} mentions ({nil} NIL: no gold entity; {missed} whose gold entity "
          f"is not among their candidates), {result.num_kb_entities} KB entities and {len(result.shards)} shards to "
          f"{result.out_dir}")  # fmt: skip
    _print_report(result.report)
    empty_images = len(result.report.image_problems)
    print(f"{empty_images} empty image cells; build report: {result.out_dir / 'build_report.json'}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    statistics = compute_statistics(args.path, skip_invalid=args.skip_invalid)
    print(json.dumps(statistics.to_dict(), indent=1) if args.json else format_statistics(statistics))
    return 0


def _push(args: argparse.Namespace) -> int:
    from .hub import plan_upload, push_folder

    if args.dry_run:
        plan = plan_upload(args.out_dir)
        for name, size in plan.files:
            print(f"{size:>12,}  {name}")
        print(f"{len(plan.files)} files, {plan.total_bytes:,} bytes would go to datasets/{args.repo_id}")
        return 0
    plan = push_folder(args.out_dir, args.repo_id, private=args.private, revision=args.revision)
    print(f"Uploaded {len(plan.files)} files to https://huggingface.co/datasets/{args.repo_id}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``m3el-dataset``."""
    parser = argparse.ArgumentParser(prog="m3el-dataset", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build a Hub folder (Parquet shards + card) from a raw release")
    build.add_argument("raw_dir", help="the folder the release archive unpacks to (the /M3EL/ of its image paths)")
    build.add_argument("out_dir", help="the folder to write, ready for 'm3el-dataset push'")
    build.add_argument("--num-proc", type=int, default=1, help="processes reading and checking images")
    _add_export_options(build)
    build.set_defaults(handler=_build)

    from .converters import CONVERTERS

    commands.add_parser(PIPELINE_COMMAND, help="rebuild M3EL-style data from raw sources and Wikidata")
    convert = commands.add_parser("convert", help="convert a peer MEL dataset into the same Hub layout")
    convert.add_argument("format", choices=list(CONVERTERS),
                         help="; ".join(f"{c.name}: {c.description}" for c in CONVERTERS.values()))  # fmt: skip
    convert.add_argument("src_dir", help="the folder the dataset unpacks to")
    convert.add_argument("out_dir", help="the folder to write, ready for 'm3el-dataset push'")
    _add_export_options(convert)
    convert.set_defaults(handler=_convert)

    stats = commands.add_parser("stats", help="print statistics of a raw release or an exported folder")
    stats.add_argument("path")
    stats.add_argument("--json", action="store_true", help="print JSON instead of tables")
    stats.add_argument("--skip-invalid", action="store_true", help="(raw release) skip malformed records")
    stats.set_defaults(handler=_stats)

    push = commands.add_parser("push", help="upload an exported folder to a Hub dataset repository (resumable)")
    push.add_argument("out_dir")
    push.add_argument("repo_id", help="e.g. my-org/m3el")
    push.add_argument("--private", action="store_true")
    push.add_argument("--revision", default=None, help="branch to upload to")
    push.add_argument("--dry-run", action="store_true", help="list what would be sent, send nothing")
    push.set_defaults(handler=_push)
    return parser


PIPELINE_COMMAND = "pipeline"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``m3el-dataset``; user errors print one line and exit with status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [PIPELINE_COMMAND]:
        # The construction pipeline has its own subcommands (one per stage): hand the rest of the line over.
        from .pipeline.cli import main as pipeline_main

        return pipeline_main(argv[1:], prog=f"m3el-dataset {PIPELINE_COMMAND}")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        if isinstance(error, NothingToExportError):
            _print_report(error.report)  # why every record was left out, before the one-line error
        print(f"m3el-dataset {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
