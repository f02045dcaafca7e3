"""Tests of the ``multimodal-entity-linking`` pipeline saved with CLIP-ND, on a tiny offline CLIP (tiny_clip.py)."""

import json
import math
import os

import datasets
import pytest
import torch
from fresh_process import last_json_line, run_without_the_package
from tiny_clip import random_images, save_tiny_clip, tiny_processor
from transformers import pipeline

from m3el_benchmark.model_card import build_model_card
from m3el_dataset.rows import FEATURES
from m3el_dataset.text_formats import entity_text as dataset_entity_text
from modeling_clip_nd import PIPELINE_TASK, CLIPNDModel, prepare_images, tokenize_texts
from modeling_clip_nd.pipeline_clip_nd import entity_text as hub_entity_text

CANDIDATES = [
    {"name": "Paris", "description": "capital of France"},
    {"name": "Paris Hilton", "description": "American media personality"},
    {"name": "Paris, Texas", "description": ""},
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny CLIP-ND saved with its processor, as a user's local copy of a Hub repo."""
    root = tmp_path_factory.mktemp("clip_nd")
    model = CLIPNDModel.from_clip(save_tiny_clip(root / "clip")).eval()
    model.save_pretrained(root / "clip_nd")
    tiny_processor().save_pretrained(root / "clip_nd")
    return root / "clip_nd"


@pytest.fixture(scope="module")
def model(model_dir):
    return CLIPNDModel.from_pretrained(model_dir).eval()


@pytest.fixture(scope="module")
def linker(model_dir):
    return pipeline(PIPELINE_TASK, model=str(model_dir), trust_remote_code=True)


@pytest.fixture(scope="module")
def images():
    return random_images(4, seed=3)


def _embed(model, texts=None, images=None) -> torch.Tensor:
    """What the pipeline must compute, asked of the model directly."""
    processor = tiny_processor()
    inputs = dict(tokenize_texts(processor, texts)) if texts is not None else {}
    if images is not None:
        inputs.update(prepare_images(processor, images))
    with torch.no_grad():
        return model.get_features(**inputs)


def _expected_ranking(model, mention: dict, candidates: list[dict]) -> list[tuple[int, float]]:
    """(index, score) of each candidate, best first, from `CLIPNDModel.get_features` and the entity text rule."""
    mention_embeds = _embed(model, [mention["text"]] if "text" in mention else None,
                            [mention["image"]] if "image" in mention else None)  # fmt: skip
    with_text = any("name" in candidate for candidate in candidates)
    with_image = any("image" in candidate for candidate in candidates)
    texts = [dataset_entity_text(c.get("name", ""), c.get("description", "")) for c in candidates]
    candidate_embeds = _embed(model, texts if with_text else None,
                              [c.get("image") for c in candidates] if with_image else None)  # fmt: skip
    scores = (mention_embeds @ candidate_embeds.T).reshape(-1).tolist()
    return sorted(enumerate(scores), key=lambda pair: -pair[1])


def _ranking(result: list[dict]) -> list[tuple[int, float]]:
    return [(item["index"], item["score"]) for item in result]


def _assert_same_ranking(got, expected):
    assert [index for index, _ in got] == [index for index, _ in expected]
    torch.testing.assert_close(torch.tensor([s for _, s in got]), torch.tensor([s for _, s in expected]))


# ---------------------------------------------------------------- the entity text rule


@pytest.mark.parametrize(
    ("name", "description"),
    [
        ("Detroit Lions", "American football team"),
        ("Detroit Lions", ""),
        ("", "a description without a name"),
        ("", ""),
        ("  Paris \n Hilton ", " American\tmedia  personality "),
    ],
)
def test_the_hub_entity_text_agrees_with_the_dataset_library(name, description):
    # The Hub file cannot import m3el_dataset.text_formats.entity_text: its copy must give the same text.
    assert hub_entity_text(name, description) == dataset_entity_text(name, description)


# ---------------------------------------------------------------- saving


def test_save_pretrained_writes_the_pipeline_code_and_its_config_entry(model_dir):
    names = set(os.listdir(model_dir))
    assert {"pipeline_clip_nd.py", "processing_clip_nd.py"} <= names
    config = json.loads((model_dir / "config.json").read_text())
    assert config["custom_pipelines"] == {
        PIPELINE_TASK: {"impl": "pipeline_clip_nd.CLIPNDLinkingPipeline", "pt": ["AutoModel"], "type": "multimodal"}
    }


# ---------------------------------------------------------------- ranking


def test_ranks_candidates_for_a_text_mention(linker, model):
    mention = {"text": "Paris is the capital of France"}
    result = linker(mention["text"], candidates=CANDIDATES)
    _assert_same_ranking(_ranking(result), _expected_ranking(model, mention, CANDIDATES))
    by_index = {item["index"]: item for item in result}
    assert by_index[2] == {"index": 2, "score": by_index[2]["score"], "name": "Paris, Texas", "description": ""}


def test_ranks_candidates_for_an_image_mention(linker, model, images):
    candidates = [{"image": image} for image in images[1:]]
    result = linker(images[0], candidates=[image for image in images[1:]])
    _assert_same_ranking(_ranking(result), _expected_ranking(model, {"image": images[0]}, candidates))


def test_ranks_candidates_for_a_text_and_image_mention(linker, model, images):
    mention = {"text": "Paris is the capital of France", "image": images[0]}
    candidates = [{**candidate, "image": image} for candidate, image in zip(CANDIDATES, images[1:], strict=True)]
    result = linker(mention, candidates=candidates)
    _assert_same_ranking(_ranking(result), _expected_ranking(model, mention, candidates))


def test_modalities_can_be_narrowed(linker, model, images):
    mention = {"text": "Paris is the capital of France", "image": images[0]}
    candidates = [{**candidate, "image": image} for candidate, image in zip(CANDIDATES, images[1:], strict=True)]
    result = linker(mention, candidates=candidates, mention_modalities="image", candidate_modalities=["text"])
    _assert_same_ranking(_ranking(result), _expected_ranking(model, {"image": images[0]}, CANDIDATES))
    with pytest.raises(ValueError, match="mention_modalities='audio'"):
        linker(mention, candidates=candidates, mention_modalities="audio")


def test_a_missing_candidate_image_ranks_last_with_a_nan_score(linker, images):
    result = linker(images[0], candidates=[images[1], None, images[2]])
    assert [item["index"] for item in result][-1] == 1
    assert math.isnan(result[-1]["score"]) and not any(math.isnan(item["score"]) for item in result[:-1])


def _rows(images) -> list[dict]:
    """Rows in the dataset's layout (the columns the pipeline reads, plus one it ignores)."""
    return [
        {
            "id": f"m{index}",
            "text_M-S1": f"Paris {index}: a sentence about Paris",
            "text_S": f"a whole context {index}",
            "mention_image": images[index] if index != 1 else None,
            "candidate_qids": ["Q90", "Q47899", "Q830149"],
            "candidate_names": [c["name"] for c in CANDIDATES],
            "candidate_descriptions": [c["description"] for c in CANDIDATES],
            "candidate_images": [images[3], None, images[2]],
        }
        for index in range(3)
    ]


def test_dataset_rows_batched_give_what_one_at_a_time_gives(linker, images):
    rows = _rows(images)
    one_by_one = [linker(row) for row in rows]
    batched = linker(rows, batch_size=2)
    features = datasets.Features({column: FEATURES[column] for column in rows[0]})  # the dataset's own types
    dataset = datasets.Dataset.from_list(rows, features=features)
    streamed = list(linker(dataset, batch_size=3))
    for got in (batched, streamed):
        assert [_ranking(result)[0][0] for result in got] == [_ranking(result)[0][0] for result in one_by_one]
        for result, expected in zip(got, one_by_one, strict=True):
            torch.testing.assert_close(
                torch.tensor([item["score"] for item in result]), torch.tensor([item["score"] for item in expected])
            )
    assert {item["qid"] for item in one_by_one[0]} == {"Q90", "Q47899", "Q830149"}


def test_a_row_reads_the_text_format_asked_for(linker, model, images):
    row = {**_rows(images)[0], "mention_image": None}
    del row["mention_image"], row["candidate_images"]
    result = linker(row, text_format="S", top_k=2)
    expected = _expected_ranking(model, {"text": row["text_S"]}, CANDIDATES)[:2]
    _assert_same_ranking(_ranking(result), expected)


@pytest.mark.parametrize(
    ("inputs", "kwargs", "match"),
    [
        ({"text": "a mention"}, {}, "No candidates"),
        ({"text": "a mention"}, {"candidates": []}, "no candidate"),
        ({"sentence": "a mention"}, {"candidates": ["Paris"]}, "neither text nor image"),
        ({"candidate_names": ["a", "b"], "candidate_descriptions": ["x"], "text": "m"}, {}, "different lengths"),
        ("a mention", {"candidates": ["Paris"], "top_k": 0}, "top_k=0"),
    ],
)
def test_bad_inputs_raise_clear_errors(linker, inputs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        linker(inputs, **kwargs)


# ---------------------------------------------------------------- a process that cannot import the package

_FRESH_PROCESS_SCRIPT = """
    import json, sys
    import numpy as np
    from PIL import Image
    from transformers import pipeline
    model_dir, card_task = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(3)
    images = [Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)) for _ in range(4)]
    candidates = json.loads(sys.argv[3])
    linker = pipeline("multimodal-entity-linking", model=model_dir, trust_remote_code=True)
    with_images = [{**c, "image": image} for c, image in zip(candidates, images[1:])]
    out = {
        "text": linker("Paris is the capital of France", candidates=candidates),
        "image": linker(images[0], candidates=images[1:]),
        "text+image": linker({"text": "Paris is the capital of France", "image": images[0]}, candidates=with_images),
    }
    card_pipeline = pipeline(card_task, model=model_dir, trust_remote_code=True)
    out["card"] = card_pipeline(images[0], candidate_labels=["a city", "a person"])
    print(json.dumps(out))
    """


def test_the_pipeline_and_the_cards_task_load_in_a_process_that_cannot_import_the_package(tmp_path, model_dir, model):
    card_task = build_model_card(model.config).data.pipeline_tag
    result = run_without_the_package(_FRESH_PROCESS_SCRIPT, [str(model_dir), card_task, json.dumps(CANDIDATES)],
                                     tmp_path)  # fmt: skip
    assert "is not supported for" not in result.stderr  # the card's task takes CLIP-ND without complaint
    out = last_json_line(result)
    images = random_images(4, seed=3)
    text = "Paris is the capital of France"
    with_images = [{**c, "image": image} for c, image in zip(CANDIDATES, images[1:], strict=True)]
    expected = {
        "text": _expected_ranking(model, {"text": text}, CANDIDATES),
        "image": _expected_ranking(model, {"image": images[0]}, [{"image": image} for image in images[1:]]),
        "text+image": _expected_ranking(model, {"text": text, "image": images[0]}, with_images),
    }
    for kind, ranking in expected.items():
        _assert_same_ranking(_ranking(out[kind]), ranking)
    assert {item["label"] for item in out["card"]} == {"a city", "a person"}
    assert sum(item["score"] for item in out["card"]) == pytest.approx(1.0)


def test_runs_in_the_dtype_the_model_was_loaded_in(model_dir, images):
    # Pixel values follow the model's dtype (as on a GPU in half precision); scores come back as float32 numbers.
    linker = pipeline(PIPELINE_TASK, model=str(model_dir), trust_remote_code=True, dtype=torch.bfloat16)
    assert linker.model.dtype == torch.bfloat16
    result = linker({"text": "Paris", "image": images[0]}, candidates=[{"name": "Paris", "image": images[1]}])
    assert len(result) == 1 and math.isfinite(result[0]["score"])
