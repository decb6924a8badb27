"""sharded_gumbel_max on a real torch.distributed group (gloo, CPU), with 2 and 4 processes.

Each process holds a slice of the vocabulary (uneven slices included). The token must equal
sample_tokens on the whole vocabulary with the same key and position, bit for bit, on every
rank; and over many positions the tokens must follow softmax(logits): a chi-square test at
ALPHA (asymptotic rate), sized to detect Cohen's w = 0.05 with miss rate ALPHA, with a
negative control near that effect (the law of logits scaled by 1.1). The module's
false-failure budget, 1e-6, is split over its two chi-square decisions.
"""

from __future__ import annotations

import math
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gumbel_lib.sharded import sharded_gumbel_max
from gumbel_lib.stats import chisquare_sample_size, chisquare_test
from gumbel_lib.tokens import sample_tokens

ALPHA = 1e-6 / 2
VOCAB = 37
ROWS = chisquare_sample_size(0.05, VOCAB - 1, ALPHA)
KEY = 2026


def logits_for_test() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(VOCAB, generator=gen, dtype=torch.float64).float() * 1.5


def bounds(world: int) -> list[int]:
    """Uneven slices: rank r holds [bounds[r], bounds[r + 1])."""
    cuts = [0, 3, 11, 20, VOCAB] if world == 4 else [0, 16, VOCAB]
    return cuts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        logits = logits_for_test().expand(ROWS, VOCAB)
        lo, hi = bounds(world)[rank], bounds(world)[rank + 1]
        positions = torch.arange(ROWS)
        tokens = sharded_gumbel_max(logits[:, lo:hi], lo, key=KEY, position=positions)
        bad = logits[:2].clone()
        bad[1, 5] = math.nan
        try:
            sharded_gumbel_max(bad[:, lo:hi], lo, key=KEY, position=positions[:2])
            raised = ""
        except ValueError as err:
            raised = str(err)
        torch.save({"tokens": tokens, "raised": raised}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module", params=[2, 4])
def gathered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    world = request.param
    out = tmp_path_factory.mktemp(f"world{world}")
    mp.spawn(worker, args=(world, free_port(), str(out)), nprocs=world, join=True)
    return world, [torch.load(out / f"rank{r}.pt") for r in range(world)]


def test_every_rank_gets_the_single_process_token(gathered) -> None:
    world, results = gathered
    full = sample_tokens(
        logits_for_test().expand(ROWS, VOCAB), key=KEY, position=torch.arange(ROWS)
    )
    for rank, result in enumerate(results):
        assert torch.equal(result["tokens"], full), (world, rank)


def test_nan_logits_raise_on_every_rank(gathered) -> None:
    """Every rank raises; the rank whose slice holds the NaN (column 5) names it."""
    world, results = gathered
    for rank, result in enumerate(results):
        assert result["raised"].startswith("logits"), result["raised"]
        lo, hi = bounds(world)[rank], bounds(world)[rank + 1]
        assert ("NaN" in result["raised"]) == (lo <= 5 < hi), (rank, result["raised"])


def test_sharded_tokens_follow_softmax(gathered) -> None:
    world, results = gathered
    law = torch.softmax(logits_for_test().double(), -1).numpy()
    counts = np.bincount(results[0]["tokens"].numpy(), minlength=VOCAB)
    verdict = chisquare_test(counts, law, alpha=ALPHA)
    assert verdict.passed, (world, verdict)
    if world == 2:  # the negative control, once: logits 10% too sharp
        wrong = torch.softmax(logits_for_test().double() * 1.1, -1).numpy()
        w = math.sqrt(float(((wrong - law) ** 2 / law).sum()))
        assert 0.05 < w < 0.15
        assert not chisquare_test(counts, wrong, alpha=ALPHA).passed


def test_refuses_without_a_process_group() -> None:
    with pytest.raises(RuntimeError, match="torch.distributed"):
        sharded_gumbel_max(torch.zeros(2, 3), 0, key=1, position=0)
