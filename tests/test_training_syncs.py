"""The training hot loop never waits for the device between logging intervals, and still catches a diverging step."""

import sys
from pathlib import Path

import pytest
import torch
from tiny_clip import random_images, save_tiny_clip, tiny_processor

from m3el_benchmark.train import main
from m3el_benchmark.training import trainer as trainer_module
from m3el_benchmark.training.data import EntityView, PairCollator
from m3el_benchmark.training.divergence import TrainingDivergedError
from m3el_benchmark.training.loss import embed_side
from m3el_dataset.export import ExportConfig, export_release
from m3el_dataset.loading import open_split
from m3el_dataset.rows import MENTIONS_CONFIG
from m3el_dataset.sample import SAMPLE_DIR
from modeling_clip_nd import CLIPNDModel, prepare_images, tokenize_texts

TINY = ["--init", "tiny", "--tiny_hidden_size", "32", "--tiny_image_size", "16", "--tiny_patch_size", "8",
        "--tiny_vocab_size", "600", "--report_to", "none", "--dataloader_num_workers", "0",
        "--per_device_train_batch_size", "8", "--validation_split", ""]  # fmt: skip
# What reads a device tensor on the host (each waits for the device on a GPU).
SYNCING = ("item", "tolist", "cpu", "numpy", "nonzero", "__bool__", "__int__", "__float__", "__index__")
OUR_CODE = tuple(f"{Path(__file__).parents[1] / package}" for package in ("m3el_benchmark", "modeling_clip_nd"))
INTERVAL = {"_check_steps", "_log"}  # where a read is allowed: the logging interval (and before a save)
# The dataset and collator run in DataLoader workers on CPU tensors; the sampler draws its CPU permutation per epoch.
DATA_PIPELINE = {"__getitem__", "__call__", "side", "__iter__"}


@pytest.fixture(scope="module")
def sample_hub(tmp_path_factory):
    return export_release(SAMPLE_DIR, tmp_path_factory.mktemp("sample") / "hub", ExportConfig()).out_dir


def _our_stack(frame) -> list[str]:
    names = []
    while frame is not None:
        if frame.f_code.co_filename.startswith(OUR_CODE):
            names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names


def _record_host_reads(monkeypatch) -> list[list[str]]:
    """Patch every syncing tensor method; record the stack of our functions for each call made by our code."""
    calls: list[list[str]] = []
    for name in SYNCING:
        original = getattr(torch.Tensor, name)

        def patched(self, *args, _original=original, **kwargs):
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(OUR_CODE):
                calls.append(_our_stack(caller))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, patched)
    return calls


@pytest.mark.parametrize("task, extra", [("ITm-ITe", ["--hard_negatives", "true"]), ("Tm-Ie", [])])
def test_training_steps_read_nothing_from_the_device_between_logging_intervals(
    tmp_path, sample_hub, monkeypatch, task, extra
):
    real_train_epoch = trainer_module.CLIPNDTrainer._train_epoch
    calls: list[list[str]] = []

    def install_then_train(self, progress):
        if not hasattr(self, "_reads"):
            self._reads = _record_host_reads(monkeypatch)
        try:
            return real_train_epoch(self, progress)
        finally:
            calls[:] = self._reads

    monkeypatch.setattr(trainer_module.CLIPNDTrainer, "_train_epoch", install_then_train)
    argv = [*TINY, "--dataset", str(sample_hub), "--output_dir", str(tmp_path / "run"), "--task", task,
            "--max_steps", "7", "--logging_steps", "3", *extra]  # fmt: skip
    assert main(argv).steps == 7
    in_loop = [stack for stack in calls if "_train_epoch" in stack]
    at_interval = [stack for stack in in_loop if INTERVAL & set(stack)]
    assert at_interval, "the hooks saw no read at all, not even the logging interval's: they are not working"
    syncing = [stack for stack in in_loop if not INTERVAL & set(stack) and not DATA_PIPELINE & set(stack)]
    assert syncing == [], f"host reads of device tensors outside the logging interval: {syncing[:3]}"


def test_a_nan_loss_between_intervals_stops_the_run_at_the_next_check(tmp_path, sample_hub, monkeypatch):
    real_forward = trainer_module.GatheredContrastiveLoss.forward
    calls = []

    def nan_at_second(self, *args, **kwargs):
        calls.append(1)
        loss = real_forward(self, *args, **kwargs)
        return loss * float("nan") if len(calls) == 2 else loss

    monkeypatch.setattr(trainer_module.GatheredContrastiveLoss, "forward", nan_at_second)
    out = tmp_path / "run"
    argv = [*TINY, "--dataset", str(sample_hub), "--output_dir", str(out), "--max_steps", "6", "--logging_steps", "3"]
    with pytest.raises(TrainingDivergedError, match=r"The loss is nan at step 2 \(epoch 0, batch 1 .* after step 3"):
        main(argv)
    assert len(calls) == 3  # stopped at the first check after the bad step, not at the end
    assert not (out / "model.safetensors").exists()


@pytest.mark.parametrize("fallback", ["text", "nan"])
def test_routing_missing_images_in_the_collator_gives_the_models_own_embeddings(tmp_path, fallback):
    """The collator leaves missing images out of the image groups; the embeddings equal `get_features`' own."""
    model = CLIPNDModel.from_clip(save_tiny_clip(tmp_path / "clip")).eval()
    model.config.missing_image_fallback = fallback
    processor = tiny_processor()
    images = random_images(4, seed=1)
    views = [EntityView(f"entity {i}", images[i] if i % 2 else None, needs_image=True) for i in range(4)]
    views += [EntityView(None, None, needs_image=True), EntityView(None, images[0], needs_image=True)]
    collator = PairCollator(processor, "M-S1", train=True, missing_image_fallback=fallback)
    with torch.no_grad():
        routed = embed_side(model, collator.side(views), len(views), model.config.projection_dim)
        both = {**tokenize_texts(processor, [view.text for view in views[:4]]),
                **prepare_images(processor, [view.image for view in views[:4]])}  # fmt: skip
        expected = torch.cat([model.get_features(**both),
                              model.get_features(**prepare_images(processor, [None, images[0]]))])  # fmt: skip
    torch.testing.assert_close(routed.embeds, expected, equal_nan=True)
    assert routed.present.tolist() == (~expected.isnan().any(dim=-1)).tolist()


def test_counts_kept_on_the_device_are_reported_once_at_the_end(tmp_path, caplog):
    """Undecodable images and batches left without a pair are counted on the device and reported in one line each."""
    from release_fixtures import small_release

    release = small_release(tmp_path / "raw", per_topic=4)
    for records in release.files.values():
        for record in records:
            release.write_image(record["image"][2], b"\x89PNG\r\n\x1a\n broken")
    release.write()
    hub = export_release(tmp_path / "raw", tmp_path / "hub", ExportConfig(decode_check=False)).out_dir
    argv = [*TINY, "--dataset", str(hub), "--output_dir", str(tmp_path / "run"), "--task", "Im-Te",
            "--max_steps", "2", "--logging_steps", "5"]  # fmt: skip
    with caplog.at_level("WARNING", logger="m3el_benchmark.training.trainer"):
        result = main(argv)
    trainable = sum(label >= 0 for label in open_split(str(hub), MENTIONS_CONFIG, "train")["label"])
    assert 8 < trainable <= 16  # so the 2 steps (batches of 8) are the whole first epoch
    assert result.undecodable_images == trainable  # every mention drawn has a broken image, each counted once
    pairless = [record.getMessage() for record in caplog.records if "no mention-entity pair" in record.getMessage()]
    assert pairless == ["2 batches (per process) had no mention-entity pair with both sides present (missing images); "
                        "their own pairs added nothing to the loss."]  # fmt: skip
