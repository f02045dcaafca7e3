"""Training Gan21's heads jointly on documents: Eq. 11, ``L = L_rank^t + L_triplet^v + w * GW(mu_t, nu_v)``.

One step is one document: its textual mentions are scored over their candidates by the `TextScorerHead`, its
visual mentions over theirs by the `VisualEncoder`, and the GW distance between the two mention graphs (projected
text mentions, encoded images) is the third term, differentiable through POT's torch backend (`coupling.gw_value`).
The paper weighs the three equally; ``gw_weight`` (spec: 0.1 if the graphs collapse) is logged with the terms.
The loop is accelerate's (`Accelerator.prepare`, ``backward``) and saves its state with `Accelerator.save_state`;
the benchmark's CLIP-ND trainer (`m3el_benchmark.training`) is not reused, since its batches are mention pairs,
not documents. `document_data.load_gan21_documents` reads the documents of a converted dataset folder.

    documents = [Gan21Document(...), ...]  # or load_gan21_documents("data/m3el", adapter)
    history = train_gan21(Gan21Model(Gan21HeadsConfig()), documents, Gan21TrainingArguments(output_dir="out"))
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn

from .coupling import CouplingConfig, gw_value
from .heads import Gan21HeadsConfig, TextScorerHead, VisualEncoder, margin_ranking_loss, triplet_loss

logger = logging.getLogger(__name__)


@dataclass
class Gan21Document:
    """One document's training inputs: frozen text features of its n textual mentions ``(n, f)`` and of their
    candidates ``(n, c, f)`` with gold indices ``(n,)``; its m images ``(m, 3, H, W)``, their candidates' images
    ``(m, k, 3, H, W)`` and gold indices ``(m,)`` (-1: no gold). ``text_mask (n, c)`` and ``image_mask (m, k)``
    mark the real candidates where rows are padded (`None`: all are); a padded candidate scores -inf."""

    mention_features: torch.Tensor
    candidate_features: torch.Tensor
    text_gold: torch.Tensor
    images: torch.Tensor
    candidate_images: torch.Tensor
    image_gold: torch.Tensor
    text_mask: torch.Tensor | None = None
    image_mask: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Gan21Document:
        """The document with every tensor on ``device``."""
        moved = {name: None if value is None else value.to(device) for name, value in vars(self).items()}
        return Gan21Document(**moved)


def _masked(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return scores if mask is None else scores.masked_fill(~mask, float("-inf"))


@dataclass
class Gan21Output:
    """The joint loss and its three terms (``loss`` first, as transformers' outputs)."""

    loss: torch.Tensor
    ranking_loss: torch.Tensor
    triplet_loss: torch.Tensor
    gw_loss: torch.Tensor


@dataclass
class Gan21TrainingArguments:
    """How `train_gan21` trains.

    Args:
        output_dir (`str`): where the final accelerate state is saved (``checkpoint-<steps>``).
        epochs (`int`, *optional*, defaults to 30): passes over the documents (paper §5.2).
        learning_rate (`float`, *optional*, defaults to 1e-4): Adam (spec proposal).
        ranking_margin (`float`, *optional*, defaults to 0.01), triplet_margin (`float`, *optional*, defaults to
            0.2): the two hinge margins.
        gw_weight (`float`, *optional*, defaults to 1.0): weight of the GW term (Eq. 11 as written).
        coupling (`CouplingConfig`): the GW solver's settings.
        seed (`int`, *optional*, defaults to 42).
    """

    output_dir: str
    epochs: int = 30
    learning_rate: float = 1e-4
    ranking_margin: float = 0.01
    triplet_margin: float = 0.2
    gw_weight: float = 1.0
    coupling: CouplingConfig = field(default_factory=CouplingConfig)
    seed: int = 42


class Gan21Model(nn.Module):
    """The textual scorer and the visual encoder, with the joint loss of one document."""

    def __init__(self, config: Gan21HeadsConfig):
        super().__init__()
        self.config = config
        self.text = TextScorerHead(config)
        self.visual = VisualEncoder(config)

    def forward(self, document: Gan21Document, args: Gan21TrainingArguments) -> Gan21Output:
        text_scores = _masked(self.text(document.mention_features, document.candidate_features), document.text_mask)
        ranking = margin_ranking_loss(text_scores, document.text_gold, args.ranking_margin)
        m, k = document.candidate_images.shape[:2]
        visual = self.visual(torch.cat([document.images, document.candidate_images.flatten(0, 1)]))
        mentions, candidates = visual[:m], visual[m:].view(m, k, -1)
        image_scores = _masked(torch.einsum("md,mkd->mk", mentions, candidates), document.image_mask)
        triplet = triplet_loss(image_scores, document.image_gold, args.triplet_margin)
        texts = self.text.embed_mentions(document.mention_features)
        gw = gw_value(texts.double(), mentions.double(), args.coupling).float()
        return Gan21Output(ranking + triplet + args.gw_weight * gw, ranking, triplet, gw)


def train_gan21(
    model: Gan21Model, documents: Sequence[Gan21Document], args: Gan21TrainingArguments
) -> list[dict[str, float]]:
    """Train ``model`` on ``documents`` for ``args.epochs``; return each epoch's mean of the three terms and the
    total, and save the accelerate state to ``<output_dir>/checkpoint-<steps>``."""
    if not documents:
        raise ValueError("train_gan21 got no document; give it at least one Gan21Document.")
    torch.manual_seed(args.seed)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    model, optimizer = accelerator.prepare(model, optimizer)
    history, steps = [], 0
    for epoch in range(args.epochs):
        model.train()
        sums = {"loss": 0.0, "ranking_loss": 0.0, "triplet_loss": 0.0, "gw_loss": 0.0}
        for document in documents:
            output = model(document.to(accelerator.device), args)
            accelerator.backward(output.loss)
            optimizer.step()
            optimizer.zero_grad()
            steps += 1
            for name in sums:
                sums[name] += float(getattr(output, name).detach())
        history.append({name: value / len(documents) for name, value in sums.items()})
        logger.info("Gan21 epoch %d: %s", epoch + 1, history[-1])
    accelerator.save_state(str(Path(args.output_dir) / f"checkpoint-{steps}"))
    return history
