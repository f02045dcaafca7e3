"""Per-topic figures: each topic's record is exactly the ``all`` record of that topic's mentions alone (metrics,
n, intervals, exclusions, missing counts), for every setting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from m3el_benchmark.evaluation.figures import ALL_TOPICS, FigureSettings, figure_records
from m3el_benchmark.evaluation.scoring import Setting
from m3el_benchmark.m3el_accuracy.ranking_metrics import NO_GOLD

SETTINGS = [Setting(task, text_format) for task in ("Tm-Te", "ITm-ITe") for text_format in ("S-M", "M-S1", "M-M")]


def random_figures(seed: int, n: int = 400) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    ranks = rng.integers(1, 25, (n, len(SETTINGS)))
    ranks[rng.random(n) < 0.15] = NO_GOLD  # gold absent in every setting alike, as the data decides
    missing = rng.integers(0, 3, (n, len(SETTINGS)))
    flags = (rng.random((n, len(SETTINGS))) < 0.1).astype(np.int64)
    topics = rng.choice(["sport", "politics", "film", "a lone topic"], n, p=[0.4, 0.3, 0.299, 0.001]).tolist()
    return np.stack([ranks, missing, flags], axis=2), topics


def comparable(record: dict) -> dict:
    """The record without its topic, NaN made comparable."""

    def clean(value):
        if isinstance(value, float) and math.isnan(value):
            return "nan"
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    return {key: clean(value) for key, value in record.items() if key != "topic"}


@pytest.mark.parametrize("policy", ["wrong", "exclude"])
@pytest.mark.parametrize("seed", [0, 1])
def test_each_topic_record_is_the_all_record_of_its_mentions(policy, seed):
    figures, topics = random_figures(seed)
    settings = FigureSettings(policy, seed=3, n_resamples=50)
    records = figure_records({"model": "m"}, SETTINGS, figures, topics, settings)
    assert len(records) == len(SETTINGS) * (1 + len(set(topics)))
    for topic in sorted(set(topics)):
        members = [i for i, t in enumerate(topics) if t == topic]
        alone = figure_records({"model": "m"}, SETTINGS, figures[members], [topic] * len(members), settings)
        alone = [record for record in alone if record["topic"] == ALL_TOPICS]
        mine = [record for record in records if record["topic"] == topic]
        assert [comparable(r) for r in mine] == [comparable(r) for r in alone], topic
