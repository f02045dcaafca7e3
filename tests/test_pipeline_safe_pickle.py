"""The restricted unpickler refuses code-running pickles before anything runs, and reads plain AIDA pickles."""

from __future__ import annotations

import os
import pickle

import pytest

from m3el_dataset.pipeline.safe_pickle import UnsafePickleError, restricted_load, restricted_loads
from m3el_dataset.pipeline.sources import extract_mentions


class SystemCall:
    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class OpenWrite:
    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("payload_class", [SystemCall, OpenWrite])
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_malicious_pickle_is_refused_without_running(tmp_path, payload_class, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "aida.pkl"
    path.write_bytes(pickle.dumps([{"text": "x", "mentions": [payload_class(marker)]}], protocol=protocol))
    with pytest.raises(UnsafePickleError, match=r"Refusing to unpickle .*aida\.pkl.*is not allowed"):
        restricted_load(path)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError):
        extract_mentions("sports", path)
    assert not marker.exists()


def test_plain_containers_load():
    data = {"docs": [("a", 1, 2.5, None, True)], "set": {1, 2}, "frozen": frozenset({"x"})}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert restricted_loads(pickle.dumps(data, protocol=protocol)) == data


def test_aida_pickle_source(tmp_path):
    path = tmp_path / "aida.pickle"
    documents = [{"text": "Germany beat Bonn.", "mentions": [{"mention": "Germany",
                                                                "url": "http://en.wikipedia.org/wiki/Germany"},
                                                               ("Bonn", "http://en.wikipedia.org/wiki/Bonn")]}]
    path.write_bytes(pickle.dumps(documents))
    mentions = extract_mentions("sports", path)
    assert [(m.surface, m.gold_title, m.key) for m in mentions] == [
        ("Germany", "Germany", "sports-000000-000"), ("Bonn", "Bonn", "sports-000000-001")]


def test_aida_pickle_of_wrong_shape_is_named(tmp_path):
    path = tmp_path / "aida.pkl"
    path.write_bytes(pickle.dumps([{"tokens": ["a"]}]))
    with pytest.raises(ValueError, match=r"aida\.pkl, document 0: expected a dict with a 'text' string"):
        extract_mentions("sports", path)
