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
