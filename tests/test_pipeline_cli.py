"""The pipeline's command line: stages run alone give what ``run`` gives; settings files and errors."""

from __future__ import annotations

import json

import pytest
from pipeline_server import FakeWikimedia, pipeline_settings, populate_world, write_tiny_sources

from m3el_dataset.pipeline.cli import main
from m3el_dataset.pipeline.config import config_from_dict


@pytest.fixture
def setup(tmp_path):
    with FakeWikimedia() as fake:
        populate_world(fake)
        sources = write_tiny_sources(tmp_path / "raw")
        yield fake, sources


def _settings_file(tmp_path, fake, sources, name):
    path = tmp_path / f"{name}.json"
    settings = pipeline_settings(fake, tmp_path / name, {})  # sources come from flags
    path.write_text(json.dumps(settings))
    flags = [item for topic, source in sources.items() for item in ("--source", f"{topic}={source}")]
    return ["--settings", str(path), *flags]


def test_stages_one_by_one_equal_run(setup, tmp_path, capsys):
    fake, sources = setup
    assert main(["run", *_settings_file(tmp_path, fake, sources, "all")]) == 1  # two items fail by design
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"]["records"]["movies"] == 3
    staged = _settings_file(tmp_path, fake, sources, "staged")
    for stage in ("sources", "candidates", "images", "records"):
        main([stage, *staged])
    for topic in sources:
        all_records = (tmp_path / "all" / "M3EL" / f"{topic}.json").read_text()
        assert (tmp_path / "staged" / "M3EL" / f"{topic}.json").read_text() == all_records
    report = json.loads((tmp_path / "all" / "report.json").read_text())
    assert len(report["failures"]["candidates"]) == 1 and len(report["failures"]["images"]) == 1


def test_flags_override_settings_file(tmp_path, setup):
    from m3el_dataset.pipeline.cli import build_parser, config_from_args

    fake, sources = setup
    args = build_parser().parse_args(["run", *_settings_file(tmp_path, fake, sources, "x"), "--k", "5",
                                      "--user-agent", "me/1.0 (me@example.org)", "--work-dir", str(tmp_path / "y")])
    config = config_from_args(args)
    assert config.candidates.k == 5 and config.http.user_agent == "me/1.0 (me@example.org)"
    assert config.work_dir == tmp_path / "y" and config.release_dir == tmp_path / "y" / "M3EL"
    assert config.endpoints.wikidata_api == fake.api and config.http.cache_dir == tmp_path / "y" / "http_cache"


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--work-dir", "w", "--source", "movies"], "must look like TOPIC=PATH"),
    (["run", "--work-dir", "w", "--source", "films=x.csv"], "Unknown topic 'films'"),
    (["run", "--source", "movies=x.csv"], "Pass --work-dir"),
    (["run", "--work-dir", "w"], "No topic to build"),
    (["run", "--work-dir", "w", "--source", "movies=missing.csv"], "does not exist"),
])
def test_user_errors_exit_2_with_a_message(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_settings_file_errors_are_named():
    with pytest.raises(ValueError, match="s.json: unknown key\\(s\\) htp"):
        config_from_dict({"work_dir": "w", "htp": {}}, source="s.json")
    with pytest.raises(ValueError, match="bad 'http' section"):
        config_from_dict({"work_dir": "w", "http": {"timeout": 3}}, source="s.json")
