"""`--report_to`: every tracker accelerate knows, several at once, and a missing one named, never a silent no-op."""

import pytest

from m3el_benchmark.training import tracking
from m3el_benchmark.training.tracking import TRACKERS, trackers


def test_none_auto_and_named_trackers(monkeypatch):
    monkeypatch.setattr(tracking, "_available", lambda name: name in ("tensorboard", "mlflow"))
    assert trackers("none") == [] and trackers("auto") == ["tensorboard"]
    assert trackers("tensorboard, mlflow") == ["tensorboard", "mlflow"]
    assert {"tensorboard", "wandb", "mlflow", "comet_ml", "aim"} <= set(TRACKERS)


def test_auto_without_tensorboard_tracks_nothing_and_says_so(monkeypatch, caplog):
    monkeypatch.setattr(tracking, "_available", lambda name: False)
    with caplog.at_level("INFO"):
        assert trackers("auto") == []
    assert "pip install m3el[track]" in caplog.text


@pytest.mark.parametrize("report_to, message", [
    ("wandb", r"wandb is not installed; `pip install wandb`"),
    ("comet_ml", r"`pip install comet-ml`"),
    ("tensorbord", r"unknown tracker 'tensorbord'; choose none, auto or any of .*tensorboard"),
])  # fmt: skip
def test_a_tracker_that_is_unknown_or_missing_is_an_error(monkeypatch, report_to, message):
    monkeypatch.setattr(tracking, "_available", lambda name: False)
    with pytest.raises(ValueError, match=message):
        trackers(report_to)
