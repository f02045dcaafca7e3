"""Tiny releases in the original M3EL format, written under tmp_path by the tests."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

DEFAULT_CANDIDATES = (
    ("Q1558", "Kansas", "state of the United States of America"),
    ("Q204328", "Kansas", "American rock band"),
    ("Q18151305", "Kansas Saloon Smashers", "1901 film by Edwin Stanton Porter"),
)
SENTENCE = (
    "Kansas Saloon Smashers is a 1901 comedy short film produced by Edison Studios.  Directed by Edwin S. Porter,\n"
    "it is a satire of American activist Carrie Nation. The film portrays Nation and her followers.\n"
)


def image_bytes(qid: str, size: int = 8, fmt: str = "PNG") -> bytes:
    """A small image whose colour is derived from ``qid`` (distinct entities get distinct bytes)."""
    digest = hashlib.sha256(qid.encode()).digest()
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), tuple(digest[:3])).save(buffer, format=fmt)
    return buffer.getvalue()


class FakeRelease:
    """Collects records per file and writes them, with their images, like the unpacked release archive."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, list[Any]] = {}

    def image_ref(self, topic: str, folder: str, qid: str, ext: str = ".jpg") -> list[str]:
        local = f"/M3EL/{topic}_candidates_images/{folder}/{qid}{ext}"
        return [f"{qid}{ext}", f"https://commons.wikimedia.org/wiki/Special:FilePath/{qid}{ext}", local]

    def add(
        self,
        topic: str = "movies",
        *,
        name: str = "Kansas Saloon Smashers",
        qid: str = "Q18151305",
        candidates: tuple[tuple[str, str, str], ...] = DEFAULT_CANDIDATES,
        sentence: str = SENTENCE,
        description: str = "1901 film by Edwin Stanton Porter",
        file: str | None = None,
        ext: str = ".jpg",
        write_images: bool = True,
    ) -> dict[str, Any]:
        """Append a record (the gold image is the mention image, as in the release) and write its images."""
        folder = f"{name}-{qid}"
        record = {
            "Qid": qid,
            "name": name,
            "description": description,
            "sentence": sentence,
            "image": self.image_ref(topic, folder, qid, ext),
            "candidates": [
                {"Qid": cq, "name": cn, "description": cd, "image": self.image_ref(topic, folder, cq, ext)}
                for cq, cn, cd in candidates
            ],
        }
        if write_images:
            for ref in [record["image"], *(c["image"] for c in record["candidates"])]:
                self.write_image(ref[2], image_bytes(Path(ref[2]).stem))
        self.files.setdefault(file or f"{topic}.json", []).append(record)
        return record

    def path_of(self, local_path: str) -> Path:
        return self.root / local_path.removeprefix("/M3EL/")

    def write_image(self, local_path: str, data: bytes) -> Path:
        path = self.path_of(local_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def write(self) -> Path:
        """Write every record file: ``*.json`` as a JSON array, ``*.jsonl`` as JSON Lines."""
        self.root.mkdir(parents=True, exist_ok=True)
        for name, records in self.files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if name.endswith(".jsonl"):
                path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
            else:
                path.write_text(json.dumps(records, indent=1), encoding="utf-8")
        return self.root


def small_release(root: Path, per_topic: int = 6) -> FakeRelease:
    """A clean release with every topic, gold first / elsewhere / absent, JSON and JSON Lines files."""
    from m3el_dataset.constants import TOPICS

    release = FakeRelease(root)
    for t, topic in enumerate(TOPICS):
        for i in range(per_topic):
            gold = f"Q{1000 * (t + 1) + i}"
            others = [(f"Q{90000 + 10 * i + k}", f"Other {k}", f"other entity {k} of {topic}") for k in range(2)]
            gold_entry = (gold, f"Entity {i}", f"{topic} entity number {i}")
            position = i % 3  # 0: gold first, 1: gold second, 2: gold absent
            if position == 2:
                candidates = (*others, (f"Q{80000 + i}", f"Entity {i}", "a namesake"))
            else:
                candidates = tuple(others[:position]) + (gold_entry,) + tuple(others[position:])
            release.add(
                topic,
                name=f"Entity {i}" if i % 2 else f"entity {i}",
                qid=gold,
                candidates=candidates,
                sentence=f"Some context. Here entity {i} of {topic} appears.\nMore text follows.",
                description=f"{topic} entity number {i}",
                file=f"{topic}.jsonl" if t % 2 else f"{topic}.json",
                ext=".JPG" if i == 1 else ".jpg",
            )
    return release
