"""The benchmark scripts run end to end at tiny sizes and write well-formed results.

Never asserts on timings: speed is measured by `make bench`, not by tests. The schema checks
below are what the chapter *Numerics and performance* relies on when it reads the committed
results files.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import estimators, memory, numerics, run

MACHINE_KEYS = {"cpu", "cores", "torch_threads", "torch", "device", "date", "description"}


def test_speed_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # one thread: on a loaded two-core CI machine a second OpenMP thread waits at barriers
    path = run.main(["--smoke", "--out", str(tmp_path), "--threads", "1"])
    assert path.parent == tmp_path
    report = json.loads(path.read_text())
    assert report["schema_version"] == run.SCHEMA_VERSION and report["kind"] == "speed"
    assert MACHINE_KEYS <= set(report["machine"]) and report["machine"]["cores"] >= 1
    rounds = report["settings"]["rounds"]
    assert report["settings"]["threads"] == [1]
    assert report["settings"]["validation"] == ["on", "off"]
    assert [e["shape"] for e in report["shapes"]] == [list(s) for s in run.SMOKE_SHAPES]
    for i, entry in enumerate(report["shapes"]):
        assert set(entry["by_threads"]) == {"1"}
        for by_threads in entry["by_threads"].values():
            timings = by_threads["timings"]
            assert {run.FLOOR, run.COMPONENTS, "Concrete log-density"} <= set(timings)
            for calls in timings.values():
                for t in calls.values():
                    assert 0 < t["q1_ms"] <= t["median_ms"] <= t["q3_ms"]
                    assert len(t["times_ms"]) == t["rounds"] == rounds
            # every group: a paired ratio per rival and ours over the floor, on and off
            ratios = by_threads["ratios"]
            assert set(ratios) == set(timings) - {run.FLOOR, run.COMPONENTS}
            for group, by_name in ratios.items():
                rivals = set(timings[group]) - {run.OURS, run.OURS_OFF}
                assert set(by_name) == rivals | {run.FLOOR_RATIO}
                for r in by_name.values():
                    assert set(r) == {"on", "off"}
                    assert all(0 < q["q1"] <= q["median"] <= q["q3"] for q in r.values())
        if i == 0:
            mem = entry["memory"]
            assert set(mem) == set(memory.samplers(0.5, None))
            assert all(m["saved_for_backward_bytes"] > 0 for m in mem.values())
        else:
            assert "memory" not in entry
    # --show prints the same tables from the file without running anything, ratio table last
    capsys.readouterr()
    run.main(["--show", str(path)])
    out = capsys.readouterr().out
    assert "ratio table" in out and "1t on" in out and "1t off" in out


def test_numerics_smoke(tmp_path: Path) -> None:
    report = json.loads(numerics.main(["--smoke", "--out", str(tmp_path)]).read_text())
    assert report["schema_version"] == numerics.SCHEMA_VERSION and report["kind"] == "numerics"
    assert MACHINE_KEYS <= set(report["machine"])
    assert set(report["dtypes"]) == {"float32", "float16", "bfloat16"}
    for stats in report["dtypes"].values():
        ours = stats["gumbel_lib"]
        assert stats["draws"] >= 1e5
        assert ours["nan"] == 0 and ours["inf"] == 0  # our guarantee, not a timing
        assert ours["noise_nonfinite"] == 0
        assert ours["bound_min"] - 0.05 <= ours["noise_min"] <= ours["noise_max"]
        assert ours["noise_max"] <= ours["bound_max"] + 0.05
        assert math.isfinite(ours["tail_mass_above"]) and ours["tail_mass_below"] >= 0
        assert {"nan", "inf", "noise_min", "noise_max"} <= set(stats["torch"])
    for row in report["edge_cases"]:
        ours = row["gumbel_lib"]
        assert ours["output_nonfinite"] == 0 and ours["gradient_nan"] == 0
        assert ours["masked_output_nonzero"] == 0 and ours["masked_gradient_nonzero"] == 0
    assert any(row["gumbel_lib"]["masked_entries"] > 0 for row in report["edge_cases"])


def test_smoke_results_are_never_written_to_the_committed_folder() -> None:
    with pytest.raises(SystemExit):
        run.main(["--rounds", "1"])
    with pytest.raises(ValueError, match="--smoke needs --out"):
        run.results_path(None, "speed", run.torch.device("cpu"), smoke=True)
    with pytest.raises(ValueError, match="--smoke needs --out"):
        run.main(["--smoke"])


def test_estimators_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    report = estimators.main(["--smoke"])
    assert report == capsys.readouterr().out.rstrip("\n")
    for name in estimators.ESTIMATORS:
        assert report.count(f"{name} ") >= 2  # in the study table and in the cost table
    assert "/ relaxed" in report and "softplus" in report


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 10])
def test_williams_order_balances_first_places_and_neighbours(n: int) -> None:
    """Over one design every contender is first equally often and follows every other one
    equally often; a plain rotation fails the second property (negative control)."""
    rows = [run.williams_order(n, r) for r in range(n if n % 2 == 0 else 2 * n)]
    assert all(sorted(row) == list(range(n)) for row in rows)
    assert len(set(Counter(row[0] for row in rows).values())) == 1
    pairs = Counter((row[i - 1], row[i]) for row in rows for i in range(1, n))
    assert len(pairs) == n * (n - 1) and len(set(pairs.values())) <= 1
    rotation = [[(r + i) % n for i in range(n)] for r in range(n)]
    rotated_pairs = Counter((row[i - 1], row[i]) for row in rotation for i in range(1, n))
    assert n < 3 or len(rotated_pairs) < n * (n - 1)


def test_vocab_precision_smoke(tmp_path: Path) -> None:
    """The exact-law script at 12 bits: schema, its own checks, and the bound it stores."""
    from benchmarks import vocab_precision
    from gumbel_lib.finite_precision import total_variation_bound

    path = vocab_precision.main(["--smoke", "--out", str(tmp_path)])
    report = json.loads(path.read_text())
    assert report["schema_version"] == vocab_precision.SCHEMA_VERSION
    assert report["kind"] == "vocab-precision" and MACHINE_KEYS <= set(report["machine"])
    settings = report["settings"]
    assert settings["bits"] == vocab_precision.SMOKE_BITS and settings["dtype"] == "float32"
    assert len(report["rows"]) == len(settings["vocabs"]) * len(settings["spreads"])
    assert report["check"]["relative_difference"] < 1e-12
    assert report["max_abs_head_plus_tail_minus_one"] < 1e-12
    for row in report["rows"]:
        assert 0.0 <= row["tail_grid"] <= 1.0 and 0.0 < row["tail_exact"] < 1.0
        assert row["tv_lower_bound"] == abs(row["tail_grid"] - row["tail_exact"])
        assert row["bound_53bit"] == total_variation_bound(row["vocab"])


def test_vocab_precision_law_matches_brute_force() -> None:
    """head_and_tail_law against running the grid sampler on every combination of grid
    points (4 bits, a head and one or two tail tokens, float32 sums, first index on ties).
    At spread 0 head and tail tie whenever they draw the same grid point: the law with the
    tail placed first differs, so the comparison can fail."""
    import numpy as np
    import torch

    from benchmarks.vocab_precision import head_and_tail_law
    from gumbel_lib.finite_precision import grid_noise

    bits = 4
    noise = grid_noise(bits, torch.float32)
    values = torch.from_numpy(noise).to(torch.float32)
    assert np.all(np.diff(noise) >= 0)
    for spread in (0.0, 1.0, 2.5):
        tail_law, head_law = head_and_tail_law(noise, spread, [1, 2])
        for c, (tail, head) in enumerate(zip(tail_law, head_law, strict=True), start=1):
            grid = torch.cartesian_prod(*[torch.arange(2**bits)] * (c + 1))
            logits = torch.tensor([0.0] + [-spread] * c, dtype=torch.float32)
            sums = logits + values[grid]
            brute_tail = float((sums.argmax(-1) != 0).double().mean())
            assert abs(tail - brute_tail) < 1e-15 and abs(head + tail - 1.0) < 1e-15
            if spread == 0.0:  # ties: the order of the tokens is part of the law
                tail_first = float((sums.flip(-1).argmax(-1) != c).double().mean())
                assert tail_first > tail + 1e-3


def test_vocab_tail_smoke(tmp_path: Path) -> None:
    """The tail-count script at a few hundred rows: schema and exact p-values."""
    import scipy.stats

    from benchmarks import vocab_tail

    report = json.loads(vocab_tail.main(["--smoke", "--out", str(tmp_path)]).read_text())
    assert report["schema_version"] == vocab_tail.SCHEMA_VERSION and report["kind"] == "vocab-tail"
    assert MACHINE_KEYS <= set(report["machine"])
    rows, tail = report["settings"]["rows"], report["settings"]["tail_tokens"]
    q = vocab_tail.tail_probability(tail, report["settings"]["spread"])
    assert report["tail_probability"] == q
    assert set(report["results"]) == set(vocab_tail.DTYPES)
    for dtype, by_name in report["results"].items():
        expected = {n for n, (_, dtypes) in vocab_tail.CONTENDERS.items() if dtype in dtypes}
        assert set(by_name) == expected
        for r in by_name.values():
            assert 0 <= r["tail_wins"] <= rows and 0 <= r["largest_index"] <= tail
            assert r["p_value"] == scipy.stats.binomtest(r["tail_wins"], rows, q).pvalue


def test_float32_gumbel_max_is_the_grid_sampler() -> None:
    """The benchmark's float32 sampler adds exactly grid_noise(24)'s value at each drawn grid
    point (so the exact law of the chapter is its law); a 53-bit draw would not match."""
    import torch

    from benchmarks.vocab_tail import float32_gumbel_max
    from gumbel_lib.finite_precision import grid_noise

    logits = torch.randn(64, 300, generator=torch.Generator().manual_seed(0))
    tokens = float32_gumbel_max(logits, torch.Generator().manual_seed(1))
    u = torch.rand(logits.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    noise = torch.from_numpy(grid_noise(24, torch.float32)).float()
    k = (u.double() * 2**24).long()
    assert torch.equal(tokens, (logits + noise[k]).argmax(-1))
    g53 = -torch.log(
        -torch.log(
            torch.rand(
                logits.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
            )
        )
    )
    assert not torch.equal(tokens, (logits.double() + g53).argmax(-1))


def test_tokens_smoke(tmp_path: Path) -> None:
    from benchmarks import tokens

    report = json.loads(tokens.main(["--smoke", "--out", str(tmp_path)]).read_text())
    assert report["kind"] == "tokens" and MACHINE_KEYS <= set(report["machine"])
    (row,) = report["rows"]
    assert (row["batch"], row["vocab"], row["threads"]) == (*tokens.SMOKE_SHAPES[0], 1)
    assert set(row["ratios"]) == {tokens.OURS_OFF, *tokens.RIVALS}
    for name in (tokens.OURS, tokens.OURS_OFF, *tokens.RIVALS):
        t = row["timings"][name]
        assert 0 < t["q1_ms"] <= t["median_ms"] <= t["q3_ms"]


def test_tricks_smoke(tmp_path: Path) -> None:
    from benchmarks import tricks

    report = json.loads(tricks.main(["--smoke", "--out", str(tmp_path)]).read_text())
    assert report["kind"] == "tricks" and set(report["gains"]) == set(tricks.DEVICES)
    for by_shape in report["gains"].values():
        (row,) = by_shape.values()
        assert all(math.isfinite(ratio) and ratio > 0 for ratio in row.values())


def test_each_switched_off_device_changes_no_result() -> None:
    """Switching a device off must leave the samples as they were: the benchmark compares
    two ways of computing the same thing (bit for bit, or for the unshifted quotient, the
    formula's rounding)."""
    import torch

    import gumbel_lib as gl
    from benchmarks import tricks

    logits = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    for name, patches in tricks.DEVICES.items():
        samples = []
        for off in (False, True):
            gen = torch.Generator().manual_seed(1)
            if off:
                with tricks.switched_off(patches):
                    samples.append(gl.gumbel_softmax(logits, 0.5, generator=gen))
            else:
                samples.append(gl.gumbel_softmax(logits, 0.5, generator=gen))
        torch.testing.assert_close(samples[0], samples[1], rtol=1e-6, atol=1e-7, msg=name)
