"""The benchmark's view of a dataset: each mention's inputs as content keys, and each unique input once.

`load_mentions` reads the ``mentions`` config of an exported M3EL folder (or Hub repo) for the chosen splits
and topics; `load_kb` reads its ``kb`` config, the entities a mention is ranked against under the ``kb``
protocol. Every text and image is replaced by a key, the hash of its content, so that an input used by several
mentions, candidates, KB entities, tasks or text formats is stored, encoded and cached once (`UniqueInputs`).
Images stay undecoded bytes here; DataLoader workers decode them during encoding.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np

from m3el_dataset.constants import (
    ALL_SPLITS,
    TEXT_FORMAT_TEMPLATES,
    TEXT_FORMATS,
    TOPICS,
    check_text_format,
    check_topic,
)
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.rows import KB_CONFIG, KB_SPLIT, MENTIONS_CONFIG, text_column
from m3el_dataset.sample import SAMPLE_NAME, resolve_sample
from m3el_dataset.text_formats import entity_text

logger = logging.getLogger(__name__)

PART_COLUMNS: dict[str, str] = {"M": "mention_name", "S": "sentence", "S1": "sentence1", "D": "gold_description"}
"""The column of each part of a mention text format template (``{S1} {M}: {D}``)."""


def needs_parts(text_formats: Sequence[str]) -> bool:
    """Whether a format puts the mention after its sentence (``-M``), which a model may fit to its context."""
    return any(TEXT_FORMAT_TEMPLATES[name].find("{M}") > 0 for name in text_formats)


def content_key(content: str | bytes) -> str:
    """The cache key of a text or an image: the SHA-256 of its UTF-8 text or of its stored bytes (32 hex digits)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    return hashlib.sha256(data).hexdigest()[:32]


def pair_key(text_key: str, image_key: str) -> str:
    """The key of a (text, image) pair, for models whose (I+T) fusion encodes the pair."""
    return f"{text_key}+{image_key}"


@dataclass
class UniqueInputs:
    """Every distinct text and image of the evaluated mentions, by content key."""

    texts: dict[str, str] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)

    def add_text(self, text: str) -> str:
        key = content_key(text)
        self.texts.setdefault(key, text)
        return key

    def add_image(self, cell: dict | None) -> str | None:
        """Key of an image cell (``None`` for an empty cell: a missing image has no key)."""
        if cell is None or not cell.get("bytes"):
            return None
        key = content_key(cell["bytes"])
        self.images.setdefault(key, cell["bytes"])
        return key


@dataclass
class MentionTable:
    """The evaluated mentions, one entry per mention in every list, inputs given by content key.

    ``mention_texts[format][i]`` is mention i's text in that format; image keys are ``None`` where the image is
    missing; ``gold[i]`` is the index of the gold candidate, -1 when it is not among the candidates;
    ``gold_qids[i]`` the gold entity's QID (``""`` for NIL), what whole-knowledge-base ranking looks up;
    ``mention_parts[i]`` mention i's ``M``, ``S``, ``S1`` and ``D`` (read only for the ``-M`` formats), from which a
    model builds its own text (`EmbeddingAdapter.mention_texts`).
    """

    ids: list[str]
    topics: list[str]
    gold: np.ndarray
    mention_texts: dict[str, list[str]]
    mention_images: list[str | None]
    candidate_texts: list[list[str]]
    candidate_images: list[list[str | None]]
    inputs: UniqueInputs
    gold_qids: list[str] = field(default_factory=list)
    dropped_nil: int = 0
    mention_parts: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class KnowledgeBase:
    """The entities of a dataset's ``kb`` config, inputs given by content key (image ``None`` where missing).

    An entity's text is ``"{name}: {description}"`` (`entity_text`, as a candidate's), so the cache shares it.
    """

    qids: list[str]
    texts: list[str]
    images: list[str | None]

    def __len__(self) -> int:
        return len(self.qids)

    def rows_of(self, qids: Sequence[str]) -> np.ndarray:
        """The row of each QID in the KB, -1 for ``""`` (NIL) and for a QID the KB lacks."""
        index = {qid: row for row, qid in enumerate(self.qids)}
        return np.asarray([index.get(qid, -1) if qid else -1 for qid in qids], dtype=np.int64)


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:12]


def resolve_dataset(dataset: str, work_dir: str | Path) -> str:
    """Return a path or repo id that ``datasets.load_dataset`` reads, exporting a raw release first if needed.

    ``dataset`` is ``"sample"`` (the bundled release), a raw release folder (``*.json``/``*.jsonl`` records), an
    exported M3EL folder, or a Hub dataset id. Exports go to ``work_dir`` under a fingerprint of the release, so
    an unchanged release is exported once.
    """
    raw = Path(resolve_sample(dataset))  # the sample is exported once into the benchmark's cache folder
    if not raw.is_dir():
        if dataset.count("/") != 1:
            raise FileNotFoundError(
                f"Dataset {dataset!r} is neither a folder nor a Hub id ('org/name'); pass an exported M3EL folder, "
                f"a raw release folder, a Hub dataset id, or {SAMPLE_NAME!r} for the bundled sample."
            )
        return dataset
    if (raw / "data").is_dir():
        return str(raw)
    if not any(raw.glob("*.json")) and not any(raw.glob("*.jsonl")):
        raise FileNotFoundError(
            f"Folder {raw} holds neither an exported M3EL dataset (a data/ folder) nor a raw release (*.json or "
            "*.jsonl records); build one with `m3el-dataset build RAW OUT`."
        )
    out_dir = Path(work_dir) / f"{raw.resolve().name}-{_fingerprint(raw)}"
    if not (out_dir / "README.md").is_file():
        logger.info("Exporting the raw release %s to %s", raw, out_dir)
        export_release(raw, out_dir, ExportConfig(overwrite=True))
    return str(out_dir)


def check_names(values: Sequence[str], valid: Sequence[str], what: str) -> list[str]:
    """Return ``values`` if each is in ``valid``, else raise ``ValueError`` naming the bad one and the valid ones."""
    for value in values:
        if value not in valid:
            raise ValueError(f"Unknown {what} {value!r}; choose from {', '.join(valid)}.")
    if not values:
        raise ValueError(f"No {what} chosen; choose one or more of {', '.join(valid)}.")
    return list(values)


def _load_rows(path: str, splits: Sequence[str], columns: list[str]) -> Iterable[dict]:
    seen: set[str] = set()
    for split in splits:
        table = datasets.load_dataset(path, MENTIONS_CONFIG, split=split).select_columns(columns)
        table = table.cast_column("mention_image", datasets.Image(decode=False))
        table = table.cast_column("candidate_images", datasets.List(datasets.Image(decode=False)))
        for row in table:
            if row["id"] not in seen:  # a topic split overlaps the learning splits
                seen.add(row["id"])
                yield row


def load_mentions(
    path: str,
    splits: Sequence[str],
    topics: Sequence[str] | None = TOPICS,
    text_formats: Sequence[str] = TEXT_FORMATS,
    drop_nil: bool = False,
) -> MentionTable:
    """Read the mentions of ``splits`` whose topic is in ``topics`` from the dataset at ``path``.

    ``topics`` filters M3EL's topics; ``None`` keeps every group. A group that is no M3EL topic (a converted peer
    dataset has one, named after it) is always kept. ``drop_nil`` leaves out NIL mentions (empty ``gold_qid``: no
    gold entity at all), for comparisons with figures computed without them; a gold entity that merely is not
    among the candidates is not NIL and stays.
    """
    splits = check_names(splits, ALL_SPLITS, "split")
    topics = None if topics is None else [check_topic(topic) for topic in topics]
    text_formats = [check_text_format(name) for name in text_formats]
    columns = ["id", "topic", "label", "gold_qid", "mention_image", "candidate_texts", "candidate_images"]
    columns += [text_column(name) for name in text_formats]
    parts = needs_parts(text_formats)
    columns += list(PART_COLUMNS.values()) if parts else []
    inputs = UniqueInputs()
    table = MentionTable([], [], np.zeros(0, dtype=np.int64), {name: [] for name in text_formats}, [], [], [], inputs)
    gold = []
    for row in _load_rows(path, splits, columns):
        if topics is not None and row["topic"] in TOPICS and row["topic"] not in topics:
            continue
        if drop_nil and not row["gold_qid"]:
            table.dropped_nil += 1
            continue
        table.ids.append(row["id"])
        table.gold_qids.append(row["gold_qid"])
        table.topics.append(row["topic"])
        gold.append(row["label"])
        for name in text_formats:
            table.mention_texts[name].append(inputs.add_text(row[text_column(name)]))
        table.mention_images.append(inputs.add_image(row["mention_image"]))
        if parts:
            table.mention_parts.append({part: row[column] for part, column in PART_COLUMNS.items()})
        table.candidate_texts.append([inputs.add_text(text) for text in row["candidate_texts"]])
        table.candidate_images.append([inputs.add_image(cell) for cell in row["candidate_images"]])
    if not table.ids:
        which = "any topic" if topics is None else f"topics {list(topics)}"
        raise ValueError(f"No mention of {which} in splits {list(splits)} of {path}.")
    table.gold = np.asarray(gold, dtype=np.int64)
    logger.info("Loaded %d mentions (%d unique texts, %d unique images) from %s", len(table), len(inputs.texts),
                len(inputs.images), path)  # fmt: skip
    return table


def load_kb(path: str, inputs: UniqueInputs) -> KnowledgeBase:
    """Read the ``kb`` config of the dataset at ``path``, adding each entity's text and image to ``inputs``."""
    try:
        table = datasets.load_dataset(path, KB_CONFIG, split=KB_SPLIT)
    except ValueError as error:  # datasets names the configs it found
        message = f"{path} has no usable {KB_CONFIG!r} config, which the kb protocol ranks against: {error}"
        raise ValueError(message) from error
    table = table.select_columns(["qid", "name", "description", "image"])
    table = table.cast_column("image", datasets.Image(decode=False))
    kb = KnowledgeBase([], [], [])
    for row in table:
        kb.qids.append(row["qid"])
        kb.texts.append(inputs.add_text(entity_text(row["name"], row["description"])))
        kb.images.append(inputs.add_image(row["image"]))
    duplicates = len(kb.qids) - len(set(kb.qids))
    if duplicates or not kb.qids:
        problem = f"{duplicates} duplicate QIDs" if duplicates else "no entity"
        raise ValueError(f"The {KB_CONFIG!r} config of {path} has {problem}; re-export the dataset.")
    logger.info("Loaded a knowledge base of %d entities from %s", len(kb), path)
    return kb
