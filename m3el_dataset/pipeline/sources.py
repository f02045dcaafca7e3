"""Stage 1: read the raw source of each topic and extract its mentions.

The five sources, as the paper names them:

- movies: the Wikipedia Movie Plots CSV (`Title`, `Plot`, `Wiki Page`); the film title is the mention.
- common: the wikiHow CSV (`Target`, `Text`); the target is the mention, the gold is chosen by disambiguation.
- person: People Wikipedia Data (`name`, `text`, and the page link `URL`, or the DBpedia `URI` of the Kaggle copy).
- books: the Books CSV (`Book-Title`, `Book-Author`, `Year-Of-Publication`, `Publisher`, `Image-URL-L`); the
  context is built from the bibliographic fields and the gold is chosen by disambiguation. `Image-URL-L` (Amazon
  links, mostly dead) is not used: like every topic, the mention image is the gold entity's Commons image.
- sports: AIDA-CoNLL, either the public AIDA-YAGO TSV or the paper's pickle (read with `safe_pickle`).

Output: ``mentions/<topic>.jsonl``, one `SourceMention` per line, written atomically.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ..constants import check_topic
from .atomic import atomic_write_text
from .safe_pickle import restricted_load

logger = logging.getLogger(__name__)


@dataclass
class SourceMention:
    """One mention found in a raw source.

    Args:
        key (`str`): stable id ``<topic>-<document>-<mention>``, used as the item key by every later stage.
        topic (`str`): one of `TOPICS`.
        surface (`str`): the mention's surface form (the release's `name`).
        context (`str`): the mention's textual context (the release's `sentence`).
        gold_title (`str`, *optional*): title of the Wikipedia page the source links the mention to, if any.
    """

    key: str
    topic: str
    surface: str
    context: str
    gold_title: str | None = None


def wikipedia_title(link: str | None) -> str | None:
    """Page title from a Wikipedia URL or a DBpedia resource URI (``<http://dbpedia.org/resource/X>``)."""
    if not link:
        return None
    link = link.strip().strip("<>")
    path = urllib.parse.urlsplit(link).path
    for marker in ("/wiki/", "/resource/"):
        if marker in path:
            title = urllib.parse.unquote(path.split(marker, 1)[1]).replace("_", " ").strip()
            return title or None
    return None


def _read_csv(path: Path, topic: str, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV source with its row numbers; ``ValueError`` naming the missing columns."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # plots and biographies exceed the default 128 kB
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{topic} source {path} lacks the column(s) {', '.join(missing)} "
                             f"(found: {', '.join(reader.fieldnames or [])}); pass the file the paper names.")
        yield from enumerate(reader)


def read_movies(path: Path) -> Iterator[tuple[int, str, str, str | None]]:
    """Wikipedia Movie Plots: (document, surface, context, gold title) per film."""
    for i, row in _read_csv(path, "movies", ("Title", "Plot", "Wiki Page")):
        yield i, row["Title"], row["Plot"], wikipedia_title(row["Wiki Page"])


def read_common(path: Path) -> Iterator[tuple[int, str, str, str | None]]:
    """wikiHow: (document, surface, context, no gold) per row; the gold comes from disambiguation."""
    for i, row in _read_csv(path, "common", ("Target", "Text")):
        yield i, row["Target"], row["Text"], None


def read_person(path: Path) -> Iterator[tuple[int, str, str, str | None]]:
    """People Wikipedia Data: (document, surface, context, gold title) per person."""
    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    link_column = "URL" if "URL" in header else "URI"
    for i, row in _read_csv(path, "person", ("name", "text", link_column)):
        yield i, row["name"], row["text"], wikipedia_title(row[link_column])


def read_books(path: Path) -> Iterator[tuple[int, str, str, str | None]]:
    """Books CSV: (document, surface, context built from the bibliographic fields, no gold) per book."""
    columns = ("Book-Title", "Book-Author", "Year-Of-Publication", "Publisher")
    for i, row in _read_csv(path, "books", columns):
        context = (f"{row['Book-Title']} is a book by {row['Book-Author']}, published by {row['Publisher']} "
                   f"in {row['Year-Of-Publication']}.")
        yield i, row["Book-Title"], context, None


def read_aida_tsv(path: Path) -> Iterator[tuple[int, str, str, str | None]]:
    """AIDA-YAGO TSV: (document, surface, document text, gold title) per linked mention (NIL mentions skipped)."""
    for doc, (tokens, mentions) in enumerate(_aida_documents(path)):
        text = " ".join(tokens).replace(" \n ", "\n").strip() + "\n"
        for surface, link in mentions:
            yield doc, surface, text, wikipedia_title(link)


def _aida_documents(path: Path) -> Iterator[tuple[list[str], list[tuple[str, str]]]]:
    tokens: list[str] = []
    mentions: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            columns = line.rstrip("\n").split("\t")
            if columns[0].startswith("-DOCSTART-"):
                if tokens:
                    yield tokens, mentions
                tokens, mentions = [], []
            elif columns == [""]:
                tokens.append("\n")
            else:
                tokens.append(columns[0])
                if len(columns) >= 5 and columns[1] == "B" and columns[3] != "--NME--":
                    mentions.append((columns[2], columns[4]))
    if tokens:
        yield tokens, mentions


def read_aida_pickle(path: Path) -> Iterator[tuple[int, str, str, str | None]]:
    """AIDA pickle, through the restricted unpickler.

    Accepted shape: a list (or a dict of id to document) of documents ``{"text": str, "mentions": [...]}`` where a
    mention is ``{"mention": str, "url": str}`` or a ``(mention, url)`` pair.
    """
    data = restricted_load(path)
    documents = list(data.values()) if isinstance(data, dict) else data
    if not isinstance(documents, list):
        raise ValueError(f"AIDA pickle {path} holds a {type(data).__name__}; expected a list of documents.")
    for doc, document in enumerate(documents):
        if not isinstance(document, dict) or not isinstance(document.get("text"), str):
            raise ValueError(f"AIDA pickle {path}, document {doc}: expected a dict with a 'text' string.")
        for mention in document.get("mentions", []):
            surface, link = (mention.get("mention"), mention.get("url")) if isinstance(mention, dict) else mention
            if not isinstance(surface, str):
                raise ValueError(f"AIDA pickle {path}, document {doc}: mention {mention!r} has no surface string.")
            yield doc, surface, document["text"], wikipedia_title(link)


def read_sports(path: Path) -> Iterator[tuple[int, str, str, str | None]]:
    """AIDA-CoNLL as TSV (``.tsv``/``.txt``/``.conll``) or as pickle (``.pkl``/``.pickle``)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".pkl", ".pickle"):
        return read_aida_pickle(path)
    return read_aida_tsv(path)


READERS: dict[str, Callable[[Path], Iterator[tuple[int, str, str, str | None]]]] = {
    "movies": read_movies,
    "common": read_common,
    "person": read_person,
    "books": read_books,
    "sports": read_sports,
}


def extract_mentions(topic: str, path: Path) -> list[SourceMention]:
    """All mentions of one topic's source, de-duplicated within each document, with stable keys."""
    check_topic(topic)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"The {topic} source {path} does not exist; pass its path with --source {topic}=…")
    mentions: list[SourceMention] = []
    seen: set[tuple[int, str, str | None]] = set()
    per_doc: dict[int, int] = {}
    for doc, surface, context, gold_title in READERS[topic](path):
        surface = " ".join(surface.split())
        if not surface or not context.strip() or (doc, surface, gold_title) in seen:
            continue
        seen.add((doc, surface, gold_title))
        index = per_doc[doc] = per_doc.get(doc, -1) + 1
        mentions.append(SourceMention(f"{topic}-{doc:06d}-{index:03d}", topic, surface, context, gold_title))
    return mentions


def mentions_path(work_dir: Path, topic: str) -> Path:
    return Path(work_dir) / "mentions" / f"{topic}.jsonl"


def write_mentions(work_dir: Path, topic: str, source: Path) -> int:
    """Run stage 1 for ``topic``: write ``mentions/<topic>.jsonl`` atomically; return the mention count."""
    mentions = extract_mentions(topic, source)
    lines = "".join(json.dumps(asdict(m), ensure_ascii=False) + "\n" for m in mentions)
    atomic_write_text(mentions_path(work_dir, topic), lines)
    logger.info("Stage sources: %d %s mentions from %s", len(mentions), topic, source)
    return len(mentions)


def load_source_mentions(work_dir: Path, topic: str) -> list[SourceMention]:
    """Read ``mentions/<topic>.jsonl``; ``FileNotFoundError`` says to run the sources stage first."""
    path = mentions_path(work_dir, topic)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run the 'sources' stage for {topic} first.")
    with open(path, encoding="utf-8") as handle:
        return [SourceMention(**json.loads(line)) for line in handle if line.strip()]
