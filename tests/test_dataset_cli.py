import json
from unittest import mock

import pytest
from release_fixtures import FakeRelease, image_bytes, small_release

from m3el_dataset.cli import main
from m3el_dataset.hub import UPLOAD_PATTERNS, plan_upload, push_folder
from m3el_dataset.sample import SAMPLE_DIR


def test_build_and_stats_of_the_bundled_sample(tmp_path, capsys):
    assert main(["build", str(SAMPLE_DIR), str(tmp_path / "hub")]) == 0
    assert "Wrote 300 mentions" in capsys.readouterr().out
    assert 'load_dataset("<org>/m3el"' in (tmp_path / "hub" / "README.md").read_text(encoding="utf-8")
    assert main(["stats", str(tmp_path / "hub"), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert main(["stats", str(SAMPLE_DIR), "--json"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert exported == raw  # the same figures from the release and from its export
    assert raw["all"]["mentions"] == 300 and set(raw["topics"]) == {"movies", "common", "person", "books", "sports"}
    assert raw["all"]["gold_first"] + raw["all"]["gold_elsewhere"] + raw["all"]["gold_absent"] == 300
    assert raw["missing_images"] == raw["skipped_records"] == 0


def test_stats_counts_quality_problems_and_identical_images(tmp_path, capsys):
    release = small_release(tmp_path / "raw", per_topic=3)
    movie = release.files["movies.json"][0]
    release.path_of(movie["candidates"][1]["image"][2]).unlink()  # a missing candidate image
    release.write_image(movie["candidates"][0]["image"][2], b"broken")  # the gold's file, also the mention's
    release.add("movies").pop("sentence")  # malformed
    release.write()
    assert main(["stats", str(tmp_path / "raw")]) == 2
    assert "field 'sentence': missing field" in capsys.readouterr().err
    assert main(["stats", str(tmp_path / "raw"), "--json", "--skip-invalid"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["missing_images"], stats["unreadable_images"], stats["skipped_records"]) == (1, 2, 1)
    movies = stats["topics"]["movies"]
    assert (movies["gold_first"], movies["gold_elsewhere"], movies["gold_absent"]) == (1, 1, 1)
    assert movies["mention_image_is_gold_image"] == 1  # the gold image of movie 0 is no longer readable
    assert movies["surface_differs"] == 1  # "entity 0" vs "Entity 0"; "Entity 1" matches
    assert (movies["surface_compared"], movies["images_compared"]) == (2, 1)  # the gold image of movie 0 is unreadable
    assert movies["images"] == 3 * 4 - 3


def test_build_reports_every_skip_and_empty_image(tmp_path, capsys):
    release = FakeRelease(tmp_path / "raw")
    release.add("books")["candidates"][0]["image"][2] = "/M3EL/../../etc/passwd"
    release.add("books").pop("candidates")
    release.write()
    assert main(["build", str(tmp_path / "raw"), str(tmp_path / "hub")]) == 2
    assert "books.json, record 1, field 'candidates': missing field" in capsys.readouterr().err
    assert main(["build", str(tmp_path / "raw"), str(tmp_path / "hub"), "--skip-invalid"]) == 0
    out = capsys.readouterr().out
    assert "skipped: books.json, record 1, field candidates: missing field" in out
    assert "empty image: books-000000 (candidate 0) outside_folder: /M3EL/../../etc/passwd" in out
    report = json.loads((tmp_path / "hub" / "build_report.json").read_text())
    assert report["image_problem_counts"] == {"missing": 0, "unreadable": 0, "outside_folder": 1}
    assert len(report["skipped_records"]) == 1


def test_wrong_paths_and_sizes_are_clear_errors(tmp_path, capsys):
    assert main(["build", str(tmp_path / "nowhere"), str(tmp_path / "hub")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["build", str(SAMPLE_DIR), str(tmp_path / "hub"), "--max-shard-size", "lots"])
    assert "invalid size 'lots'" in capsys.readouterr().err
    assert main(["push", str(tmp_path), "me/m3el", "--dry-run"]) == 2
    assert "is not an M3EL-layout folder: it has no README.md" in capsys.readouterr().err


def test_push_dry_run_lists_what_would_be_sent(tmp_path, capsys):
    small_release(tmp_path / "raw", per_topic=2).write()
    assert main(["build", str(tmp_path / "raw"), str(tmp_path / "hub")]) == 0
    (tmp_path / "hub" / "notes.txt").write_text("local only")
    capsys.readouterr()
    assert main(["push", str(tmp_path / "hub"), "me/m3el", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "README.md" in out and "build_report.json" in out and "kb/kb-00000-of-00001.parquet" in out
    assert "notes.txt" not in out and "would go to datasets/me/m3el" in out
    plan = plan_upload(tmp_path / "hub")
    assert len(plan.files) == 2 + 1 + len(list((tmp_path / "hub").glob("data/*/*.parquet")))


def test_push_calls_the_resumable_upload(tmp_path):
    small_release(tmp_path / "raw", per_topic=1).write()
    main(["build", str(tmp_path / "raw"), str(tmp_path / "hub")])
    api = mock.Mock(spec=["create_repo", "upload_folder"])
    plan = push_folder(tmp_path / "hub", "me/m3el", private=True, api=api)
    api.create_repo.assert_called_once_with("me/m3el", repo_type="dataset", private=True, exist_ok=True)
    kwargs = api.upload_folder.call_args.kwargs
    assert kwargs["repo_id"] == "me/m3el" and kwargs["repo_type"] == "dataset"
    assert kwargs["folder_path"] == str(tmp_path / "hub") and kwargs["allow_patterns"] == UPLOAD_PATTERNS
    assert plan.total_bytes > 0


def test_push_uses_upload_large_folder_where_the_hub_library_has_it(tmp_path):
    small_release(tmp_path / "raw", per_topic=1).write()
    main(["build", str(tmp_path / "raw"), str(tmp_path / "hub")])
    api = mock.Mock(spec=["upload_large_folder"])
    push_folder(tmp_path / "hub", "me/m3el", api=api)
    kwargs = api.upload_large_folder.call_args.kwargs
    assert kwargs["repo_type"] == "dataset" and kwargs["private"] is False


def test_image_bytes_are_copied_not_reencoded(tmp_path):
    import pyarrow.parquet as pq

    release = FakeRelease(tmp_path / "raw")
    record = release.add("sports")
    jpeg = image_bytes("jpeg", size=16, fmt="JPEG")
    release.write_image(record["image"][2], jpeg)
    release.write()
    main(["build", str(tmp_path / "raw"), str(tmp_path / "hub")])
    shards = (tmp_path / "hub").glob("data/sports/*.parquet")
    (row,) = [row for shard in shards for row in pq.read_table(shard).to_pylist()]
    assert row["mention_image"]["bytes"] == jpeg


def test_pipeline_is_a_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["pipeline", "--help"])
    assert exit_info.value.code == 0
    assert "usage: m3el-dataset pipeline" in capsys.readouterr().out


def test_stats_of_a_converted_peer_dataset_use_its_own_group(tmp_path, capsys):
    from converter_fixtures import write_mimic

    source = write_mimic(tmp_path / "WikiMEL")
    assert main(["convert", "mimic", str(source), str(tmp_path / "hub")]) == 0
    capsys.readouterr()
    assert main(["stats", str(tmp_path / "hub"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert list(stats["topics"]) == ["wikimel"] and stats["all"]["mentions"] == 6
    assert stats["all"]["gold_absent"] == 2  # the NIL mentions, kept and counted


def test_stats_of_a_peer_without_mention_names_or_images_say_n_a_not_zero(tmp_path, capsys):
    from converter_fixtures import write_diffusiondb_parquet

    source = write_diffusiondb_parquet(tmp_path / "ddb")
    assert main(["convert", "diffusiondb", str(source), str(tmp_path / "hub")]) == 0
    capsys.readouterr()
    assert main(["stats", str(tmp_path / "hub")]) == 0
    table = capsys.readouterr().out
    assert "| all | 100.0% | 0.0% | 0.0% | n/a | n/a |" in table  # a prompt has no surface form; no mention image


def test_stats_of_an_image_only_peer_report_documents_as_n_a(tmp_path, capsys):
    from converter_fixtures import WIKIPERSON, write_wikiperson

    source = write_wikiperson(tmp_path / "wikiperson")
    assert main(["convert", "wikiperson", str(source), str(tmp_path / "hub")]) == 0
    capsys.readouterr()
    assert main(["stats", str(tmp_path / "hub"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    mentions = sum(map(len, WIKIPERSON.values()))
    assert stats["all"]["documents"] is None and stats["topics"]["wikiperson"]["documents"] is None  # not 1
    assert stats["all"]["mentions"] == mentions
    assert main(["stats", str(tmp_path / "hub")]) == 0
    assert f"| wikiperson | n/a | {mentions} |" in capsys.readouterr().out
    assert f"| all | n/a | {mentions} |" in (tmp_path / "hub" / "README.md").read_text(encoding="utf-8")
