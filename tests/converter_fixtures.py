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
