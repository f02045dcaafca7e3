"""Training faults end in a clear error or a reported fallback: a folder of another run, two trainings in one
folder, a full disk, damaged or incomplete checkpoints, a resume with other arguments, the main command on two
processes."""

import json
import logging

import pytest
from two_processes import launch_two_cpu_processes

from m3el_benchmark.train import main
from m3el_benchmark.training.checkpointing import STATE_FILE, CheckpointError, latest_checkpoint
from m3el_benchmark.training.run_folder import OutputDirInUseError, RunFolderLock
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.sample import SAMPLE_DIR

TINY = ["--init", "tiny", "--tiny_hidden_size", "32", "--tiny_image_size", "16", "--tiny_patch_size", "8",
        "--tiny_vocab_size", "600", "--report_to", "none", "--learning_rate", "1e-3", "--validation_split", "",
        "--per_device_train_batch_size", "16", "--task", "Tm-Te"]  # fmt: skip


@pytest.fixture(scope="module")
def sample_hub(tmp_path_factory):
    return export_release(SAMPLE_DIR, tmp_path_factory.mktemp("sample") / "hub", ExportConfig()).out_dir


def _train(out, dataset, *extra):
    return main([*TINY, "--dataset", str(dataset), "--output_dir", str(out), *extra])


@pytest.fixture
def four_steps(tmp_path, sample_hub):
    """A run of 4 steps with checkpoints at steps 2 and 4."""
    out = tmp_path / "run"
    _train(out, sample_hub, "--max_steps", "4", "--checkpointing_steps", "2")
    assert latest_checkpoint(out).name == "checkpoint-4"
    return out


def test_a_folder_holding_another_runs_checkpoints_is_refused(four_steps, sample_hub):
    with pytest.raises(ValueError, match=r"holds checkpoints of an earlier run \(checkpoint-2, checkpoint-4\); pass "
                                         r"--resume .* --overwrite_output_dir"):  # fmt: skip
        _train(four_steps, sample_hub, "--max_steps", "2", "--checkpointing_steps", "1")


def test_overwrite_output_dir_starts_over_and_its_checkpoints_survive_pruning(four_steps, sample_hub):
    _train(four_steps, sample_hub, "--max_steps", "2", "--checkpointing_steps", "1", "--overwrite_output_dir")
    checkpoints = sorted(path.name for path in (four_steps / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-1", "checkpoint-2"] and latest_checkpoint(four_steps).name == "checkpoint-2"


def test_a_second_training_in_the_same_folder_is_refused(tmp_path, sample_hub):
    lock = RunFolderLock(tmp_path / "run")
    lock.acquire()  # another training holds the folder
    try:
        with pytest.raises(OutputDirInUseError, match=r"Another training \(process \d+\) is writing to .*run"):
            _train(tmp_path / "run", sample_hub, "--max_steps", "1")
    finally:
        lock.release()
    assert _train(tmp_path / "run", sample_hub, "--max_steps", "1").steps == 1  # free again once released


def test_a_full_disk_reported_by_torch_says_free_disk_space(tmp_path, sample_hub, monkeypatch):
    from accelerate import Accelerator

    def disk_full(self, output_dir=None, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")  # fmt: skip

    monkeypatch.setattr(Accelerator, "save_state", disk_full)
    with pytest.raises(CheckpointError, match="step 2 .*file write failed.*Free disk space"):
        _train(tmp_path / "run", sample_hub, "--max_steps", "3", "--checkpointing_steps", "2")
    assert not list((tmp_path / "run" / "checkpoints").glob(".staging-*"))


def test_a_damaged_checkpoint_is_named_and_the_previous_one_used(four_steps, sample_hub, caplog):
    weights = four_steps / "checkpoints" / "checkpoint-4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        result = _train(four_steps, sample_hub, "--max_steps", "5", "--checkpointing_steps", "2", "--resume")
    assert f"{weights} is damaged" in caplog.text and "Trying the previous complete checkpoint" in caplog.text
    assert result.steps == 5  # resumed at step 2, not at 0


def test_latest_naming_an_incomplete_checkpoint_falls_back_to_the_newest_complete(four_steps, caplog):
    (four_steps / "checkpoints" / "checkpoint-4" / STATE_FILE).unlink()
    with caplog.at_level(logging.WARNING):
        assert latest_checkpoint(four_steps).name == "checkpoint-2"
    assert "incomplete; using the newest complete checkpoint" in caplog.text


def test_no_loadable_checkpoint_is_an_error_naming_each(four_steps, sample_hub):
    for step in (2, 4):
        (four_steps / "checkpoints" / f"checkpoint-{step}" / STATE_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="No checkpoint of .* could be loaded"):
        _train(four_steps, sample_hub, "--max_steps", "5", "--resume")


def test_resume_with_other_arguments_lists_them_unless_allowed(four_steps, sample_hub):
    with pytest.raises(ValueError, match=r"trained with other arguments: learning_rate 0.001 -> 0.002\. .*"
                                         r"--allow_changed_arguments"):  # fmt: skip
        _train(four_steps, sample_hub, "--max_steps", "5", "--resume", "--learning_rate", "2e-3")
    result = _train(four_steps, sample_hub, "--max_steps", "5", "--resume", "--learning_rate", "2e-3",
                    "--allow_changed_arguments")  # fmt: skip
    recorded = json.loads((result.output_dir / "config.json").read_text())["training_arguments"]
    assert recorded["learning_rate"] == 2e-3 and recorded["changed_on_resume"] == {"learning_rate": 1e-3}


@pytest.mark.slow
def test_the_main_command_trains_and_benchmarks_on_two_processes(tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2 benchmark/run.py` with the tiny CLIP-ND trained first."""
    args = ["--train_max_steps", "2", "--tasks", "Tm-Te", "ITm-ITe", "--text_formats", "M-S1", "--num_workers", "0",
            "--output_dir", str(tmp_path / "out"), "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    completed = launch_two_cpu_processes("benchmark/run.py", args, timeout=600)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["run"]["num_processes"] == 2
    assert {model["name"] for model in results["models"]} == {"CLIP-ND (tiny, trained)", "CLIP-ND (tiny, untrained)"}
    assert "Default process group has not been initialized" not in completed.stderr
