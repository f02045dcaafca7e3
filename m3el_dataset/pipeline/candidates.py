"""Stage 2: Wikidata candidates of every mention, and its gold entity.

Per mention: search the surface form (top ``search_limit``), fetch the hits' details, keep the first ``k + spare``
that have both text and an image (the spares replace candidates whose images fail in the next stage), and find the
gold entity: from the source's Wikipedia link when there is one, else by the configured disambiguator. The gold's
placement among the first ``k`` eligible hits is recorded as found: ``first``, ``elsewhere`` or ``absent``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .config import CandidateSettings
from .disambiguation import Disambiguator
from .sources import SourceMention
from .stage import ItemFailure
from .wikidata import WikidataClient, WikidataEntity

SOURCE_LINK = "source-link"
"""``gold_chosen_by`` of mentions whose gold comes from the source's Wikipedia link."""

MAX_DISAMBIGUATION_CHOICES = 10


def gold_placement(gold_qid: str, candidate_qids: list[str]) -> str:
    """``"first"``, ``"elsewhere"`` or ``"absent"``: where the gold entity sits among the candidates."""
    if candidate_qids and candidate_qids[0] == gold_qid:
        return "first"
    return "elsewhere" if gold_qid in candidate_qids else "absent"


class CandidateGenerator:
    """The per-mention function of the candidates stage.

    Args:
        wikidata (`WikidataClient`): search and details.
        settings (`CandidateSettings`): search depth and candidates kept.
        disambiguator (`Disambiguator`): chooses the gold of mentions without a link.
    """

    def __init__(self, wikidata: WikidataClient, settings: CandidateSettings, disambiguator: Disambiguator) -> None:
        self.wikidata = wikidata
        self.settings = settings
        self.disambiguator = disambiguator

    def __call__(self, mention: SourceMention) -> dict[str, Any]:
        qids = self.wikidata.search(mention.surface, self.settings.search_limit)
        gold_qid = self._linked_gold(mention)
        details = self.wikidata.entities(qids + ([gold_qid] if gold_qid else []))
        eligible = [details[q] for q in qids if q in details and details[q].eligible]
        if gold_qid is None:
            gold_qid, chosen_by = self.disambiguator.choose(mention.surface, mention.context,
                                                            eligible[:MAX_DISAMBIGUATION_CHOICES])
            if gold_qid is None:
                raise ItemFailure(f"no Wikidata item with text and image matches {mention.surface!r}")
        else:
            chosen_by = SOURCE_LINK
        gold = details.get(gold_qid)
        if gold is None or not gold.eligible:
            raise ItemFailure(f"gold entity {gold_qid} of {mention.surface!r} lacks a label, description or image")
        kept = eligible[: self.settings.k + self.settings.spare]
        return {
            "mention": asdict(mention),
            "gold": asdict(gold),
            "gold_chosen_by": chosen_by,
            "gold_placement": gold_placement(gold_qid, [c.qid for c in kept[: self.settings.k]]),
            "search_hits": len(qids),
            "candidates": [asdict(c) for c in kept],
        }

    def _linked_gold(self, mention: SourceMention) -> str | None:
        if not mention.gold_title:
            return None
        qid = self.wikidata.qid_for_title(mention.gold_title)
        if qid is None:
            raise ItemFailure(f"Wikipedia page {mention.gold_title!r} of {mention.surface!r} has no Wikidata item")
        return qid


def entity_from_dict(data: dict[str, Any]) -> WikidataEntity:
    """Inverse of ``asdict`` for a stored `WikidataEntity`."""
    return WikidataEntity(**data)
