"""Uploading an exported folder to the Hub with huggingface_hub's resumable large-folder upload."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi

from .card import DATA_DIR, KB_DIR
from .hub_folder import check_m3el_layout
from .images import is_inside
from .report import REPORT_FILE_NAME

logger = logging.getLogger(__name__)

UPLOAD_PATTERNS = ["README.md", REPORT_FILE_NAME, f"{DATA_DIR}/*/*.parquet", f"{KB_DIR}/*.parquet"]
"""What `push_folder` sends; anything else in the folder (caches, notes) stays local."""


@dataclass(frozen=True)
class UploadPlan:
    """The files an upload would send, relative to the folder, with their sizes in bytes."""

    folder: Path
    files: list[tuple[str, int]]

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def plan_upload(folder: str | os.PathLike) -> UploadPlan:
    """List what `push_folder` would send from ``folder``; raise if it is not an exported M3EL folder, or if a file
    to send is a link to a file outside it (the same rule as for the release's images)."""
    folder = Path(folder)
    check_m3el_layout(folder)
    files = sorted({path for pattern in UPLOAD_PATTERNS for path in folder.glob(pattern) if path.is_file()})
    for path in files:
        if not is_inside(path, folder):
            raise ValueError(f"{path} is a link to {path.resolve()}, outside {folder}; it would upload a file from "
                             "elsewhere. Replace the link by the file, or remove it.")  # fmt: skip
    return UploadPlan(folder, [(path.relative_to(folder).as_posix(), path.stat().st_size) for path in files])


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    api: HfApi | None = None,
) -> UploadPlan:
    """Upload an exported folder to the dataset repository ``repo_id``; an interrupted upload resumes when re-run.

    huggingface_hub 1.x has ``upload_large_folder`` (progress kept in ``folder/.cache/huggingface``); from 2.x on
    ``upload_folder`` itself streams, commits large folders in several parts and skips what is already committed
    when re-run. Either way a dataset of ~318K images goes up in resumable steps.
    """
    plan = plan_upload(folder)
    api = api or HfApi()
    logger.info("Uploading %d files (%.1f MB) to datasets/%s", len(plan.files), plan.total_bytes / 1e6, repo_id)
    common = {"repo_id": repo_id, "folder_path": str(plan.folder), "repo_type": "dataset", "revision": revision}
    if hasattr(api, "upload_large_folder"):
        api.upload_large_folder(**common, private=private, allow_patterns=UPLOAD_PATTERNS)
    else:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(**common, allow_patterns=UPLOAD_PATTERNS, commit_message="Upload M3EL")
    return plan
