"""DWE+ training data: the mentions of a split as feature tensors, their gold entity and hard-negative pools.

Each mention whose gold entity is among its candidates and whose image decodes becomes one example; the others are
counted and named in a warning (never dropped silently). Entities are the split's unique candidate texts (the host
entity text ``"{name}: {description}"``, as the benchmark encodes them). Negatives are drawn per step:

* ``candidates`` (default on M3EL): one of the mention's own non-gold candidates (the paper's "retrieved
  candidates except gold"); a mention without any falls back to a uniform entity, counted;
* ``tfidf``: GHMFC's sampler as DWE's code uses it: a word of the gold entity text with probability ∝
  ⌊100·tf-idf⌋, then an entity containing it ∝ its count there; with probability 0.05 (or no word) a uniform
  entity (``../shared/seed-systems.md`` B2.5; scikit-learn's TfidfVectorizer instead of gensim).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from ...evaluation.data import MentionTable
from .features import MentionFeatures

logger = logging.getLogger(__name__)

NEGATIVE_SAMPLERS = ("candidates", "tfidf")
UNIFORM_PROBABILITY = 0.05


@dataclass
class TrainingExamples:
    """Mention features, the entity features (and texts), each mention's gold entity row and candidate rows."""

    features: MentionFeatures
    entities: torch.Tensor
    gold: torch.Tensor
    candidates: list[list[int]]
    entity_texts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.gold)


def usable_rows(mentions: MentionTable, split: str) -> list[int]:
    """Rows with a gold among the candidates, a name and an image; a warning counts the others by reason."""
    no_gold = [row for row in range(len(mentions)) if mentions.gold[row] < 0]
    no_image = [row for row in range(len(mentions)) if mentions.mention_images[row] is None]
    no_name = [row for row in range(len(mentions)) if not mentions.mention_parts[row].get("M")]
    left_out = set(no_gold) | set(no_image) | set(no_name)
    if left_out:
        logger.warning(
            "DWE+ %s split: %d of %d mentions left out (%d without gold among their candidates, %d without image, "
            "%d without name); first: %s.", split, len(left_out), len(mentions), len(no_gold), len(no_image),
            len(no_name), mentions.ids[min(left_out)],
        )  # fmt: skip
    return [row for row in range(len(mentions)) if row not in left_out]


class NegativeSampler:
    """Draws hard negatives (entity rows) for a batch of examples; deterministic given a `torch.Generator`."""

    def __init__(self, kind: str, examples: TrainingExamples, entity_texts: list[str]):
        if kind not in NEGATIVE_SAMPLERS:
            raise ValueError(f"Unknown negative sampler {kind!r}; choose one of {', '.join(NEGATIVE_SAMPLERS)}.")
        self.kind, self.examples, self.num_entities = kind, examples, len(entity_texts)
        pairs = zip(examples.candidates, examples.gold.tolist(), strict=True)
        self.others = [[c for c in row if c != gold] for row, gold in pairs]
        if kind == "candidates":
            lacking = sum(not others for others in self.others)
            if lacking:
                logger.warning("DWE+: %d of %d training mentions have no non-gold candidate; their negatives are "
                               "uniform entities.", lacking, len(self.others))  # fmt: skip
        else:
            self._fit_tfidf(entity_texts)

    def _fit_tfidf(self, texts: list[str]) -> None:
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        counts = CountVectorizer().fit_transform(texts).tocsc()
        self.tfidf = TfidfTransformer().fit_transform(counts).tocsr()
        self.counts = counts  # word column -> entities containing it, with their counts

    def _tfidf_negative(self, gold: int, generator: torch.Generator) -> int:
        row = self.tfidf[gold]
        weights = np.floor(100 * row.data)
        if torch.rand(1, generator=generator).item() < UNIFORM_PROBABILITY or weights.sum() <= 0:
            return int(torch.randint(self.num_entities, (1,), generator=generator))
        word = row.indices[int(torch.multinomial(torch.from_numpy(weights), 1, generator=generator))]
        column = self.counts[:, word]
        entity = column.indices[int(torch.multinomial(torch.from_numpy(column.data.astype(np.float64)), 1,
                                                      generator=generator))]  # fmt: skip
        return int(entity)

    def sample(self, rows: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
        """``(len(rows), count)`` negative entity rows for the examples ``rows``."""
        drawn = []
        for row in rows.tolist():
            others = self.others[row] if self.kind == "candidates" else None
            for _ in range(count):
                if others:
                    drawn.append(others[int(torch.randint(len(others), (1,), generator=generator))])
                elif self.kind == "tfidf":
                    drawn.append(self._tfidf_negative(int(self.examples.gold[row]), generator))
                else:
                    drawn.append(int(torch.randint(self.num_entities, (1,), generator=generator)))
        return torch.tensor(drawn, dtype=torch.long).view(len(rows), count)
