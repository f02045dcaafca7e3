"""Faults of an exported or foreign folder (issue 14): damaged Parquet, another dataset's folder and links out of
the folder are named, never read as if they were M3EL."""

import shutil
from pathlib import Path

import datasets
import pytest
from release_fixtures import FakeRelease, small_release

from m3el_dataset import M3ELBuilder
from m3el_dataset.cli import main
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.hub_folder import NotM3ELLayoutError, check_m3el_layout


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    small_release(root / "raw", per_topic=2).write()
    return export_release(root / "raw", root / "hub", ExportConfig()).out_dir


def _copy(folder, tmp_path):
    return Path(shutil.copytree(folder, tmp_path / "copy"))


def test_a_damaged_shard_is_named(hub, tmp_path, capsys):
    folder = _copy(hub, tmp_path)
    shard = sorted(folder.glob("data/*/*.parquet"))[-1]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    assert main(["stats", str(folder)]) == 2
    assert f"{shard} is not a readable Parquet file" in capsys.readouterr().err


def _foreign_parquet_folder(root, card="---\nlicense: mit\n---\n# Another dataset\n"):
    datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}).to_parquet(str(root / "data" / "train.parquet"))
    (root / "README.md").write_text(card, encoding="utf-8")
    return root


@pytest.mark.parametrize("command", [["stats"], ["push", "--dry-run"]])
def test_a_foreign_dataset_folder_is_refused_as_such(tmp_path, capsys, command):
    folder = _foreign_parquet_folder(tmp_path / "foreign")
    argv = [command[0], str(folder), *(["me/x", "--dry-run"] if command[0] == "push" else [])]
    assert main(argv) == 2
    assert f"{folder} is not an M3EL-layout folder: its README.md declares no 'mentions' config" in (
        capsys.readouterr().err
    )


def test_foreign_folders_say_what_they_lack(tmp_path):
    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": ["a"]}).save_to_disk(str(saved))
    with pytest.raises(NotM3ELLayoutError, match="it has no README.md"):
        check_m3el_layout(saved)
    card = "---\nconfigs:\n- config_name: mentions\n  data_files: data/*/*.parquet\n---\n"
    folder = tmp_path / "lookalike"
    (folder / "data" / "x").mkdir(parents=True)
    datasets.Dataset.from_dict({"id": ["a"]}).to_parquet(str(folder / "data" / "x" / "train.parquet"))
    (folder / "README.md").write_text(card, encoding="utf-8")
    with pytest.raises(NotM3ELLayoutError, match="data/x/train.parquet has no column topic, split"):
        check_m3el_layout(folder)


def test_the_builder_refuses_a_built_folder_as_data_dir(hub, tmp_path):
    with pytest.raises(ValueError, match="is an exported M3EL folder, not a raw release: load it with"):
        M3ELBuilder(config_name="Tm-Te", data_dir=str(hub), cache_dir=str(tmp_path)).download_and_prepare()
    foreign = _foreign_parquet_folder(tmp_path / "foreign")
    with pytest.raises(NotM3ELLayoutError, match="not an M3EL-layout folder"):
        M3ELBuilder(config_name="Tm-Te", data_dir=str(foreign), cache_dir=str(tmp_path)).download_and_prepare()


def test_the_builder_declares_only_splits_with_rows(tmp_path):
    release = FakeRelease(tmp_path / "raw")
    for i in range(3):
        release.add("person", name=f"Person {i}", qid=f"Q{8000 + i}")
    release.write()
    builder = M3ELBuilder(config_name="Tm-Te", data_dir=str(tmp_path / "raw"), cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    assert "person" in builder.info.splits and "books" not in builder.info.splits
    for split in builder.info.splits:
        assert len(builder.as_dataset(split=split)) > 0


def test_push_refuses_a_link_to_a_file_outside_the_folder(hub, tmp_path, capsys):
    folder = _copy(hub, tmp_path)
    secret = tmp_path / "secret.parquet"
    secret.write_bytes(b"not for upload")
    link = folder / "data" / "movies" / "extra-00000-of-00001.parquet"
    link.symlink_to(secret)
    assert main(["push", str(folder), "me/m3el", "--dry-run"]) == 2
    assert f"{link} is a link to {secret}, outside {folder}" in capsys.readouterr().err
    link.unlink()
    link.symlink_to(sorted(folder.glob("data/movies/train-*.parquet"))[0])  # a link inside the folder is fine
    assert main(["push", str(folder), "me/m3el", "--dry-run"]) == 0


def test_a_damaged_source_parquet_is_named_by_convert(tmp_path, capsys):
    from converter_fixtures import write_diffusiondb_parquet

    source = write_diffusiondb_parquet(tmp_path / "ddb")
    shard = sorted(source.rglob("*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:200])
    assert main(["convert", "diffusiondb", str(source), str(tmp_path / "hub")]) == 2
    assert f"{shard} is not a readable Parquet file" in capsys.readouterr().err
