import errno
import json
import random
from pathlib import Path

import numpy
import pytest
import torch
from converter_fixtures import write_wikidiverse, write_wikiperson
from readable_log import log_problems
from release_fixtures import small_release
from safetensors.torch import load_file
from two_processes import launch_two_cpu_processes

from m3el_benchmark.train import main, parse_arguments
from m3el_benchmark.training import trainer as trainer_module
from m3el_benchmark.training.arguments import DataArguments, TrainingArguments
from m3el_benchmark.training.checkpointing import latest_checkpoint
from m3el_benchmark.training.data import augment_image
from m3el_benchmark.training.divergence import TrainingDivergedError
from m3el_benchmark.training.trainer import TRAIN_LOG_FILE, CLIPNDTrainer
from m3el_dataset.converters import convert
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.loading import open_split
from m3el_dataset.rows import MENTIONS_CONFIG
from m3el_dataset.sample import SAMPLE_DIR

TINY = ["--init", "tiny", "--tiny_hidden_size", "32", "--tiny_image_size", "16", "--tiny_patch_size", "8",
        "--tiny_vocab_size", "600", "--report_to", "none", "--learning_rate", "1e-3",
        "--dataloader_num_workers", "0"]  # fmt: skip


@pytest.fixture(scope="module")
def sample_hub(tmp_path_factory):
    return export_release(SAMPLE_DIR, tmp_path_factory.mktemp("sample") / "hub", ExportConfig()).out_dir


def _args(out, dataset, *extra):
    return [*TINY, "--dataset", str(dataset), "--output_dir", str(out), "--per_device_train_batch_size", "16", *extra]


def _weights(folder):
    return load_file(str(Path(folder) / "model.safetensors"))


def test_two_steps_on_the_bundled_sample_save_a_loadable_clip_nd(tmp_path, sample_hub):
    from transformers import AutoModel, AutoProcessor

    result = main(_args(tmp_path / "run", sample_hub, "--max_steps", "2", "--task", "ITm-ITe"))
    assert result.steps == 2 and result.validation_accuracy is not None
    model = AutoModel.from_pretrained(result.output_dir, trust_remote_code=True)
    assert type(model).__name__ == "CLIPNDModel"
    ran = model.config.training_arguments  # the config records what ran, not the recipe's defaults
    assert (ran["task"], ran["learning_rate"], ran["max_steps"], ran["num_processes"]) == ("ITm-ITe", 1e-3, 2, 1)
    assert AutoProcessor.from_pretrained(result.output_dir, trust_remote_code=True).tokenizer("a film").input_ids
    card = (result.output_dir / "README.md").read_text()
    assert "## Training arguments" in card and '"task": "ITm-ITe"' in card
    assert "| Learning rate | 0.001 |" in card and "| Epochs | stopped after 2 steps (max_steps) |" in card
    assert "| ITm-ITe (M-S1) | accuracy |" in card and "trained from scratch" in card
    assert "model-index" not in card  # measured on a local folder: nothing claimed on a Hub dataset
    logged = [json.loads(line) for line in (result.output_dir / TRAIN_LOG_FILE).read_text().splitlines()]
    assert [entry["step"] for entry in logged] == [2]


def test_raw_release_trains_too(tmp_path):
    small_release(tmp_path / "raw", per_topic=4).write()
    result = main(_args(tmp_path / "run", tmp_path / "raw", "--max_steps", "1", "--validation_split", ""))
    assert result.steps == 1 and result.validation_accuracy is None
    assert (result.output_dir / "model.safetensors").is_file()


def test_killed_and_resumed_run_reaches_the_same_weights(tmp_path, sample_hub, monkeypatch):
    common = ["--max_steps", "4", "--checkpointing_steps", "2", "--validation_split", "", "--task", "Tm-Ie"]
    straight = main(_args(tmp_path / "straight", sample_hub, *common))
    real_step = CLIPNDTrainer._train_step
    calls = []

    def killed_at_third_step(self, batch):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated kill")
        return real_step(self, batch)

    monkeypatch.setattr(CLIPNDTrainer, "_train_step", killed_at_third_step)
    with pytest.raises(KeyboardInterrupt):
        main(_args(tmp_path / "resumed", sample_hub, *common))
    assert latest_checkpoint(tmp_path / "resumed").name == "checkpoint-2"
    monkeypatch.setattr(CLIPNDTrainer, "_train_step", real_step)
    resumed = main(_args(tmp_path / "resumed", sample_hub, *common, "--resume"))
    assert resumed.steps == 4
    a, b = _weights(straight.output_dir), _weights(resumed.output_dir)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_nan_loss_stops_with_step_and_batch_named_and_keeps_last_good_checkpoint(tmp_path, sample_hub, monkeypatch):
    real_forward = trainer_module.GatheredContrastiveLoss.forward
    calls = []

    def nan_at_third(self, *args, **kwargs):
        calls.append(1)
        loss = real_forward(self, *args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(trainer_module.GatheredContrastiveLoss, "forward", nan_at_third)
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError, match=r"step 3 \(epoch 0, batch 2 of the epoch, mentions \['"):
        main(_args(out, sample_hub, "--max_steps", "5", "--checkpointing_steps", "2", "--validation_split", ""))
    assert latest_checkpoint(out).name == "checkpoint-2"
    assert not (out / "model.safetensors").exists()


def test_full_disk_while_checkpointing_leaves_no_corrupt_latest(tmp_path, sample_hub, monkeypatch):
    from accelerate import Accelerator

    from m3el_benchmark.training.checkpointing import CheckpointError

    real_save = Accelerator.save_state
    calls = []

    def save_then_fill_disk(self, output_dir=None, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / "model.safetensors").write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, output_dir, **kwargs)

    monkeypatch.setattr(Accelerator, "save_state", save_then_fill_disk)
    out = tmp_path / "run"
    with pytest.raises(CheckpointError, match="step 4 .* last complete checkpoint is .*checkpoint-2"):
        main(_args(out, sample_hub, "--max_steps", "6", "--checkpointing_steps", "2", "--validation_split", ""))
    assert latest_checkpoint(out).name == "checkpoint-2"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "latest"]


def test_lora_adapter_and_merged_model(tmp_path, sample_hub):
    from peft import PeftModel
    from transformers import AutoModel

    lora = ["--max_steps", "2", "--lora_r", "4", "--validation_split", ""]
    merged = main(_args(tmp_path / "merged", sample_hub, *lora))
    model = AutoModel.from_pretrained(merged.output_dir, trust_remote_code=True)
    assert not any("lora" in name for name, _ in model.named_parameters())
    adapter = main(_args(tmp_path / "adapter", sample_hub, *lora, "--save_merged", "false"))
    assert (adapter.output_dir / "adapter_config.json").is_file()
    base = AutoModel.from_pretrained(merged.output_dir, trust_remote_code=True)
    with_adapter = PeftModel.from_pretrained(base, adapter.output_dir)
    assert any("lora_A" in name for name, _ in with_adapter.named_parameters())


def test_undecodable_images_are_counted_not_replaced(tmp_path):
    release = small_release(tmp_path / "raw", per_topic=4)
    for records in release.files.values():
        for record in records:
            release.write_image(record["image"][2], b"\x89PNG\r\n\x1a\n broken")
    release.write()
    hub = export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig(decode_check=False)).out_dir
    one_epoch = ["--task", "ITm-Te", "--num_train_epochs", "1", "--validation_split", ""]
    result = main(_args(tmp_path / "run", hub, *one_epoch))
    assert result.undecodable_images > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "Tm-Xe"], "Unknown task 'Tm-Xe'; choose one of Tm-Te"),
        (["--text_format", "M-X"], "Unknown text format 'M-X'; choose one of S1, S"),
        (["--description_drop_prob", "2"], "probability"),
        (["--lr_scheduler_type", "linear"], "'constant' or 'cosine'"),
    ],
)
def test_bad_arguments_are_named(argv, message):
    with pytest.raises(ValueError, match=message):
        parse_arguments(argv)


def test_dataset_without_the_train_split_is_named(tmp_path, sample_hub):
    with pytest.raises(ValueError, match="no split 'training'"):
        main(_args(tmp_path / "run", sample_hub, "--train_split", "training"))


@pytest.fixture(scope="module")
def peer_hubs(tmp_path_factory):
    """WikiDiverse (no entity image) and WIKIPerson (images only), converted from fixtures."""
    root = tmp_path_factory.mktemp("peers")
    wikidiverse = convert("wikidiverse", write_wikidiverse(root / "wd"), root / "wd-hub", ExportConfig()).out_dir
    wikiperson = convert("wikiperson", write_wikiperson(root / "wp"), root / "wp-hub", ExportConfig()).out_dir
    return {"wikidiverse": wikidiverse, "wikiperson": wikiperson}


@pytest.mark.parametrize(("peer", "task"), [("wikidiverse", "ITm-Te"), ("wikiperson", "Im-Ie")])
def test_a_converted_peer_trains_on_the_modalities_it_has(tmp_path, peer_hubs, peer, task):
    extra = ["--max_steps", "1", "--validation_split", "", "--task", task, "--per_device_train_batch_size", "2"]
    result = main(_args(tmp_path / "run", peer_hubs[peer], *extra))
    assert result.steps == 1 and (result.output_dir / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("peer", "task", "message"),
    [
        ("wikidiverse", "ITm-ITe", "cannot train on ITm-ITe with text format M-S1: it has no column candidate_images. "
         "With that format it supports the tasks Tm-Te, Im-Te, ITm-Te;"),
        ("wikiperson", "Tm-Ie", "it has no column mention_name, sentence1. With that format it supports the tasks "
         "Im-Ie;"),
    ],
)  # fmt: skip
def test_a_task_the_peer_lacks_a_modality_for_is_refused_before_training(tmp_path, peer_hubs, peer, task, message):
    with pytest.raises(ValueError, match=message):
        main(_args(tmp_path / "run", peer_hubs[peer], "--task", task, "--validation_split", ""))


def test_training_arguments_default_to_the_papers_recipe():
    # The one home of the recipe: CLIP-ND's config no longer carries a copy of it.
    args = TrainingArguments()
    assert (args.learning_rate, (args.adam_beta1, args.adam_beta2), args.adam_epsilon) == (1e-5, (0.9, 0.98), 1e-6)
    assert (args.weight_decay, args.per_device_train_batch_size, args.num_train_epochs) == (0.001, 256, 35)
    assert args.lr_scheduler_type == "constant" and args.warmup_steps == 0
    # The last model is saved, as transformers' Trainer does; negatives of the global batch across processes.
    assert args.load_best_model_at_end is False and args.gather_features is True
    data = DataArguments()
    # Eq. 2: in-batch negatives only, both towers (ITm-ITe), CLIP's random crop and nothing else.
    assert (data.task, data.hard_negatives) == ("ITm-ITe", False)
    assert (data.image_augmentation, data.image_flip_and_jitter) == (True, False)


def test_flips_and_jitter_need_the_crop():
    with pytest.raises(ValueError, match="--image_flip_and_jitter adds to the random crop of --image_augmentation"):
        parse_arguments(["--image_augmentation", "false", "--image_flip_and_jitter", "true"])


def test_default_image_augmentation_is_clips_random_square_crop_only():
    from PIL import Image

    pixels = torch.arange(40 * 24 * 3, dtype=torch.int64).remainder(251).to(torch.uint8).reshape(24, 40, 3)
    wide = Image.fromarray(pixels.numpy())
    crops = [augment_image(wide, random.Random(seed)) for seed in range(20)]
    assert {crop.size for crop in crops} == {(24, 24)}  # a square of the shorter side
    offsets = set()
    for crop in crops:  # each an untouched window of the original: no flip, no colour change
        window = torch.from_numpy(numpy.array(crop))
        (offset,) = [left for left in range(17) if torch.equal(pixels[:, left : left + 24], window)]
        offsets.add(offset)
    assert len(offsets) > 1  # at random positions
    square = wide.crop((0, 0, 24, 24))
    assert numpy.array_equal(numpy.asarray(augment_image(square, random.Random(0))), numpy.asarray(square))
    jittered = [augment_image(square, random.Random(seed), flip_and_jitter=True) for seed in range(5)]
    assert any(not numpy.array_equal(numpy.asarray(image), numpy.asarray(square)) for image in jittered)


def _scripted_validation(monkeypatch, accuracies):
    """Validation ACC that follows ``accuracies`` epoch by epoch (the training itself is real)."""
    figures = iter(accuracies)
    monkeypatch.setattr(trainer_module, "evaluate_accuracy", lambda *args: {"accuracy": next(figures), "mrr": 0.5})


EPOCHS = ["--per_device_train_batch_size", "64", "--validation_split", "validation"]  # 4 steps per epoch


def test_the_last_model_is_saved_unless_load_best_model_at_end(tmp_path, sample_hub, monkeypatch):
    # ACC 0.5, 0.8, 0.6: the best epoch (the second, step 8) is not the last one (step 12).
    _scripted_validation(monkeypatch, [0.5, 0.8, 0.6])
    last = main(_args(tmp_path / "last", sample_hub, *EPOCHS, "--num_train_epochs", "3"))
    _scripted_validation(monkeypatch, [0.5, 0.8, 0.6])
    best = main(_args(tmp_path / "best", sample_hub, *EPOCHS, "--num_train_epochs", "3", "--load_best_model_at_end",
                      "true"))  # fmt: skip
    _scripted_validation(monkeypatch, [0.5, 0.8])
    two_epochs = main(_args(tmp_path / "two", sample_hub, *EPOCHS, "--num_train_epochs", "2"))
    assert [record["step"] for record in last.history] == [4, 8, 12] and last.steps == best.steps == 12
    assert (last.kept_step, last.validation_accuracy) == (12, 0.6)
    assert (best.kept_step, best.validation_accuracy) == (8, 0.8)
    # The kept weights are exactly those after step 8 (a run stopped there), the default ones those of step 12.
    kept, at_step_8, at_step_12 = _weights(best.output_dir), _weights(two_epochs.output_dir), _weights(last.output_dir)
    for key in kept:
        torch.testing.assert_close(kept[key], at_step_8[key], rtol=0, atol=0, msg=key)
    assert any(not torch.equal(at_step_12[key], at_step_8[key]) for key in kept)
    # The config and the card say which step was kept, and show every validation.
    recorded = json.loads((best.output_dir / "config.json").read_text())["training_arguments"]
    assert (recorded["kept_step"], recorded["trained_steps"], recorded["load_best_model_at_end"]) == (8, 12, True)
    assert [record["accuracy"] for record in recorded["validation_history"]] == [0.5, 0.8, 0.6]
    card = (best.output_dir / "README.md").read_text()
    assert "those after step 8 of the 12 steps trained" in card and "not the last step" in card
    assert "| 1 | 8 | 0.8000 | 0.5000 | yes |" in card and "| 2 | 12 | 0.6000 | 0.5000 |  |" in card
    assert "| ITm-ITe (M-S1) | accuracy | 0.8000 |" in card  # the kept weights' figure
    card = (last.output_dir / "README.md").read_text()
    assert "those of the last step, 12 of the 12 trained" in card and "| Weights saved | last step |" in card
    assert "| 2 | 12 | 0.6000 | 0.5000 | yes |" in card and "| ITm-ITe (M-S1) | accuracy | 0.6000 |" in card


def test_load_best_model_at_end_needs_a_validation_split(tmp_path, sample_hub):
    with pytest.raises(ValueError, match="--load_best_model_at_end keeps the weights of the best validation ACC"):
        main(_args(tmp_path / "run", sample_hub, "--validation_split", "", "--load_best_model_at_end", "true"))


def test_the_card_shows_the_arguments_that_ran(tmp_path, sample_hub):
    ran = ["--max_steps", "1", "--validation_split", "", "--task", "Tm-Ie", "--text_format", "S-M",
           "--hard_negatives", "true", "--image_flip_and_jitter", "true", "--mixed_precision", "no", "--seed", "7",
           "--name_drop_prob", "0.25", "--keep_mention", "false", "--lr_scheduler_type", "cosine"]  # fmt: skip
    card = (main(_args(tmp_path / "run", sample_hub, *ran)).output_dir / "README.md").read_text()
    rows = [
        "| Task | Tm-Ie |",
        "| Mention text format | S-M |",
        "| Negatives | the other pairs of the batch, plus each mention's non-gold candidates (hard negatives) |",
        "| Image augmentation (aug_I) | random square crop of the shorter side (CLIP's), random flips, brightness/"
        "contrast jitter +-10 % |",
        '| Text augmentation (aug_T) | entity text "{name}: {description}"; name dropped with probability 0.25, '
        "description with 0.0 |",
        "| Long mention texts | cut at the end |",
        "| Learning rate | 0.001 |",
        "| Learning-rate schedule | cosine, 0 warm-up steps |",
        "| Batch size | 16 |",
        "| Epochs | stopped after 1 steps (max_steps) |",
        "| Precision | fp32 |",
        "| Seed | 7 |",
        "No validation ran during training",
        "those of the last step, 1 of the 1 trained",
    ]
    assert [row for row in rows if row not in card] == []
    assert "The paper's training recipe" not in card and "not recorded" not in card


def test_a_local_init_folder_is_never_the_base_model(tmp_path, sample_hub):
    import yaml
    from tiny_clip import save_tiny_clip

    folder = save_tiny_clip(tmp_path / "my_local_clip")
    args = ["--report_to", "none", "--init", str(folder), "--dataset", str(sample_hub), "--max_steps", "1",
            "--validation_split", "", "--output_dir", str(tmp_path / "run")]  # fmt: skip
    card = (main(args).output_dir / "README.md").read_text()
    assert "base_model" not in yaml.safe_load(card.split("---")[1])
    prose = card.split("### Training arguments")[0]  # the JSON record below keeps "init" as it ran
    assert "my_local_clip" not in prose and "huggingface.co/" + str(folder) not in card
    assert "started from a local checkpoint" in prose


def test_arguments_from_a_yaml_file(tmp_path):
    path = tmp_path / "args.yaml"
    path.write_text("init: tiny\ntask: Im-Ie\ntext_format: S1\nper_device_train_batch_size: 8\n")
    model_args, data_args, training_args = parse_arguments([str(path)])
    assert (model_args.init, data_args.task, data_args.text_format) == ("tiny", "Im-Ie", "S1")
    assert training_args.per_device_train_batch_size == 8 and training_args.learning_rate == 1e-5


@pytest.mark.slow
def test_two_cpu_processes_give_the_single_process_loss(tmp_path, sample_hub):
    common = ["--max_steps", "2", "--logging_steps", "1", "--validation_split", "", "--task", "ITm-ITe"]
    single = main(_args(tmp_path / "single", sample_hub, *common, "--per_device_train_batch_size", "16"))
    double = [*_args(tmp_path / "double", sample_hub, *common), "--per_device_train_batch_size", "8"]
    completed = launch_two_cpu_processes("benchmark/train.py", double, timeout=600)
    assert "FutureWarning" not in completed.stderr  # all_gather's once came at every step of every process
    assert log_problems(completed.stderr) == [], completed.stderr[-3000:]
    logs = {}
    for name in ("single", "double"):
        logs[name] = [json.loads(line) for line in (tmp_path / name / TRAIN_LOG_FILE).read_text().splitlines()]
    assert [entry["step"] for entry in logs["double"]] == [1, 2]
    for one, two in zip(logs["single"], logs["double"], strict=True):
        assert one["train/loss"] == pytest.approx(two["train/loss"], rel=1e-5, abs=1e-6)
    a, b = _weights(single.output_dir), _weights(tmp_path / "double")
    for key in a:
        # A key bias has a zero gradient in exact arithmetic (softmax ignores a constant shift), so Adam turns its
        # rounding noise into full-size steps of either sign: it is the one parameter that cannot match.
        if not key.endswith("k_proj.bias"):
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


def test_early_stopping_keeps_the_last_model(tmp_path, sample_hub):
    # With a zero learning rate the validation ACC never improves: patience 1 stops after the second epoch.
    result = main(_args(tmp_path / "run", sample_hub, "--learning_rate", "0", "--num_train_epochs", "5",
                        "--early_stopping_patience", "1"))  # fmt: skip
    assert [entry["epoch"] for entry in result.history] == [0, 1]
    assert result.history[0]["accuracy"] == result.history[1]["accuracy"] == result.validation_accuracy
    assert (result.output_dir / "model.safetensors").is_file()


def _symmetric_loss(logits: torch.Tensor, mention_mask: torch.Tensor, entity_mask: torch.Tensor) -> torch.Tensor:
    """The loss written out by hand: cross-entropy both ways, masked logits at -inf."""
    cross_entropy, targets = torch.nn.functional.cross_entropy, torch.arange(logits.shape[0])
    by_mention = cross_entropy(logits.masked_fill(mention_mask, float("-inf")), targets)
    by_entity = cross_entropy(logits[:, : len(targets)].T.masked_fill(entity_mask, float("-inf")), targets)
    return (by_mention + by_entity) / 2


def test_a_copy_of_the_gold_entity_is_never_a_negative():
    from modeling_clip_nd import clip_nd_contrastive_loss

    torch.manual_seed(0)
    mentions = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    entities = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    # Mention 0's gold again as a 4th column (a hard negative of another mention): not a negative of mention 0,
    # still one of mentions 1 and 2.
    with_copy = torch.cat([entities, entities[:1]])
    masked = clip_nd_contrastive_loss(mentions, with_copy, 10.0, entity_ids=torch.tensor([10, 11, 12, 10]))
    mention_mask = torch.zeros(3, 4, dtype=torch.bool)
    mention_mask[0, 3] = True
    expected = _symmetric_loss(10.0 * mentions @ with_copy.T, mention_mask, torch.zeros(3, 3, dtype=torch.bool))
    torch.testing.assert_close(masked, expected)
    assert clip_nd_contrastive_loss(mentions, with_copy, 10.0) > masked  # unmasked, the copy is a negative
    # Two mentions of one entity: neither is the other's negative, in either direction.
    same_gold = torch.cat([entities[:1], entities[:1], entities[2:]])
    shared = clip_nd_contrastive_loss(mentions, same_gold, 10.0, entity_ids=torch.tensor([10, 10, 12]))
    pair_mask = torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.bool)
    torch.testing.assert_close(shared, _symmetric_loss(10.0 * mentions @ same_gold.T, pair_mask, pair_mask))


def test_batches_carry_entity_ids_of_golds_and_negatives(sample_hub):
    from transformers import CLIPImageProcessorPil, CLIPProcessor

    from m3el_benchmark.training.arguments import DataArguments
    from m3el_benchmark.training.data import MentionEntityPairs, PairCollator, entity_id
    from m3el_benchmark.training.tiny_model import train_clip_tokenizer

    rows = open_split(str(sample_hub), MENTIONS_CONFIG, "train")
    pairs = MentionEntityPairs(rows, DataArguments(dataset=str(sample_hub), task="Tm-Te"), train=True)
    processor = CLIPProcessor(image_processor=CLIPImageProcessorPil(), tokenizer=train_clip_tokenizer(["a b"], 600))
    batch = PairCollator(processor, "M-S1", train=True, num_slots=2)([pairs[0], pairs[1]])
    first = rows[pairs.indices[0]]
    assert batch["entity_ids"][0] == entity_id(first["gold_qid"])
    negatives = [q for q in first["candidate_qids"] if q != first["gold_qid"]]
    assert batch["negative_ids"][:2].tolist() == [entity_id(q) for q in (negatives + [None])[:2]]
    assert entity_id(None) == -1 and entity_id("Q1") == entity_id("Q1") >= 0


def test_a_batch_without_any_negative_is_refused(tmp_path, sample_hub):
    with pytest.raises(ValueError, match="no negative"):
        main([*TINY, "--dataset", str(sample_hub), "--output_dir", str(tmp_path / "run"),
              "--per_device_train_batch_size", "1", "--hard_negatives", "false"])  # fmt: skip


def test_the_bundled_sample_is_the_default_dataset(tmp_path):
    result = main([*TINY, "--output_dir", str(tmp_path / "run"), "--max_steps", "1", "--validation_split", ""])
    assert result.steps == 1


def test_bf16_mixed_precision_and_gradient_checkpointing_train(tmp_path, sample_hub):
    result = main(_args(tmp_path / "run", sample_hub, "--max_steps", "2", "--mixed_precision", "bf16",
                        "--gradient_checkpointing", "true", "--validation_split", ""))  # fmt: skip
    logged = [json.loads(line) for line in (result.output_dir / TRAIN_LOG_FILE).read_text().splitlines()]
    assert result.steps == 2 and all(torch.isfinite(torch.tensor(entry["train/loss"])) for entry in logged)


@pytest.mark.parametrize("flag, expected", [((), "bf16"), (("--mixed_precision", "no"), "no")])
def test_the_launchers_mixed_precision_stands_unless_given(tmp_path, sample_hub, monkeypatch, flag, expected):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # what `accelerate launch --mixed_precision bf16` sets
    result = main(_args(tmp_path / "run", sample_hub, "--max_steps", "1", "--validation_split", "", *flag))
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["training_arguments"]["mixed_precision"] == expected


def test_nan_embeddings_stop_training_instead_of_passing_for_missing_images(tmp_path, sample_hub, monkeypatch):
    """A diverging model embeds everything as NaN: that is not 'every image is missing' (loss 0, saved NaN model)."""
    from m3el_benchmark.training import loss as loss_module

    real_embed_side, calls = loss_module.embed_side, []

    def nan_from_the_third_step(model, side, size, dim):
        embedded = real_embed_side(model, side, size, dim)
        calls.append(1)
        return embedded._replace(embeds=embedded.embeds * float("nan")) if len(calls) > 4 else embedded

    monkeypatch.setattr(loss_module, "embed_side", nan_from_the_third_step)
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError, match=r"Embeddings of present inputs .* at step 3 \(epoch 0"):
        main(_args(out, sample_hub, "--max_steps", "5", "--checkpointing_steps", "2", "--validation_split", "",
                   "--hard_negatives", "false"))  # fmt: skip
    assert latest_checkpoint(out).name == "checkpoint-2" and not (out / "model.safetensors").exists()


def test_nan_parameters_are_never_saved(tmp_path, sample_hub, monkeypatch):
    real_step, calls = torch.optim.AdamW.step, []

    def poison_after_the_second_step(self, *args, **kwargs):
        result = real_step(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", poison_after_the_second_step)
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError, match=r"parameter tensors .* NaN or infinite after step 2"):
        main(_args(out, sample_hub, "--max_steps", "4", "--checkpointing_steps", "2", "--validation_split", ""))
    assert latest_checkpoint(out) is None and not (out / "model.safetensors").exists()
