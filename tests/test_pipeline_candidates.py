"""Wikidata access and candidate selection."""

from __future__ import annotations

import json

import pytest
from pipeline_server import Entity, FakeWikimedia, Fault

from m3el_dataset.pipeline.candidates import gold_placement
from m3el_dataset.pipeline.config import EndpointSettings, HttpSettings
from m3el_dataset.pipeline.http_client import PipelineHttpClient
from m3el_dataset.pipeline.stage import ItemFailure
from m3el_dataset.pipeline.wikidata import WikidataClient, _image_files


@pytest.fixture
def wikidata(tmp_path):
    with FakeWikimedia() as fake:
        http = PipelineHttpClient(HttpSettings(min_interval_s=0.0, cache_dir=tmp_path / "cache"))
        yield fake, WikidataClient(http, EndpointSettings(wikidata_api=fake.api))


def test_search_pages_through_top_100(wikidata):
    fake, client = wikidata
    qids = [f"Q{i}" for i in range(1, 131)]
    fake.entities.update({q: Entity(f"Paris {q}") for q in qids})
    fake.search_index["Paris"] = qids
    assert client.search("Paris", 100) == qids[:100]
    assert fake.count("search=Paris") == 2  # two pages of 50
    assert client.search("Nowhere", 100) == []


def test_entities_in_batches_and_missing_left_out(wikidata):
    fake, client = wikidata
    fake.entities.update({f"Q{i}": Entity(f"E{i}", "thing", [f"{i}.jpg"]) for i in range(1, 61)})
    found = client.entities([f"Q{i}" for i in range(1, 62)])
    assert len(found) == 60 and "Q61" not in found
    assert found["Q7"].label == "E7" and found["Q7"].images == ["7.jpg"] and found["Q7"].eligible
    assert fake.count("action=wbgetentities") == 2


def test_title_lookup_and_api_errors(wikidata):
    fake, client = wikidata
    fake.sitelinks["Bonn"] = "Q586"
    assert client.qid_for_title("Bonn") == "Q586" and client.qid_for_title("Nowhere") is None
    with pytest.raises(ItemFailure, match="Wikidata nonsense failed: API error badvalue"):
        client._call({"action": "nonsense"})
    assert len(list(client.http.settings.cache_dir.rglob("*.json"))) == 2  # the two title answers, not the error


def test_maxlag_answer_is_retried_and_not_cached(wikidata):
    fake, client = wikidata
    fake.entities["Q1"] = Entity("Paris")
    fake.search_index["Paris"] = ["Q1"]
    lag = json.dumps({"error": {"code": "maxlag", "info": "Waiting for a database server: 6 seconds lagged."}})
    fake.add_fault("search=Paris", Fault(200, {"Retry-After": "0"}, body=lag.encode(),
                                         content_type="application/json"))
    assert client.search("Paris", 10) == ["Q1"]
    assert fake.count("search=Paris") == 2 and fake.count("maxlag=5") == 2
    assert client.search("Paris", 10) == ["Q1"] and fake.count("search=Paris") == 2  # the good answer is cached


def test_image_property_ranks():
    def statement(value, rank):
        return {"mainsnak": {"snaktype": "value", "datavalue": {"value": value}}, "rank": rank}

    claims = {"P18": [statement("normal.jpg", "normal"), statement("old.jpg", "deprecated"),
                      statement("best.jpg", "preferred"), {"mainsnak": {"snaktype": "novalue"}, "rank": "normal"}]}
    assert _image_files(claims) == ["best.jpg", "normal.jpg"]


@pytest.mark.parametrize(("qids", "placement"), [(["Q1", "Q2"], "first"), (["Q2", "Q1"], "elsewhere"),
                                                 (["Q2"], "absent"), ([], "absent")])
def test_gold_placement(qids, placement):
    assert gold_placement("Q1", qids) == placement
