import datasets
import pytest
import yaml
from converter_fixtures import (
    DIFFUSIONDB_PROMPTS,
    write_diffusiondb_parquet,
    write_diffusiondb_parts,
    write_diffusiondb_zip,
)
from PIL import Image

from m3el_dataset.converters import convert
from m3el_dataset.export import ExportConfig


@pytest.mark.parametrize("write", [write_diffusiondb_parquet, write_diffusiondb_parts, write_diffusiondb_zip])
def test_prompts_link_to_their_images(tmp_path, write):
    result = convert("diffusiondb", write(tmp_path / "src"), tmp_path / "hub", ExportConfig())
    meta = yaml.safe_load((result.out_dir / "README.md").read_text(encoding="utf-8").split("---")[1])
    assert [c["config_name"] for c in meta["configs"]] == ["Tm-Ie", "mentions", "kb"]
    ds = datasets.load_dataset(str(result.out_dir), "Tm-Ie", split="test")
    assert ds.column_names == ["id", "topic", "split", "sentence", "sentence1", "text_S1", "text_S", "gold_qid",
                               "candidate_qids", "candidate_images", "label"]  # fmt: skip
    stems = [name.removesuffix(".png") for name in DIFFUSIONDB_PROMPTS]
    assert ds["text_S"] == list(DIFFUSIONDB_PROMPTS.values()) and ds["gold_qid"] == stems
    assert ds["label"] == [0, 0, 0] and ds["candidate_qids"] == [[stem] for stem in stems]
    assert ds[0]["text_S1"] == "a castle on a hill, oil painting."
    assert all(isinstance(row["candidate_images"][0], Image.Image) for row in ds)
    kb = datasets.load_dataset(str(result.out_dir), "kb", split="kb")
    assert kb["qid"] == stems and kb.column_names == ["qid", "image"]
    assert result.report.image_problems == [] and result.report.skipped_records == []


def test_missing_prompt_and_empty_folder(tmp_path):
    src = write_diffusiondb_parts(tmp_path / "src")
    table = src / "images/part-000001/part-000001.json"
    table.write_text(table.read_text().replace('"p"', '"prompt"', 1))
    with pytest.raises(ValueError, match="part-000001.json, record 0, field 'p': missing"):
        convert("diffusiondb", src, tmp_path / "out", ExportConfig())
    result = convert("diffusiondb", src, tmp_path / "out", ExportConfig(skip_invalid=True))
    assert result.statistics.total.mentions == 2 and len(result.report.skipped_records) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="2m_random_1k"):
        convert("diffusiondb", tmp_path / "empty", tmp_path / "out2", ExportConfig())


def test_zipped_parts_name_the_broken_archive_or_member(tmp_path):
    src = write_diffusiondb_zip(tmp_path / "src")
    archive = src / "images" / "part-000001.zip"
    data = archive.read_bytes()
    archive.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"images/part-000001.zip: not a readable zip archive"):
        convert("diffusiondb", src, tmp_path / "out", ExportConfig())
    import zipfile

    archive.unlink()
    with zipfile.ZipFile(archive, "w") as broken:
        broken.writestr("other.json", "{}")
    with pytest.raises(ValueError, match=r"images/part-000001.zip: no part-000001.json inside the archive"):
        convert("diffusiondb", src, tmp_path / "out", ExportConfig())
    archive.write_bytes(data)
    write_diffusiondb_parts(src)  # the same prompts unzipped beside the archive
    with pytest.raises(ValueError, match="more than one DiffusionDB layout"):
        convert("diffusiondb", src, tmp_path / "out", ExportConfig())
