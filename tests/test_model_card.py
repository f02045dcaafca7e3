import yaml

from modeling_clip_nd import build_model_card


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
    assert "Accuracy on the M3EL validation split" in card and "| ITm-ITe | accuracy | 0.8125 |" in card
