"""Converter of WikiMEL and RichpediaMEL in their original layouts: MELBench's release (Zhou et al., CCKS 2021) and
GHMFC's ``datasets/`` folder (Wang et al., SIGIR 2022), which most MEL papers before MIMIC used.

Input layouts, as the repositories hold them (github.com/seukgcode/MELBench, github.com/seukgcode/MEL-GHMFC)::

    MELBench    Wikidata-MEL/Wikidata-MEL.json      WikiMEL; also read inside Wikidata-MEL.zip, as the clone has it
                Richpedia-MEL/Richpedia-MEL.json    RichpediaMEL (or Richpedia-MEL.zip)
    GHMFC       Richpedia-MEL/{train,test}.json     the records, split by file (a dev/valid file is read too)
                Richpedia-MEL/{qid2ne,qid2abs}.json entity names, entity abstracts ("Occupation: ... Languages: ...")
                WikiMEL/input_data/{splits,qid2ne,qid2abs}.json   record ids per split ({train, dev, test}), ...
                WikiMEL/images/<id>.jpg             mention images, named by record id (Richpedia-MEL/images/ too)

A records file is one JSON object keyed by record id, each value ``{"id", "sentence", "mentions", "entities",
"answer"}``: strings for one mention (RichpediaMEL) or parallel lists (WikiMEL); ``imgPath`` is read when present
(GHMFC's preprocessing writes it). GHMFC's WikiMEL folder holds no records: put MELBench's ``Wikidata-MEL.json`` (or
its zip) into it, beside or inside ``input_data/``. Point the converter at one dataset's folder.

Each mention is one row (a record with three mentions gives three), with the id ``<file stem>/<record id>-<mention
position>``. Splits come from the split files or ``splits.json`` when present, else from a stable hash of the record
id (all mentions of a record in one split); the card says which. The ``kb`` config holds every entity of
``qid2ne.json`` and ``qid2abs.json`` and every gold (named from the record's ``entities`` when ``qid2ne.json`` lacks
it); an entity's description is its ``qid2abs`` abstract, empty without one. An ``answer`` of ``nil`` or ``""`` is
NIL. Without an ``images/`` folder the only task is ``Tm-Te``; with one, a mention image missing from it is an
empty cell listed in the build report.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import published
from ..export import ExportConfig, ExportResult, export_rows
from ..images import ImageResolver
from ..release import ReleaseRecordError
from ..report import BuildReport
from ..splits import split_of
from .common import KBEntity, image_resolver, kb_row, mention_row, peer_layout, source_folder, tasks_for
from .ghmfc_files import GhmfcLayout, find_layout, read_object, read_splits, read_strings

logger = logging.getLogger(__name__)

NIL = "nil"


@dataclass(frozen=True)
class GhmfcRecord:
    """One record: its id, its rows' id prefix, its split, and its mentions as ``(surface form, gold QID or "",
    entity name)``."""

    key: str
    id_prefix: str
    split: str
    sentence: str
    image: str
    mentions: tuple[tuple[str, str, str], ...]


def _as_list(record: dict[str, Any], field: str, where: tuple[str, int], key: str) -> list[str] | None:
    value = record.get(field)
    if value is None and field == "entities":
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        state = "missing" if value is None else f"a {type(value).__name__}"
        raise ReleaseRecordError(*where, field, f"expected a string or a list of strings, got {state} (record id "
                                 f"{key!r})")  # fmt: skip
    return values


def parse_record(value: Any, key: str, where: tuple[str, int], id_prefix: str, split: str) -> GhmfcRecord:
    """One record of a GHMFC/MELBench object; its mentions, golds and entity names are parallel."""
    if not isinstance(value, dict):
        raise ReleaseRecordError(*where, None, f"expected an object (record id {key!r})")
    sentence, image = value.get("sentence"), value.get("imgPath", "")
    for field, text in (("sentence", sentence), ("imgPath", image)):
        if not isinstance(text, str):
            raise ReleaseRecordError(*where, field, f"expected a string (record id {key!r})")
    mentions, answers = _as_list(value, "mentions", where, key), _as_list(value, "answer", where, key)
    entities = _as_list(value, "entities", where, key) or [""] * len(answers)
    if not len(mentions) == len(answers) == len(entities) or not mentions:
        counts = f"{len(mentions)}, {len(answers)} and {len(entities)}"
        raise ReleaseRecordError(*where, "answer", f"expected as many mentions, answers and entities, at least one, "
                                 f"got {counts} (record id {key!r})")  # fmt: skip
    golds = ["" if a.strip().lower() in ("", NIL) else a.strip() for a in answers]
    image_name = image.replace("\\", "/").split("/")[-1] or f"{value.get('id', key)}.jpg"
    return GhmfcRecord(key, id_prefix, split, sentence, image_name, tuple(zip(mentions, golds, entities, strict=True)))


def _split(key: str, file_split: str, split_map: dict[str, str] | None, name: str, where: tuple[str, int]) -> str:
    """A record's split: its file's, else ``splits.json``'s, else a stable hash of its id (one split per record)."""
    if file_split:
        return file_split
    if split_map is None:
        return split_of(f"{name}/{key}")
    if key not in split_map:
        raise ReleaseRecordError(*where, None, f"record id {key!r} is in none of splits.json's lists")
    return split_map[key]


def read_records(layout: GhmfcLayout, src: Path, split_map: dict[str, str] | None, *, skip_invalid: bool,
                 report: BuildReport) -> list[GhmfcRecord]:  # fmt: skip
    """Every record of every records file, in file order; malformed ones raise or, with ``skip_invalid``, are
    listed in ``report``."""
    records = []
    for file_split, path in layout.records.items():
        display, table = read_object(path, src)
        stem = Path(display).stem
        for position, (key, value) in enumerate(table.items()):
            where = (display, position)
            # Percent-encoded (dots too), the key cannot collide with another nor end in a file suffix.
            id_prefix = f"{stem}/{quote(key, safe='').replace('.', '%2E')}"
            try:
                split = _split(key, file_split, split_map, layout.name, where)
                records.append(parse_record(value, key, where, id_prefix, split))
            except ReleaseRecordError as error:
                if not skip_invalid:
                    raise
                report.add_skip(error)
    return records


def build_kb(records: list[GhmfcRecord], names: dict[str, str], abstracts: dict[str, str]) -> dict[str, KBEntity]:
    """Every entity of ``qid2ne``/``qid2abs`` and every gold; a gold ``qid2ne`` lacks is named by the record."""
    kb = {qid: KBEntity(qid, names.get(qid, ""), abstracts.get(qid, "")) for qid in {**names, **abstracts}}
    for record in records:
        for _, gold, entity_name in record.mentions:
            if gold and gold not in kb:
                kb[gold] = KBEntity(gold, entity_name, "")
    return kb


class MentionImages:
    """A record's mention image in the ``images/`` folder: its file name, else any file with its stem (``<id>.*``);
    one that is not there keeps its name, so that the build report lists it as missing."""

    def __init__(self, src: Path, image_dir: Path | None) -> None:
        self.folder = image_dir.relative_to(src).as_posix() if image_dir is not None else None
        files = sorted(p.name for p in image_dir.iterdir() if p.is_file()) if image_dir is not None else []
        self.names = set(files)
        self.stems = {}
        for name in files:
            self.stems.setdefault(Path(name).stem, name)

    def path(self, image_name: str) -> str:
        """The image's path relative to the source folder (``""`` without an image folder: no image given)."""
        if self.folder is None:
            return ""
        name = image_name if image_name in self.names else self.stems.get(Path(image_name).stem, image_name)
        return f"{self.folder}/{name}"


def iter_mention_rows(
    records: list[GhmfcRecord], kb: dict[str, KBEntity], name: str, mention_images: MentionImages,
    images: ImageResolver, report: BuildReport,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """One row per mention; its gold entity is its only candidate (NIL: none), ranked against the whole ``kb``."""
    for record in records:
        image = mention_images.path(record.image)
        for position, (mention, gold, _) in enumerate(record.mentions):
            entity = kb[gold] if gold else None
            yield mention_row(
                group=name, split=record.split, source_file=record.id_prefix, index=position, name=mention,
                sentence=record.sentence, image=image, gold=entity, candidates=[entity] if entity else [],
                images=images, report=report,
            )  # fmt: skip


_DESCRIPTIONS = {
    "wikimel": "WikiMEL (MELBench's Wikidata-MEL) is a multi-modal entity linking dataset of Wikipedia image "
    "captions: each mention, in a caption with its image, links to a Wikidata entity",
    "richpediamel": "RichpediaMEL (MELBench's Richpedia-MEL) is a multi-modal entity linking dataset built from the "
    "Richpedia multi-modal knowledge graph: each mention, in a Wikipedia sentence with an image, links to a Wikidata "
    "entity",
}
_HASH_RULE = (
    "assigned by this conversion, not by the release: 8:1:1 from a stable hash (SHA-256) of the record id, so that "
    "all mentions of a record share a split (MELBench's files record no split; its README describes a 70/10/20 "
    "partition)"
)


def _notes(layout: GhmfcLayout, kb: dict[str, KBEntity], names: dict, abstracts: dict | None, unlisted: int) -> str:
    """The card's notes on how this copy was made from the files found."""
    files = ", ".join(f"`{p.name}`" for p in (*layout.records.values(), *layout.side_files.values()))
    named = sum(qid in names for qid in kb)
    notes = [f"Converted from {files}. One row per mention: a record with several mentions gives several rows, with "
             "the ids `<file stem>/<record id>-<mention position>`."]  # fmt: skip
    notes.append(f"The `kb` config holds {len(kb):,} entities: every entity of `qid2ne.json`/`qid2abs.json` and every "
                 f"gold; {len(kb) - named:,} of them lack a `qid2ne.json` name and are named from their record's "
                 "`entities` field." if names else "No `qid2ne.json` was given: the `kb` config holds the gold "
                 "entities alone, named from the records' `entities` field, which makes ranking against it easier "
                 "than against the release's full knowledge base.")  # fmt: skip
    if abstracts is None:
        notes.append("No `qid2abs.json` was given: descriptions are empty and the `D` formats are left out.")
    else:
        empty = sum(not entity.description.strip() for entity in kb.values())
        notes.append(f"Descriptions are the `qid2abs.json` abstracts; {empty:,} entities have none, and their text "
                     "is their name alone.")  # fmt: skip
    if layout.image_dir is None:
        notes.append("No `images/` folder was given (MELBench's images are on Baidu, see its README): the mentions "
                     "have no image and the only task is `Tm-Te`.")  # fmt: skip
    else:
        notes.append(f"Mention images are read from `{layout.image_dir.name}/` (the file `imgPath` names, else "
                     "`<record id>.jpg`); an image missing there is an empty cell listed in "
                     "`build_report.json`.")  # fmt: skip
    if unlisted:
        notes.append(f"{unlisted:,} record ids of `splits.json` have no record in the records file; they are not in "
                     "this copy.")  # fmt: skip
    notes.append("Entities have no image in these releases, so no task has images on the entity side. No published "
                 "figure is listed: those published on WikiMEL and RichpediaMEL (GHMFC's, MIMIC's) were computed on "
                 "other splits or candidate sets, not by ranking this copy's `kb`.")  # fmt: skip
    return "\n".join(f"- {note}" for note in notes)


def convert(src_dir: str | os.PathLike, out_dir: str | os.PathLike, config: ExportConfig) -> ExportResult:
    """Convert a GHMFC or MELBench folder of WikiMEL or RichpediaMEL into our Hub layout (``kb`` = every entity)."""
    src = source_folder(src_dir)
    layout = find_layout(src)
    side, report = layout.side_files, BuildReport()
    if "splits.json" in side and "" not in layout.records:
        raise ValueError(f"{src} holds both split files ({', '.join(p.name for p in layout.records.values())}) and "
                         f"{side['splits.json']}; keep one, so that each record has one split.")  # fmt: skip
    split_map = read_splits(side["splits.json"], src) if "splits.json" in side else None
    names = read_strings(side["qid2ne.json"], src) if "qid2ne.json" in side else {}
    abstracts = read_strings(side["qid2abs.json"], src) if "qid2abs.json" in side else None
    records = read_records(layout, src, split_map, skip_invalid=config.skip_invalid, report=report)
    kb = build_kb(records, names, abstracts or {})
    unlisted = len(set(split_map) - {record.key for record in records}) if split_map is not None else 0
    if unlisted:
        logger.warning("%d record ids of %s have no record in %s; the card says so.", unlisted, side["splits.json"],
                       ", ".join(p.name for p in layout.records.values()))  # fmt: skip
    images = image_resolver(src, config)
    rows = iter_mention_rows(records, kb, layout.name, MentionImages(src, layout.image_dir), images, report)
    origin = "MELBench + GHMFC" if layout.melbench and side else "MELBench" if layout.melbench else "GHMFC"
    fields = published.card_fields(
        layout.name,
        description=_DESCRIPTIONS.get(layout.name, f"{layout.pretty_name} is a multi-modal entity linking dataset: "
                                      "each mention links to a Wikidata entity")
        + f" of a knowledge base of {len(kb):,} entities.",
        source=f"{layout.pretty_name} in the {origin} layout (github.com/seukgcode/MELBench, "
        "github.com/seukgcode/MEL-GHMFC)",
        citations=("melbench", "ghmfc") if side or not layout.melbench else ("melbench",),
        notes=_notes(layout, kb, names, abstracts, unlisted),
    )  # fmt: skip
    fields["published_rows"] = []  # see the notes: published figures were not computed on this copy
    if "" in layout.records:
        fields["split_rule"] = ("from GHMFC's `splits.json` (its `dev` is `validation`)" if split_map is not None
                                else _HASH_RULE)  # fmt: skip
    splits = tuple(s for s in ("train", "validation", "test") if any(r.split == s for r in records)) or ("test",)
    hub_layout = peer_layout(
        layout.name, f"{layout.pretty_name} ({origin} layout)", splits, fields,
        tasks=tasks_for("T" if layout.image_dir is None else "TI", "T"),
        text_parts=frozenset({"M", "S"} if abstracts is None else {"M", "S", "D"}),
        image_source="Wikipedia (Wikimedia Commons)" if layout.name == "wikimel" else "the Richpedia knowledge graph",
    )  # fmt: skip
    entities = (kb_row(entity, images, report) for entity in kb.values())
    return export_rows(rows, out_dir, hub_layout, config, report=report, kb_entities=entities, source=src)
