"""Converter of WikiDiverse in its original release format (Wang et al., ACL 2022; github.com/wangxw5/wikiDiverse).

Two annotation layouts are read, as the repository's README and ``eval_cands_recall.py`` describe them; the one
with candidates is preferred when both are present::

    train_w_10cands.json, valid_w_10cands.json, test_w_10cands.json    one item per mention:
        [caption, img_url, mention, mention_type, left_context, right_context, entity_url, candidates, topic,
         start, end]
    train.json, valid.json (or dev.json), test.json                     one item per image-caption pair:
        [caption, img_url, topic, [[mention, type, start, end, entity_url], ...]]

The files may lie in the folder given or one folder down: the authors' own scripts keep the mention-level files in
``wikidiverse_w_cands/`` beside the images ``wikinewsImgs/``, and either folder can be given (given
``wikidiverse_w_cands/`` itself, the images are looked up beside it).

An entity is identified by its Wikipedia title: the URL without ``https://en.wikipedia.org/wiki/``, URL-unquoted,
underscores as spaces; a candidate given as a name or as a URL gets the same key. The URLs the authors' script
repairs are repaired the same way (``nhttps``, ``hhttps``, ``]https``, ``ttps`` for ``https``; stray ``[``/``]``,
which no Wikipedia title holds), and titles that differ only by ``-`` for a space are one entity, spelled as first
met (the script compares them so); each repair and merge is listed in the build report's normalised values. An
entity URL ``nil`` is NIL. With candidates, ``label`` is the gold's position among the de-duplicated candidates
(``-1`` when retrieval missed it); without, the gold is the only candidate. The ``kb`` config lists every gold and
candidate entity once, so a gold that retrieval missed can still be ranked against the whole ``kb``.

Mention images are the downloaded Wikinews images, in ``wikinewsImgs/`` (or ``wikinews_imgs/``), named as the README
says: the MD5 of the URL's file name followed by its extension, ``.svg`` saved as ``.png``. Entity images are only
distributed as URLs, so the tasks are ``Tm-Te``, ``Im-Te`` and ``ITm-Te``: of those the M³EL paper names for
WikiDiverse (``Tm-Te``, ``Im-Ie``, ``ITm-Ie``, ``ITm-ITe``) only ``Tm-Te`` (MIMIC's copy, converted by
`converters.mimic`, has entity images). Descriptions come from the released ``wikipedia_entity2desc_filtered.tsv`` (any
``*entity2desc*`` file; "split with '@@@@'", the README says): ``<entity>@@@@<description>`` lines, the entity given as
a name or a URL (both keyed as above); without it the ``D`` formats are left out, descriptions are empty, and the log
and the card say so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .. import published
from ..export import ExportConfig, ExportResult, export_rows
from ..release import ReleaseRecordError, read_raw_records
from ..report import BuildReport, NormalisedValue
from .common import (
    KBEntity,
    image_resolver,
    kb_row,
    mention_row,
    peer_layout,
    refuse_keyed_by_id,
    source_folder,
    tasks_for,
)

logger = logging.getLogger(__name__)

NAME = "wikidiverse"
IMAGE_DIRS = ("wikinewsImgs", "wikinews_imgs")
SPLIT_STEMS = {"train": "train", "valid": "validation", "dev": "validation", "test": "test"}
DESCRIPTIONS_GLOB = "*entity2desc*"
_ARCHIVES = (".zip", ".gz", ".tgz", ".tar", ".7z", ".rar", ".bz2", ".xz")
# What eval_cands_recall.py strips: the article prefix, after up to two stray characters ("nhttps", "hhttps",
# "]https"), or with its "h" lost ("ttps").
_WIKI_URL = re.compile(r"^.{0,2}?ttps?://en\.wikipedia\.org/+wiki/", re.IGNORECASE)
_BRACKETS = re.compile(r"[\[\]]")
_EXTENSION = re.compile(r"(\S+(?=\.(jpg|JPG|png|PNG|svg|SVG)))|(\S+(?=\.(jpeg|JPEG)))")


def entity_title(url_or_name: str) -> str:
    """The Wikipedia title an entity URL or name gives (``""`` for NIL), with the authors' repairs (see above)."""
    text = _WIKI_URL.sub("", _BRACKETS.sub("", url_or_name.strip()))
    text = unquote(text).replace("_", " ").strip()
    return "" if text.lower() == "nil" else text


def _is_broken_url(raw: str) -> bool:
    """Whether ``raw`` is an article URL only once repaired (a stray bracket, a mangled ``https``)."""
    text = raw.strip()
    return bool(_BRACKETS.search(text)) or (bool(_WIKI_URL.match(text)) and not text.lower().startswith("http"))


class EntityIndex:
    """The entities met, each once, keyed by its title in the spelling first met (the descriptions file's first).

    Titles that differ only by ``-`` for a space are one entity, as the authors' script compares them. A repaired
    URL and a merged spelling are listed in ``report.normalised_values``.
    """

    def __init__(self, descriptions: dict[str, str] | None, report: BuildReport) -> None:
        self.report = report
        self.entities: dict[str, KBEntity] = {}
        self._spellings: dict[str, str] = {}
        self.descriptions = {self._spelling(title): text for title, text in (descriptions or {}).items()}

    def _spelling(self, title: str) -> str:
        return self._spellings.setdefault(title.replace("-", " "), title)

    def get(self, raw: str, file: str, index: int, field: str) -> KBEntity | None:
        """The entity a URL or name of record ``index`` of ``file`` names (``None``: NIL), listing any repair."""
        title = entity_title(raw)
        if not title:
            return None
        key = self._spelling(title)
        if key != title or _is_broken_url(raw):
            self.report.normalised_values.append(NormalisedValue(file, index, field, raw, key))
        if key not in self.entities:
            self.entities[key] = KBEntity(qid=key, name=key, description=self.descriptions.get(key, ""))
        return self.entities[key]


def mention_image_name(img_url: str) -> str:
    """The file name of a Wikinews image as the release stores it (MD5 of the URL's file name + its extension)."""
    name = img_url.split("/")[-1]
    if not name:
        return ""
    return (hashlib.md5(name.encode()).hexdigest() + _EXTENSION.sub("", name)).replace(".svg", ".png").replace(
        ".SVG", ".png")  # fmt: skip


def _split_files(folder: Path, suffix: str) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for stem, split in SPLIT_STEMS.items():
        if (folder / f"{stem}{suffix}").is_file():
            files.setdefault(split, folder / f"{stem}{suffix}")
    return {split: files[split] for split in ("train", "validation", "test") if split in files}


def find_split_files(src: Path) -> tuple[dict[str, Path], bool]:
    """Our split name -> file, and whether they are the ``*_w_10cands.json`` files (with candidates); the files lie
    in ``src`` or one folder down (``wikidiverse_w_cands/``)."""
    folders = [src, *sorted(path for path in src.iterdir() if path.is_dir())]
    for with_candidates, suffix in ((True, "_w_10cands.json"), (False, ".json")):
        found = {folder: files for folder in folders if (files := _split_files(folder, suffix))}
        if len(found) > 1:
            listed = ", ".join(folder.relative_to(src).as_posix() or "." for folder in found)
            raise ValueError(f"WikiDiverse files *{suffix} in several folders of {src} ({listed}); keep one copy.")
        if found:
            return next(iter(found.values())), with_candidates
    raise FileNotFoundError(f"No WikiDiverse files in {src} or its folders: expected train/valid/test.json (the "
                            "annotated data) or train/valid/test_w_10cands.json (the data with candidates, in "
                            "wikidiverse_w_cands/); pass the folder you unpacked them to.")  # fmt: skip


def find_images(src: Path, annotations: Path) -> tuple[Path, str]:
    """``(root, folder)``: the Wikinews images are ``root/folder/``; ``root`` is ``src``, or the annotation files'
    folder, or, when ``src`` is that folder (``wikidiverse_w_cands/``), the folder beside which it lies."""
    for root in dict.fromkeys([src, annotations, src.parent] if annotations == src else [src, annotations]):
        for folder in IMAGE_DIRS:
            if (root / folder).is_dir():
                if root == src.parent:
                    logger.info("Reading the Wikinews images from %s, beside %s.", root / folder, src)
                return root, folder
    return src, IMAGE_DIRS[0]  # no image folder: every mention image is reported missing


def find_descriptions(folders: list[Path]) -> Path | None:
    """The ``*entity2desc*`` file of ``folders`` (the released ``wikipedia_entity2desc_filtered.tsv``), or ``None``
    when there is none; ``ValueError`` when there are several, or only an archive of one."""
    found = sorted({path for folder in folders for path in folder.glob(DESCRIPTIONS_GLOB) if path.is_file()})
    files = [path for path in found if not path.name.lower().endswith(_ARCHIVES)]
    if len(files) > 1:
        raise ValueError(f"Several description files ({', '.join(map(str, files))}); keep one.")
    if not files and found:
        raise ValueError(f"{found[0]} is an archive: unpack it (the descriptions file is "
                         "wikipedia_entity2desc_filtered.tsv) and convert again.")  # fmt: skip
    return files[0] if files else None


def read_descriptions(path: Path) -> dict[str, str]:
    """Entity title -> description from ``<entity>@@@@<description>`` lines (the entity as a name or a URL)."""
    descriptions = {}
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}, line {number}: not UTF-8 text ({error}); re-encode the file as "
                                 "UTF-8 (e.g. iconv -f latin1 -t utf-8) and convert again.") from error
            entity, separator, description = line.rstrip("\r\n").partition("@@@@")
            if separator:
                descriptions.setdefault(entity_title(entity), description.strip())
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


def iter_mention_rows(
    split_files: dict[str, Path], with_candidates: bool, entities: EntityIndex, root: Path, image_dir: str,
    config: ExportConfig, report: BuildReport,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """One row per mention, split by split, in file order; every entity met is added to ``entities``."""
    images = image_resolver(root, config)
    for split, path in split_files.items():
        count = 0
        refuse_keyed_by_id(path, path.name)
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
            for j, (caption, img_url, mention, entity_url, raw_candidates) in enumerate(mentions):
                field = "item[6]" if with_candidates else f"mentions[{j}][4]"
                gold = entities.get(entity_url, path.name, index, field)
                if with_candidates:
                    named = [entities.get(c, path.name, index, f"item[7][{k}]") for k, c in enumerate(raw_candidates)]
                    candidates = list(dict.fromkeys(entity for entity in named if entity is not None))
                else:
                    candidates = [gold] if gold is not None else []
                image = mention_image_name(img_url)
                yield mention_row(
                    group=NAME, split=split, source_file=path.name, index=count, name=mention, sentence=caption,
                    image=f"{image_dir}/{image}" if image else "", gold=gold, candidates=candidates, images=images,
                    report=report,
                )  # fmt: skip
                count += 1


def _card_fields(with_candidates: bool, descriptions: Path | None) -> dict[str, Any]:
    fields = published.card_fields(
        NAME,
        description="WikiDiverse is a human-annotated multi-modal entity linking dataset of Wikinews image-caption "
        "pairs with diversified topics and entity types, linked to Wikipedia.",
        source="WikiDiverse's original release (github.com/wangxw5/wikiDiverse)"
        + (", with its 10 retrieved candidates" if with_candidates else ""),
        citations=("wikidiverse",),
        notes="- Entities are Wikipedia titles (`gold_qid` holds the title, not a Wikidata QID). Entity images "
        "are only distributed as URLs, so no task has images on the entity side.\n"
        "- Entity URLs are repaired as the authors' `eval_cands_recall.py` repairs them, and titles differing only "
        "by `-` for a space are one entity; each repair is listed in `build_report.json` (normalised values).\n"
        + (f"- Descriptions come from the release's `{descriptions.name}` file." if descriptions is not None
           else "- No `*entity2desc*` file was found: descriptions are empty and the `D` formats are left out."),
    )  # fmt: skip
    if with_candidates:
        fields["nil_rule"] = (
            "The candidate columns hold the release's retrieved candidates (at most 10, de-duplicated); `label` is "
            "the gold's position among them, -1 when retrieval missed it or the mention is NIL (empty `gold_qid`). "
            "Every gold entity is in the `kb` config, so a missed one can still be found by ranking the whole `kb`."
        )
    return fields


def convert(src_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ExportConfig) -> ExportResult:
    """Convert WikiDiverse's original release into our Hub layout (tasks ``Tm-Te``, ``Im-Te``, ``ITm-Te``)."""
    src = source_folder(src_dir)
    split_files, with_candidates = find_split_files(src)
    annotations = next(iter(split_files.values())).parent
    root, image_dir = find_images(src, annotations)
    descriptions = find_descriptions(list(dict.fromkeys([src, annotations, root])))
    if descriptions is None:
        logger.warning("No %s file (wikipedia_entity2desc_filtered.tsv) in %s: descriptions are empty and the D text "
                       "formats are left out.", DESCRIPTIONS_GLOB, src)  # fmt: skip
    report = BuildReport()
    entities = EntityIndex(read_descriptions(descriptions) if descriptions is not None else None, report)
    rows = iter_mention_rows(split_files, with_candidates, entities, root, image_dir, config, report)
    parts = frozenset({"M", "S", "D"} if descriptions is not None else {"M", "S"})
    layout = peer_layout(NAME, "WikiDiverse", tuple(split_files), _card_fields(with_candidates, descriptions),
                         tasks=tasks_for("TI", "T"), text_parts=parts, image_source="Wikinews")  # fmt: skip
    def kb() -> Iterator[dict[str, Any]]:  # read after the mentions, which add every gold and candidate met
        yield from (kb_row(entity, image_resolver(root, config), report) for entity in entities.entities.values())

    return export_rows(rows, out_dir, layout, config, report=report, kb_entities=kb(), source=src)
