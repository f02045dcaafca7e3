"""DWE+ configuration: the head's shape, its options (each with its paper/code provenance) and the frozen encoders.

The defaults are the *minimal faithful version* of ``../shared/seed-systems.md`` (Part B): the head of the DWET
commit ``0af9140`` that produced the published 72.96 T@1 on Wiki-S (concat fusion, N-pair ranking loss with a 0.02
L2 term, the coarse CLIP loss, no fine loss, no key-padding mask).
"""

from __future__ import annotations

from transformers import PretrainedConfig

FUSIONS = ("concat", "sum")
CONTRASTIVE_LOSSES = ("clip", "msc")
NOT_AVAILABLE = {
    "gated": "the paper's gated fusion (Eq. 9, g = ((1 − ε) g_m + ε (m_f + m_s)) W_g) mixes in face-attribute (m_f) "
    "and identity (m_s) features that have no Hub equivalent (DeepFace needs TensorFlow and GitHub-hosted weights, "
    "and a CLIP zero-shot stand-in is only a proposal, not built here; the identity classifier was never released "
    "and MS-Celeb-1M was withdrawn); without them the gate only scales Eq. 8, and no DWET commit has it (the "
    "published 72.96 came from concat); use concat or sum",
}
"""Options of the paper that the head does not offer, and why (``../shared/seed-systems.md`` B2.1-B2.3, Part C)."""


class DWEPlusConfig(PretrainedConfig):
    r"""Configuration of a `DWEPlusHead` and of the frozen encoders its features come from.

    Args:
        clip_model (`str`, *optional*, defaults to `"openai/clip-vit-base-patch32"`):
            The frozen CLIP (Hub id or folder) whose text and image features the head reads; DWE used OpenAI's
            ViT-B/32 [code: ``prepare_wikipedia.py``].
        clip_revision (`str`, *optional*): the CLIP commit (or local content hash) the head was trained on.
        detector (`str`, *optional*, defaults to `"google/owlvit-base-patch32"`):
            The person detector whose box crops are the objects ``d_i``; DWE used PixelLib's PointRend masks, which
            have no Hub equivalent [spec B2.1, proposal: DETR or OWL-ViT].
        detector_threshold (`float`, *optional*, defaults to 0.5): minimal detection score of a person [proposal].
        max_crops (`int`, *optional*, defaults to 8): persons kept per image, best first (DWE kept all) [ours].
        feature_dim (`int`, *optional*, defaults to 512): width of the CLIP features (512 for ViT-B/32).
        hidden_size (`int`, *optional*, defaults to 512): width of φ_T/φ_V [paper and code: 512].
        num_attention_heads (`int`, *optional*, defaults to 8): heads of the mention-to-crops attention [code: 8].
        dropout (`float`, *optional*, defaults to 0.4): dropout of φ_T, φ_V and before the output map [code: 0.4].
        fusion (`str`, *optional*, defaults to `"concat"`):
            ``"concat"``: g = W_o[t', v', m', m_d] [code ``0af9140``, the published full model]; ``"sum"``:
            g = W(m' + m_d + m_t) with m_t = MHA(m', t') through the same attention [paper Eq. 8, AAAI code].
            The paper's gated fusion (Eq. 9) and its face-attribute (m_f) and identity (m_s) units are not offered:
            they need features with no Hub equivalent, and no DWET commit feeds m_f or a gate into g (see
            `NOT_AVAILABLE`).
        key_padding_mask (`bool`, *optional*, defaults to `False`):
            Mask padded crop slots in the attention. DWE's code pads with zero vectors and attends to them
            (φ_V(0) ≠ 0) [code]; `True` is our correction.
        ranking_l2_weight (`float`, *optional*, defaults to 0.02): L2 term of the N-pair loss [code].
        coarse_loss_weight (`float`, *optional*, defaults to 1.0): weight of the coarse contrastive loss (v', t')
            [code ``0af9140``: 1; paper α = 1].
        fine_loss_weight (`float`, *optional*, defaults to 0.0): weight of the fine contrastive loss (m', m_d)
            [code ``1957100`` and HEAD: 1; ``0af9140``: absent].
        ranking_loss_weight (`float`, *optional*, defaults to 1.0): weight of the N-pair loss [code ``0af9140``:
            1; AAAI code and paper β: 10].
        contrastive_loss (`str`, *optional*, defaults to `"clip"`): ``"clip"``: symmetric InfoNCE with a learnable
            scale [code]; ``"msc"``: mean-shifted contrastive loss (Reiss & Hoshen 2021) [paper §4.5].
        msc_temperature (`float`, *optional*, defaults to 0.25): τ of the MSC loss [paper: unspecified; ours].
        logit_scale_init (`float`, *optional*, defaults to ln(1/0.07)): initial log scale [code].
    """

    model_type = "dwe_plus"

    def __init__(
        self,
        clip_model: str = "openai/clip-vit-base-patch32",
        clip_revision: str | None = None,
        detector: str = "google/owlvit-base-patch32",
        detector_threshold: float = 0.5,
        max_crops: int = 8,
        feature_dim: int = 512,
        hidden_size: int = 512,
        num_attention_heads: int = 8,
        dropout: float = 0.4,
        fusion: str = "concat",
        key_padding_mask: bool = False,
        ranking_l2_weight: float = 0.02,
        coarse_loss_weight: float = 1.0,
        fine_loss_weight: float = 0.0,
        ranking_loss_weight: float = 1.0,
        contrastive_loss: str = "clip",
        msc_temperature: float = 0.25,
        logit_scale_init: float = 2.6592,
        **kwargs,
    ):
        if fusion in NOT_AVAILABLE:
            raise ValueError(f"DWE+ fusion {fusion!r} is not available: {NOT_AVAILABLE[fusion]}.")
        if fusion not in FUSIONS:
            raise ValueError(f"DWE+ fusion {fusion!r} is unknown; choose one of {', '.join(FUSIONS)}.")
        if contrastive_loss not in CONTRASTIVE_LOSSES:
            raise ValueError(
                f"DWE+ contrastive_loss {contrastive_loss!r} is unknown; choose one of "
                f"{', '.join(CONTRASTIVE_LOSSES)}."
            )
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"DWE+ hidden_size {hidden_size} must be a multiple of num_attention_heads {num_attention_heads}."
            )
        if max_crops < 1:
            raise ValueError(f"DWE+ max_crops must be at least 1 (the no-person zero crop), got {max_crops}.")
        self.clip_model, self.clip_revision = clip_model, clip_revision
        self.detector, self.detector_threshold, self.max_crops = detector, detector_threshold, max_crops
        self.feature_dim, self.hidden_size, self.num_attention_heads = feature_dim, hidden_size, num_attention_heads
        self.dropout, self.fusion, self.key_padding_mask = dropout, fusion, key_padding_mask
        self.ranking_l2_weight, self.ranking_loss_weight = ranking_l2_weight, ranking_loss_weight
        self.coarse_loss_weight, self.fine_loss_weight = coarse_loss_weight, fine_loss_weight
        self.contrastive_loss, self.msc_temperature = contrastive_loss, msc_temperature
        self.logit_scale_init = logit_scale_init
        super().__init__(**kwargs)
