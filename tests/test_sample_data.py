"""The bundled sample release: fresh (equal to what `scripts/make_sample.py` writes), small, well formed, learnable."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from m3el_dataset.constants import ENTITY_TEXT_TEMPLATE, TOPICS

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "m3el_dataset" / "sample_data"
SCRIPT = REPO_ROOT / "scripts" / "make_sample.py"
MAX_BYTES = 3_000_000
RECORD_KEYS = ["Qid", "name", "description", "sentence", "image", "candidates"]
CANDIDATE_KEYS = ["Qid", "name", "description", "image"]
STOPWORDS = frozenset("a an the of by in is it on and to for its with that was as".split())


def load_script():
    """Import `scripts/make_sample.py`, which is a script rather than a package module."""
    spec = importlib.util.spec_from_file_location("make_sample", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_sample"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def read_folder(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by posix relative path."""
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def load_records(root: Path) -> dict[str, list[dict]]:
    """The records of each topic, from ``<topic>.json`` (array) or ``<topic>.jsonl``."""
    records = {}
    for path in sorted(root.glob("*.json*")):
        text = path.read_text(encoding="utf-8")
        records[path.stem] = json.loads(text) if path.suffix == ".json" else [json.loads(x) for x in text.splitlines()]
    return records


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return [record for topic_records in load_records(SAMPLE_DIR).values() for record in topic_records]


def gold_present(records: list[dict]) -> list[dict]:
    return [r for r in records if r["Qid"] in [c["Qid"] for c in r["candidates"]]]


def test_committed_sample_is_what_the_script_generates(tmp_path):
    out = load_script().main(["--out", str(tmp_path / "sample")])
    generated, committed = read_folder(out), read_folder(SAMPLE_DIR)
    assert sorted(generated) == sorted(committed), "file lists differ: run `python scripts/make_sample.py`"
    stale = [name for name in generated if generated[name] != committed[name]]
    assert not stale, f"{len(stale)} stale files, e.g. {stale[:3]}: run `python scripts/make_sample.py`"


def test_script_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a generated sample"):
        load_script().main(["--out", str(tmp_path)])
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_sample_is_under_three_megabytes():
    # Apparent sizes of files and folders alike, as `du -sb` counts them.
    total = sum(os.lstat(Path(folder) / name).st_size for folder, dirs, files in os.walk(SAMPLE_DIR)
                for name in dirs + files) + os.lstat(SAMPLE_DIR).st_size  # fmt: skip
    assert total < MAX_BYTES


def test_layout_topics_and_record_format(records):
    assert sorted(path.name for path in SAMPLE_DIR.glob("*.json*")) == sorted(
        f"{topic}.jsonl" if topic in ("common", "sports") else f"{topic}.json" for topic in TOPICS
    )
    assert len(records) >= 60
    assert {record["image"][2].split("/")[2].removesuffix("_candidates_images") for record in records} == set(TOPICS)
    for record in records:
        assert list(record) == RECORD_KEYS
        assert all(list(candidate) == CANDIDATE_KEYS for candidate in record["candidates"])
        assert len(record["candidates"]) in (2, 3) and record["sentence"].endswith("\n")
        assert record["name"] in record["sentence"] and "/" not in record["name"]
        folder = f"/M3EL/{record['image'][2].split('/')[2]}/{record['name']}-{record['Qid']}/"
        for name, url, local in [record["image"]] + [candidate["image"] for candidate in record["candidates"]]:
            assert url.startswith("https://commons.wikimedia.org/wiki/Special:FilePath/") and name
            assert local.startswith(folder)


def test_every_local_image_exists_case_sensitively(records):
    paths = [image[2] for r in records for image in [r["image"]] + [c["image"] for c in r["candidates"]]]
    extensions = {Path(path).suffix for path in paths}
    assert {".jpg", ".JPG", ".png", ".jpeg"} <= extensions
    for path in paths:
        file = SAMPLE_DIR / path.removeprefix("/M3EL/")
        assert file.name in os.listdir(file.parent), path  # exact case, even on case-insensitive file systems


def test_gold_position_alias_and_image_shares(records):
    n = len(records)
    first = sum(r["candidates"][0]["Qid"] == r["Qid"] for r in records) / n
    present = gold_present(records)
    assert 0.45 <= first <= 0.65
    assert 0.20 <= len(present) / n - first <= 0.40
    assert 0.08 <= 1 - len(present) / n <= 0.22
    assert 0.95 <= sum(len(r["candidates"]) == 3 for r in records) / n < 1
    gold = [next(c for c in r["candidates"] if c["Qid"] == r["Qid"]) for r in present]
    assert 0.3 <= np.mean([r["name"] != g["name"] for r, g in zip(present, gold, strict=True)]) <= 0.5
    same_file = np.mean([r["image"][2] == g["image"][2] for r, g in zip(present, gold, strict=True)])
    assert 0.4 <= same_file <= 0.8  # often the gold's own file, as in the release, but not always


def tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower())) - STOPWORDS


def accuracy(records: list[dict], score: Callable[[dict, dict], float]) -> float:
    """Accuracy of picking the top-scored candidate; ties share the credit, as a random tie-break would."""
    total = 0.0
    for record in records:
        scores = [score(record, candidate) for candidate in record["candidates"]]
        best = [c["Qid"] for c, s in zip(record["candidates"], scores, strict=True) if s == max(scores)]
        total += (record["Qid"] in best) / len(best)
    return total / len(records)


def test_descriptions_carry_the_text_signal_and_names_do_not(records):
    present = gold_present(records)
    chance = np.mean([1 / len(r["candidates"]) for r in present])
    with_descriptions = accuracy(
        present, lambda r, c: len(tokens(r["sentence"]) & tokens(ENTITY_TEXT_TEMPLATE.format(**c)))
    )
    names_only = accuracy(present, lambda r, c: len(tokens(r["sentence"]) & tokens(c["name"])))
    assert with_descriptions >= chance + 0.4
    assert names_only <= chance + 0.1


def mean_colour(path: str) -> np.ndarray:
    with Image.open(SAMPLE_DIR / path.removeprefix("/M3EL/")) as image:
        return np.asarray(image.convert("RGB"), dtype=float).mean(axis=(0, 1))


def test_images_carry_the_visual_signal(records):
    present = gold_present(records)
    chance = np.mean([1 / len(r["candidates"]) for r in present])
    image_to_image = accuracy(
        present, lambda r, c: -np.linalg.norm(mean_colour(r["image"][2]) - mean_colour(c["image"][2]))
    )
    assert image_to_image >= chance + 0.4
