"""Converter of WikiDiverse in its original release format (Wang et al., ACL 2022; github.com/wangxw5/wikiDiverse).

Two annotation layouts are read, as the repository's README and ``eval_cands_recall.py`` describe them; the one
with candidates is preferred when both are present::

    train_w_10cands.json, valid_w_10cands.json, test_w_10cands.json    one item per mention:
        [caption, img_url, mention, mention_type, left_context, right_context, entity_url, candidates, topic,
         start, end]
    train.json, valid.json (or dev.json), test.json                     one item per image-caption pair:
        [caption, img_url, topic, [[mention, type, start, end, entity_url], ...]]

An entity is identified by its Wikipedia title: the URL without ``https://en.wikipedia.org/wiki/`` (with the
release's stray ``nhttps``/``hhttps``/``]https`` prefixes repaired), URL-unquoted, underscores as spaces; a
candidate given as a name or as a URL gets the same key. An entity URL ``nil`` is NIL. With candidates, ``label``
is the gold's position among the de-duplicated candidates (``-1`` when retrieval missed it); without, the gold is
the only candidate. The ``kb`` config lists every gold and candidate entity once.

Mention images are the downloaded Wikinews images, in ``wikinewsImgs/`` (or ``wikinews_imgs/``), named as the
README says: the MD5 of the URL's file name followed by its extension, ``.svg`` saved as ``.png``. Entity images
are only distributed as URLs, so the tasks are ``Tm-Te``, ``Im-Te`` and ``ITm-Te``: of those the M³EL paper names
for WikiDiverse (``Tm-Te``, ``Im-Ie``, ``ITm-Ie``, ``ITm-ITe``) only ``Tm-Te`` (MIMIC's copy, converted by
`converters.mimic`, has entity images). Descriptions come from the
optional ``entity2desc*`` file ("split with '@@@@'", the README says): ``<entity>@@@@<description>`` lines, the
entity given as a name or a URL (both keyed as above); without it the ``D`` formats are left out and descriptions
are empty.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .. import published
from ..export import ExportConfig, ExportResult, export_rows
from ..release import ReleaseRecordError, read_raw_records
from ..report import BuildReport
from .common import KBEntity, image_resolver, mention_row, peer_layout, source_folder, tasks_for

NAME = "wikidiverse"
IMAGE_DIRS = ("wikinewsImgs", "wikinews_imgs")
SPLIT_STEMS = {"train": "train", "valid": "validation", "dev": "validation", "test": "test"}
_BROKEN_PREFIX = re.compile(r"(nhttps)|(hhttps)|(\]https)")
_WIKI_PREFIX = re.compile(r"^https?://en\.wikipedia\.org/+wiki/")
_EXTENSION = re.compile(r"(\S+(?=\.(jpg|JPG|png|PNG|svg|SVG)))|(\S+(?=\.(jpeg|JPEG)))")


def entity_key(url_or_name: str) -> str:
    """The Wikipedia title identifying an entity, from its URL or its name (``""`` for NIL)."""
    text = _WIKI_PREFIX.sub("", _BROKEN_PREFIX.sub("https", url_or_name.strip()))
    text = unquote(text).replace("_", " ").strip()
    return "" if text.lower() == "nil" else text


def mention_image_name(img_url: str) -> str:
    """The file name of a Wikinews image as the release stores it (MD5 of the URL's file name + its extension)."""
    name = img_url.split("/")[-1]
    if not name:
        return ""
    return (hashlib.md5(name.encode()).hexdigest() + _EXTENSION.sub("", name)).replace(".svg", ".png").replace(
        ".SVG", ".png")  # fmt: skip


def find_split_files(src: Path) -> tuple[dict[str, Path], bool]:
    """Our split name -> file, and whether they are the ``*_w_10cands.json`` files (with candidates)."""
    for with_candidates, suffix in ((True, "_w_10cands.json"), (False, ".json")):
        files: dict[str, Path] = {}
        for stem, split in SPLIT_STEMS.items():
            if (src / f"{stem}{suffix}").is_file():
                files.setdefault(split, src / f"{stem}{suffix}")
        if files:
            return {s: files[s] for s in ("train", "validation", "test") if s in files}, with_candidates
    raise FileNotFoundError(f"No WikiDiverse files in {src}: expected train/valid/test.json or *_w_10cands.json.")


def read_descriptions(src: Path) -> dict[str, str] | None:
    """Entity key -> description from an ``entity2desc*`` file, or ``None`` when there is none."""
    files = sorted(p for p in src.glob("entity2desc*") if p.is_file())
    if not files:
        return None
    descriptions = {}
    with open(files[0], "rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{files[0]}, line {number}: not UTF-8 text ({error}); re-encode the file as "
                                 "UTF-8 (e.g. iconv -f latin1 -t utf-8) and convert again.") from error
            entity, separator, description = line.rstrip("\r\n").partition("@@@@")
            if separator:
                descriptions[entity_key(entity)] = description.strip()
    return descriptions


def _items(value: Any, length: int, where: tuple[str, int], field: str | None, layout: str) -> list[Any]:
    if not isinstance(value, list) or len(value) != length:
        raise ReleaseRecordError(*where, field, f"expected a list {layout}")
    return value


def _strings(values: list[Any], positions: tuple[int, ...], where: tuple[str, int], field: str | None) -> None:
    for position in positions:
        if not isinstance(values[position], str):
            raise ReleaseRecordError(*where, f"{field or 'item'}[{position}]", "expected a string")


def parse_item(value: Any, where: tuple[str, int], with_candidates: bool) -> list[tuple[str, str, str, str, list]]:
    """``[(caption, img_url, mention, entity_url, candidates)]`` of one item of either layout."""
    if with_candidates:
        item = _items(value, 11, where, None, "[caption, img_url, mention, type, lctx, rctx, entity, cands, topic, "
                      "start, end]")  # fmt: skip
        _strings(item, (0, 1, 2, 6), where, None)
        if not isinstance(item[7], list) or not all(isinstance(c, str) for c in item[7]):
            raise ReleaseRecordError(*where, "item[7]", "expected the candidates as a list of strings")
        return [(item[0], item[1], item[2], item[6], item[7])]
    item = _items(value, 4, where, None, "[text, img_url, topic, mentions]")
    _strings(item, (0, 1), where, None)
    if not isinstance(item[3], list):
        raise ReleaseRecordError(*where, "item[3]", "expected the list of mentions")
    mentions = []
    for j, raw in enumerate(item[3]):
        mention = _items(raw, 5, where, f"mentions[{j}]", "[mention, type, start, end, entity_url]")
        _strings(mention, (0, 4), where, f"mentions[{j}]")
        mentions.append((item[0], item[1], mention[0], mention[4], None))
    return mentions


def _entity(key: str, descriptions: dict[str, str] | None) -> KBEntity:
    return KBEntity(qid=key, name=key, description=(descriptions or {}).get(key, ""))


def iter_mention_rows(
    src: Path, split_files: dict[str, Path], with_candidates: bool, descriptions: dict[str, str] | None,
    config: ExportConfig, report: BuildReport,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """One row per mention, split by split, in file order."""
    images = image_resolver(src, config)
    folder = next((name for name in IMAGE_DIRS if (src / name).is_dir()), IMAGE_DIRS[0])
    for split, path in split_files.items():
        count = 0
        for index, value in read_raw_records(path, path.name):
            try:
                if isinstance(value, ReleaseRecordError):
                    raise value
                mentions = parse_item(value, (path.name, index), with_candidates)
            except ReleaseRecordError as error:
                if not config.skip_invalid:
                    raise
                report.add_skip(error)
                continue
            for caption, img_url, mention, entity_url, raw_candidates in mentions:
                gold_key = entity_key(entity_url)
                gold = _entity(gold_key, descriptions) if gold_key else None
                keys = dict.fromkeys(entity_key(c) for c in raw_candidates) if raw_candidates is not None else {}
                candidates = [_entity(k, descriptions) for k in keys if k] if with_candidates else [gold] * bool(gold)
                image = mention_image_name(img_url)
                yield mention_row(
                    group=NAME, split=split, source_file=path.name, index=count, name=mention, sentence=caption,
                    image=f"{folder}/{image}" if image else "", gold=gold, candidates=candidates, images=images,
                    report=report,
                )  # fmt: skip
                count += 1


def convert(src_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ExportConfig) -> ExportResult:
    """Convert WikiDiverse's original release into our Hub layout (tasks ``Tm-Te``, ``Im-Te``, ``ITm-Te``)."""
    src = source_folder(src_dir)
    split_files, with_candidates = find_split_files(src)
    descriptions = read_descriptions(src)
    report = BuildReport()
    rows = iter_mention_rows(src, split_files, with_candidates, descriptions, config, report)
    rule = (
        "The candidate columns hold the release's retrieved candidates (at most 10, de-duplicated); `label` is the "
        "gold's position among them, -1 when retrieval missed it or the mention is NIL (empty `gold_qid`)."
        if with_candidates
        else None
    )
    fields = published.card_fields(
        NAME,
        description="WikiDiverse is a human-annotated multi-modal entity linking dataset of Wikinews image-caption "
        "pairs with diversified topics and entity types, linked to Wikipedia.",
        source="WikiDiverse's original release (github.com/wangxw5/wikiDiverse)"
        + (", with its 10 retrieved candidates" if with_candidates else ""),
        citations=("wikidiverse",),
        notes="- Entities are Wikipedia titles (`gold_qid` holds the title, not a Wikidata QID). Entity images "
        "are only distributed as URLs, so no task has images on the entity side.\n"
        + ("- Descriptions come from the release's `entity2desc` file." if descriptions is not None
           else "- No `entity2desc` file was given: descriptions are empty and the `D` formats are left out."),
    )  # fmt: skip
    if rule is not None:
        fields["nil_rule"] = rule
    parts = frozenset({"M", "S", "D"} if descriptions is not None else {"M", "S"})
    layout = peer_layout(NAME, "WikiDiverse", tuple(split_files), fields, tasks=tasks_for("TI", "T"),
                         text_parts=parts, image_source="Wikinews")  # fmt: skip
    return export_rows(rows, out_dir, layout, config, report=report, source=src)
