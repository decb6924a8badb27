"""The benchmark scripts run end to end at tiny sizes and write well-formed results.

Never asserts on timings: speed is measured by `make bench`, not by tests.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import numerics, run


def test_speed_smoke(tmp_path: Path) -> None:
    report = json.loads(run.main(["--smoke", "--out", str(tmp_path)]).read_text())
    assert report["schema_version"] == run.SCHEMA_VERSION and report["kind"] == "speed"
    assert report["machine"]["cores"] >= 1 and "description" in report["machine"]
    for entry in report["shapes"]:
        assert entry["shape"] in [list(s) for s in run.SMOKE_SHAPES]
        for calls in entry["timings"].values():
            for t in calls.values():
                assert 0 < t["q1_ms"] <= t["median_ms"] <= t["q3_ms"]
        assert "gumbel_lib / floor" in entry["ratios"]["softmax soft, forward"]
        assert entry["memory"]["gumbel_lib soft"]["saved_for_backward_bytes"] > 0


def test_numerics_smoke(tmp_path: Path) -> None:
    report = json.loads(numerics.main(["--smoke", "--out", str(tmp_path)]).read_text())
    assert set(report["dtypes"]) == {"float32", "float16", "bfloat16"}
    for stats in report["dtypes"].values():
        ours = stats["gumbel_lib"]
        assert stats["draws"] >= 1e5
        assert ours["nan"] == 0 and ours["inf"] == 0  # our guarantee, not a timing
        assert ours["bound_min"] - 0.05 <= ours["noise_min"] <= ours["noise_max"]
        assert ours["noise_max"] <= ours["bound_max"] + 0.05
        assert math.isfinite(ours["tail_mass_above"])
    assert all(row["gumbel_lib"]["gradient_nan"] == 0 for row in report["edge_cases"])


def test_smoke_results_are_never_written_to_the_committed_folder() -> None:
    with pytest.raises(SystemExit):
        run.main(["--rounds", "1"])
    with pytest.raises(ValueError, match="--smoke needs --out"):
        run.results_path(None, "speed", run.torch.device("cpu"), smoke=True)
