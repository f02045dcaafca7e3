"""Tiny WikiMEL and RichpediaMEL folders in MELBench's and GHMFC's exact layouts, written under tmp_path.

The records are made up (the MELBench README's example caption aside); the file names, folders, JSON shapes and
fields are those of github.com/seukgcode/MELBench and github.com/seukgcode/MEL-GHMFC.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from release_fixtures import image_bytes

_SMITH = "Seattle Mayor Charles L. Smith (left) with Will Rogers, circa 1935."
WIKIMEL = {
    # record id -> (sentence, mentions, entities, answer): WikiMEL's parallel lists
    "101": ("Ada Lovelace with Charles Babbage in London.", ["Ada Lovelace", "Babbage"],
            ["Ada Lovelace", "Charles Babbage"], ["Q7259", "Q46633"]),
    "102": (_SMITH, ["Charles L. Smith", "Will Rogers"], ["Charles L. Smith (Seattle politician)", "Will Rogers"],
            ["Q5111202", "Q313"]),
    "103": ("Obama at the White House in 2009", ["Obama"], ["Barack Obama"], ["Q76"]),
    "104": ("Curie in her laboratory. Paris, 1921.", ["Curie"], ["Marie Curie"], ["Q7186"]),
    "105": ("A portrait of Lovelace", ["Lovelace"], ["Ada Lovelace"], ["Q7259"]),
}  # fmt: skip
WIKIMEL_SPLITS = {"train": ["101", "102", "103"], "dev": ["104"], "test": ["105", "999"]}  # 999 has no record
WIKIMEL_IMAGES = ("101", "102", "103", "105")  # 104's image is missing from images/
# qid2ne lacks Marie Curie (Q7186), a gold: the kb names her from the record's "entities"; Q42 is never a gold.
WIKIMEL_NAMES = {"Q7259": "Ada Lovelace", "Q46633": "Charles Babbage", "Q5111202": "Charles L. Smith (Seattle "
                 "politician)", "Q313": "Will Rogers", "Q76": "Barack Obama", "Q42": "Douglas Adams"}  # fmt: skip
WIKIMEL_ABSTRACTS = {
    "Q7259": "Sex: female. Birth: 1815, London. Occupation: mathematician.",
    "Q46633": "Sex: male. Birth: 1791, London. Occupation: mathematician, engineer.",
    "Q5111202": "Sex: male. Occupation: politician.",
    "Q313": "",  # an entity without an abstract: its text is its name alone
    "Q76": "Sex: male. Birth: 1961, Honolulu. Occupation: politician, lawyer.",
    "Q42": "Sex: male. Occupation: novelist.",
}
RICHPEDIA = {
    # split file -> record id (a QID) -> (sentence, mention, entity): RichpediaMEL's strings; the answer is the id
    "train": {
        "Q7259": ("Lovelace wrote the first published algorithm.", "Lovelace", "Ada Lovelace"),
        "Q46633": ("Babbage designed the Analytical Engine.", "Babbage", "Charles Babbage"),
        "Q313": ("Will Rogers  was an American vaudeville performer.", "Will Rogers", "Will Rogers"),
    },
    "test": {"Q76": ("Obama previously served as a U.", "Obama", "Barack Obama")},
}
RICHPEDIA_ABSTRACTS = {"Q7259": "Occupation: mathematician. Languages: English.", "Q46633": "Occupation: engineer.",
                       "Q313": "", "Q76": "Occupation: politician, lawyer. Languages: English."}  # fmt: skip


def write_json(path: Path, value: object) -> None:
    """JSON written as the repositories hold it: indented over several lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False), encoding="utf-8")


def wikimel_object() -> dict:
    """MELBench's ``Wikidata-MEL.json``: one object keyed by record id."""
    return {key: {"id": key, "sentence": s, "mentions": m, "entities": e, "answer": a}
            for key, (s, m, e, a) in WIKIMEL.items()}  # fmt: skip


def write_zip(path: Path, member: str, value: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, json.dumps(value, indent=2))
    return path


def write_melbench_wikimel(root: Path, zipped: bool = True) -> Path:
    """A MELBench clone's ``Wikidata-MEL/``: ``Wikidata-MEL.zip`` (as cloned) or the ``Wikidata-MEL.json`` in it."""
    folder = root / "Wikidata-MEL"
    if zipped:
        write_zip(folder / "Wikidata-MEL.zip", "Wikidata-MEL.json", wikimel_object())
    else:
        write_json(folder / "Wikidata-MEL.json", wikimel_object())
    return folder


def write_ghmfc_wikimel(root: Path, records_in: str | None = "") -> Path:
    """GHMFC's ``WikiMEL/``: ``input_data/{splits,qid2ne,qid2abs}.json`` and ``images/<id>.jpg``, plus MELBench's
    ``Wikidata-MEL.zip`` put in ``records_in`` (``""``: beside ``input_data/``; ``None``: left out, as cloned)."""
    folder = root / "WikiMEL"
    write_json(folder / "input_data" / "splits.json", WIKIMEL_SPLITS)
    write_json(folder / "input_data" / "qid2ne.json", WIKIMEL_NAMES)
    write_json(folder / "input_data" / "qid2abs.json", WIKIMEL_ABSTRACTS)
    for key in WIKIMEL_IMAGES:
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "images" / f"{key}.jpg").write_bytes(image_bytes(key, fmt="JPEG"))
    if records_in is not None:
        write_zip(folder / records_in / "Wikidata-MEL.zip", "Wikidata-MEL.json", wikimel_object())
    return folder


def richpedia_object(split: str | None = None) -> dict:
    """RichpediaMEL records keyed by QID, of one split file or (``None``) all of them, as MELBench's single file."""
    splits = [split] if split else list(RICHPEDIA)
    return {qid: {"id": qid, "sentence": s, "mentions": m, "entities": e, "answer": qid}
            for name in splits for qid, (s, m, e) in RICHPEDIA[name].items()}  # fmt: skip


def write_ghmfc_richpedia(root: Path) -> Path:
    """GHMFC's ``Richpedia-MEL/``: ``{train,test,qid2ne,qid2abs}.json`` and ``images/<QID>.jpg`` (one missing)."""
    folder = root / "Richpedia-MEL"
    for split in RICHPEDIA:
        write_json(folder / f"{split}.json", richpedia_object(split))
    names = {qid: entity for records in RICHPEDIA.values() for qid, (_, _, entity) in records.items()}
    write_json(folder / "qid2ne.json", names)
    write_json(folder / "qid2abs.json", RICHPEDIA_ABSTRACTS)
    for qid in ("Q7259", "Q46633", "Q76"):
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "images" / f"{qid}.jpg").write_bytes(image_bytes(qid, fmt="JPEG"))
    return folder


def write_melbench_richpedia(root: Path) -> Path:
    """A MELBench clone's ``Richpedia-MEL/Richpedia-MEL.zip``."""
    write_zip(root / "Richpedia-MEL" / "Richpedia-MEL.zip", "Richpedia-MEL.json", richpedia_object())
    return root / "Richpedia-MEL"
