import yaml

from m3el_benchmark.model_card import build_model_card


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
