"""Tiny peer datasets in their sources' exact file layouts, written under tmp_path by the converter tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from release_fixtures import image_bytes

MIMIC_KB = [
    # (id, qid, name, description, images); entity 3 uses "desc", entity 4 has no image and is never a gold.
    (0, "Q76", "Barack%20Obama", "44th president of the United States", ["0_a.jpg", "0_b.jpg"]),
    (1, "Q5111202", "Charles L. Smith", "Seattle politician", ["1.png"]),
    (2, "Q313", "Will Rogers", "American actor", ["2.jpg"]),
    (3, "Q90", "Paris", "capital of France", ["3.jpg"]),
    (4, "Q64", "Berlin", "capital of Germany", []),
]
_SMITH = "Seattle Mayor Charles L. Smith (left) with Will Rogers, circa 1935."
MIMIC_MENTIONS = {
    # split file suffix -> (mention, sentence, imgPath, answer)
    "train": [
        ("Charles L. Smith", _SMITH, "m/1.png", "Q5111202"),
        ("Will Rogers", _SMITH, "m/1.png", "Q313"),
        ("the crowd", "The crowd cheered. Obama spoke.", "m/2.png", "nil"),
    ],
    "dev": [("Obama", "Obama visited Berlin. He spoke.", "https://x.org/3.JPG", "Q76")],
    "test": [
        ("Paris", "Paris at night.", "", "Q90"),
        ("someone", "Someone unknown.", "m/4.png", "nil"),
    ],
}


def write_json(path: Path, value: Any, *, one_line: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value) if one_line else json.dumps(value, indent=1), encoding="utf-8")


def write_mimic(root: Path, prefix: str = "WikiMEL", mention_dir: str = "mention_image") -> Path:
    """A MIMIC-format folder: kb_entity.json, qid2id.json, <prefix>_{train,dev,test}.json and both image folders."""
    kb = []
    for entity_id, qid, name, description, images in MIMIC_KB:
        entity = {"id": entity_id, "type": "entity", "entity_name": name, "image_list": images}
        entity["desc" if entity_id == 3 else "attr"] = description
        kb.append(entity)
        for image in images:
            (root / "kb_image").mkdir(parents=True, exist_ok=True)
            (root / "kb_image" / image).write_bytes(image_bytes(f"{qid}/{image}"))
    write_json(root / "kb_entity.json", kb, one_line=False)
    write_json(root / "qid2id.json", {**{qid: entity_id for entity_id, qid, *_ in MIMIC_KB}, "nil": -1})
    for suffix, mentions in MIMIC_MENTIONS.items():
        records = [
            {"id": f"{suffix}-{i}", "mentions": m, "sentence": s, "imgPath": img, "answer": a, "entities": []}
            for i, (m, s, img, a) in enumerate(mentions)
        ]
        write_json(root / f"{prefix}_{suffix}.json", records, one_line=False)
        for _, _, img, _ in mentions:
            if img:  # MIMIC's images were all converted to <stem>.jpg
                stem = img.split("/")[-1].split(".")[0]
                (root / mention_dir).mkdir(parents=True, exist_ok=True)
                (root / mention_dir / f"{stem}.jpg").write_bytes(image_bytes(f"mention/{stem}", fmt="JPEG"))
    return root


WIKIPERSON = {
    # split -> (image, boundingbox, wikiid); two persons share 10.jpg; one box leaves the image (clamped).
    "Train": [("10.jpg", "[2.5, 4.0, 20.0, 30.0]", "Q76"), ("10.jpg", "[30.0, 4.0, 60.0, 40.0]", "Q6294")],
    "Test": [("11.jpg", "[-5.0, -3.0, 40.0, 50.0]", "Q76"), ("12.jpg", "[1, 1, 9, 9]", "nil")],
}
WIKIPERSON_KB = ("Q76", "Q6294", "Q7747")  # Q7747 is never a gold


def write_wikiperson(root: Path) -> Path:
    """WIKIPerson: the released annotation files, ``images/`` and ``kb_image/<QID>.jpg`` (the assumed layout)."""
    counter = 0
    for split, records in WIKIPERSON.items():
        rows = []
        for image, box, qid in records:
            rows.append({"id": counter, "image": image, "boundingbox": box, "wikiid": qid})
            counter += 1
            (root / "images").mkdir(parents=True, exist_ok=True)
            (root / "images" / image).write_bytes(image_bytes(image, size=64, fmt="JPEG"))
        write_json(root / f"WIKIPerson_{split}.json", rows)
    for qid in WIKIPERSON_KB:
        (root / "kb_image").mkdir(parents=True, exist_ok=True)
        (root / "kb_image" / f"{qid}.jpg").write_bytes(image_bytes(qid, fmt="JPEG"))
    return root


WIKIPERSON_TEXT_KB = [
    # the textual knowledge base as the VNEL README describes it; Q7747 has no image, Q6294 no description.
    {"id": "Q76", "name": "Barack Obama", "description": "44th president of the United States",
     "image_url": "https://commons.wikimedia.org/wiki/Special:FilePath/Obama.jpg", "lastrevid": 1501164266,
     "modified": "2021-09-21T11:56:36Z"},
    {"id": "Q6294", "name": "Hillary Clinton", "description": None, "image_url": "", "lastrevid": 1, "modified": ""},
    {"id": "Q7747", "name": "Vladimir Putin", "description": "president of Russia", "image_url": "", "lastrevid": 2,
     "modified": ""},
]  # fmt: skip
WIKIPERSON_TRAIN_DEV = [  # (id, image, boundingbox, wikiid): images 20-27, one person each, and a second in 20.jpg
    *((38880 + i, f"{20 + i}.jpg", "[2, 2, 30, 40]", ("Q76", "Q6294", "Q7747")[i % 3]) for i in range(8)),
    (38890, "20.jpg", "[32, 2, 60, 40]", "Q6294"),
]
WIKIPERSON_TEST = [(0, "11.jpg", "[-5.0, -3.0, 40.0, 50.0]", "Q76"), (1, "12.jpg", "[1, 1, 9, 9]", "Q999999")]


def write_wikiperson_release(root: Path, *, text_kb: bool = True, image_kb: bool = True) -> Path:
    """WIKIPerson as the Kaggle release is described: WIKIPerson_Train_Dev.json and WIKIPerson_Test.json beside
    the images, the visual KB as a folder of <QID>.jpg and the textual KB as a JSON array (names not documented:
    ``Visual_Knowledge_Base/`` and ``Textual_Knowledge_Base.json`` here). Q999999 is in neither KB."""
    root.mkdir(parents=True, exist_ok=True)
    files = {"WIKIPerson_Train_Dev.json": WIKIPERSON_TRAIN_DEV, "WIKIPerson_Test.json": WIKIPERSON_TEST}
    for name, records in files.items():
        write_json(root / name, [{"id": i, "image": image, "boundingbox": box, "wikiid": qid}
                                 for i, image, box, qid in records])  # fmt: skip
        for _, image, _, _ in records:
            (root / image).write_bytes(image_bytes(image, size=64, fmt="JPEG"))
    if image_kb:
        (root / "Visual_Knowledge_Base").mkdir()
        for qid in ("Q76", "Q6294"):
            (root / "Visual_Knowledge_Base" / f"{qid}.jpg").write_bytes(image_bytes(qid, fmt="JPEG"))
    if text_kb:
        write_json(root / "Textual_Knowledge_Base.json", WIKIPERSON_TEXT_KB, one_line=False)
    return root


DIFFUSIONDB_PROMPTS = {
    "3bfcd9cf-26ea-4303-bbe1-b095853f5360.png": "a castle on a hill, oil painting. trending on artstation",
    "5f47c66c-51d4-4f2c-a872-a68518f44adb.png": "portrait of a cat wearing a crown, highly detailed",
    "66b428b9-55dc-4907-b116-55aaa887de30.png": "cyberpunk city at night",
}


def write_diffusiondb_parquet(root: Path) -> Path:
    """DiffusionDB ``2m_random_1k`` as the Hub's Parquet shards (image struct, prompt and the parameters)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = list(DIFFUSIONDB_PROMPTS)
    for shard, chunk in enumerate((names[:2], names[2:])):
        table = pa.table({
            "image": [{"bytes": image_bytes(name), "path": name} for name in chunk],
            "prompt": [DIFFUSIONDB_PROMPTS[name] for name in chunk],
            "seed": pa.array([1234] * len(chunk), pa.uint32()),
            "step": pa.array([50] * len(chunk), pa.uint16()),
            "cfg": pa.array([7.0] * len(chunk), pa.float32()),
            "sampler": ["k_lms"] * len(chunk),
        })  # fmt: skip
        (root / "2m_random_1k").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / "2m_random_1k" / f"train-{shard:05d}-of-00002.parquet")
    return root


def write_diffusiondb_parts(root: Path) -> Path:
    """DiffusionDB's raw layout: ``images/part-000001/part-000001.json`` and the PNG files beside it."""
    part = root / "images" / "part-000001"
    part.mkdir(parents=True)
    table = {name: {"p": prompt, "se": 1234, "c": 7.0, "st": 50, "sa": "k_lms"}
             for name, prompt in DIFFUSIONDB_PROMPTS.items()}  # fmt: skip
    write_json(part / "part-000001.json", table)
    for name in DIFFUSIONDB_PROMPTS:
        (part / name).write_bytes(image_bytes(name))
    return root


def write_diffusiondb_zip(root: Path) -> Path:
    """DiffusionDB's Hub layout: ``images/part-000001.zip`` holding ``part-000001.json`` and the PNG files."""
    import zipfile

    (root / "images").mkdir(parents=True)
    table = {name: {"p": prompt, "se": 1234, "c": 7.0, "st": 50, "sa": "k_lms"}
             for name, prompt in DIFFUSIONDB_PROMPTS.items()}  # fmt: skip
    with zipfile.ZipFile(root / "images" / "part-000001.zip", "w") as archive:
        archive.writestr("part-000001.json", json.dumps(table))
        for name in DIFFUSIONDB_PROMPTS:
            archive.writestr(name, image_bytes(name))
    return root


def _zip_part(path: Path, names: list[str], *, with_table: bool = True) -> None:
    """A DiffusionDB part archive as the Hub stores it: ``part-NNNNNN.json`` and the PNG files."""
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        if with_table:
            archive.writestr(f"{path.stem}.json", json.dumps(_part_table(names)))
        for name in names:
            archive.writestr(name, image_bytes(name))


def _part_table(names: list[str]) -> dict[str, dict[str, Any]]:
    return {name: {"p": DIFFUSIONDB_PROMPTS[name], "se": 1234, "c": 7.0, "st": 50, "sa": "k_lms"} for name in names}


DIFFUSIONDB_PARTS = {1: list(DIFFUSIONDB_PROMPTS)[:2], 2: list(DIFFUSIONDB_PROMPTS)[2:]}


def write_diffusiondb_flat(root: Path) -> Path:
    """What ``scripts/download.py -i 1 -r 3 --unzip`` leaves: ``images/part-00000N.zip`` and, unzipped into the
    working folder, every part's ``part-00000N.json`` and PNG files side by side (and its ``manifest.txt``)."""
    root.mkdir(parents=True, exist_ok=True)
    for number, names in DIFFUSIONDB_PARTS.items():
        _zip_part(root / "images" / f"part-{number:06d}.zip", names)
        write_json(root / f"part-{number:06d}.json", _part_table(names))
        for name in names:
            (root / name).write_bytes(image_bytes(name))
    (root / "manifest.txt").write_text("https://huggingface.co/datasets/poloclub/diffusiondb/resolve/main/images/"
                                       "part-000001.zip\n")  # fmt: skip
    return root


def write_diffusiondb_metadata(path: Path, rows: list[tuple[str, str, int]]) -> None:
    """DiffusionDB's ``metadata.parquet``: its 13 columns (README types) for ``(image_name, prompt, part_id)``."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(rows)
    table = pa.table({
        "image_name": [name for name, _, _ in rows], "prompt": [prompt for _, prompt, _ in rows],
        "part_id": pa.array([part for _, _, part in rows], pa.uint16()), "seed": pa.array([1] * n, pa.uint32()),
        "step": pa.array([50] * n, pa.uint16()), "cfg": pa.array([7.0] * n, pa.float32()),
        "sampler": pa.array([8] * n, pa.uint8()), "width": pa.array([512] * n, pa.uint16()),
        "height": pa.array([512] * n, pa.uint16()), "user_name": ["c2f288a2"] * n,
        "timestamp": pa.array([datetime.datetime(2022, 8, 11, tzinfo=datetime.timezone.utc)] * n,
                              pa.timestamp("us", tz="UTC")),
        "image_nsfw": pa.array([0.08] * n, pa.float32()), "prompt_nsfw": pa.array([0.004] * n, pa.float32()),
    })  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def write_diffusiondb_hub(root: Path, *, with_tables: bool = True) -> Path:
    """The Hub repository's layout: ``images/part-00000N.zip`` beside ``metadata.parquet``, which also lists a part
    that was not downloaded (part 3)."""
    for number, names in DIFFUSIONDB_PARTS.items():
        _zip_part(root / "images" / f"part-{number:06d}.zip", names, with_table=with_tables)
    rows = [(name, DIFFUSIONDB_PROMPTS[name], number) for number, names in DIFFUSIONDB_PARTS.items() for name in names]
    write_diffusiondb_metadata(root / "metadata.parquet", [("not-here.png", "a part not downloaded", 3), *rows])
    return root


WIKIDIVERSE_IMAGE = "https://upload.wikimedia.org/wikipedia/commons/0/06/DetroitLionsRunningPlay-2007.jpg"
WIKIDIVERSE_PASSAGES = {
    # stem -> passages [text, img_url, topic, [[mention, type, start, end, entity_url], ...]]
    "train": [
        ["The Lions versus the Packers (2007).", WIKIDIVERSE_IMAGE, "sports", [
            ["Lions", "Organization", 4, 9, "https://en.wikipedia.org/wiki/Detroit_Lions"],
            ["Packers", "Organization", 21, 28, "nhttps://en.wikipedia.org/wiki/Green_Bay_Packers"],
        ]],
    ],
    "valid": [["A crowd in Paris.", "https://upload.wikimedia.org/x/Crowd.svg", "news", [
        ["crowd", "Other", 2, 7, "nil"]]]],
    "test": [["Obama spoke.", "https://upload.wikimedia.org/x/Obama.JPG", "politics", [
        ["Obama", "Person", 0, 5, "https://en.wikipedia.org/wiki/Barack_Obama"]]]],
}  # fmt: skip


def wikidiverse_image_name(url: str) -> str:
    """The stored file name of a Wikinews image, computed as the WikiDiverse README shows."""
    import hashlib
    import re

    name = url.split("/")[-1]
    suffix = re.sub(r"(\S+(?=\.(jpg|JPG|png|PNG|svg|SVG)))|(\S+(?=\.(jpeg|JPEG)))", "", name)
    return (hashlib.md5(name.encode()).hexdigest() + suffix).replace(".svg", ".png").replace(".SVG", ".png")


WIKIDIVERSE_DESCRIPTIONS = "wikipedia_entity2desc_filtered.tsv"  # the released name


def write_wikidiverse(
    root: Path, *, with_candidates: bool = False, descriptions: bool = True, folder: str = ""
) -> Path:  # fmt: skip
    """WikiDiverse's original files (passage level, or mention level ``*_w_10cands.json``), images, entity2desc.

    ``folder`` puts the annotation files one folder down (the authors' ``wikidiverse_w_cands/``), beside the images
    ``wikinewsImgs/`` and the descriptions file, which stay in ``root``.
    """
    annotations = root / folder
    for stem, passages in WIKIDIVERSE_PASSAGES.items():
        if with_candidates:
            items = [
                [text, url, m, kind, text[:s].split(), text[e:].split(), entity, _candidates(entity), topic, s, e]
                for text, url, topic, mentions in passages
                for m, kind, s, e, entity in mentions
            ]
            write_json(annotations / f"{stem}_w_10cands.json", items)
        else:
            write_json(annotations / f"{stem}.json", passages)
        for _, url, _, _ in passages:
            (root / "wikinewsImgs").mkdir(parents=True, exist_ok=True)
            (root / "wikinewsImgs" / wikidiverse_image_name(url)).write_bytes(image_bytes(url, fmt="JPEG"))
    if descriptions:
        lines = ["Detroit_Lions@@@@American football team", "Barack Obama@@@@44th president of the United States"]
        (root / WIKIDIVERSE_DESCRIPTIONS).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _candidates(entity: str) -> list[str]:
    """Retrieved candidates as names and URLs, with a duplicate; the Packers' gold was missed by retrieval."""
    if "Packers" in entity:
        return ["Packers (band)", "Green Bay"]
    return ["Detroit", "https://en.wikipedia.org/wiki/Detroit_Lions", "Detroit Lions", "Barack Obama", "Obama (film)"]
