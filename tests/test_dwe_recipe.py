"""configs/dwe.yaml (issue 17): the DWE+ recipe checked and planned (dry runs) on tiny converted WikiMEL,
RichpediaMEL and WikiDiverse folders, and run end to end on one of them with tiny random models."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from converter_fixtures import write_mimic
from ghmfc_fixtures import write_ghmfc_richpedia, write_ghmfc_wikimel

from m3el_benchmark.arguments import CONFIG_DIR, parse_arguments
from m3el_benchmark.systems.dwe_plus.recipe import main
from m3el_dataset.converters import convert
from m3el_dataset.export import ExportConfig


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> list[Path]:
    """WikiMEL and RichpediaMEL converted from GHMFC's layout, WikiDiverse from MIMIC's."""
    root = tmp_path_factory.mktemp("dwe_data")
    sources = [("ghmfc", write_ghmfc_wikimel(root / "src")), ("ghmfc", write_ghmfc_richpedia(root / "src")),
               ("mimic", write_mimic(root / "src" / "mimic", prefix="WikiDiverse"))]  # fmt: skip
    folders = []
    for index, (fmt, source) in enumerate(sources):
        convert(fmt, source, root / f"hub{index}", ExportConfig())
        folders.append(root / f"hub{index}")
    return folders


def write_recipe(tmp_path: Path, folders: list[Path], **changes) -> Path:
    """configs/dwe.yaml with the tiny folders as paths, outputs under ``tmp_path``, and ``changes`` applied."""
    values = yaml.safe_load((CONFIG_DIR / "dwe.yaml").read_text(encoding="utf-8"))
    for entry, folder in zip(values["datasets"], folders, strict=True):
        entry["path"] = str(folder)
    values["output_dir"] = str(tmp_path / "out")
    for key, value in changes.items():
        values[key] = {**values[key], **value} if isinstance(value, dict) else value
    path = tmp_path / "dwe.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def test_dwe_recipe_plans_each_dataset_and_writes_a_benchmark_config_it_accepts(converted, tmp_path):
    recipe = write_recipe(tmp_path, converted)
    plans = main(["--config", str(recipe), "--dry_run"])
    assert [plan.name for plan in plans] == ["WikiMEL", "RichpediaMEL", "WikiDiverse"]
    wikimel, richpedia, diverse = (plan.training for plan in plans)
    # the recipe's values, each entry's own on top (DWE's per-dataset scripts), the entry's folder as dataset
    assert (wikimel.batch_size, richpedia.batch_size, diverse.batch_size) == (128, 32, 64)
    assert diverse.learning_rate == 5e-6 and diverse.num_train_epochs == 500 and wikimel.learning_rate == 5e-5
    assert wikimel.negatives == "tfidf" and wikimel.dataset == str(converted[0])
    assert wikimel.output_dir == str(tmp_path / "out" / "WikiMEL" / "dwe_plus")
    args = parse_arguments(["--config", str(plans[0].benchmark_config)])
    assert args.models == [f"DWE+={wikimel.output_dir}", "CLIP"] and not args.train_tiny
    assert (args.tasks, args.text_formats, args.table5_metrics) == (["ITm-Te"], ["M-S"], ["top_1", "top_5", "top_10",
                                                                                          "top_20"])  # fmt: skip
    (spec,) = args.dataset_specs()
    assert (spec.name, spec.protocol, spec.published) == ("WikiMEL", "retrieved", "dwe-wikimel")
    assert args.output_dir == str(tmp_path / "out" / "WikiMEL" / "benchmark")
    assert not (tmp_path / "out" / "WikiMEL" / "dwe_plus").exists()  # a dry run trains nothing
    only = main(["--config", str(recipe), "--only", "RichpediaMEL", "--dry_run"])
    assert [plan.name for plan in only] == ["RichpediaMEL"]


@pytest.mark.parametrize(
    "changes, error, match",
    [
        ({"training": {"learning_rat": 1e-4}}, ValueError, r"Unknown DWE\+ training arguments \['learning_rat'\]"),
        ({"evaluation": {"tasks": ["ITm-ITe"]}}, ValueError, r"sets \['tasks'\], which the recipe sets per dataset"),
        ({"evaluation": {"protocol": "nearest"}}, ValueError, "protocol"),
        ({"model": "CLIP"}, ValueError, r"Unknown keys \['model'\]"),
    ],
)
def test_dwe_recipe_refuses_a_bad_config_with_the_key_named(converted, tmp_path, changes, error, match):
    with pytest.raises(error, match=match):
        main(["--config", str(write_recipe(tmp_path, converted, **changes)), "--dry_run"])


def test_dwe_recipe_says_what_to_do_for_a_missing_folder_or_an_unknown_name(converted, tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder. Convert the dataset first"):
        main(["--config", str(write_recipe(tmp_path, [tmp_path / "nowhere", *converted[1:]])), "--dry_run"])
    with pytest.raises(ValueError, match=r"--only names \['Weibo'\]"):
        main(["--config", str(write_recipe(tmp_path, converted)), "--only", "Weibo", "--dry_run"])
    published = yaml.safe_load((CONFIG_DIR / "dwe.yaml").read_text(encoding="utf-8"))
    assert [entry["published"] for entry in published["datasets"]] == ["dwe-wikimel", "dwe-richpediamel",
                                                                        "dwe-wikidiverse"]  # fmt: skip
    with pytest.raises(ValueError, match="DWE\\+ recipe"):  # the benchmark points to the recipe's runner
        parse_arguments(["--config", "dwe"])


def test_dwe_recipe_trains_and_scores_a_tiny_dataset_end_to_end(converted, tmp_path):
    import json

    import torch
    from tiny_baselines import save_tiny_owlvit
    from tiny_clip import save_tiny_clip
    from transformers import OwlViTConfig, OwlViTForObjectDetection

    clip, owl = save_tiny_clip(tmp_path / "clip"), save_tiny_owlvit(tmp_path / "owl")
    torch.manual_seed(0)
    OwlViTForObjectDetection(OwlViTConfig.from_pretrained(owl)).save_pretrained(owl)
    tiny = {"clip_model": str(clip), "detector": str(owl), "max_steps": 2, "eval_steps": 1, "batch_size": 4,
            "cache_dir": str(tmp_path / "cache")}  # fmt: skip
    scoring = {"models": [f"CLIP={clip}"], "num_workers": 0, "batch_size": 8, "cache_dir": str(tmp_path / "cache")}
    recipe = write_recipe(tmp_path, converted, training=tiny, evaluation=scoring)
    (plan,) = main(["--config", str(recipe), "--only", "WikiDiverse"])
    head = Path(plan.training.output_dir)
    assert {"config.json", "model.safetensors", "training_summary.json"} <= {p.name for p in head.iterdir()}
    results = json.loads((tmp_path / "out" / "WikiDiverse" / "benchmark" / "results.json").read_text())
    scored = {record["model"] for record in results["results"] if record["protocol"] == "retrieved"}
    assert scored == {"DWE+", "CLIP"}
    table5 = (tmp_path / "out" / "WikiDiverse" / "benchmark" / "tables" / "table5.md").read_text()
    assert "WikiDiverse ITm-Te (M-S) H@1 (optimistic ties)" in table5
    assert "| DWE+ — published (DWE+ paper, Table 5) | 47.10 | - | 81.30 | - | 92.00 | - | 96.90 | - |" in table5
