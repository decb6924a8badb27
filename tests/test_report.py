"""benchmarks/report.py: the tables of the chapter *Numerics and performance*.

Deterministic: nothing here times anything or draws at random. Hand-made results files pin
down the arithmetic (per-round ratios, not ratios of medians; a direction counted only where
the whole interquartile range lies on one side; samples counted as rows, not entries), and
the four scripts run once at smoke size so that every table is built from files of the
schemas the chapter reads.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from benchmarks import numerics, report, run, tokens, tricks


def times(*values: float) -> dict:
    return {"median_ms": statistics.median(values), "times_ms": list(values)}


def ratio_entry(median: float, q1: float | None = None, q3: float | None = None) -> dict:
    quartiles = {"median": median, "q1": median if q1 is None else q1}
    quartiles["q3"] = median if q3 is None else q3
    return {mode: dict(quartiles) for mode in ("on", "off")}


def tiny_speed(ours_on: list[float], ours_off: list[float], reference: list[float]) -> dict:
    """A speed file with one shape, one thread count and the groups of COMPARISONS; every
    group times ours as given, and every rival's stored ratio is 2 except one at 0.5 and, for
    top-k, one whose median 0.5 has the interquartile range [0.25, 1.5]."""
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
    ratios[f"top-{k} without replacement"][f"multinomial(softmax, {k})"] = ratio_entry(
        0.5, 0.25, 1.5
    )
    return {
        "machine": {"description": "CPU: test <machine> & co"},
        "settings": {"k": k, "rounds": len(ours_on), "threads": [1]},
        "shapes": [{"shape": [4, 3], "by_threads": {"1": {"timings": timings, "ratios": ratios}}}],
    }


def test_validation_cost_is_the_median_of_per_round_ratios() -> None:
    # rounds: on/off = 0.5, 3, 3 -> median 3, quartiles 1.75 and 3; the ratio of the medians,
    # 3 / 2, would be 1.5
    speed = tiny_speed([1.0, 3.0, 6.0], [2.0, 1.0, 2.0], [1.0, 1.0, 1.0])
    shape, group = (4, 3), "categorical sample"
    assert report.validation_extra(speed, shape, "1", group) == report.Spread(2.0, 0.75, 2.0)
    medians = (
        report.time_spread(speed, shape, "1", group).median
        / report.time_spread(speed, shape, "1", group, run.OURS_OFF).median
    )
    assert medians == 1.5  # the negative control: not what the table shows
    assert report.validation_extra_us(speed, shape, "1", group).median == 2e3  # -1, 2, 4 ms
    row = next(r for r in report.validation_table(speed, "1").rows if r[0] == "gumbel_max")
    assert row == ["gumbel_max", "+200%\n[+75, +200]"]
    # a range that contains 0 is marked undecided, whatever the sign of the median
    mixed = tiny_speed([1.0, 3.0, 1.0], [2.0, 1.0, 1.0], [1.0, 1.0, 1.0])  # 0.5, 3, 1
    (cell,) = {c[-1] for c in report.validation_cells(mixed) if c[0] == "gumbel_max"}
    assert cell.side(0.0) == 0 and cell.text(0.0, percent=True) == "0%*\n[-25, +100]"


def test_slower_and_faster_need_the_whole_interquartile_range() -> None:
    speed = tiny_speed([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    half = report.Spread(0.5, 0.5, 0.5)
    assert report.decided(speed, -1) == [("4 x 3", "1", "gumbel_max", "multinomial(p, 1)", half)]
    # median 0.5 with q3 = 1.5: not counted as slower, but as undecided (the control)
    (undecided,) = report.decided(speed, 0)
    assert undecided[2:] == (
        "gumbel_topk(k=8)",
        "multinomial(p, 8)",
        report.Spread(0.5, 0.25, 1.5),
    )
    assert len(report.decided(speed, 1)) == len(report.COMPARISONS) - 2
    table = report.speed_table(speed, "1")
    assert len(table.rows) == len(report.COMPARISONS)
    assert table.rows[6] == ["gumbel_max\nvs multinomial(p, 1)", "0.50\n[0.50, 0.50]"]
    assert table.rows[8] == ["gumbel_topk(k=8)\nvs multinomial(p, 8)", "0.50*\n[0.25, 1.50]"]
    assert table.rows[-1][0] == "concrete_log_prob\nvs ROHC.log_prob"
    assert "CPU: test <machine> & co, 1 thread." in table.caption


def test_spread_quartiles_sides_and_text() -> None:
    values = [4.0, 1.0, 3.0, 2.0, 10.0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    spread = report.Spread.of(values)
    assert spread == report.Spread(median, q1, q3) == report.Spread(3.0, 2.0, 4.0)
    assert spread.side(1.0) == 1 and spread.side(5.0) == -1 and spread.side(2.0) == 0
    assert spread.inverse() == report.Spread(1 / 3, 1 / 4, 1 / 2)
    assert spread.text() == "3.00\n[2.00, 4.00]" and spread.text(3.0) == "3.00*\n[2.00, 4.00]"
    assert report.Spread(45.7, 0.88, 150.0).text() == "45.7*\n[0.88, 150]"
    assert report.Spread(0.25, 0.2, 0.5).inline("{:.0%}") == "25% [20%, 50%]"
    assert report.Spread(0.004, -0.003, 0.3).text(None, percent=True) == "0%\n[0, +30]"


def test_machine_omits_the_default_thread_count() -> None:
    for n in (1, 2):
        description = f"CPU: x (AVX2), 2 cores, torch 2.13.0+cpu, {n} threads"
        assert report.machine({"machine": {"description": description}}) == (
            "CPU: x (AVX2), 2 cores, torch 2.13.0+cpu"
        )
    assert (report.threads_label(1), report.threads_label("2")) == ("1 thread", "2 threads")


def test_reference_ratios_are_paired_per_round() -> None:
    # ours / reference per round: 0.5, 0.5, 4 -> median 0.5 but q3 2.25: not below one (the
    # ratio of the medians, 2 / 2, would be 1)
    speed = tiny_speed([1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [2.0, 4.0, 1.0])
    assert report.below_reference(speed) == []
    spread = report.paired(speed, (4, 3), "1", ("categorical sample", run.OURS), report.REFERENCE)
    assert spread == report.Spread(0.5, 0.5, 2.25)
    # 0.5, 0.5, 0.8: the whole range below one
    speed = tiny_speed([1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [2.0, 4.0, 5.0])
    below = report.below_reference(speed)
    assert len(below) == len(report.sampler_groups(speed)) == 6  # the density draws nothing
    assert all(r == report.Spread(0.5, 0.5, 0.65) for *_, r in below)
    rows = report.reference_table(speed, "1").rows
    assert rows[-1] == ["float64 uniform draw alone", "1.00*\n[1.00, 1.00]"]
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
    two_lines = report.Table(["a", "b"], [["x\nvs y", "1.00\n[0.50, 2.00]"]])
    assert repr(two_lines).splitlines()[1] == "x vs y  1.00 [0.50, 2.00]"
    assert "1.00<br><small>[0.50, 2.00]</small>" in two_lines._repr_html_()
    label = report.Table(["a"], [["f(hard)\nvs g(x)"]])._repr_html_()  # labels break at "("
    assert "f<wbr>(hard)<br><small>vs g<wbr>(x)</small>" in label


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
    for results in (speed, tokens_file, tricks_file):
        assert not report.machine(results).endswith("threads")
    assert report.gpu_files(smoke_files) == []
    tables = [
        report.speed_table(speed, "1"),
        report.reference_table(speed, "1"),
        report.validation_table(speed, "1"),
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
