"""The benchmark's view of a dataset: each mention's inputs as content keys, and each unique input once.

`load_mentions` reads the ``mentions`` config of a dataset (through `m3el_dataset.loading.open_split`) for the
chosen splits and topics; `load_kb` reads its ``kb`` config, the entities a mention is ranked against under the
``kb`` protocol. Every text and image is replaced by a key, the hash of its content, so that an input used by several
mentions, candidates, KB entities, tasks or text formats is stored, encoded and cached once (`UniqueInputs`).
Images stay undecoded bytes here; DataLoader workers decode them during encoding.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from m3el_dataset import loading
from m3el_dataset.constants import ALL_SPLITS, TEXT_FORMATS, TOPICS, check_text_format, check_topic
from m3el_dataset.rows import KB_CONFIG, KB_SPLIT, MENTIONS_CONFIG, PART_COLUMNS, text_column
from m3el_dataset.text_formats import entity_text

logger = logging.getLogger(__name__)


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

    def add_text(self, text: str | None) -> str | None:
        """Key of a text (``None`` for ``None``: a dataset without that text has no key)."""
        if text is None:
            return None
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
    ``mention_parts[i]`` mention i's ``M``, ``S``, ``S1`` and ``D`` (read whenever a text format is), from which a
    model re-renders a text that does not fit its context or builds its own (DWE+; `EmbeddingAdapter.mention_texts`);
    ``contexts[i]`` its ``sentence``, ``document_ids[i]`` its ``document_id`` (``None`` where the dataset has none) and
    ``candidate_qids[i]`` its candidates' QIDs, what document-level systems group and compare;
    ``candidate_names[i]`` and ``candidate_descriptions[i]`` what the report's gallery shows of them (empty lists
    where the dataset has no such column). ``columns`` are the
    columns of the dataset's ``mentions`` config: a converted peer dataset leaves out those of a modality it lacks,
    and the keys of an absent column are all ``None`` (`m3el_dataset.loading.missing_inputs` tells which
    tasks that rules out).
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
    columns: frozenset[str] = frozenset()
    contexts: list[str | None] = field(default_factory=list)
    document_ids: list[str | None] = field(default_factory=list)
    candidate_qids: list[list[str]] = field(default_factory=list)
    candidate_names: list[list[str]] = field(default_factory=list)
    candidate_descriptions: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def text_formats(self) -> list[str]:
        """The mention text formats the dataset has."""
        return [name for name in TEXT_FORMATS if text_column(name) in self.columns]


@dataclass
class KnowledgeBase:
    """The entities of a dataset's ``kb`` config, inputs given by content key (image ``None`` where missing).

    An entity's text is ``"{name}: {description}"`` (`entity_text`, as a candidate's), so the cache shares it.
    """

    qids: list[str]
    texts: list[str | None]
    images: list[str | None]
    has_text: bool = True
    has_image: bool = True
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.qids)

    def rows_of(self, qids: Sequence[str]) -> np.ndarray:
        """The row of each QID in the KB, -1 for ``""`` (NIL) and for a QID the KB lacks."""
        index = {qid: row for row, qid in enumerate(self.qids)}
        return np.asarray([index.get(qid, -1) if qid else -1 for qid in qids], dtype=np.int64)


def check_names(values: Sequence[str], valid: Sequence[str], what: str) -> list[str]:
    """Return ``values`` if each is in ``valid``, else raise ``ValueError`` naming the bad one and the valid ones."""
    for value in values:
        if value not in valid:
            raise ValueError(f"Unknown {what} {value!r}; choose from {', '.join(valid)}.")
    if not values:
        raise ValueError(f"No {what} chosen; choose one or more of {', '.join(valid)}.")
    return list(values)


def _load_rows(path: str, splits: Sequence[str], columns: list[str], available: set[str]) -> Iterable[dict]:
    """Each mention of ``splits`` once, with ``columns`` (``None`` where absent); adds the config's columns to
    ``available``."""
    seen: set[str] = set()
    for split in splits:
        table = loading.open_split(path, MENTIONS_CONFIG, split)
        available.update(table.column_names)
        for row in loading.keep_columns(table, columns):
            if row["id"] not in seen:  # a topic split overlaps the learning splits
                seen.add(row["id"])
                yield {name: row.get(name) for name in columns}


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
    columns = [*loading.REQUIRED_COLUMNS, "mention_image", "candidate_texts", "candidate_images"]
    columns += ["candidate_names", "candidate_descriptions"]  # shown in the report's gallery
    columns += ["sentence", "document_id"]  # a mention's document (`systems.gan21.documents`)
    columns += [text_column(name) for name in text_formats]
    parts = bool(text_formats)  # a model may read the parts themselves (DWE+: M and S), not only the -M formats
    columns += [name for name in PART_COLUMNS.values() if name not in columns] if parts else []
    inputs = UniqueInputs()
    table = MentionTable([], [], np.zeros(0, dtype=np.int64), {name: [] for name in text_formats}, [], [], [], inputs)
    gold, available = [], set()
    for row in _load_rows(path, splits, columns, available):
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
        table.contexts.append(row["sentence"])
        table.document_ids.append(row["document_id"])
        table.candidate_qids.append(list(row["candidate_qids"]))
        table.candidate_names.append(list(row["candidate_names"] or []))
        table.candidate_descriptions.append(list(row["candidate_descriptions"] or []))
        if parts:
            table.mention_parts.append({part: row[column] for part, column in PART_COLUMNS.items()})
        absent = [None] * len(row["candidate_qids"])  # a modality the dataset lacks: no key for any candidate
        table.candidate_texts.append([inputs.add_text(text) for text in row["candidate_texts"] or absent])
        table.candidate_images.append([inputs.add_image(cell) for cell in row["candidate_images"] or absent])
    table.columns = frozenset(available)
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
        table = loading.open_split(path, KB_CONFIG, KB_SPLIT, columns=["qid", "name", "description", "image"])
    except ValueError as error:  # datasets names the configs it found
        message = f"{path} has no usable {KB_CONFIG!r} config, which the kb protocol ranks against: {error}"
        raise ValueError(message) from error
    kb = KnowledgeBase([], [], [], has_text="name" in table.column_names, has_image="image" in table.column_names)
    for row in table:
        kb.qids.append(row["qid"])
        kb.names.append(row.get("name") or "")
        text = entity_text(row["name"], row.get("description") or "") if kb.has_text else None
        kb.texts.append(inputs.add_text(text))
        kb.images.append(inputs.add_image(row.get("image")))
    duplicates = len(kb.qids) - len(set(kb.qids))
    if duplicates or not kb.qids:
        problem = f"{duplicates} duplicate QIDs" if duplicates else "no entity"
        raise ValueError(f"The {KB_CONFIG!r} config of {path} has {problem}; re-export the dataset.")
    logger.info("Loaded a knowledge base of %d entities from %s", len(kb), path)
    return kb


def check_supported(
    name: str, tasks: Sequence[str], text_formats: Sequence[str], mentions: MentionTable, kb: KnowledgeBase | None
) -> None:
    """Raise ``ValueError`` naming what dataset ``name`` lacks for a task, and the tasks and formats it supports.

    Without ``kb`` (the candidates protocol) a dataset whose mentions have at most one candidate is refused too:
    a converted peer lists the gold alone, and ranking one candidate would report a meaningless 100%.
    """
    if kb is None and all(len(keys) <= 1 for keys in mentions.candidate_texts):
        raise ValueError(
            f"Dataset {name!r} has at most one candidate per mention (a converted peer lists only the gold), so "
            "ranking among candidates would be trivial; rank against its knowledge base with the kb protocol "
            "(`protocol: kb` in its `datasets` entry, or --protocol kb)."
        )
    for task in tasks:
        lacking = loading.missing_inputs(task, text_formats, mentions.columns, kb)
        if lacking:
            formats = mentions.text_formats()
            supported = loading.supported_tasks(formats[:1], mentions.columns, kb)
            raise ValueError(
                f"Dataset {name!r} cannot be scored on {task}: it has no {', '.join(lacking)}. It supports the tasks "
                f"{', '.join(supported) or 'none'} and the mention text formats {', '.join(formats) or 'none'}; "
                "choose among them (`task:`/`text_format:` in its `datasets` entry, or --tasks/--text_formats)."
            )
