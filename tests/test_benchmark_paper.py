"""``configs/paper.yaml`` on the bundled sample: the paper's Table 4 and Table 5 layouts with its figures beside ours,
the nil policy named everywhere, n and intervals in every output, a paired comparison with CLIP-ND, LaTeX tables."""

from __future__ import annotations

import json

import pytest
import yaml
from benchmark_tables import PAPER_TABLE4, PAPER_TABLE4_FORMATS, PAPER_TABLE5, parse_tabular, read_values
from tiny_baselines import save_tiny_clip_nd
from tiny_clip import save_tiny_clip

from m3el_benchmark.run import CONFIG_DIR, main
from m3el_dataset.loading import resolve_source

TABLE4 = "published (paper, Table 4)"
TABLE5 = "published (paper, Table 5)"


@pytest.fixture(scope="module")
def paper_runs(tmp_path_factory) -> dict:
    """paper.yaml on the sample with a tiny CLIP and a tiny CLIP-ND, as configured (exclude) and with wrong."""
    root = tmp_path_factory.mktemp("paper")
    models = [f"CLIP={save_tiny_clip(root / 'clip')}", f"CLIP-ND={save_tiny_clip_nd(root / 'clip_nd')}"]
    values = yaml.safe_load((CONFIG_DIR / "paper.yaml").read_text())
    values.update(dataset=resolve_source("sample", root / "datasets"), models=models, cache_dir=str(root / "cache"),
                  num_workers=0, batch_size=64)  # fmt: skip
    config = root / "paper.yaml"
    config.write_text(yaml.safe_dump(values))
    runs = {}
    for policy in ("exclude", "wrong"):
        runs[policy] = main(["--config", str(config), "--output_dir", str(root / policy), "--nil_policy", policy])
    return runs


def test_table4_is_the_papers_layout_with_its_figures_beside_ours(paper_runs):
    tables = paper_runs["exclude"].output_dir / "tables"
    header, rows = read_values(tables / "table4_ITm-ITe.csv")
    assert header == ["Model", *PAPER_TABLE4_FORMATS]
    assert list(rows) == ["CLIP", "CLIP-ND", *(f"{model} — {TABLE4}" for model in PAPER_TABLE4)]
    for model, values in PAPER_TABLE4.items():  # the paper's numbers, typed from the paper
        assert rows[f"{model} — {TABLE4}"] == [f"{100 * value:.2f}" for value in values]
    markdown = (tables / "table4_ITm-ITe.md").read_text()
    title = markdown.splitlines()[0]
    assert "the paper's Table 4 names no task" in title and "which we read as ITm-ITe" in title
    assert "each mention ranked against its own candidates" in title and "(nil_policy: exclude)" in title
    assert "| *n (mentions scored)* | 26 | 26 |" in markdown  # 27 test mentions, one without its gold
    header, rows = read_values(tables / "table4_Tm-Te.csv")  # the layout on another task: no published rows
    assert list(rows) == ["CLIP", "CLIP-ND"]


def test_table5_is_table4s_m_s_column_with_the_papers_figures(paper_runs):
    tables = paper_runs["exclude"].output_dir / "tables"
    header, rows = read_values(tables / "table5.csv")
    assert header == ["Model", "M3EL ITm-ITe (M-S)"]
    _, table4 = read_values(tables / "table4_ITm-ITe.csv")
    for model in ("CLIP", "CLIP-ND"):
        assert rows[model] == [table4[model][PAPER_TABLE4_FORMATS.index("M-S")]]
    for model, values in PAPER_TABLE5.items():
        assert rows[f"{model} — {TABLE5}"] == [f"{100 * values[3]:.2f}"]
        assert values[3] == PAPER_TABLE4[model][PAPER_TABLE4_FORMATS.index("M-S")]  # as the paper prints them


def test_nil_policy_is_applied_and_named_in_results_and_every_table(paper_runs):
    by_policy = {}
    for policy, run in paper_runs.items():
        records = run.results["results"]
        assert {r["nil_policy"] for r in records} == {policy} and run.results["datasets"][0]["nil_policy"] == policy
        by_policy[policy] = {(r["model"], r["task"], r["text_format"], r["topic"]): r for r in records}
        for path in (run.output_dir / "tables").glob("*.csv"):
            with path.open() as stream:
                lines = stream.read().splitlines()
            assert all(f"(nil_policy: {policy})" in line for line in lines[1:] if ",this run," in line), path
        for path in (run.output_dir / "tables").glob("*.tex"):
            assert f"(nil\\_policy: {policy})" in path.read_text(), path
    for key, wrong in by_policy["wrong"].items():
        excluded = by_policy["exclude"][key]
        # One common mention lacks its gold: left out, the same mentions are right.
        assert excluded["num_mentions"] + excluded["num_excluded"] == wrong["num_mentions"]
        assert excluded["num_excluded"] == (1 if key[3] in ("all", "common") else 0)
        right = excluded["accuracy"] * excluded["num_mentions"]
        assert right == pytest.approx(wrong["accuracy"] * wrong["num_mentions"])


def test_every_figure_carries_n_and_an_interval_and_clip_is_compared_with_clip_nd(paper_runs):
    run = paper_runs["exclude"]
    saved = json.loads((run.output_dir / "results.json").read_text())
    assert saved["uncertainty"]["seed"] == 42 and saved["uncertainty"]["resamples"] == 1000
    for record in saved["results"]:
        low, high = record["ci95"]["accuracy"]
        assert record["num_mentions"] > 0 and low <= record["accuracy"] <= high
    (comparison,) = saved["comparisons"]
    assert (comparison["model"], comparison["reference"]) == ("CLIP", "CLIP-ND")
    assert (comparison["task"], comparison["text_format"], comparison["num_mentions"]) == ("ITm-ITe", "M-S", 26)
    low, high = comparison["ci95"]
    assert low <= comparison["difference"] <= high
    header, rows = read_values(run.output_dir / "tables" / "comparison.csv")
    assert header == ["Model", "M3EL ITm-ITe (M-S)"] and list(rows) == ["CLIP"]
    model_index = json.loads((run.output_dir / "model_index.json").read_text())
    assert model_index["CLIP-ND"]["M3EL"]["nil_policy"] == "exclude"
    assert model_index["CLIP-ND"]["M3EL"]["num_mentions"]["ITm-ITe"] == 26
    assert (run.output_dir / "accuracy_by_task.pdf").read_bytes()[:5] == b"%PDF-"


def test_every_latex_table_parses_as_a_booktabs_tabular(paper_runs):
    for path in sorted((paper_runs["exclude"].output_dir / "tables").glob("*.tex")):
        spec, rows = parse_tabular(path.read_text())
        assert rows and all(len(row) == len(spec) for row in rows), path
