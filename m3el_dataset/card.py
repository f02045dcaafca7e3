"""The dataset card: YAML metadata (configs as column projections and split globs) and prose from a template."""

from __future__ import annotations

from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from hub_cards import template_path

from .constants import ENTITY_TEXT_TEMPLATE, SPLITS, TEXT_FORMAT_TEMPLATES, TOPICS, parse_task
from .rows import CONFIG_NAMES, KB_CONFIG, KB_SPLIT, MENTIONS_CONFIG, config_columns, config_features, text_column
from .stats import DatasetStatistics, format_statistics

DATA_DIR = "data"
KB_DIR = "kb"
DEFAULT_CONFIG = MENTIONS_CONFIG
PRETTY_NAME = "M³EL: Multi-task Multi-topic Multi-modal Entity Linking"


def split_globs() -> list[dict[str, str]]:
    """Each split of a mention config as a glob over the shards ``data/<topic>/<split>-*.parquet``."""
    learning = [{"split": split, "path": f"{DATA_DIR}/*/{split}-*.parquet"} for split in SPLITS]
    return learning + [{"split": topic, "path": f"{DATA_DIR}/{topic}/*.parquet"} for topic in TOPICS]


def metadata_configs() -> list[dict[str, Any]]:
    """The YAML ``configs:`` entries: all mention configs share the shards, the ``kb`` config has its own."""
    configs = []
    for name in CONFIG_NAMES:
        if name == KB_CONFIG:
            data_files = [{"split": KB_SPLIT, "path": f"{KB_DIR}/*.parquet"}]
        else:
            data_files = split_globs()
        entry: dict[str, Any] = {"config_name": name, "data_files": data_files}
        if name not in (KB_CONFIG, MENTIONS_CONFIG):
            entry["columns"] = config_columns(name)
        if name == DEFAULT_CONFIG:
            entry["default"] = True
        configs.append(entry)
    return configs


def dataset_info_metadata() -> list[dict[str, Any]]:
    """The YAML ``dataset_info:`` entries: the features of each config, for the Hub's viewer and search."""
    return [{"config_name": name, "features": config_features(name)._to_yaml_list()} for name in CONFIG_NAMES]


def size_category(num_mentions: int) -> str:
    """The Hub's ``size_categories`` bucket of a dataset with ``num_mentions`` rows."""
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if num_mentions < bound:
            return label
    return "1M<n<10M"


def _modality_words(side: str) -> str:
    return {"T": "text", "I": "image", "IT": "image + text"}[side.rstrip("me")]


def _config_rows() -> list[dict[str, str]]:
    rows = []
    for name in CONFIG_NAMES:
        if name == KB_CONFIG:
            rows.append({"name": name, "mention": "–", "entity": "every candidate entity once", "columns": "qid, name,"
                         " description, text, image"})  # fmt: skip
            continue
        if name == MENTIONS_CONFIG:
            rows.append({"name": name, "mention": "all", "entity": "all", "columns": "every column (default)"})
            continue
        parse_task(name)
        mention, entity = name.split("-")
        rows.append({"name": name, "mention": _modality_words(mention), "entity": _modality_words(entity),
                     "columns": f"{len(config_columns(name))}"})  # fmt: skip
    return rows


def render_dataset_card(
    stats: DatasetStatistics, repo_id: str = "<org>/m3el", license: str = "unknown"
) -> DatasetCard:
    """Render ``hub_cards/dataset_card.md`` with the YAML metadata and the statistics ``stats``."""
    card_data = DatasetCardData(
        pretty_name=PRETTY_NAME,
        license=license,
        language=["en"],
        task_categories=["text-retrieval", "zero-shot-image-classification"],
        task_ids=["entity-linking-retrieval"],
        size_categories=[size_category(stats.total.mentions)],
        tags=["multi-modal-entity-linking", "entity-linking", "wikidata", "image-text"],
        configs=metadata_configs(),
        dataset_info=dataset_info_metadata(),
    )
    license_note = (
        "The release's licence was not stated when this copy was built (`license: unknown`): check the authors' "
        "terms before redistributing. The images come from Wikimedia Commons, each under its own licence."
        if license == "unknown"
        else f"`{license}`. The images come from Wikimedia Commons, each under its own licence."
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(template_path("dataset_card.md")),
        pretty_name=PRETTY_NAME,
        repo_id=repo_id,
        config_rows=_config_rows(),
        format_rows=[
            {"name": name, "column": text_column(name), "template": template}
            for name, template in TEXT_FORMAT_TEMPLATES.items()
        ],
        entity_template=ENTITY_TEXT_TEMPLATE,
        topic_splits=", ".join(f"`{topic}`" for topic in TOPICS),
        statistics=format_statistics(stats),
        license_note=license_note,
    )
