"""Gold choice for unlinked topics: description similarity by default, an OpenAI-compatible LLM when configured."""

from __future__ import annotations

import pytest
from pipeline_server import FakeWikimedia, Fault

from m3el_dataset.pipeline.config import DisambiguationSettings, HttpSettings
from m3el_dataset.pipeline.disambiguation import (
    DescriptionSimilarityDisambiguator,
    OpenAICompatibleDisambiguator,
    build_disambiguator,
)
from m3el_dataset.pipeline.http_client import PipelineHttpClient
from m3el_dataset.pipeline.wikidata import WikidataEntity

CANDIDATES = [WikidataEntity("Q3041974", "Dune", "2021 film directed by Denis Villeneuve", ["a.jpg"]),
              WikidataEntity("Q190192", "Dune", "1965 novel by Frank Herbert", ["b.jpg"])]
CONTEXT = "Dune is a book by Frank Herbert, published by Chilton Books in 1965."


def test_description_similarity_picks_best_description_and_breaks_ties_by_rank():
    default = DescriptionSimilarityDisambiguator()
    assert default.choose("Dune", CONTEXT, CANDIDATES) == ("Q190192", "description-similarity")
    twins = [WikidataEntity("Q2", "Dune", "desert planet"), WikidataEntity("Q1", "Dune", "desert planet")]
    assert default.choose("Dune", CONTEXT, twins)[0] == "Q2"  # equal scores: the earlier search hit
    assert default.choose("Dune", CONTEXT, []) == (None, "description-similarity")


@pytest.fixture
def llm(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", "secret")
    with FakeWikimedia() as fake:
        http = PipelineHttpClient(HttpSettings(min_interval_s=0.0, max_retries=1, backoff_base_s=0.01,
                                               cache_dir=tmp_path / "cache"))
        settings = DisambiguationSettings(llm_endpoint=fake.base + "/v1", llm_model="tiny-llm",
                                          llm_api_key_env="TEST_LLM_KEY")
        yield fake, build_disambiguator(settings, http)


def test_llm_choice_is_recorded_as_llm(llm):
    fake, disambiguator = llm
    assert isinstance(disambiguator, OpenAICompatibleDisambiguator)
    fake.chat_answer = "The mention refers to Q3041974."
    assert disambiguator.choose("Dune", CONTEXT, CANDIDATES) == ("Q3041974", "llm:tiny-llm")
    assert fake.count("/v1/chat/completions") == 1


@pytest.mark.parametrize("answer", ["I am not sure.", "Q42"])
def test_llm_answer_without_listed_qid_falls_back(llm, answer):
    fake, disambiguator = llm
    fake.chat_answer = answer
    assert disambiguator.choose("Dune", CONTEXT, CANDIDATES) == ("Q190192", "description-similarity")


def test_llm_failure_falls_back(llm):
    fake, disambiguator = llm
    fake.add_fault("chat/completions", Fault(500), Fault(500))
    assert disambiguator.choose("Dune", CONTEXT, CANDIDATES) == ("Q190192", "description-similarity")


def test_default_without_endpoint(tmp_path):
    http = PipelineHttpClient(HttpSettings(cache_dir=tmp_path))
    assert isinstance(build_disambiguator(DisambiguationSettings(), http), DescriptionSimilarityDisambiguator)
