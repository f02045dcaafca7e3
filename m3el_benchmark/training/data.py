"""Training pairs for CLIP-ND: a mention in its task's modality and its gold entity, text augmented by aug_T.

Rows come from `m3el_dataset.loading` (an exported folder, a Hub repo id, a raw release or the sample). A
mention's text is the dataset's own ``text_<format>`` column, and an entity's text comes from
`m3el_dataset.text_formats.entity_text`; only a mention text that does not fit the model's context is re-rendered,
by the collator, through `m3el_dataset.text_formats.fit_mention_texts`. Images are decoded here, not by `datasets`,
so that an image that fails to decode mid-run becomes a missing image (counted and reported) instead of stopping
the run, and never a blank image.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import datasets
import torch
from PIL import Image, ImageEnhance, ImageOps

from m3el_dataset import loading
from m3el_dataset.constants import TaskSpec
from m3el_dataset.images import decode_rgb
from m3el_dataset.rows import MENTIONS_CONFIG, PART_COLUMNS, text_column
from m3el_dataset.text_formats import entity_text, fit_mention_texts, sentence_before_mention, template_parts

from .arguments import DataArguments

logger = logging.getLogger(__name__)


def open_training_split(args: DataArguments, split: str) -> datasets.Dataset:
    """One split of the ``mentions`` config of ``args.dataset`` (all columns, images left undecoded)."""
    try:
        return loading.open_split(args.dataset, MENTIONS_CONFIG, split, cache_dir=args.dataset_cache_dir)
    except loading.MissingSplitError as error:
        raise ValueError(
            f"{error} Choose one with --train_split/--validation_split (an empty --validation_split trains without "
            "validation)."
        ) from error


def check_trainable(dataset: str, columns: Sequence[str], tasks: Sequence[TaskSpec], text_format: str) -> None:
    """Raise ``ValueError`` if a task needs a modality the dataset lacks, naming the tasks it can train on."""
    for task in tasks:
        lacking = loading.missing_inputs(task, [text_format], columns)
        if lacking:
            supported = loading.supported_tasks([text_format], columns)
            raise ValueError(
                f"Dataset {dataset} cannot train on {task} with text format {text_format}: it has no column "
                f"{', '.join(column for names in lacking.values() for column in names)}. With that format it "
                f"supports the tasks {', '.join(supported) or 'none'}; choose among them with --task (or another "
                "--text_format)."
            )


def decode_image(cell: dict[str, Any] | None) -> tuple[Image.Image | None, bool]:
    """Decode an undecoded image cell; return ``(image or None, whether decoding failed)``."""
    if cell is None or cell.get("bytes") is None:
        return None, False
    image, problem = decode_rgb(cell["bytes"])
    if problem:
        logger.debug("Undecodable image %s: %s", cell.get("path"), problem)
    return image, problem is not None


def entity_id(qid: str | None) -> int:
    """A stable non-negative 63-bit id of a QID (``-1`` for none), so the loss can tell copies of one entity apart
    from other entities across processes."""
    if qid is None:
        return -1
    return int.from_bytes(hashlib.blake2b(qid.encode("utf-8"), digest_size=8).digest(), "big") >> 1


def augment_text(name: str, description: str, rng: random.Random, args: DataArguments) -> str:
    """aug_T: the entity text (`entity_text`), its name and its description each dropped with its own probability."""
    keep_name = rng.random() >= args.name_drop_prob
    keep_description = rng.random() >= args.description_drop_prob
    return entity_text(name, description, with_name=keep_name, with_description=keep_description)


def augment_image(image: Image.Image, rng: random.Random, *, flip_and_jitter: bool = False) -> Image.Image:
    """aug_I as CLIP trained: a random square crop whose side is the image's shorter side.

    CLIP's only augmentation was "a random square crop from resized images" (Radford et al. 2021, Sec. 2.5): the
    image resized to its shorter side, then a random square of that side. Cropping first and letting the processor
    resize (it then has nothing left to centre-crop) is the same up to resampling. A square image is therefore left
    as it is. ``flip_and_jitter`` adds a random horizontal flip and a brightness and contrast jitter of +-10 % (not
    the paper's recipe: ``--image_flip_and_jitter``). PIL only: torchvision does not load with our torch.
    """
    width, height = image.size
    side = min(width, height)
    left, top = rng.randint(0, width - side), rng.randint(0, height - side)
    image = image.crop((left, top, left + side, top + side))
    if not flip_and_jitter:
        return image
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.9, 1.1))
    return ImageEnhance.Contrast(image).enhance(rng.uniform(0.9, 1.1))


@dataclass
class EntityView:
    """An entity (or a mention) as the model sees it in one task: text, image, or both.

    ``image`` is ``None`` for a missing image of a task that needs one (``needs_image``): it is embedded as missing,
    never replaced by a blank image.
    """

    text: str | None
    image: Image.Image | None
    needs_image: bool
    parts: dict[str, str] | None = None  # a mention's text parts, when its text may need fitting
    qid: str | None = None  # the entity's QID (not set for mentions)

    @property
    def modality(self) -> str:
        """``"T"``, ``"I"`` or ``"IT"``: which encoders this view goes through."""
        return ("I" if self.needs_image else "") + ("T" if self.text is not None else "")


class MentionEntityPairs(torch.utils.data.Dataset):
    """Mention → gold-entity pairs of one split, with the non-gold candidates (the hard negatives of
    ``--hard_negatives``).

    For training, mentions whose gold is not among the candidates (label -1) are not positives and are left out;
    for evaluation (``train=False``) every mention is kept (one without its gold counts as wrong). With several
    tasks, each training example's task is drawn from (seed, epoch, index), as are its augmentations, so the data
    of a resumed run is exactly that of an uninterrupted one; evaluation uses the first task.
    """

    def __init__(self, rows: datasets.Dataset, args: DataArguments, *, train: bool, seed: int = 0):
        self.args, self.train, self.seed = args, train, seed
        labels = rows["label"]
        self.indices = [index for index, label in enumerate(labels) if label >= 0 or not train]
        self.num_without_gold = sum(label < 0 for label in labels)
        self.tasks = args.tasks
        self.text_column = text_column(args.text_format)
        # The parts are read only where the collator may re-render a text: a format whose mention follows its
        # sentence, with keep_mention on (evaluation always keeps the mention, as the benchmark does).
        fits = sentence_before_mention(args.text_format) is not None and (args.keep_mention or not train)
        self.part_columns = {part: PART_COLUMNS[part] for part in template_parts(args.text_format)} if fits else {}
        # Only the columns the tasks read: a row read in full would carry every image's bytes, needed or not.
        self.rows = rows.select_columns(self._needed_columns(rows.column_names))
        self.epoch = 0

    def _needed_columns(self, available: Sequence[str]) -> list[str]:
        tasks = self.tasks if self.train else self.tasks[:1]
        needed = ["id", "label", "candidate_qids"]
        if any(task.mention_text for task in tasks):
            needed += [self.text_column, *self.part_columns.values()]
        if any(task.entity_text for task in tasks):
            needed += ["candidate_names", "candidate_descriptions"]
        needed += ["mention_image"] if any(task.mention_image for task in tasks) else []
        needed += ["candidate_images"] if any(task.entity_image for task in tasks) else []
        return [column for column in dict.fromkeys(needed) if column in available]

    def __len__(self) -> int:
        return len(self.indices)

    def use_epoch(self, epoch: int) -> None:
        """Draw tasks and augmentations of ``epoch`` (named so that accelerate's own ``set_epoch`` leaves it be)."""
        self.epoch = epoch

    def _rng(self, index: int, epoch: int) -> random.Random:
        return random.Random(f"{self.seed}:{epoch}:{index}")

    def _image(self, cell, rng: random.Random) -> tuple[Image.Image | None, int]:
        image, failed = decode_image(cell)
        if image is not None and self.train and self.args.image_augmentation:
            image = augment_image(image, rng, flip_and_jitter=self.args.image_flip_and_jitter)
        return image, int(failed)

    def _entity(self, row, position: int, task: TaskSpec, rng: random.Random) -> tuple[EntityView, int]:
        text = None
        if task.entity_text:
            name, description = row["candidate_names"][position], row["candidate_descriptions"][position]
            text = augment_text(name, description, rng, self.args) if self.train else entity_text(name, description)
        image, failed = self._image(row["candidate_images"][position], rng) if task.entity_image else (None, 0)
        return EntityView(text, image, task.entity_image, qid=row["candidate_qids"][position]), failed

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        """Example ``item``, or ``(epoch, item)`` as `EpochPermutationSampler` yields it: the epoch travels with the
        index because persistent DataLoader workers keep their own copy of this dataset (and of `use_epoch`)."""
        epoch, item = item if isinstance(item, tuple) else (self.epoch, item)
        row = self.rows[self.indices[item]]
        rng = self._rng(self.indices[item], epoch)
        task = self.tasks[rng.randrange(len(self.tasks))] if self.train else self.tasks[0]
        mention_image, failed = self._image(row["mention_image"], rng) if task.mention_image else (None, 0)
        text, parts = None, None
        if task.mention_text:
            text = row[self.text_column]
            parts = {part: row[column] for part, column in self.part_columns.items()} or None
        mention = EntityView(text, mention_image, task.mention_image, parts)
        entities = []
        for position in range(len(row["candidate_qids"])):
            entity, entity_failed = self._entity(row, position, task, rng)
            entities.append(entity)
            failed += entity_failed
        label = row["label"]
        return {
            "id": row["id"],
            "task": task,
            "mention": mention,
            "gold": entities[label] if label >= 0 else None,
            "negatives": [entity for position, entity in enumerate(entities) if position != label],
            "candidates": entities,
            "label": label,
            "undecodable_images": failed,
        }


class PairCollator:
    """Turns examples into model inputs for each side (mentions, gold entities, hard negatives, candidates).

    A side is ``{modality: {"index": LongTensor, <model inputs>}}``, one entry per modality present in the batch,
    so examples of several tasks can share a batch. Every image of a group is present: a view whose image is
    missing is routed here, on the CPU, where the model would route it (`CLIPNDModel.get_features`): an (I+T) view
    to the text group when ``missing_image_fallback`` is ``"text"`` (its embedding is then its text embedding),
    otherwise to no group (a NaN embedding, not present). The model can then embed each group without scanning it
    for missing images (`CLIPNDModel.get_present_features`), and nothing waits for the device. Hard negatives and
    candidates are padded to a fixed number per mention (padding slots stay out of every group and get NaN
    embeddings), which keeps shapes equal across processes for the gather. ``truncated_texts`` counts the texts
    cut to the model's context (the trainer reports the run's total once).
    """

    def __init__(self, processor, text_format: str, *, train: bool, keep_mention: bool = True, num_slots: int = 3,
                 missing_image_fallback: str = "text"):  # fmt: skip
        self.processor, self.text_format, self.train = processor, text_format, train
        self.keep_mention, self.num_slots = keep_mention, num_slots
        self.missing_image_fallback = missing_image_fallback
        self.truncated = 0

    def _texts(self, views: list[EntityView]) -> dict[str, torch.Tensor]:
        from modeling_clip_nd.processing_clip_nd import resolve_max_length, tokenize_and_count

        max_length = resolve_max_length(self.processor)
        texts = [view.text for view in views]
        if all(view.parts is not None for view in views):  # mention texts whose mention follows their sentence
            parts = [view.parts for view in views]
            texts = fit_mention_texts(self.processor, self.text_format, texts, parts, max_length, self.keep_mention)
        encoded, truncated = tokenize_and_count(self.processor, texts, max_length)
        self.truncated += truncated
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def _group(self, view: EntityView | None) -> str | None:
        """The encoders a view goes through, its image missing or not (see the class docstring)."""
        if view is None or view.image is not None or not view.needs_image:
            return view.modality if view is not None else None
        return "T" if view.text is not None and self.missing_image_fallback == "text" else None

    def _images(self, views: list[EntityView]) -> dict[str, torch.Tensor]:
        from modeling_clip_nd import prepare_images

        pixel_values = prepare_images(self.processor, [view.image for view in views])["pixel_values"]  # all present
        if torch.isnan(pixel_values).any():  # checked here, once per batch, on the CPU: the model does not rescan
            raise ValueError("The image processor returned NaN pixels for a present image; check its settings.")
        return {"pixel_values": pixel_values}

    def side(self, views: list[EntityView | None]) -> dict[str, dict[str, torch.Tensor]]:
        """Model inputs of one side; ``None`` views are padding slots."""
        groups: dict[str, dict[str, Any]] = {}
        routes = [self._group(view) for view in views]
        for modality in ("T", "I", "IT"):
            positions = [i for i, route in enumerate(routes) if route == modality]
            if not positions:
                continue
            chosen = [views[i] for i in positions]
            inputs: dict[str, Any] = {"index": torch.tensor(positions, dtype=torch.long)}
            if "T" in modality:
                inputs.update(self._texts(chosen))
            if "I" in modality:
                inputs.update(self._images(chosen))
            groups[modality] = inputs
        return groups

    def _slots(self, lists: list[list[EntityView]]) -> list[EntityView | None]:
        slots: list[EntityView | None] = []
        for views in lists:
            slots += (views + [None] * self.num_slots)[: self.num_slots]
        return slots

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        self.truncated = 0
        batch = {
            "ids": [example["id"] for example in examples],
            "mentions": self.side([example["mention"] for example in examples]),
            "labels": torch.tensor([example["label"] for example in examples]),
            "undecodable_images": torch.tensor(sum(example["undecodable_images"] for example in examples)),
        }
        if self.train:
            golds = [example["gold"] for example in examples]
            batch["entities"] = self.side(golds)
            batch["entity_ids"] = torch.tensor([entity_id(gold.qid) for gold in golds])
            if self.num_slots:
                slots = self._slots([example["negatives"] for example in examples])
                batch["negatives"] = self.side(slots)
                batch["negative_ids"] = torch.tensor([entity_id(view.qid if view else None) for view in slots])
        else:
            batch["candidates"] = self.side(self._slots([example["candidates"] for example in examples]))
            batch["num_candidates"] = torch.tensor([len(example["candidates"]) for example in examples])
        batch["truncated_texts"] = torch.tensor(self.truncated)
        return batch


class EpochPermutationSampler(torch.utils.data.Sampler):
    """A seeded permutation per epoch, optionally without its first ``skip`` indices (those a resumed run has
    already trained on), so that the data order of a resumed run is that of an uninterrupted one.

    The method is `use_epoch`, not ``set_epoch``, on purpose: accelerate calls ``set_epoch`` with its own count of
    passes over the loader, which restarts at 0 for a resumed run.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch, self.skip = size, seed, 0, 0

    def use_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __iter__(self):
        """``(epoch, index)`` pairs (see `MentionEntityPairs.__getitem__`)."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator)[self.skip :].tolist()
        return iter([(self.epoch, index) for index in order])

    def __len__(self) -> int:
        return self.size - self.skip
