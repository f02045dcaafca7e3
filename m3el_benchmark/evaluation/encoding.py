"""Encoding each unique input once per model, sharded across processes, through the embedding cache.

`encode_unique` is the one entry point, for texts, images and (text, image) pairs alike, and for any caller: the
candidate protocol here, whole-knowledge-base ranking later. It looks every key up in the cache, deals the rest
out to the processes, encodes them in batches (texts sorted by length so that padding is small; images decoded
in DataLoader workers; results moved to the host without a sync per batch, `HostCopies`), gathers the embeddings
on every process and caches them once all are in. An image that fails to decode gets a NaN embedding: it is
scored as missing, never as a blank image.

`EncodingStats` counts the rows that actually reached the adapter's ``encode_*`` methods (``encoded``), the cache
hits (``cached``) and the undecodable inputs, fresh or read back from the cache as NaN rows (``undecodable``), so
that ``encoded + cached + undecodable == unique`` holds exactly when each input was handled once, cold or warm.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset

from m3el_dataset.images import decode_rgb

from ..baselines.base import EmbeddingAdapter
from ..run_logging import progress_bar
from .cache import EmbeddingCache
from .distributed import gather_pieces, interleave, shard

logger = logging.getLogger(__name__)

TEXT, IMAGE, PAIR = "text", "image", "pair"
KINDS = (TEXT, IMAGE, PAIR)


class _Items(Dataset):
    """Raw inputs of one kind, decoded lazily (images in the DataLoader's worker processes)."""

    def __init__(self, kind: str, payloads: list):
        self.kind, self.payloads = kind, payloads

    def __len__(self) -> int:
        return len(self.payloads)

    def __getitem__(self, index: int):
        payload = self.payloads[index]
        if self.kind == TEXT:
            return payload
        if self.kind == IMAGE:
            return decode_rgb(payload)[0]
        return payload[0], decode_rgb(payload[1])[0]


class _Collator:
    """Turns a batch of decoded items into model inputs with the adapter's processor; remembers undecodable rows."""

    def __init__(self, adapter: EmbeddingAdapter, kind: str):
        self.adapter, self.kind = adapter, kind

    def __call__(self, items: list) -> tuple[dict[str, torch.Tensor] | None, torch.Tensor]:
        if self.kind == TEXT:
            return self.adapter.collate_texts(items), torch.ones(len(items), dtype=torch.bool)
        images = items if self.kind == IMAGE else [image for _, image in items]
        present = torch.tensor([image is not None for image in images], dtype=torch.bool)
        if not present.any():
            return None, present
        if self.kind == IMAGE:
            return self.adapter.collate_images([image for image in images if image is not None]), present
        pairs = [item for item in items if item[1] is not None]
        return self.adapter.collate_pairs([text for text, _ in pairs], [image for _, image in pairs]), present


@dataclass
class EncodingStats:
    """Work done for one kind of input of one model (summed over processes).

    ``encoded`` counts rows passed to the adapter's encode method; ``cached`` usable embeddings read from the cache;
    ``undecodable`` inputs without embedding (undecodable now, or cached as a NaN row by an earlier run);
    ``non_finite`` encoded inputs whose embedding the model returned NaN or infinite (scored as missing, never cached,
    and not counted as undecodable: the model is at fault, not the input).
    """

    unique: int = 0
    encoded: int = 0
    cached: int = 0
    undecodable: int = 0
    non_finite: int = 0
    seconds: float = 0.0

    @property
    def pass_ratio(self) -> float:
        """Unique inputs accounted for (encoded, cached or undecodable) per unique input: 1.0 means each once."""
        return (self.encoded + self.cached + self.undecodable) / self.unique if self.unique else 1.0


@dataclass
class EncodingSettings:
    """How `encode_unique` batches its work."""

    batch_size: int = 64
    num_workers: int = 2


@dataclass
class EmbeddingTable:
    """Embeddings of unique inputs: row ``index[key]`` of ``embeddings`` (float32, ``(n, num_vectors, dim)``), NaN
    rows for the ``undecodable`` keys and for those whose embedding the model returned non-finite."""

    index: dict[str, int]
    embeddings: torch.Tensor
    stats: EncodingStats = field(default_factory=EncodingStats)
    undecodable: set[str] = field(default_factory=set)


@contextlib.contextmanager
def evaluation_precision(dtype: torch.dtype) -> Iterator[dict[str, object]]:
    """Run the models in ``dtype``; in float32 with TF32 matrix products and convolutions off (PyTorch lets cuDNN
    use TF32 by default), so that ``--mixed_precision no`` is float32 end to end. Yields what results.json records.
    """
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn)
    saved = [flag.allow_tf32 for flag in flags]
    if dtype == torch.float32:
        for flag in flags:
            flag.allow_tf32 = False
    try:
        yield {"dtype": str(dtype).replace("torch.", ""), "tf32": any(flag.allow_tf32 for flag in flags)}
    finally:
        for flag, value in zip(flags, saved, strict=True):
            flag.allow_tf32 = value


def _batch_rows(inputs: Mapping[str, torch.Tensor]) -> int:
    return int(next(iter(inputs.values())).shape[0])


class HostCopies:
    """Embeddings moved to the host in order without stalling the device loop.

    On CUDA each batch is copied (non-blocking) into pinned memory and read only once ``lag`` later batches have
    been queued, when its copy is long done, so the loop never waits on the GPU for its own results; everywhere else
    a batch is copied at once (on CPU there is nothing to wait for). `result` waits for the last copies.
    """

    def __init__(self, device: torch.device, lag: int = 2):
        self.staged = device.type == "cuda"
        self.lag = lag
        self.pending: deque[tuple[torch.Tensor, torch.cuda.Event]] = deque()
        self.done: list[np.ndarray] = []

    def add(self, embeddings: torch.Tensor) -> None:
        """Start moving one batch of embeddings (any dtype, on any device) to the host as float32."""
        if not self.staged:
            self.done.append(embeddings.float().cpu().numpy())
            return
        pinned = torch.empty(embeddings.shape, dtype=torch.float32, pin_memory=True)
        pinned.copy_(embeddings, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self.pending.append((pinned, event))
        while len(self.pending) > self.lag:
            self._collect()

    def _collect(self) -> None:
        pinned, event = self.pending.popleft()
        event.synchronize()
        self.done.append(pinned.numpy().copy())  # a pageable copy: the pinned block goes back to be reused

    def result(self) -> np.ndarray:
        """Every batch added, in order, as one float32 array (empty of shape ``(0,)`` when none was added)."""
        while self.pending:
            self._collect()
        return np.concatenate(self.done) if self.done else np.zeros((0,), dtype=np.float32)


def _encode_local(adapter, kind, payloads, settings, desc, accelerator) -> tuple[np.ndarray, np.ndarray, int]:
    """Encode this process's payloads in order; return the embeddings of the decodable ones, which those are, and
    the number of rows passed to the adapter's encode method."""
    loader = DataLoader(
        _Items(kind, payloads),
        batch_size=settings.batch_size,
        num_workers=settings.num_workers if kind != TEXT else 0,
        collate_fn=_Collator(adapter, kind),
        pin_memory=torch.device(adapter.device).type == "cuda",  # page-locked batches copy to the GPU asynchronously
    )
    encode = {TEXT: adapter.encode_texts, IMAGE: adapter.encode_images, PAIR: adapter.encode_pairs}[kind]
    host, masks, passed = HostCopies(adapter.device), [], 0
    bar = progress_bar(loader, desc=desc, unit="batch", disable=not accelerator.is_local_main_process)
    for inputs, present in bar:
        masks.append(present.numpy())
        if inputs is not None:
            passed += _batch_rows(inputs)
            host.add(encode(inputs))
    present = np.concatenate(masks) if masks else np.zeros(0, dtype=bool)
    return host.result(), present, passed


def _expand(vectors: np.ndarray, present: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Put each input's embedding back in place, NaN for the undecodable ones."""
    full = np.full((len(present), *shape), np.nan, dtype=np.float32)
    if len(vectors):
        full[present] = vectors
    return full


def _order(kind: str, keys: list[str], items: Mapping) -> list[str]:
    """Texts longest first, so that each batch pads to similar lengths; other kinds in key order."""
    if kind == TEXT:
        return sorted(keys, key=lambda key: (-len(items[key]), key))
    return sorted(keys)


def encode_unique(
    adapter: EmbeddingAdapter,
    kind: str,
    items: Mapping[str, object],
    cache: EmbeddingCache,
    accelerator: Accelerator,
    settings: EncodingSettings,
    fallback_shape: tuple[int, ...] = (1, 1),
) -> EmbeddingTable:
    """Embed every item of ``items`` (key to text, image bytes or (text, image bytes)) once, on every process.

    ``fallback_shape`` is the ``(num_vectors, dim)`` of the NaN rows when no item at all could be encoded.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown input kind {kind!r}; choose one of {', '.join(KINDS)}.")
    start = time.perf_counter()
    keys = list(items)
    found = cache.load(kind, keys)
    todo = _order(kind, [key for key in keys if key not in found], items)
    mine = shard(todo, accelerator)
    desc = f"{adapter.info.name} | encode {kind}s"
    local, present, passed = _encode_local(adapter, kind, [items[key] for key in mine], settings, desc, accelerator)
    pieces = gather_pieces((local, present, passed), accelerator)
    # A process whose images all failed cannot know the embedding shape: take it from any that had work.
    shapes = [vectors.shape[1:] for vectors, _, _ in pieces if len(vectors)] + [v.shape for v in found.values()]
    shape = tuple(shapes[0]) if shapes else tuple(fallback_shape)
    fresh = interleave([_expand(vectors, mask, shape) for vectors, mask, _ in pieces], len(todo))
    decoded = interleave([mask for _, mask, _ in pieces], len(todo)) if todo else np.zeros(0, dtype=bool)
    non_finite = decoded & ~np.isfinite(fresh).all(axis=tuple(range(1, fresh.ndim)))
    fresh[non_finite] = np.nan  # scored as missing, like an undecodable input
    if non_finite.any():
        logger.warning(
            "%s returned NaN or infinite embeddings for %d of %d %ss; they score as missing and are not cached. "
            "Check the model (weights, dtype).", adapter.info.name, int(non_finite.sum()), len(todo), kind,
        )  # fmt: skip
    if accelerator.is_main_process:
        keep = [row for row in range(len(todo)) if not non_finite[row]]
        cache.save(kind, [todo[row] for row in keep], fresh[keep])
    cached_nan = {key for key, vector in found.items() if np.isnan(vector).all()}  # undecodable in an earlier run
    undecodable = {key for row, key in enumerate(todo) if not decoded[row]} | cached_nan
    stats = EncodingStats(
        unique=len(keys),
        encoded=sum(passed for _, _, passed in pieces),
        cached=len(found) - len(cached_nan),
        undecodable=len(undecodable),
        non_finite=int(non_finite.sum()),
    )
    embeddings = np.full((len(keys), *shape), np.nan, dtype=np.float32)
    index = {key: row for row, key in enumerate(keys)}
    for key, vector in found.items():
        embeddings[index[key]] = vector
    for row, key in enumerate(todo):
        embeddings[index[key]] = fresh[row]
    stats.seconds = time.perf_counter() - start
    return EmbeddingTable(index, torch.from_numpy(embeddings), stats, undecodable)
