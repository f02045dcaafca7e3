"""The DataLoaders of a training run, and what DDP must know about their batches.

Batches are made in DataLoader worker processes by default (`arguments.default_num_workers`): JPEG decoding,
augmentation and tokenization then run beside training, not in its process; the workers persist across epochs
(the epoch travels with each index, see `data.EpochPermutationSampler`) and batches are pinned for the copy to a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import torch
from torch.utils.data import DataLoader

from m3el_dataset.constants import TaskSpec

from .arguments import DataArguments, TrainingArguments
from .data import EpochPermutationSampler, MentionEntityPairs, PairCollator


@dataclass
class TrainingLoaders:
    """The training pairs, their sampler and loader, and the validation loader (``None`` without a validation split)
    with its number of candidate slots per mention."""

    pairs: MentionEntityPairs
    sampler: EpochPermutationSampler
    train: DataLoader
    validation: DataLoader | None = None
    eval_slots: int = 0


def build_loaders(
    train_rows: datasets.Dataset, validation_rows: datasets.Dataset | None, processor, missing_image_fallback: str,
    data_args: DataArguments, args: TrainingArguments, num_slots: int,
) -> TrainingLoaders:  # fmt: skip
    """The loaders of ``train_rows`` (``num_slots`` hard negatives per mention) and ``validation_rows``."""
    workers = data_args.dataloader_num_workers
    loading = {"num_workers": workers, "pin_memory": torch.cuda.is_available(), "persistent_workers": workers > 0}
    pairs = MentionEntityPairs(train_rows, data_args, train=True, seed=args.seed)
    if len(pairs) == 0:
        raise ValueError(f"The {data_args.train_split!r} split of {data_args.dataset} has no mention whose gold "
                         "entity is among its candidates; there is nothing to train on.")  # fmt: skip
    sampler = EpochPermutationSampler(len(pairs), args.seed)
    collator = PairCollator(processor, data_args.text_format, train=True, keep_mention=data_args.keep_mention,
                            num_slots=num_slots, missing_image_fallback=missing_image_fallback)  # fmt: skip
    train = DataLoader(pairs, batch_size=args.per_device_train_batch_size, sampler=sampler, collate_fn=collator,
                       **loading)  # fmt: skip
    loaders = TrainingLoaders(pairs, sampler, train)
    if validation_rows is not None and len(validation_rows):
        loaders.eval_slots = max(len(qids) for qids in validation_rows["candidate_qids"])
        collator = PairCollator(processor, data_args.text_format, train=False, num_slots=loaders.eval_slots,
                                missing_image_fallback=missing_image_fallback)  # fmt: skip
        validation_pairs = MentionEntityPairs(validation_rows, data_args, train=False, seed=args.seed)
        loaders.validation = DataLoader(validation_pairs, batch_size=args.per_device_eval_batch_size,
                                        collate_fn=collator, **loading)  # fmt: skip
    return loaders


def may_miss_images(rows: datasets.Dataset, tasks: Sequence[TaskSpec]) -> bool:
    """Whether an image that ``tasks`` read can be missing in ``rows`` (an empty cell, read from the Arrow null
    counts without touching any image's bytes); an image that fails to decode during training is missing too, which
    a whole batch of them makes rare enough to leave out."""
    import pyarrow.compute as pc

    columns = [column for column, used in (("mention_image", any(task.mention_image for task in tasks)),
                                           ("candidate_images", any(task.entity_image for task in tasks)))
               if used and column in rows.column_names]  # fmt: skip
    for column in columns:
        cells = rows.data.column(column)
        if column == "candidate_images":
            cells = pc.list_flatten(cells)
        cells = cells.combine_chunks() if hasattr(cells, "combine_chunks") else cells
        if cells.null_count or cells.field("bytes").null_count:
            return True
    return False


def needs_unused_parameters(tasks: Sequence[TaskSpec], images_may_be_missing: bool) -> bool:
    """Whether DDP must look for parameters without a gradient (``find_unused_parameters``, a graph traversal each
    step): only when a step can leave a tower out, i.e. a task reads no text or no image, or the images of a whole
    batch may be missing. LoRA changes nothing here: frozen weights are not DDP's to reduce, and the adapters of a
    tower are unused exactly when the tower is."""
    uses_both = all((task.mention_text or task.entity_text) and (task.mention_image or task.entity_image)
                    for task in tasks)  # fmt: skip
    return not uses_both or images_may_be_missing
