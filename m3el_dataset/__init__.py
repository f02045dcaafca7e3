"""M3EL on the Hugging Face Hub: release reader, Hub export, one data-access layer and a `datasets` builder over the
raw release."""

from .builder import M3ELBuilder, M3ELConfig
from .constants import TASKS, TEXT_FORMATS, TOPICS, parse_task
from .export import ExportConfig, export_release
from .loading import open_split, resolve_source, supported_tasks
from .release import MentionRecord, ReleaseRecordError, iter_release
from .rows import CONFIG_NAMES, FEATURES, KB_FEATURES, config_columns, iter_release_rows

__all__ = [
    "CONFIG_NAMES",
    "ExportConfig",
    "FEATURES",
    "KB_FEATURES",
    "M3ELBuilder",
    "M3ELConfig",
    "MentionRecord",
    "ReleaseRecordError",
    "TASKS",
    "TEXT_FORMATS",
    "TOPICS",
    "config_columns",
    "export_release",
    "iter_release",
    "iter_release_rows",
    "open_split",
    "parse_task",
    "resolve_source",
    "supported_tasks",
]
