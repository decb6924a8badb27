"""benchmarks/report.py: the tables of the chapter *Numerics and performance*.

Deterministic: nothing here times anything or draws at random. Hand-made results files pin
down the arithmetic (per-round ratios, not ratios of medians; samples counted as rows, not
entries), and the four scripts run once at smoke size so that every table is built from
files of the schemas the chapter reads.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from benchmarks import numerics, report, run, tokens, tricks


def times(*values: float) -> dict:
    return {"median_ms": statistics.median(values), "times_ms": list(values)}


def ratio_entry(median: float) -> dict:
    return {mode: {"median": median, "q1": median, "q3": median} for mode in ("on", "off")}


def tiny_speed(ours_on: list[float], ours_off: list[float], reference: list[float]) -> dict:
    """A speed file with one shape, one thread count and the groups of COMPARISONS; every
    group times ours as given, and every rival's stored ratio is 2 except one at 0.5."""
    k = 8
    groups: dict[str, dict] = {}
    for group, rival, _ in [(g.format(k=k), r.format(k=k), x) for g, r, x in report.COMPARISONS]:
        groups.setdefault(group, {run.OURS: times(*ours_on), run.OURS_OFF: times(*ours_off)})
        groups[group][rival] = times(*ours_on)
    timings = {
        run.FLOOR: {"uniform + softmax": times(*reference)},
        run.COMPONENTS: {"uniform draw, float64 (rand)": times(*reference)},
        **groups,
    }
    ratios = {
        group: {r: ratio_entry(2.0) for r in calls if r not in (run.OURS, run.OURS_OFF)}
        for group, calls in groups.items()
    }
    ratios["categorical sample"]["multinomial(softmax, 1)"] = ratio_entry(0.5)
    return {
        "machine": {"description": "CPU: test <machine> & co"},
        "settings": {"k": k, "rounds": len(ours_on), "threads": [1]},
        "shapes": [{"shape": [4, 3], "by_threads": {"1": {"timings": timings, "ratios": ratios}}}],
    }


def test_validation_cost_is_the_median_of_per_round_ratios() -> None:
    # rounds: on/off = 0.5, 3, 3 -> median 3; the ratio of the medians, 3 / 2, would be 1.5
    speed = tiny_speed([1.0, 3.0, 6.0], [2.0, 1.0, 2.0], [1.0, 1.0, 1.0])
    shape, group = (4, 3), "categorical sample"
    assert report.validation_cost(speed, shape, "1", group) == 3.0
    assert report.validation_extra(speed, shape, "1", group) == 2.0
    medians = report.median_ms(speed, shape, "1", group) / report.median_ms(
        speed, shape, "1", group, run.OURS_OFF
    )
    assert medians == 1.5  # the negative control: not what the table shows
    assert report.validation_extra_us(speed, shape, "1", group) == 2e3  # on - off: -1, 2, 4
    row = next(r for r in report.validation_table(speed).rows if r[0] == "gumbel_max")
    assert row == ["gumbel_max", "1", "+200%"]


def test_slower_lists_exactly_the_ratios_below_one() -> None:
    speed = tiny_speed([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    assert report.slower(speed) == [("4 x 3", "1", "gumbel_max", "multinomial(p, 1)", 0.5)]
    table = report.speed_table(speed, "1")
    assert len(table.rows) == len(report.COMPARISONS)
    assert table.rows[6] == ["gumbel_max", "multinomial(p, 1)", "0.50"]
    assert [row[0] for row in table.rows][-2:] == ["gumbel_topk(k=8)", "concrete_log_prob"]
    assert "CPU: test <machine> & co" in table.caption


def test_reference_ratios_are_paired_per_round() -> None:
    # ours / reference per round: 0.5, 0.5, 4 -> median 0.5, below one; medians give 2 / 1
    speed = tiny_speed([1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [2.0, 4.0, 1.0])
    below = report.below_reference(speed)
    assert len(below) == len(report.sampler_groups(speed)) == 6  # the density draws nothing
    assert all(r == 0.5 for *_, r in below)
    rows = report.reference_table(speed).rows
    assert rows[-1] == ["float64 uniform draw alone", "1", "1.00"]
    assert "concrete_log_prob" not in [row[0] for row in rows]


def test_samples_are_rows_and_entries_are_draws() -> None:
    """The script's ``draws`` counts entries: 24 chunks of 4096 x 1024 are 98,304 samples."""
    file = {
        "settings": {"tau": 1.0, "chunk": [4096, 1024]},
        "dtypes": {
            "float16": {
                "draws": 24 * 4096 * 1024,
                "gumbel_lib": {"nan": 0, "inf": 0},
                "torch": {"nan": 2048, "inf": 0},
            }
        },
    }
    assert report.samples_and_entries(file, "float16") == (98_304, 100_663_296)
    (row,) = report.nonfinite_table(file).rows
    assert row == ["float16", "98,304", "100,663,296", "0", "0", "2,048", "0"]


def test_table_text_aligns_and_html_escapes() -> None:
    table = report.Table(["a", "bb"], [["x <y>", "1"], ["z", "10.5"]], "cap & <c>")
    assert repr(table).splitlines() == ["cap & <c>", "a        bb", "x <y>     1", "z      10.5"]
    html = table._repr_html_()
    assert "&lt;y&gt;" in html and "cap &amp; &lt;c&gt;" in html and "<y>" not in html
    assert html.count("<tr>") == 3 and html.count("nowrap") == 2  # figures only, not headers


@pytest.fixture(scope="module")
def smoke_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four scripts at smoke size (one thread for the speed script: a few seconds)."""
    out = tmp_path_factory.mktemp("results")
    run.main(["--smoke", "--out", str(out), "--threads", "1"])
    for script in (numerics, tokens, tricks):
        script.main(["--smoke", "--out", str(out)])
    return out


def test_every_table_reads_the_scripts_files(smoke_files: Path) -> None:
    speed = report.load("speed-cpu.json", smoke_files)
    numbers = report.load("numerics-cpu.json", smoke_files)
    tokens_file = report.load("tokens-cpu.json", smoke_files)
    tricks_file = report.load("tricks-cpu.json", smoke_files)
    assert report.load("speed-cuda.json", smoke_files) is None
    assert report.gpu_files(smoke_files) == []
    tables = [
        report.speed_table(speed, "1"),
        report.reference_table(speed),
        report.validation_table(speed),
        report.component_table(speed),
        report.memory_table(speed),
        report.nonfinite_table(numbers),
        report.noise_table(numbers),
        report.edge_table(numbers),
        report.tokens_table(tokens_file, 1),
        report.tricks_table(tricks_file),
    ]
    for table in tables:
        assert table.rows and all(len(row) == len(table.header) for row in table.rows)
        json.dumps(table.rows)  # plain strings
    assert tables[-1].header[1:] == list(tricks.DEVICES)
    assert set(report.TOUCHED) == set(tricks.DEVICES)
    for device in tricks.DEVICES:
        (gains,) = report.trick_gains(tricks_file, device).values()
        assert len(gains) == len(report.TOUCHED[device] or tricks_file["gains"][device]["(8, 10)"])
