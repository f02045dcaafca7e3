"""Tests of CLIPNDModel, its config, input helpers and model card, on a tiny offline CLIP (see tiny_clip.py)."""

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from fresh_process import last_json_line, run_without_the_package
from tiny_clip import MAX_TEXT_TOKENS, random_images, save_tiny_clip, tiny_clip_config, tiny_processor
from transformers import AutoConfig, AutoModel, AutoProcessor, CLIPModel, CLIPProcessor

from m3el_benchmark.model_card import build_model_card
from m3el_dataset.constants import TASKS, parse_task
from modeling_clip_nd import (
    CLIPNDConfig,
    CLIPNDModel,
    CLIPNDOutput,
    clip_nd_contrastive_loss,
    prepare_images,
    tokenize_texts,
)

PROJECTION_DIM = 32
REPO_ROOT = Path(__file__).resolve().parents[1]


class CLIPNDModelTester:
    """Builds the tiny config and random inputs, like transformers' ``CLIPModelTester``."""

    def __init__(self, batch_size: int = 3, seq_length: int = 7):
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.config = CLIPNDConfig.from_clip_config(tiny_clip_config())

    def text_inputs(self, batch_size: int | None = None) -> dict[str, torch.Tensor]:
        batch_size = batch_size or self.batch_size
        vocab_size = self.config.text_config.vocab_size
        input_ids = torch.randint(0, vocab_size - 2, (batch_size, self.seq_length))
        input_ids[:, -1] = self.config.text_config.eos_token_id
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}

    def image_inputs(self, batch_size: int | None = None) -> dict[str, torch.Tensor]:
        vision = self.config.vision_config
        shape = (batch_size or self.batch_size, vision.num_channels, vision.image_size, vision.image_size)
        return {"pixel_values": torch.randn(shape)}

    def model(self) -> CLIPNDModel:
        return CLIPNDModel(self.config).eval()


@pytest.fixture
def tester() -> CLIPNDModelTester:
    return CLIPNDModelTester()


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture
def model(clip_dir) -> CLIPNDModel:
    return CLIPNDModel.from_clip(clip_dir).eval()


@pytest.fixture
def transformers_warnings():
    """Collect transformers' warnings (its loggers do not propagate to pytest's caplog)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


# ---------------------------------------------------------------- config


def test_config_carries_the_papers_defaults():
    config = CLIPNDConfig()
    assert config.model_type == "clip_nd"
    # The training recipe is the trainer's argument defaults (tests/test_training.py); the config only records
    # what a trained model ran with.
    assert config.training_arguments is None
    assert config.fusion_image_weight == 0.5
    assert config.logit_scale_max == pytest.approx(math.log(100))
    assert config.vision_config.patch_size == 32  # CLIP ViT-B/32 towers


def test_config_round_trip_through_auto_config(tmp_path, tester):
    ran = {"learning_rate": 0.001, "adam_beta1": 0.9, "task": "ITm-ITe", "lora_r": 0}
    config = CLIPNDConfig.from_clip_config(tiny_clip_config(), fusion_image_weight=0.25, training_arguments=ran)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, CLIPNDConfig)
    assert loaded.fusion_image_weight == 0.25
    assert loaded.training_arguments == ran
    assert loaded.vision_config.image_size == tester.config.vision_config.image_size


def test_an_old_config_with_the_recipe_fields_still_loads_without_them(tmp_path):
    CLIPNDConfig.from_clip_config(tiny_clip_config()).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    old_recipe = {"learning_rate": 1e-5, "adam_betas": [0.9, 0.98], "adam_epsilon": 1e-6, "weight_decay": 0.001,
                  "train_batch_size": 256, "num_train_epochs": 35}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps({**saved, **old_recipe}))
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, CLIPNDConfig) and loaded.training_arguments is None
    assert not any(hasattr(loaded, name) for name in old_recipe)
    assert not set(old_recipe) & set(loaded.to_dict())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fusion_image_weight", 1.5),
        ("fusion_image_weight", "half"),
        ("missing_image_fallback", "zero"),
        ("training_arguments", [("learning_rate", 1e-5)]),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        CLIPNDConfig(**{field: value})


# ---------------------------------------------------------------- features


def test_features_have_the_right_shapes_and_unit_norm(tester):
    model = tester.model()
    with torch.no_grad():
        text = model.get_text_features(**tester.text_inputs())
        image = model.get_image_features(**tester.image_inputs())
        both = model.get_multimodal_features(**tester.text_inputs(), **tester.image_inputs())
    for embeds in (text, image, both):
        assert isinstance(embeds, torch.Tensor)
        assert embeds.shape == (tester.batch_size, PROJECTION_DIM)
        torch.testing.assert_close(embeds.norm(dim=-1), torch.ones(tester.batch_size))


def test_multimodal_features_are_the_normalised_mean(tester):
    model = tester.model()
    text_inputs, image_inputs = tester.text_inputs(), tester.image_inputs()
    with torch.no_grad():
        text = model.get_text_features(**text_inputs)
        image = model.get_image_features(**image_inputs)
        both = model.get_multimodal_features(**text_inputs, **image_inputs)
    torch.testing.assert_close(both, F.normalize(text + image, dim=-1))


def test_from_clip_gives_identical_weights_and_embeddings(clip_dir, transformers_warnings):
    model, info = CLIPNDModel.from_clip(clip_dir, output_loading_info=True)
    assert not [record.getMessage() for record in transformers_warnings]
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    clip = CLIPModel.from_pretrained(clip_dir).eval()
    assert model.state_dict().keys() == clip.state_dict().keys()
    processor = tiny_processor()
    inputs = processor(text=["a cat", "the dog barks"], images=random_images(2), padding=True, return_tensors="pt")
    with torch.no_grad():
        text_output = clip.get_text_features(inputs["input_ids"], inputs["attention_mask"])
        expected_text = F.normalize(text_output.pooler_output)
        expected_image = F.normalize(clip.get_image_features(inputs["pixel_values"]).pooler_output)
        model.eval()
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
        image = model.get_image_features(inputs["pixel_values"])
    torch.testing.assert_close(text, expected_text, atol=1e-6, rtol=0)
    torch.testing.assert_close(image, expected_image, atol=1e-6, rtol=0)


def test_from_clip_loads_a_clip_nd_checkpoint_as_is(tmp_path, model):
    model.config.fusion_image_weight = 0.75
    model.save_pretrained(tmp_path)
    assert CLIPNDModel.from_clip(tmp_path).config.fusion_image_weight == 0.75


def test_from_clip_rejects_other_model_types(tmp_path):
    tiny_clip_config().text_config.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="clip_text_model"):
        CLIPNDModel.from_clip(tmp_path)


# ---------------------------------------------------------------- saving and loading


def test_save_pretrained_round_trip_through_auto_model(tmp_path, model, tester):
    model.save_pretrained(tmp_path)
    names = set(os.listdir(tmp_path))
    # The modeling file's relative imports travel with it: the loss file is copied too.
    assert {"model.safetensors", "configuration_clip_nd.py", "modeling_clip_nd.py", "loss_clip_nd.py"} <= names
    assert not any(name.endswith((".bin", ".pt")) for name in names)
    assert "model_card.py" not in names
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_clip_nd.CLIPNDConfig",
        "AutoModel": "modeling_clip_nd.CLIPNDModel",
        "AutoModelForZeroShotImageClassification": "modeling_clip_nd.CLIPNDModel",
    }
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is CLIPNDModel
    inputs = tester.text_inputs()
    with torch.no_grad():
        torch.testing.assert_close(loaded.get_text_features(**inputs), model.get_text_features(**inputs))


_FRESH_PROCESS_SCRIPT = """
    import json, sys
    import torch
    from transformers import AutoModel, AutoProcessor
    model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    # AutoTokenizer reads config.json, whose auto_map needs the same permission as the model.
    processor = AutoProcessor.from_pretrained(sys.argv[1], trust_remote_code=True)
    inputs = processor(text=["a cat"], return_tensors="pt")
    with torch.no_grad():
        embeds = model.get_text_features(**inputs)
    names = {"class": type(model).__name__, "processor": type(processor).__name__}
    print(json.dumps({**names, "embeds": embeds.tolist()}))
    """


def test_the_model_package_imports_nothing_of_the_dataset_or_the_benchmark():
    # What travels to the Hub must stand alone: `import modeling_clip_nd` may load transformers and torch, not the
    # dataset stack or the benchmark. A fresh process, so that no other test has imported them already.
    script = (
        "import modeling_clip_nd, sys; "
        "loaded = sorted(m for m in sys.modules if m.startswith(('m3el_dataset', 'm3el_benchmark'))); "
        "assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_remote_code_loads_in_a_process_that_cannot_import_the_package(tmp_path, model):
    model_dir = tmp_path / "clip_nd"
    model.save_pretrained(model_dir)
    tiny_processor().save_pretrained(model_dir)
    result = run_without_the_package(_FRESH_PROCESS_SCRIPT, [str(model_dir)], tmp_path, timeout=120)
    loaded = last_json_line(result)
    assert (loaded["class"], loaded["processor"]) == ("CLIPNDModel", "CLIPProcessor")
    inputs = tiny_processor()(text=["a cat"], return_tensors="pt")
    with torch.no_grad():
        expected = model.get_text_features(**inputs)
    torch.testing.assert_close(torch.tensor(loaded["embeds"]), expected)


def test_auto_processor_round_trip(tmp_path, model):
    processor = tiny_processor()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, CLIPProcessor)
    images = random_images(2)
    expected = processor(text=["a cat", "a dog"], images=images, padding=True, return_tensors="pt")
    got = loaded(text=["a cat", "a dog"], images=images, padding=True, return_tensors="pt")
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])


def test_save_pretrained_writes_the_model_card(tmp_path, model):
    card = build_model_card(model.config, results={"ITm-ITe": {"accuracy": 0.81}}, repo_id="org/clip_nd")
    model.save_pretrained(tmp_path, model_card=card)
    text = (tmp_path / "README.md").read_text()
    assert "model-index" in text and "org/clip_nd" in text and "0.8100" in text


# ---------------------------------------------------------------- scores and loss


@pytest.mark.parametrize("task", TASKS)
def test_score_handles_all_nine_tasks(task, tester):
    model = tester.model()
    spec = parse_task(task)

    def side(text: bool, image: bool, count: int) -> dict[str, torch.Tensor]:
        return {**(tester.text_inputs(count) if text else {}), **(tester.image_inputs(count) if image else {})}

    mention = side(spec.mention_text, spec.mention_image, 2)
    candidates = side(spec.entity_text, spec.entity_image, 3)
    with torch.no_grad():
        scores = model.score(mention, candidates)
        expected = model.get_features(**mention) @ model.get_features(**candidates).T
    assert scores.shape == (2, 3)
    torch.testing.assert_close(scores, expected)
    assert scores.abs().max() <= 1 + 1e-5


def test_score_accepts_embeddings(tester):
    model = tester.model()
    mention, candidates = torch.randn(PROJECTION_DIM), torch.randn(4, PROJECTION_DIM)
    expected = F.normalize(mention, dim=-1) @ F.normalize(candidates, dim=-1).T
    torch.testing.assert_close(model.score(mention, candidates), expected.unsqueeze(0))


def test_forward_loss_is_clips_symmetric_infonce(clip_dir, model):
    clip = CLIPModel.from_pretrained(clip_dir).eval()
    processor = tiny_processor()
    inputs = processor(text=["a", "bb", "ccc"], images=random_images(3), padding=True, return_tensors="pt")
    with torch.no_grad():
        output = model(**inputs, return_loss=True)
        expected = clip(**inputs, return_loss=True)
    assert isinstance(output, CLIPNDOutput)
    assert list(output.keys())[0] == "loss"
    torch.testing.assert_close(output.loss, expected.loss)
    torch.testing.assert_close(output.logits_per_mention, expected.logits_per_text)


def test_forward_with_entity_inputs_trains(tester):
    model = tester.model().train()
    output = model(
        **tester.text_inputs(),
        **tester.image_inputs(),
        entity_input_ids=tester.text_inputs()["input_ids"],
        return_loss=True,
    )
    assert output.logits_per_mention.shape == output.logits_per_entity.T.shape == (3, 3)
    output.loss.backward()
    assert model.logit_scale.grad is not None
    assert torch.isfinite(model.visual_projection.weight.grad).all()


def test_logit_scale_is_clamped_at_ln_100(tester):
    model = tester.model()
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
        output = model(**tester.text_inputs(), **tester.image_inputs())
    torch.testing.assert_close(output.logit_scale, torch.tensor(100.0))


def _manual_infonce(mentions, entities, scale):
    logits = scale * mentions @ entities.T
    targets = torch.arange(len(mentions))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits[:, : len(mentions)].T, targets)) / 2


def test_loss_uses_extra_entities_as_hard_negatives():
    mentions, entities = F.normalize(torch.randn(3, 8), dim=-1), F.normalize(torch.randn(5, 8), dim=-1)
    loss = clip_nd_contrastive_loss(mentions, entities, 20.0)
    torch.testing.assert_close(loss, _manual_infonce(mentions, entities, 20.0))


def test_loss_leaves_missing_rows_out():
    mentions, entities = F.normalize(torch.randn(4, 8), dim=-1), F.normalize(torch.randn(4, 8), dim=-1)
    mentions[1] = float("nan")  # mention 1 has no image: pair 1 is dropped but entity 1 stays a negative
    loss = clip_nd_contrastive_loss(mentions, entities, 10.0)
    kept = [0, 2, 3]
    logits = 10.0 * mentions[kept] @ entities.T
    expected_m2e = F.cross_entropy(logits, torch.tensor(kept))
    expected_e2m = F.cross_entropy(10.0 * entities[kept] @ mentions[kept].T, torch.arange(3))
    torch.testing.assert_close(loss, (expected_m2e + expected_e2m) / 2)
    masked = clip_nd_contrastive_loss(
        mentions.nan_to_num(), entities, 10.0, mention_mask=torch.tensor([True, False, True, True])
    )
    torch.testing.assert_close(masked, loss)


def test_loss_without_any_pair_is_zero_and_differentiable():
    mentions = torch.full((2, 8), float("nan"))
    entities = torch.randn(2, 8, requires_grad=True)
    loss = clip_nd_contrastive_loss(mentions, entities, 10.0)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(entities.grad, torch.zeros(2, 8))


@pytest.mark.parametrize(
    ("mentions", "entities", "kwargs", "match"),
    [
        ((3, 8), (2, 8), {}, "only 2 entities"),
        ((3, 8), (3, 4), {}, "same embedding size"),
        ((2, 8), (2, 8), {"mention_mask": torch.tensor([1, 0])}, "mention_mask must be a boolean"),
    ],
)
def test_loss_rejects_bad_inputs(mentions, entities, kwargs, match):
    with pytest.raises(ValueError, match=match):
        clip_nd_contrastive_loss(torch.randn(mentions), torch.randn(entities), 1.0, **kwargs)


# ---------------------------------------------------------------- missing images


def test_missing_images_are_skipped_and_give_nan_rows(model):
    processor = tiny_processor()
    images = random_images(2)
    batch = prepare_images(processor, [images[0], None, images[1]])
    assert batch["image_mask"].tolist() == [True, False, True]
    assert torch.isnan(batch["pixel_values"][1]).all() and not torch.isnan(batch["pixel_values"][[0, 2]]).any()
    with torch.no_grad():
        embeds = model.get_image_features(**batch)
        alone = model.get_image_features(processor(images=images, return_tensors="pt")["pixel_values"])
        masked = model.get_image_features(batch["pixel_values"].nan_to_num(), image_mask=batch["image_mask"])
    assert torch.isnan(embeds[1]).all()
    torch.testing.assert_close(embeds[[0, 2]], alone)
    torch.testing.assert_close(masked, embeds, equal_nan=True)


def test_all_images_missing(model):
    batch = prepare_images(tiny_processor(), [None, None])
    assert batch["pixel_values"].shape == (2, 3, 30, 30)
    assert torch.isnan(model.get_image_features(**batch)).all()


def test_multimodal_features_fall_back_to_text_and_say_so(model, caplog):
    processor = tiny_processor()
    text = processor(text=["a cat", "a dog", "a cow"], padding=True, return_tensors="pt")
    images = prepare_images(processor, [random_images(1)[0], None, None])
    with torch.no_grad(), caplog.at_level(logging.WARNING):
        both = model.get_multimodal_features(**text, **images)
        text_only = model.get_text_features(**text)
    torch.testing.assert_close(both[1:], text_only[1:])
    assert not torch.allclose(both[0], text_only[0])
    warnings = [record for record in caplog.records if "no image" in record.getMessage()]
    assert len(warnings) == 1 and "2 of 3" in warnings[0].getMessage()
    model.config.missing_image_fallback = "nan"
    with torch.no_grad():
        both = model.get_multimodal_features(**text, **images)
    assert torch.isnan(both[1:]).all() and not torch.isnan(both[0]).any()


@pytest.mark.parametrize("fallback", ["text", "nan"])
def test_training_with_missing_images_keeps_gradients_finite(tester, fallback):
    model = tester.model().train()
    model.config.missing_image_fallback = fallback
    pixel_values = tester.image_inputs()["pixel_values"]
    pixel_values[1] = float("nan")
    output = model(
        **tester.text_inputs(),
        pixel_values=pixel_values,
        entity_input_ids=tester.text_inputs()["input_ids"],
        return_loss=True,
    )
    assert torch.isfinite(output.loss)
    output.loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is None or torch.isfinite(parameter.grad).all(), name


# ---------------------------------------------------------------- inputs people get wrong


@pytest.mark.parametrize(
    ("make_inputs", "match"),
    [
        (lambda t: {"pixel_values": torch.randn(2, 3, 32, 32)}, "takes \\(3, 30, 30\\)"),
        (lambda t: {"pixel_values": torch.randn(2, 1, 30, 30)}, "takes \\(3, 30, 30\\)"),
        (lambda t: {"pixel_values": torch.randn(3, 30, 30)}, "4-D tensor"),
        (lambda t: {"pixel_values": torch.randint(0, 255, (2, 3, 30, 30), dtype=torch.uint8)}, "floating point"),
        (lambda t: {"pixel_values": torch.randn(0, 3, 30, 30)}, "empty batch of images"),
        (lambda t: {"input_ids": torch.rand(2, 7)}, "integer token ids"),
        (lambda t: {"input_ids": torch.zeros(0, 7, dtype=torch.long)}, "empty batch of texts"),
        (lambda t: {"input_ids": torch.zeros(2, MAX_TEXT_TOKENS + 1, dtype=torch.long)}, "truncation=True"),
        (lambda t: {**t.text_inputs(), "attention_mask": torch.ones(2, 3)}, "attention_mask has shape"),
        (lambda t: {}, "Pass input_ids"),
        (lambda t: {**t.text_inputs(), "image_mask": torch.ones(3, dtype=torch.bool)}, "without pixel_values"),
        (lambda t: {**t.image_inputs(), "image_mask": torch.ones(2, dtype=torch.bool)}, "3 rows"),
        (lambda t: {**t.image_inputs(), "image_mask": torch.ones(3)}, "1-D boolean"),
        (lambda t: {**t.text_inputs(2), **t.image_inputs(3)}, "2 texts but 3 images"),
    ],
)
def test_bad_inputs_raise_clear_errors(tester, make_inputs, match):
    with pytest.raises(ValueError, match=match):
        tester.model().get_features(**make_inputs(tester))


def test_partly_nan_or_nan_marked_present_images_raise(tester):
    model = tester.model()
    pixel_values = tester.image_inputs()["pixel_values"]
    pixel_values[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="partly NaN"):
        model.get_image_features(pixel_values)
    with pytest.raises(ValueError, match="marks them as real images"):
        model.get_image_features(pixel_values, image_mask=torch.ones(3, dtype=torch.bool))


def test_score_and_forward_reject_bad_inputs(tester):
    model = tester.model()
    with pytest.raises(ValueError, match="unexpected keys \\['token_type_ids'\\]"):
        model.score({**tester.text_inputs(), "token_type_ids": None}, tester.text_inputs())
    with pytest.raises(ValueError, match="must have shape"):
        model.score(torch.randn(2, 5), torch.randn(2, PROJECTION_DIM))
    with pytest.raises(ValueError, match="tensor of embeddings or a mapping"):
        model.score(["a cat"], torch.randn(2, PROJECTION_DIM))
    with pytest.raises(ValueError, match="Pass entity inputs"):
        model(**tester.text_inputs())


# ---------------------------------------------------------------- truncation


def test_long_texts_are_truncated_with_one_warning_per_batch(caplog):
    processor = tiny_processor()
    texts = ["x" * 100, "short", "y" * 90, "z" * 200]
    with caplog.at_level(logging.WARNING):
        batch = tokenize_texts(processor, texts)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "3 of 4 texts" in warnings[0]
    assert batch["input_ids"].shape == (4, MAX_TEXT_TOKENS)
    assert (batch["input_ids"][:, 0] == processor.tokenizer.bos_token_id).all()
    assert batch["input_ids"][0, -1] == processor.tokenizer.eos_token_id
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        tokenize_texts(processor, ["short", "texts"])
    assert not caplog.records


@pytest.mark.parametrize("texts", [[], ["ok", None]])
def test_tokenize_texts_rejects_empty_batches_and_missing_texts(texts):
    with pytest.raises(ValueError, match="empty batch|not strings"):
        tokenize_texts(tiny_processor(), texts)


# ---------------------------------------------------------------- model card


def test_model_card_without_results_has_no_model_index():
    card = build_model_card()
    assert "model-index" not in str(card)
    assert "No benchmark results yet" in str(card)
    assert "AdamW, betas (0.9, 0.98), eps 1e-06" in str(card)


def test_model_card_shows_the_recorded_training_arguments_as_what_ran():
    ran = {"learning_rate": 0.001, "adam_beta1": 0.8, "adam_beta2": 0.9, "adam_epsilon": 1e-08, "weight_decay": 0.0,
           "per_device_train_batch_size": 16, "num_processes": 2, "gradient_accumulation_steps": 1,
           "num_train_epochs": 3, "max_steps": -1}  # fmt: skip
    card = str(build_model_card(CLIPNDConfig(training_arguments=ran)))
    assert "The arguments this model was trained with" in card and "The paper's training recipe" not in card
    assert "AdamW, betas (0.8, 0.9), eps 1e-08" in card and "| Learning rate | 0.001 |" in card
    assert "| Batch size | 32 (16 per device x 2 processes x 1 accumulation steps) |" in card
    assert "| Epochs | 3 |" in card


def test_model_card_without_recorded_arguments_shows_the_papers_recipe_as_defaults():
    card = str(build_model_card(CLIPNDConfig()))
    assert "The paper's training recipe, the defaults of the trainer's arguments" in card
    assert "| Learning rate | 1e-05 |" in card and "| Batch size | 256 |" in card and "| Epochs | 35 |" in card


def test_model_card_says_which_arguments_were_not_recorded():
    card = str(build_model_card(CLIPNDConfig(training_arguments={"learning_rate": 0.01, "max_steps": 4})))
    assert "| Learning rate | 0.01 |" in card and "| Epochs | stopped after 4 steps (max_steps) |" in card
    assert "| Weight decay | not recorded |" in card and "| Batch size | not recorded |" in card


def test_model_card_with_results_fills_the_model_index():
    results = {task: {"accuracy": 0.5 + index / 100} for index, task in enumerate(TASKS)}
    card = build_model_card(results=results)
    model_index = card.data.to_dict()["model-index"]
    metrics = [metric for result in model_index[0]["results"] for metric in result["metrics"]]
    assert {metric["name"] for metric in metrics} == {f"accuracy ({task})" for task in TASKS}
    assert "| ITm-ITe | accuracy | 0.5800 |" in str(card)


@pytest.mark.parametrize("results", [{"Tm-Te": {}}, {"Tm-Te": {"accuracy": "high"}}])
def test_model_card_rejects_bad_results(results):
    with pytest.raises(ValueError, match="Tm-Te"):
        build_model_card(results=results)
