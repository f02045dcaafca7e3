"""A mention's document in the benchmark's layout, what Gan et al. link jointly.

M3EL has no document column: rows sharing a topic and a context (``sentence``) form one document, whose textual
mentions are those rows and whose visual mentions are their distinct images (by content key). A dataset with a
``document_id`` column (a converted Movie-MEL would have one) is grouped by it instead. A row with neither is a
document of its own. On M3EL most documents hold one mention, where the joint step reduces to late fusion of the
two modalities' scores: `document_report` says how many documents have more than one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ...evaluation.data import MentionTable


def document_key(mention_id: str, topic: str, context: str | None, document_id: str | None) -> str:
    """The document of one mention: its ``document_id``, else a hash of (topic, context), else its own id."""
    if document_id:
        return f"id:{document_id}"
    if context:
        return "ctx:" + hashlib.sha256(f"{topic}\x00{context}".encode()).hexdigest()[:24]
    return f"row:{mention_id}"


@dataclass
class Documents:
    """The documents of a `MentionTable`: ``index[i]`` is mention i's document, ``keys[d]`` document d's key."""

    index: np.ndarray
    keys: list[str]

    def __len__(self) -> int:
        return len(self.keys)

    def members(self) -> list[np.ndarray]:
        """Mention rows of each document, in table order."""
        order = np.argsort(self.index, kind="stable")
        bounds = np.searchsorted(self.index[order], np.arange(len(self.keys) + 1))
        return [order[start:stop] for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]


def group_documents(mentions: MentionTable) -> Documents:
    """Group the mentions of ``mentions`` into documents (`document_key`), in order of first appearance."""
    contexts = mentions.contexts or [None] * len(mentions)
    document_ids = mentions.document_ids or [None] * len(mentions)
    keys: dict[str, int] = {}
    index = np.empty(len(mentions), dtype=np.int64)
    for row, (mention_id, topic) in enumerate(zip(mentions.ids, mentions.topics, strict=True)):
        key = document_key(mention_id, topic, contexts[row], document_ids[row])
        index[row] = keys.setdefault(key, len(keys))
    return Documents(index, list(keys))


def document_report(mentions: MentionTable, documents: Documents | None = None) -> dict[str, int]:
    """How many documents there are, how many have more than one textual mention or more than one distinct image
    (the only ones where the coupling is more than the product of uniform weights), and their mentions."""
    documents = documents or group_documents(mentions)
    multi_text = multi_image = in_multi = 0
    for rows in documents.members():
        images = {mentions.mention_images[row] for row in rows} - {None}
        multi_text += len(rows) > 1
        multi_image += len(images) > 1
        in_multi += len(rows) if len(rows) > 1 else 0
    return {
        "documents": len(documents),
        "documents_with_several_mentions": multi_text,
        "documents_with_several_images": multi_image,
        "mentions_in_such_documents": in_multi,
    }
