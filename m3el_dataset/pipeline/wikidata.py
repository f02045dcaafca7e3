"""Wikidata access: entity search (`wbsearchentities`), entity details (`wbgetentities`), Wikipedia title lookup."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import EndpointSettings
from .http_client import HttpError, HttpResponse, PipelineHttpClient, parse_retry_after
from .stage import ItemFailure

SEARCH_PAGE = 50  # wbsearchentities answers at most 50 hits per request
ENTITIES_BATCH = 50  # wbgetentities accepts at most 50 ids per request
IMAGE_PROPERTY = "P18"
RETRYABLE_API_ERRORS = frozenset({"maxlag", "ratelimited"})
"""API error codes that mean "try again later" (the servers are lagging or the client is too fast)."""


@dataclass
class WikidataEntity:
    """What the pipeline keeps of a Wikidata item: id, label, description and its image file names (P18)."""

    qid: str
    label: str = ""
    description: str = ""
    images: list[str] = field(default_factory=list)

    @property
    def eligible(self) -> bool:
        """Whether the entity has both text (label and description) and an image, as the paper requires."""
        return bool(self.label and self.description and self.images)


def _image_files(claims: dict[str, Any]) -> list[str]:
    """P18 file names, preferred rank first, deprecated ones dropped."""
    order = {"preferred": 0, "normal": 1}
    statements = [s for s in claims.get(IMAGE_PROPERTY, []) if s.get("rank", "normal") in order]
    statements.sort(key=lambda s: order[s.get("rank", "normal")])
    files = []
    for statement in statements:
        snak = statement.get("mainsnak", {})
        value = snak.get("datavalue", {}).get("value")
        if snak.get("snaktype") == "value" and isinstance(value, str) and value:
            files.append(value)
    return files


def _check_answer(response: HttpResponse) -> None:
    """Raise `HttpError` for an API error object; ``maxlag`` and ``ratelimited`` ones are retryable."""
    answer = response.json()
    if isinstance(answer, dict) and "error" not in answer:
        return
    error = answer.get("error", {}) if isinstance(answer, dict) else {}
    code = error.get("code", "unknown")
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    raise HttpError(response.url, f"API error {code}: {error.get('info', answer)}",
                    retryable=code in RETRYABLE_API_ERRORS,
                    retry_after=retry_after if retry_after is not None else (5.0 if code == "maxlag" else None))


class WikidataClient:
    """Thin typed wrapper over the Wikidata action API, through the pipeline's HTTP client (cached)."""

    def __init__(self, http: PipelineHttpClient, endpoints: EndpointSettings) -> None:
        self.http = http
        self.endpoints = endpoints

    def _call(self, params: dict[str, Any]) -> dict[str, Any]:
        params = {**params, "format": "json"}
        if self.endpoints.maxlag is not None:
            params["maxlag"] = self.endpoints.maxlag
        try:
            response = self.http.get(self.endpoints.wikidata_api, params=params, cache=True, validate=_check_answer)
        except HttpError as err:
            raise ItemFailure(f"Wikidata {params.get('action')} failed: {err}") from err
        return response.json()

    def search(self, text: str, limit: int) -> list[str]:
        """QIDs of the first ``limit`` items whose label or alias matches ``text``, in Wikidata's order."""
        qids: list[str] = []
        offset: int | None = 0
        while offset is not None and len(qids) < limit:
            params = {"action": "wbsearchentities", "search": text, "language": self.endpoints.language,
                      "uselang": self.endpoints.language, "type": "item",
                      "limit": min(SEARCH_PAGE, limit - len(qids)), "continue": offset}
            answer = self._call(params)
            hits = [hit["id"] for hit in answer.get("search", []) if isinstance(hit, dict) and "id" in hit]
            qids.extend(q for q in hits if q not in qids)
            next_offset = answer.get("search-continue")
            offset = next_offset if isinstance(next_offset, int) and hits else None
        return qids[:limit]

    def entities(self, qids: list[str]) -> dict[str, WikidataEntity]:
        """Details of ``qids`` (missing items are left out)."""
        language = self.endpoints.language
        found: dict[str, WikidataEntity] = {}
        unique = list(dict.fromkeys(qids))
        for start in range(0, len(unique), ENTITIES_BATCH):
            batch = unique[start:start + ENTITIES_BATCH]
            answer = self._call({"action": "wbgetentities", "ids": "|".join(batch),
                                 "props": "labels|descriptions|claims", "languages": language})
            for qid, data in answer.get("entities", {}).items():
                if "missing" in data:
                    continue
                found[qid] = WikidataEntity(
                    qid=qid,
                    label=data.get("labels", {}).get(language, {}).get("value", ""),
                    description=data.get("descriptions", {}).get(language, {}).get("value", ""),
                    images=_image_files(data.get("claims", {})),
                )
        return found

    def qid_for_title(self, title: str) -> str | None:
        """QID of the Wikipedia page ``title`` on the configured site (redirects followed), or `None`."""
        answer = self._call({"action": "wbgetentities", "sites": self.endpoints.wikipedia_site, "titles": title,
                             "props": "info", "redirects": "yes", "normalize": "1"})
        for qid, data in answer.get("entities", {}).items():
            if "missing" not in data and qid.startswith("Q"):
                return qid
        return None
