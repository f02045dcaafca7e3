"""`HostCopies`: the encoder's batches reach the host as float32, in order, whether copied at once (CPU) or
staged through pinned memory and read a few batches later (CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from m3el_benchmark.evaluation.encoding import HostCopies


def _batches(device: torch.device) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    sizes = [4, 1, 3, 5, 2]  # more batches than the lag, of uneven sizes, the last one short
    return [torch.randn(size, 1, 8, generator=generator).to(device, torch.bfloat16) for size in sizes]


def _expected(batches: list[torch.Tensor]) -> np.ndarray:
    return torch.cat([batch.cpu().float() for batch in batches]).numpy()


def test_batches_arrive_in_order_as_float32_on_cpu():
    batches = _batches(torch.device("cpu"))
    copies = HostCopies(torch.device("cpu"))
    for batch in batches:
        copies.add(batch)
    result = copies.result()
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, _expected(batches))


def test_no_batch_gives_an_empty_array():
    assert HostCopies(torch.device("cpu")).result().shape == (0,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the staged copies need a CUDA device")
@pytest.mark.parametrize("lag", [0, 2, 10])
def test_staged_copies_on_cuda_equal_plain_ones(lag):
    device = torch.device("cuda")
    batches = _batches(device)
    copies = HostCopies(device, lag=lag)
    assert copies.staged
    for batch in batches:
        copies.add(batch * 1)  # a fresh tensor each time, freed after add, as the encoder's outputs are
    np.testing.assert_array_equal(copies.result(), _expected(batches))
