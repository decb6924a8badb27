"""sharded_gumbel_max on two processes (gloo, CPU), for the chapter *Gumbel-max at vocabulary
scale*: each rank holds an uneven slice of a 32,000-token vocabulary for the same rows.

    python -m benchmarks.sharded_demo

Prints the tokens each rank returns and the tokens of ``sample_tokens`` on the whole
vocabulary in one process, with the same key and positions, and whether they are equal.
The tests (``tests/test_sharded.py``) check the same with 2 and 4 processes and many rows.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gumbel_lib.sharded import sharded_gumbel_max
from gumbel_lib.tokens import sample_tokens

VOCAB, SPLIT, ROWS, KEY, WORLD = 32_000, 12_345, 6, 2026, 2


def logits() -> torch.Tensor:
    return 3.0 * torch.randn(ROWS, VOCAB, generator=torch.Generator().manual_seed(7))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        lo, hi = (0, SPLIT) if rank == 0 else (SPLIT, VOCAB)
        tokens = sharded_gumbel_max(logits()[:, lo:hi], lo, key=KEY, position=torch.arange(ROWS))
        torch.save(tokens, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def main() -> bool:
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(worker, args=(free_port(), out), nprocs=WORLD, join=True)
        ranks = [torch.load(Path(out) / f"rank{r}.pt") for r in range(WORLD)]
    single = sample_tokens(logits(), key=KEY, position=torch.arange(ROWS))
    print(
        f"vocabulary {VOCAB:,}: rank 0 holds [0, {SPLIT:,}), rank 1 holds [{SPLIT:,}, {VOCAB:,})"
    )
    for r, tokens in enumerate(ranks):
        print(f"rank {r} returns        {tokens.tolist()}")
    print(f"one process, whole row {single.tolist()}")
    same = all(torch.equal(t, single) for t in ranks)
    print("every rank equals the single-process tokens:", same)
    return same


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
