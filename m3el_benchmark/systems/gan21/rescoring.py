"""Gan21-OT, training-free: each modality's scores rescored with those of its matched mention in the other modality.

Over any adapter's embeddings (Part A5 of the spec): per document (`documents`), the GW coupling ``T`` of its
textual mentions (the mention texts of a format) and its visual mentions (its distinct mention images)
(`coupling`), then, for a textual mention i and a visual mention j,

    hard (default):  S^t'[i, e] = S^t[i, e] + lambda_t * S^v[j*(i), e],   j*(i) = argmax_j T[i, j]
                     S^v'[j, e] = S^v[j, e] + lambda_v * S^t[i*(j), e],   i*(j) = argmax_i T[i, j]
    soft:            S^t'[i, e] = S^t[i, e] + lambda_t * sum_j (T[i, j] / p_i) S^v[j, e]   (and symmetrically)

S^t scores a mention text against the entity's text (Te), S^v a mention image against the entity's image (Ie, or
Te where the dataset has no entity images). A setting whose mention is a text (Tm-*) is rescored with S^v, one
whose mention is an image (Im-*) with S^t; (I+T) mentions (ITm-*) are already joint and are not scored. The rule is
linear in the scores, so under ``protocol: kb`` each KB chunk adds one more product and the rank counting stays
(`evaluation.scoring.ScoreAdjustment`). A partner score that is missing (a document without images, an entity
without image) adds nothing, so lambda = 0 gives the base adapter's scores exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from m3el_dataset.constants import parse_task

from ...evaluation.data import KnowledgeBase, MentionTable
from ...evaluation.scoring import NO_FORMAT, CandidateScorer, EntityColumns, Setting
from .coupling import CouplingConfig, gw_couplings
from .documents import Documents, document_report, group_documents

logger = logging.getLogger(__name__)

RULES = ("hard", "soft")
WEIGHT_GRID = (0.0, 0.1, 0.25, 0.5, 1.0)
"""The validation grid of lambda_t and lambda_v (spec A5)."""


@dataclass
class JointConfig:
    """Settings of the joint step.

    Args:
        lambda_t (`float`, *optional*, defaults to 0.25): weight of the matched visual scores added to a textual
            mention's.
        lambda_v (`float`, *optional*, defaults to 0.25): weight of the matched textual scores added to a visual
            mention's.
        rule (`str`, *optional*, defaults to ``"hard"``): ``"hard"`` (the matched mention) or ``"soft"`` (every
            mention weighted by the coupling; single-vector embeddings only).
        text_format (`str`, *optional*): mention text format of the textual mentions an image task is rescored
            with; by default the first format scored.
        coupling (`CouplingConfig`): the GW solver's settings.
    """

    lambda_t: float = 0.25
    lambda_v: float = 0.25
    rule: str = "hard"
    text_format: str | None = None
    coupling: CouplingConfig = field(default_factory=CouplingConfig)

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"Gan21 rule {self.rule!r} is unknown; choose one of {', '.join(RULES)}.")


def _modality(name: str) -> tuple[bool, bool]:
    side = parse_task(f"Tm-{name}")
    return side.entity_text, side.entity_image


class DocumentStep:
    """What the Gan21 steps share: which settings they score, what they need encoded, and the documents.

    The evaluation calls `plan` before encoding, `fit` once the embeddings are in a scorer, then `adjust` per batch.
    """

    name = "document step"

    def __init__(self, config: JointConfig | None = None):
        self.config = config or JointConfig()
        self.visual_entity = "Ie"
        self.documents: Documents | None = None
        self.report: dict[str, int] = {}
        self.formats: list[str] = []  # mention text formats whose textual mentions are coupled

    def plan(
        self, mentions: MentionTable, settings: Sequence[Setting], kb: KnowledgeBase | None
    ) -> tuple[list[Setting], list[Setting]]:
        """The settings to score (Tm-* and Im-*) and those whose inputs must be encoded (their partners too)."""
        scored = [s for s in settings if s.task.mention_text != s.task.mention_image]
        left_out = sorted({s.task.name for s in settings} - {s.task.name for s in scored})
        if left_out:
            logger.info("%s scores textual and visual mentions apart; not scored: %s", self.name, ", ".join(left_out))
        if not scored:
            raise ValueError(f"{self.name} scores Tm-* and Im-* tasks only; add one (e.g. --tasks Tm-Te Im-Ie).")
        has_images = kb.has_image if kb is not None else "candidate_images" in mentions.columns
        self.visual_entity = "Ie" if has_images or not mentions.columns else "Te"
        formats = [s.text_format for s in scored if s.task.mention_text]
        if self.config.text_format is None:
            self.config.text_format = formats[0] if formats else mentions.text_formats()[0]
        partners = [Setting(f"Im-{self.visual_entity}", NO_FORMAT), Setting("Tm-Te", self.config.text_format)]
        partners += [Setting("Tm-Te", name) for name in formats]
        self.formats = list(dict.fromkeys([*formats, self.config.text_format]))
        return scored, list(dict.fromkeys([*scored, *partners]))

    def fit(self, scorer) -> None:
        """Group the documents (a `CandidateScorer`, or a `KBScorer` whose mention side is ``scorer.sides``)."""
        mentions = scorer.mentions
        self.documents = group_documents(mentions)
        self.report = document_report(mentions, self.documents)
        logger.info("%s: %s", self.name, self.report)

    def describe(self) -> dict:
        """What the results record about the step."""
        config = asdict(self.config)
        return {"system": self.name, "visual_entity_side": self.visual_entity, **config, **self.report}


def mention_side(scorer) -> CandidateScorer:
    """The `CandidateScorer` that owns the mention vectors of either protocol's scorer."""
    return getattr(scorer, "sides", scorer)


class Gan21JointStep(DocumentStep):
    """The training-free Gan21-OT joint step (see the module docstring)."""

    name = "Gan21-OT"

    def __init__(self, config: JointConfig | None = None):
        super().__init__(config)
        self.partner_images: dict[str, torch.Tensor] = {}  # text format -> (N, v, d): for Tm settings
        self.partner_texts: torch.Tensor | None = None  # (N, v, d): for Im settings
        self.solver_failures = 0
        self.default_weights = {"lambda_t": self.config.lambda_t, "lambda_v": self.config.lambda_v}
        self.selection: dict = {}  # how the weights were chosen (`selection.select_on_validation`)

    def fit(self, scorer) -> None:
        """Compute the coupling of every document and each mention's partner vectors."""
        super().fit(scorer)
        sides, mentions = mention_side(scorer), scorer.mentions
        every = torch.arange(len(mentions))
        images = sides.mention_vectors(Setting("Im-Ie", NO_FORMAT), every)
        self.solver_failures = 0  # of this fit (one dataset)
        for text_format in self.formats:
            texts = sides.mention_vectors(Setting("Tm-Te", text_format), every)
            to_image, to_text = self._partners(mentions, texts, images)
            self.partner_images[text_format] = to_image
            if text_format == self.config.text_format:
                self.partner_texts = to_text
        if self.solver_failures:
            logger.warning("%s: the GW solver failed on %d documents (no finite plan); they used the product "
                           "coupling. Raise epsilon.", self.name, self.solver_failures)  # fmt: skip
        self.report["gw_solver_failures"] = self.solver_failures

    def describe(self) -> dict:
        """The step's settings and documents, how its weights were chosen, and a one-line ``note`` for the tables."""
        selection = self.selection or {"weights_chosen_on": "none: weights as configured"}
        grid = selection.get("weight_grid")
        note = (f"{self.name} weights lambda_t = {self.config.lambda_t}, lambda_v = {self.config.lambda_v} "
                f"({self.config.rule} rule); chosen on: {selection['weights_chosen_on']}"
                + (f", from the grid {{{', '.join(map(str, grid))}}}" if grid else ""))  # fmt: skip
        return {**super().describe(), **selection, "note": note}

    def _partners(
        self, mentions: MentionTable, texts: torch.Tensor, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per mention row: its partner image vector (for its text) and partner text vector (for its image)."""
        to_image, to_text = torch.full_like(images, float("nan")), torch.full_like(texts, float("nan"))
        if self.config.rule == "soft" and texts.shape[1] > 1:
            raise ValueError("Gan21 rule 'soft' needs single-vector embeddings (not BLIP-2's); use rule 'hard'.")
        finite = lambda vectors: ~torch.isnan(vectors).flatten(1).any(dim=1)  # noqa: E731
        has_text, has_image = finite(texts), finite(images)
        documents, single = [], ([], [], [], [])  # single: one text and one image, the coupling is 1
        for rows in self.documents.members():
            text_rows = rows[has_text[rows].numpy()]
            first: dict[str, int] = {}  # a visual mention = a distinct image, represented by its first row
            for row in rows[has_image[rows].numpy()]:
                first.setdefault(mentions.mention_images[row], int(row))
            if len(text_rows) == 1 and len(first) == 1:
                (image_row,) = first.values()
                with_image = [int(row) for row in rows if mentions.mention_images[row] in first]
                single[0].append(int(text_rows[0]))
                single[1].append(image_row)
                single[2].extend(with_image)
                single[3].extend([int(text_rows[0])] * len(with_image))
            elif len(text_rows) and first:
                documents.append((rows, text_rows, first, np.asarray(list(first.values()), dtype=np.int64)))
        to_image[single[0]], to_text[single[2]] = images[single[1]], texts[single[3]]
        pairs = [(texts[text_rows, 0], images[image_rows, 0]) for _, text_rows, _, image_rows in documents]
        for (rows, text_rows, first, image_rows), (plan, solved) in zip(
            documents, gw_couplings(pairs, self.config.coupling), strict=True
        ):
            self.solver_failures += not solved
            column = {key: j for j, key in enumerate(first)}
            of_row = [column.get(mentions.mention_images[row]) for row in rows]
            self._assign(plan, texts[text_rows], images[image_rows], text_rows, rows, of_row, to_image, to_text)
        return to_image, to_text

    def _assign(self, plan, texts, images, text_rows, rows, of_row, to_image, to_text) -> None:
        if self.config.rule == "hard":
            to_image[text_rows] = images[plan.argmax(dim=1)]
            matched = texts[plan.argmax(dim=0)]
        else:
            to_image[text_rows] = torch.einsum("ij,jvd->ivd", (plan / plan.sum(1, keepdim=True)).float(), images)
            matched = torch.einsum("ij,ivd->jvd", (plan / plan.sum(0, keepdim=True)).float(), texts)
        for row, j in zip(rows, of_row, strict=True):
            if j is not None:
                to_text[row] = matched[j]

    def adjust(
        self, setting: Setting, batch: torch.Tensor, scores: torch.Tensor, entities: EntityColumns
    ) -> torch.Tensor:
        """``scores + lambda * partner scores`` (a missing partner score adds 0)."""
        if setting.task.mention_text:
            weight, queries = self.config.lambda_t, self.partner_images[setting.text_format][batch]
            modality = _modality(self.visual_entity)
        else:
            weight, queries, modality = self.config.lambda_v, self.partner_texts[batch], (True, False)
        partner = entities.score(queries, *modality).nan_to_num(nan=0.0)
        return scores + weight * partner
