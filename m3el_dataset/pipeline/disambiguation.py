"""Choosing the gold entity when a source links none (common, books): pluggable, and recorded.

The paper asked an LLM. `OpenAICompatibleDisambiguator` does the same against any OpenAI-compatible endpoint
when one is configured; the default, `DescriptionSimilarityDisambiguator`, needs no service. Each choice comes back
with the name of the method that made it so that records can be audited.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections import Counter
from typing import Protocol

from ..text_formats import entity_text
from .config import DisambiguationSettings
from .http_client import HttpError, PipelineHttpClient
from .wikidata import WikidataEntity

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\w+", re.UNICODE)
_QID = re.compile(r"\bQ\d+\b")


class Disambiguator(Protocol):
    """Picks the entity a mention refers to among ``candidates``; returns ``(qid or None, method name)``."""

    name: str

    def choose(self, surface: str, context: str, candidates: list[WikidataEntity]) -> tuple[str | None, str]: ...


def _bag(text: str) -> Counter[str]:
    return Counter(word.lower() for word in _WORD.findall(text))


def _cosine(a: Counter[str], b: Counter[str]) -> float:
    dot = sum(count * b[word] for word, count in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


class DescriptionSimilarityDisambiguator:
    """Bag-of-words cosine between the mention (surface and context) and each ``label: description``; ties go to
    the earlier search hit, so Wikidata's own ranking breaks them."""

    name = "description-similarity"

    def choose(self, surface: str, context: str, candidates: list[WikidataEntity]) -> tuple[str | None, str]:
        if not candidates:
            return None, self.name
        mention = _bag(f"{surface} {context}")
        scores = [_cosine(mention, _bag(entity_text(c.label, c.description)))
                  for c in candidates]
        best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
        return candidates[best].qid, self.name


class OpenAICompatibleDisambiguator:
    """Asks a chat-completions endpoint to answer with one QID; falls back to ``fallback`` on any failure.

    Args:
        http (`PipelineHttpClient`): the pipeline's client (rate limits and retries apply to the LLM too).
        settings (`DisambiguationSettings`): endpoint, model and the environment variable of the API key.
        fallback (`Disambiguator`): used when the endpoint fails or answers no listed QID.
    """

    def __init__(self, http: PipelineHttpClient, settings: DisambiguationSettings, fallback: Disambiguator) -> None:
        self.http = http
        self.settings = settings
        self.fallback = fallback
        self.name = f"llm:{settings.llm_model}"

    def _prompt(self, surface: str, context: str, candidates: list[WikidataEntity]) -> str:
        options = "\n".join(f"{c.qid}: {c.label} - {c.description}" for c in candidates)
        return (f"Text: {context[:4000]}\n\nWhich entity does the mention \"{surface}\" in the text refer to?\n"
                f"{options}\n\nAnswer with the QID only.")

    def choose(self, surface: str, context: str, candidates: list[WikidataEntity]) -> tuple[str | None, str]:
        if not candidates:
            return None, self.name
        key = os.environ.get(self.settings.llm_api_key_env, "")
        payload = {"model": self.settings.llm_model, "temperature": 0,
                   "messages": [{"role": "user", "content": self._prompt(surface, context, candidates)}]}
        url = self.settings.llm_endpoint.rstrip("/") + "/chat/completions"
        try:
            answer = self.http.post_json(url, payload, headers={"Authorization": f"Bearer {key}"} if key else {})
            content = answer.json()["choices"][0]["message"]["content"]
        except (HttpError, KeyError, IndexError, TypeError) as err:
            logger.warning("LLM disambiguation of %r failed (%s); using %s.", surface, err, self.fallback.name)
            return self.fallback.choose(surface, context, candidates)
        listed = {c.qid for c in candidates}
        chosen = next((q for q in _QID.findall(content or "") if q in listed), None)
        if chosen is None:
            logger.warning("LLM answer %r for %r names no listed QID; using %s.", content, surface,
                           self.fallback.name)
            return self.fallback.choose(surface, context, candidates)
        return chosen, self.name


def build_disambiguator(settings: DisambiguationSettings, http: PipelineHttpClient) -> Disambiguator:
    """The LLM disambiguator when ``settings.llm_endpoint`` is set, else description similarity."""
    default = DescriptionSimilarityDisambiguator()
    if settings.llm_endpoint:
        return OpenAICompatibleDisambiguator(http, settings, default)
    return default
