"""The console scripts: m3el-train and m3el-benchmark beside m3el-dataset, --version, and one-line user errors."""

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

from m3el_benchmark import run, train
from m3el_benchmark.cli import package_version

REPO = Path(__file__).resolve().parents[1]


def test_setup_declares_the_three_console_scripts():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    scripts = dict(line.split(" = ") for line in lines)
    assert scripts == {"m3el-dataset": "m3el_dataset.cli:main", "m3el-train": "m3el_benchmark.train:cli",
                       "m3el-benchmark": "m3el_benchmark.run:cli"}  # fmt: skip


@pytest.mark.parametrize("module", ["m3el_benchmark.train", "m3el_benchmark.run"])
def test_version(module):
    completed = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, cwd=REPO)
    assert completed.returncode == 0 and completed.stdout.strip() == f"m3el {package_version()}"


def test_a_users_mistake_is_one_line_and_exit_status_2(tmp_path, capsys):
    assert train.cli(["--task", "nope", "--output_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().startswith("m3el-train: error: Unknown task 'nope'; choose one of Tm-Te")
    assert run.cli(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "m3el-benchmark: error: Config file" in capsys.readouterr().err


def test_benchmark_help_shows_the_defaults_a_bare_run_uses(capsys):
    """A bare run reads the sample's config: --help shows its values, not the dataclass's."""
    args = run.parse_arguments([])
    with pytest.raises(SystemExit):
        run.parse_arguments(["--help"])
    lines = capsys.readouterr().out.splitlines()
    assert args.train_tiny is True and args.dataset == "sample"  # the sample config's values
    for flag, value in (("--train_tiny", args.train_tiny), ("--dataset", args.dataset),
                        ("--output_dir", args.output_dir), ("--train_max_steps", args.train_max_steps)):  # fmt: skip
        start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{flag} "))
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("  -"))
        assert f"(default: {value})" in " ".join(" ".join(lines[start:end]).split()), flag


def test_every_flag_has_a_help_string():
    from dataclasses import fields

    from m3el_benchmark.run import BenchmarkArguments
    from m3el_benchmark.training.arguments import DataArguments, ModelArguments, TrainingArguments

    for arguments in (ModelArguments, DataArguments, TrainingArguments, BenchmarkArguments):
        assert [f.name for f in fields(arguments) if not f.metadata.get("help")] == [], arguments.__name__


def _help_defaults(help_text: str) -> dict[str, str]:
    """``{flag: the text inside its '(default: …)'}`` read off an argparse help page."""
    defaults, flag, words = {}, None, []
    for line in help_text.splitlines() + ["  --end"]:
        if line.startswith("  -"):
            if flag and "(default: " in " ".join(words):
                defaults[flag] = " ".join(words).rsplit("(default: ", 1)[1].rsplit(")", 1)[0]
            names = [name.strip(",") for name in line.split() if name.startswith("--")]
            flag, words = (names[0] if names else None), line.split()
        else:
            words += line.split()
    return defaults


def test_train_help_shows_the_arguments_a_bare_run_resolves(capsys, monkeypatch):
    """Every flag of ``m3el-train --help`` states the value a bare ``m3el-train`` runs with."""
    from dataclasses import fields

    monkeypatch.setenv("COLUMNS", "2000")  # no wrapping inside values

    resolved = train.parse_arguments([])
    with pytest.raises(SystemExit):
        train.parse_arguments(["--help"])
    shown = _help_defaults(capsys.readouterr().out)
    checked = 0
    for arguments in resolved:
        for field in fields(arguments):
            if f"--{field.name}" in shown:
                assert shown[f"--{field.name}"] == str(getattr(arguments, field.name)), field.name
                checked += 1
    assert checked >= 40 and shown["--dataset"] == "sample" and shown["--task"] == "ITm-ITe"


def test_benchmark_help_states_every_value_a_bare_run_resolves(capsys, monkeypatch):
    """Every flag of ``m3el-benchmark --help`` states the value a bare run resolves (the bundled config's)."""
    from dataclasses import fields

    monkeypatch.setenv("COLUMNS", "2000")

    resolved = run.parse_arguments([])
    with pytest.raises(SystemExit):
        run.parse_arguments(["--help"])
    shown = _help_defaults(capsys.readouterr().out)
    compared = [f.name for f in fields(resolved) if f"--{f.name}" in shown]
    assert len(compared) >= 15
    for name in compared:
        assert shown[f"--{name}"] == " ".join(str(getattr(resolved, name)).split()), name
