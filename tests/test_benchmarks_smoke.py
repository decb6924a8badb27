"""The benchmark scripts run end to end at tiny sizes and write well-formed results.

Never asserts on timings: speed is measured by `make bench`, not by tests. The schema checks
below are what the chapter *Numerics and performance* relies on when it reads the committed
results files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import estimators, memory, numerics, run

MACHINE_KEYS = {"cpu", "cores", "torch_threads", "torch", "device", "date", "description"}


def test_speed_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run.main(["--smoke", "--out", str(tmp_path)])
    assert path.parent == tmp_path
    report = json.loads(path.read_text())
    assert report["schema_version"] == run.SCHEMA_VERSION and report["kind"] == "speed"
    assert MACHINE_KEYS <= set(report["machine"]) and report["machine"]["cores"] >= 1
    rounds = report["settings"]["rounds"]
    assert [e["shape"] for e in report["shapes"]] == [list(s) for s in run.SMOKE_SHAPES]
    for i, entry in enumerate(report["shapes"]):
        timings = entry["timings"]
        assert {run.FLOOR, run.COMPONENTS, "softmax soft, forward"} <= set(timings)
        for calls in timings.values():
            for t in calls.values():
                assert 0 < t["q1_ms"] <= t["median_ms"] <= t["q3_ms"]
                assert len(t["times_ms"]) == t["rounds"] == rounds
        # every contender group has a paired ratio per rival, and ours over the floor
        assert set(entry["ratios"]) == set(timings) - {run.FLOOR, run.COMPONENTS}
        for group, by_name in entry["ratios"].items():
            assert set(by_name) == (set(timings[group]) - {run.OURS}) | {"gumbel_lib / floor"}
            for r in by_name.values():
                assert 0 < r["q1"] <= r["median"] <= r["q3"]
        mem = entry["memory"]
        assert set(mem) == set(memory.samplers(0.5, None))
        assert all(m["saved_for_backward_bytes"] > 0 for m in mem.values())
        if i == 0 and memory.rss_supported():
            assert mem["gumbel_lib soft"]["peak_rss_bytes"] >= 0
    # --show prints the same tables from the file without running anything
    capsys.readouterr()
    run.main(["--show", str(path)])
    assert "gumbel_lib / floor" in capsys.readouterr().out


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
