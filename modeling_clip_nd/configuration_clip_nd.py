# Copyright 2025 The M3EL authors. Licensed under the Apache License, Version 2.0.
"""CLIP-ND model configuration.

This file travels to the Hub with the model: it imports only transformers and the Python standard library.
"""

import math

from transformers import CLIPConfig
from transformers.utils import logging

logger = logging.get_logger(__name__)

_RECIPE_FIELDS_OF_OLD_CONFIGS = (
    "learning_rate",
    "adam_betas",
    "adam_epsilon",
    "weight_decay",
    "train_batch_size",
    "num_train_epochs",
)
"""Fields that configs saved before `training_arguments` carried; loading such a config ignores them."""

MISSING_IMAGE_FALLBACKS = ("text", "nan")
"""What an (I+T) embedding becomes when its image is missing: the text embedding alone, or a NaN row."""


class CLIPNDConfig(CLIPConfig):
    r"""
    Configuration of a [`CLIPNDModel`]. CLIP-ND has exactly the architecture of CLIP (by default ViT-B/32): the
    text and vision towers are configured as in [`CLIPConfig`]. What CLIP-ND adds is how a mention or an entity
    seen through both modalities becomes one embedding, and a record of how the model was trained.

    Args:
        text_config (`dict`, *optional*):
            Dictionary of configuration options used to initialize [`CLIPTextConfig`].
        vision_config (`dict`, *optional*):
            Dictionary of configuration options used to initialize [`CLIPVisionConfig`].
        projection_dim (`int`, *optional*, defaults to 512):
            Dimensionality of the shared text and image embedding space.
        logit_scale_init_value (`float`, *optional*, defaults to 2.6592):
            Initial value of the learnable log inverse temperature, as in the original CLIP (ln(1 / 0.07)).
        logit_scale_max (`float`, *optional*, defaults to ln(100)):
            Upper bound of the log inverse temperature used in the contrastive loss. CLIP clamps it at ln(100):
            beyond a scale of 100 the softmax saturates on the hardest negative and training becomes unstable.
        fusion_image_weight (`float`, *optional*, defaults to 0.5):
            Weight `w` of the image in the (I+T) embedding ``normalize(w * image + (1 - w) * text)``, where both
            embeddings are L2-normalised first. The default 0.5 is the normalised mean: it adds no parameter (so
            CLIP-ND keeps CLIP ViT-B/32's size and cost), lets both modalities count equally whatever the norms of
            their projections, and lands on the same unit sphere as single-modality embeddings so that scores of
            mixed tasks (e.g. ITm-Te) are comparable cosine similarities.
        missing_image_fallback (`str`, *optional*, defaults to `"text"`):
            What the (I+T) embedding of an example without an image becomes: `"text"` uses its text embedding
            alone (a warning counts such examples per batch), `"nan"` gives a NaN row like an image-only embedding.
        training_arguments (`dict`, *optional*):
            The arguments the model was trained with, as a flat `{name: value}` mapping (e.g. `learning_rate`,
            `adam_beta1`, `per_device_train_batch_size`, `num_train_epochs`, `task`), written by the M3EL trainer
            when it saves the model. `None` for a model that was not trained by it (e.g. fresh from `from_clip`).
            The paper's training recipe is not part of the config: it is the default of the trainer's arguments.

    Example:

    ```python
    >>> from modeling_clip_nd import CLIPNDConfig, CLIPNDModel

    >>> configuration = CLIPNDConfig()  # CLIP ViT-B/32 towers, the paper's fusion defaults
    >>> model = CLIPNDModel(configuration)
    ```"""

    model_type = "clip_nd"

    logit_scale_max: float = math.log(100.0)
    fusion_image_weight: float = 0.5
    missing_image_fallback: str = "text"
    training_arguments: dict | None = None

    @classmethod
    def from_clip_config(cls, clip_config: CLIPConfig | dict, **kwargs) -> "CLIPNDConfig":
        """Return a CLIP-ND config with the towers of ``clip_config`` (a `CLIPConfig` or its dict) and ``kwargs``."""
        if isinstance(clip_config, CLIPConfig):
            clip_config = clip_config.to_dict()
        kept = {key: value for key, value in clip_config.items() if key not in ("model_type", "architectures")}
        return cls.from_dict({**kept, **kwargs})

    def __post_init__(self, **kwargs):
        # `CLIPConfig`'s strict type checks do not cover fields declared by a subclass: check them here.
        weight = self.fusion_image_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
            raise ValueError(
                f"fusion_image_weight={weight!r} is not a number in [0, 1]; pass 0.5 for the normalised mean of "
                "the image and text embeddings."
            )
        if self.missing_image_fallback not in MISSING_IMAGE_FALLBACKS:
            raise ValueError(
                f"missing_image_fallback={self.missing_image_fallback!r} is not supported; choose one of "
                f"{', '.join(MISSING_IMAGE_FALLBACKS)}."
            )
        arguments = self.training_arguments
        if arguments is not None and not (isinstance(arguments, dict) and all(isinstance(k, str) for k in arguments)):
            raise ValueError(
                f"training_arguments={arguments!r} is not a mapping of argument names to values; pass the "
                "arguments the model was trained with as a dict, or None."
            )
        # Configs saved before `training_arguments` carried the paper's recipe as fields of their own: its defaults,
        # which the trainer never read. Drop them, so that an old model loads without keeping a misleading copy.
        dropped = [key for key in _RECIPE_FIELDS_OF_OLD_CONFIGS if kwargs.pop(key, None) is not None]
        if dropped:
            logger.info("Ignoring the training-recipe fields of an old CLIP-ND config: %s.", ", ".join(dropped))
        super().__post_init__(**kwargs)


__all__ = ["CLIPNDConfig"]
