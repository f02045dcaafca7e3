from dataclasses import asdict

import pytest
import yaml

from m3el_benchmark.model_card import NOT_RECORDED, TrainingOutcome, build_model_card, hub_base_model
from m3el_benchmark.training.arguments import DataArguments, ModelArguments, TrainingArguments
from modeling_clip_nd import CLIPNDConfig


def test_published_figures_are_cited_and_marked_as_published():
    card = str(build_model_card())
    assert "| WikiMEL | CLIP (published) | H@1 83.23 / H@3 92.10 / H@5 94.51 / MRR 88.23" in card
    assert "published figures, not results of this model" in card and "arXiv:2410.18096" in card
    meta = yaml.safe_load(card.split("---")[1])
    assert "model-index" not in meta  # no result of ours without a benchmark run


def test_results_fill_the_model_index_with_their_split():
    card = str(build_model_card(results={"ITm-ITe": {"accuracy": 0.8125}}, split="validation"))
    meta = yaml.safe_load(card.split("---")[1])
    (entry,) = meta["model-index"][0]["results"]
    assert entry["dataset"]["split"] == "validation" and entry["metrics"][0]["value"] == 0.8125
    assert "Accuracy on the validation split of [m3el/M3EL]" in card and "| ITm-ITe | accuracy | 0.8125 |" in card


def test_a_local_dataset_and_a_model_from_scratch_claim_nothing_on_the_hub():
    card = str(build_model_card(results={"Tm-Te (M-S1)": {"accuracy": 0.5}}, base_model=None, dataset_id="hub",
                                dataset_on_hub=False, split="validation"))  # fmt: skip
    meta = yaml.safe_load(card.split("---")[1])
    assert "model-index" not in meta and "base_model" not in meta and "datasets" not in meta
    assert "trained from scratch" in card and "hub (a local copy)" in card
    assert "| Tm-Te (M-S1) | accuracy | 0.5000 |" in card


def _rows(card: str) -> dict[str, str]:
    """The hyper-parameter table of a card, as ``{name: value}``."""
    table = card.split("| Hyper-parameter | Value |")[1].split("\n\n")[0]
    cells = [line.strip("|").split(" | ") for line in table.splitlines()[2:]]
    return {name.strip(): value.strip() for name, value in cells}


def test_every_hyperparameter_row_reads_the_recorded_arguments():
    # Nothing recorded: every row says so; none falls back to a default of the recipe.
    rows = _rows(str(build_model_card(CLIPNDConfig(training_arguments={}))))
    assert {name for name, value in rows.items() if value != NOT_RECORDED} == {"Optimizer"}
    assert rows["Optimizer"] == f"AdamW, betas ({NOT_RECORDED}, {NOT_RECORDED}), eps {NOT_RECORDED}"
    # Everything recorded, nothing at its default: every row shows the run's value.
    ran = {**asdict(ModelArguments()), **asdict(DataArguments()), **asdict(TrainingArguments())}
    ran.update(task="Tm-Ie", text_format="S-M", hard_negatives=True, gather_features=False, num_processes=2,
               image_augmentation=False, image_flip_and_jitter=False, keep_mention=False, name_drop_prob=0.5,
               learning_rate=0.002, adam_beta1=0.8, lr_scheduler_type="cosine", warmup_steps=3, weight_decay=0.1,
               per_device_train_batch_size=8, num_train_epochs=2, mixed_precision="bf16", lora_r=4,
               load_best_model_at_end=True, seed=9)  # fmt: skip
    defaults = _rows(str(build_model_card()))
    rows = _rows(str(build_model_card(CLIPNDConfig(training_arguments=ran))))
    assert rows == {
        "Task": "Tm-Ie",
        "Mention text format": "S-M",
        "Negatives": "the other pairs of the process's batch, plus each mention's non-gold candidates "
        "(hard negatives)",
        "Text augmentation (aug_T)": 'entity text "{name}: {description}"; name dropped with probability 0.5, '
        "description with 0.0",
        "Image augmentation (aug_I)": "none",
        "Long mention texts": "cut at the end",
        "Optimizer": "AdamW, betas (0.8, 0.98), eps 1e-06",
        "Learning rate": "0.002",
        "Learning-rate schedule": "cosine, 3 warm-up steps",
        "Weight decay": "0.1",
        "Batch size": "16 (8 per device x 2 processes x 1 accumulation steps)",
        "Epochs": "2",
        "Precision": "bf16 mixed precision",
        "LoRA": "rank 4, alpha 16",
        "Weights saved": "best validation ACC (load_best_model_at_end)",
        "Seed": "9",
    }
    assert all(rows[name] != defaults[name] for name in rows)


def test_the_recipes_defaults_are_labelled_as_such():
    card = str(build_model_card())
    assert "The paper's training recipe, the defaults of the trainer's arguments" in card
    assert "| Negatives | the other pairs of the batch (in-batch negatives only, no hard negatives) |" in card
    assert "| Image augmentation (aug_I) | random square crop of the shorter side (CLIP's) |" in card
    assert "| Task | ITm-ITe |" in card and "| Weights saved | last step |" in card
    assert "paper's Eq. 2 writes the first\ndirection only" in card and "symmetric InfoNCE" in card


@pytest.mark.parametrize(
    ("base_model", "hub_id"),
    [("openai/clip-vit-base-patch32", "openai/clip-vit-base-patch32"), ("/no/such/folder/clip", None),
     ("../clip", None), (None, None)],
)  # fmt: skip
def test_base_model_is_a_hub_id_or_absent(base_model, hub_id):
    assert hub_base_model(base_model) == hub_id


def test_a_local_start_is_never_named_as_base_model(tmp_path):
    folder = tmp_path / "outputs" / "clip"
    folder.mkdir(parents=True)  # a folder of this machine whose name is also a valid Hub id
    assert hub_base_model("outputs/clip") == "outputs/clip"
    card = str(build_model_card(base_model=str(folder)))
    assert "base_model" not in yaml.safe_load(card.split("---")[1]) and str(folder) not in card
    assert "started from a local checkpoint" in card and "starting from a local checkpoint" in card


def test_a_card_rebuilt_from_the_config_keeps_the_kept_step():
    history = [{"epoch": 0, "step": 7, "accuracy": 0.5, "mrr": 0.6}, {"epoch": 1, "step": 14, "accuracy": 0.4,
                                                                       "mrr": 0.5}]  # fmt: skip
    outcome = TrainingOutcome(trained_steps=14, kept_step=7, validation_setting="ITm-ITe (M-S1)",
                              validation_history=history)  # fmt: skip
    config = CLIPNDConfig(training_arguments={"load_best_model_at_end": True, **outcome.record()})
    assert TrainingOutcome.from_arguments(config.training_arguments) == outcome
    assert outcome.kept_validation() == history[0]
    card = str(build_model_card(config, results={"ITm-ITe": {"accuracy": 0.7}}))  # e.g. with benchmark results
    assert "those after step 7 of the 14 steps trained" in card and "| 0 | 7 | 0.5000 | 0.6000 | yes |" in card
    assert '"kept_step"' not in card  # shown as prose and a table, not repeated in the arguments' JSON
