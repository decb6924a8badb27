"""Tables from the benchmark results files, for the chapter *Numerics and performance*.

The chapter reads ``benchmarks/results/*.json`` through these helpers, so that its cells show
tables rather than JSON plumbing. Each ``*_table`` function returns a :class:`Table`: a header
and rows of strings, which a notebook displays as an HTML table and prints as fixed-width
text (what nbval compares). Nothing here times anything; the files come from
``benchmarks/run.py`` (speed and memory), ``numerics.py``, ``tokens.py`` and ``tricks.py``,
whose docstrings give their schemas. Every ratio is a median of per-round ratios, shown with
their interquartile range (a :class:`Spread`): the scripts store those of each rival against
ours, and the per-round times from which :func:`paired` forms the others (validation on
against off, a component against the reference). A direction (faster, slower, a cost) is
counted only where the whole interquartile range lies on one side of the level.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import run, tokens, tricks

RESULTS = Path(__file__).resolve().parent / "results"
SOFT, HARD, ROC = "softmax soft, forward", "softmax hard, forward", "RelaxedOneHotCategorical"
BACKWARD = " + backward"
TOPK = "top-{k} without replacement"
REFERENCE = (run.FLOOR, "uniform + softmax")  # the file's "floor": a reference, not a floor
DRAW = (run.COMPONENTS, "uniform draw, float64 (rand)")  # every sampler of ours makes it
UNDECIDED = "*"  # marks a figure whose interquartile range contains the level (1, or 0%)
# our call as the tables name it, per group of the speed file ({k} is the file's k)
CALLS = {
    SOFT: "gumbel_softmax",
    HARD: "gumbel_softmax(hard)",
    SOFT + BACKWARD: "gumbel_softmax + bwd",
    HARD + BACKWARD: "gumbel_softmax(hard) + bwd",
    "categorical sample": "gumbel_max",
    TOPK: "gumbel_topk(k={k})",
    "Concrete log-density": "concrete_log_prob",
}
# (group of the speed file, rival in that group, the rival as the tables name it)
COMPARISONS = [
    (SOFT, "F.gumbel_softmax", "F.gumbel_softmax"),
    (SOFT, ROC, "ROHC.rsample"),
    (HARD, "F.gumbel_softmax", "F.gumbel_softmax"),
    (SOFT + BACKWARD, "F.gumbel_softmax", "F.gumbel_softmax"),
    (SOFT + BACKWARD, ROC, "ROHC.rsample"),
    (HARD + BACKWARD, "F.gumbel_softmax", "F.gumbel_softmax"),
    ("categorical sample", "multinomial(softmax, 1)", "multinomial(p, 1)"),
    ("categorical sample", "Categorical.sample", "Categorical.sample"),
    (TOPK, "multinomial(softmax, {k})", "multinomial(p, {k})"),
    ("Concrete log-density", f"{ROC}.log_prob", "ROHC.log_prob"),
]


@dataclass(frozen=True)
class Spread:
    """The median and the quartiles ``q1 <= median <= q3`` of per-round values."""

    median: float
    q1: float
    q3: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        """The quartiles as ``benchmarks/run.py`` stores them (``statistics.quantiles``,
        inclusive method)."""
        q = run.quartiles(list(values))
        return cls(q["median"], q["q1"], q["q3"])

    def side(self, level: float = 1.0) -> int:
        """1 when the whole interquartile range lies above ``level``, -1 when below, 0 when
        it contains ``level``: then the run does not decide the direction."""
        return 1 if self.q1 > level else -1 if self.q3 < level else 0

    def inverse(self) -> Spread:
        """The spread of ``1 / value`` (the quartiles swap)."""
        return Spread(1 / self.median, 1 / self.q3, 1 / self.q1)

    @classmethod
    def stored(cls, q: dict) -> Spread:
        """From a results file's ``{"median": ..., "q1": ..., "q3": ...}``."""
        return cls(float(q["median"]), float(q["q1"]), float(q["q3"]))

    def minus(self, x: float) -> Spread:
        return Spread(self.median - x, self.q1 - x, self.q3 - x)

    def times(self, c: float) -> Spread:
        return Spread(self.median * c, self.q1 * c, self.q3 * c)

    def inline(self, fmt: str = "{:.2f}") -> str:
        """``median [q1, q3]`` on one line, each formatted with ``fmt``, for prose."""
        return f"{fmt.format(self.median)} [{fmt.format(self.q1)}, {fmt.format(self.q3)}]"

    def text(self, level: float | None = 1.0, percent: bool = False) -> str:
        """``median`` and, on a second line, ``[q1, q3]`` (percentages without their % sign,
        to keep the column narrow); the median is marked with :data:`UNDECIDED` when the
        range contains ``level`` (no mark for ``None``)."""
        fig = _percent if percent else _figure
        mark = UNDECIDED if level is not None and self.side(level) == 0 else ""
        low, high = (fig(q).rstrip("%") for q in (self.q1, self.q3))
        return f"{fig(self.median)}{mark}\n[{low}, {high}]"


def _figure(x: float) -> str:
    """Two decimals below 10, one below 100, none from 100 on."""
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}" if abs(x) < 100 else f"{x:,.0f}"


def _percent(x: float) -> str:
    """A signed whole percentage; 0% unsigned (``+.0%`` would print ``-0%``)."""
    text = f"{x:+.0%}"
    return "0%" if text in ("+0%", "-0%") else text


@dataclass
class Table:
    """A header, rows of strings and a caption: HTML in a notebook, fixed-width text in print.

    A line break in a cell (``"\\n"``) is a line break in HTML, the lines after the first in
    smaller type, and a space in text."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""

    def __repr__(self) -> str:
        table = [[c.replace("\n", " ") for c in row] for row in [self.header, *self.rows]]
        widths = [max(len(row[i]) for row in table) for i in range(len(self.header))]
        lines = [self.caption] if self.caption else []
        for row in table:
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        def lines(cell: str, label: bool) -> str:
            # a label may also break before a bracket: gumbel_softmax / (hard) + bwd
            escaped = [html.escape(line) for line in cell.split("\n")]
            first, *rest = [e.replace("(", "<wbr>(") for e in escaped] if label else escaped
            return first + "".join(f"<br><small>{line}</small>" for line in rest)

        def cells(row: list[str], tag: str) -> str:
            # the first column is a label and may wrap; figures do not (headers may)
            styles = ["text-align:left"] + [
                "text-align:right" + ("" if tag == "th" else ";white-space:nowrap")
            ] * (len(row) - 1)
            return "".join(
                f'<{tag} style="{style};padding:0.1em 0.3em">{lines(c, i == 0)}</{tag}>'
                for i, (c, style) in enumerate(zip(row, styles, strict=True))
            )

        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        head = f"<thead><tr>{cells(self.header, 'th')}</tr></thead>"
        body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in self.rows)
        return f"<table>{caption}{head}<tbody>{body}</tbody></table>"


def load(name: str, folder: Path = RESULTS) -> dict | None:
    """The results file ``folder/name`` as a dict, or ``None`` when there is none."""
    path = folder / name
    return json.loads(path.read_text()) if path.exists() else None


def gpu_files(folder: Path = RESULTS) -> list[str]:
    """The names of the GPU results files in ``folder`` (``*-cuda*.json``)."""
    return sorted(p.name for p in folder.glob("*-cuda*.json"))


def machine(results: dict) -> str:
    """The machine a results file was measured on, without the process's default thread
    count (the tables give the threads they used)."""
    return re.sub(r", \d+ threads?$", "", results["machine"]["description"])


def threads_label(n: int | str) -> str:
    return f"{n} thread" + ("" if int(n) == 1 else "s")


def shape_label(shape: list[int] | tuple[int, ...]) -> str:
    return " x ".join(str(s) for s in shape)


def shapes(speed: dict) -> list[tuple[int, ...]]:
    return [tuple(e["shape"]) for e in speed["shapes"]]


def threads(speed: dict) -> list[str]:
    return [str(n) for n in speed["settings"]["threads"]]


def entry(speed: dict, shape: tuple[int, ...]) -> dict:
    """The speed file's entry for ``shape``."""
    return next(e for e in speed["shapes"] if tuple(e["shape"]) == tuple(shape))


def _k(text: str, speed: dict) -> str:
    return text.format(k=speed["settings"]["k"])


def call_name(speed: dict, group: str) -> str:
    """Our call in ``group`` (a group of the file, its ``k`` filled in), as the tables name it."""
    return next(_k(label, speed) for g, label in CALLS.items() if _k(g, speed) == group)


def comparisons(speed: dict) -> list[tuple[str, str, str]]:
    """:data:`COMPARISONS` with the file's ``k``."""
    return [(_k(g, speed), _k(r, speed), _k(label, speed)) for g, r, label in COMPARISONS]


def ratio_spread(
    speed: dict, shape: tuple[int, ...], n: str, group: str, rival: str, mode: str = "on"
) -> Spread:
    """The per-round ratios ``rival / ours`` as the file stores them (median, quartiles)."""
    return Spread.stored(entry(speed, shape)["by_threads"][n]["ratios"][group][rival][mode])


def times_ms(speed: dict, shape: tuple[int, ...], n: str, group: str, name: str) -> list[float]:
    """Every round's time per call of ``name`` in ``group``, in milliseconds."""
    return entry(speed, shape)["by_threads"][n]["timings"][group][name]["times_ms"]


def time_spread(
    speed: dict, shape: tuple[int, ...], n: str, group: str, name: str = run.OURS
) -> Spread:
    """The time per call of ``name`` (by default ours) in ``group`` over the rounds, in ms."""
    return Spread.of(times_ms(speed, shape, n, group, name))


def paired(
    speed: dict, shape: tuple[int, ...], n: str, a: tuple[str, str], b: tuple[str, str]
) -> Spread:
    """The per-round ratios ``time(a) / time(b)``; ``a`` and ``b`` are (group, name)."""
    top, bottom = times_ms(speed, shape, n, *a), times_ms(speed, shape, n, *b)
    return Spread.of(x / y for x, y in zip(top, bottom, strict=True))


def validation_extra(speed: dict, shape: tuple[int, ...], n: str, group: str) -> Spread:
    """The per-round ``time with validation / time without``, minus one: the extra time."""
    return paired(speed, shape, n, (group, run.OURS), (group, run.OURS_OFF)).minus(1)


def validation_extra_us(speed: dict, shape: tuple[int, ...], n: str, group: str) -> Spread:
    """The per-round ``time with validation - time without``, in microseconds."""
    on = times_ms(speed, shape, n, group, run.OURS)
    off = times_ms(speed, shape, n, group, run.OURS_OFF)
    return Spread.of(1e3 * (a - b) for a, b in zip(on, off, strict=True))


def comparison_cells(speed: dict, mode: str = "on") -> list[tuple[str, str, str, str, Spread]]:
    """Every comparison as ``(shape, threads, ours, theirs, spread)``, in table order."""
    return [
        (
            shape_label(s),
            n,
            call_name(speed, group),
            label,
            ratio_spread(speed, s, n, group, rival, mode),
        )
        for group, rival, label in comparisons(speed)
        for s in shapes(speed)
        for n in threads(speed)
    ]


def decided(speed: dict, side: int, mode: str = "on") -> list[tuple[str, str, str, str, Spread]]:
    """The comparisons whose interquartile range lies wholly above 1 (``side = 1``: ours
    faster), wholly below (``-1``: PyTorch's faster), or contains 1 (``0``: undecided)."""
    return [cell for cell in comparison_cells(speed, mode) if cell[-1].side() == side]


def validation_cells(speed: dict) -> list[tuple[str, tuple[int, ...], str, Spread]]:
    """Every call, shape and thread count with validation's extra time, in table order."""
    return [
        (call_name(speed, g), s, n, validation_extra(speed, s, n, g))
        for g in groups(speed)
        for n in threads(speed)
        for s in shapes(speed)
    ]


def groups(speed: dict) -> list[str]:
    """The groups of the speed file that hold one of our calls, in table order."""
    return list(dict.fromkeys(group for group, _, _ in comparisons(speed)))


def sampler_groups(speed: dict) -> list[str]:
    """:func:`groups` without the density, which draws nothing."""
    return [g for g in groups(speed) if g != "Concrete log-density"]


def below_reference(speed: dict) -> list[tuple[str, str, str, Spread]]:
    """Every sampler call whose time / the reference's lies wholly below 1 (interquartile
    range), as ``(shape, threads, call, spread)``, in the order of :func:`reference_table`."""
    return [
        (shape_label(s), n, call_name(speed, g), r)
        for g in sampler_groups(speed)
        for n in threads(speed)
        for s in shapes(speed)
        if (r := paired(speed, s, n, (g, run.OURS), REFERENCE)).side() == -1
    ]


def component_ms(speed: dict, shape: tuple[int, ...], n: str = "1") -> dict[str, Spread]:
    """Time per call of each component (a draw, a pass, a reduction) at ``shape``, in ms."""
    parts = entry(speed, shape)["by_threads"][n]["timings"][run.COMPONENTS]
    return {name: Spread.of(t["times_ms"]) for name, t in parts.items()}


def _ms(value: float) -> str:
    """Milliseconds with three significant digits, and whole numbers from 100 on."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


SPREAD_NOTE = "median [q1, q3] of the per-round ratios"
UNDECIDED_NOTE = f"{UNDECIDED}: the range contains {{}}, the direction is not decided"


def speed_table(speed: dict, n: str, mode: str = "on") -> Table:
    """Rows: our call against PyTorch's; columns: shapes; cells: theirs / ours at ``n``
    threads, median and interquartile range of the per-round ratios."""
    head = ["ours vs PyTorch"] + [shape_label(s) for s in shapes(speed)]
    rows = [
        [f"{call_name(speed, group)}\nvs {label}"]
        + [ratio_spread(speed, s, n, group, rival, mode).text() for s in shapes(speed)]
        for group, rival, label in comparisons(speed)
    ]
    caption = (
        f"{machine(speed)}, {threads_label(n)}. PyTorch's time / ours (above 1 ours is "
        f"faster), {SPREAD_NOTE} over {speed['settings']['rounds']} rounds; "
        f"{UNDECIDED_NOTE.format(1)}. Validation {mode}. + bwd: with the backward pass. "
        "ROHC: RelaxedOneHotCategorical."
    )
    return Table(head, rows, caption)


def reference_table(speed: dict, n: str) -> Table:
    """Our samplers' time / the reference's (a uniform draw and a softmax), and last the
    float64 uniform draw that each of them makes, per shape, at ``n`` threads."""
    calls = [(call_name(speed, g), (g, run.OURS)) for g in sampler_groups(speed)]
    calls.append(("float64 uniform draw alone", DRAW))
    rows = [
        [name] + [paired(speed, s, n, a, REFERENCE).text() for s in shapes(speed)]
        for name, a in calls
    ]
    caption = (
        f"Time / the reference's (uniform + softmax) at {threads_label(n)}, validation on: "
        f"{SPREAD_NOTE}; {UNDECIDED_NOTE.format(1)}"
    )
    return Table(["call"] + [shape_label(s) for s in shapes(speed)], rows, caption)


def validation_table(speed: dict, n: str) -> Table:
    """Per call and shape: time with validation / time without, minus one, at ``n`` threads."""
    rows = [
        [call_name(speed, g)]
        + [validation_extra(speed, s, n, g).text(0.0, percent=True) for s in shapes(speed)]
        for g in groups(speed)
    ]
    caption = (
        f"Extra time that validation costs our call at {threads_label(n)}, in %: "
        f"{SPREAD_NOTE} on / off, minus one; {UNDECIDED_NOTE.format(0)}"
    )
    return Table(["call"] + [shape_label(s) for s in shapes(speed)], rows, caption)


def component_table(speed: dict, n: str = "1") -> Table:
    """Nanoseconds per entry of each component, per shape, at ``n`` threads."""
    head = ["component, ns per entry"] + [shape_label(s) for s in shapes(speed)]
    parts = {s: component_ms(speed, s, n) for s in shapes(speed)}
    rows = [
        [name] + [parts[s][name].times(1e6 / math.prod(s)).text(None) for s in shapes(speed)]
        for name in parts[shapes(speed)[0]]
    ]
    caption = (
        f"Time per entry, median [q1, q3] over the rounds, {threads_label(n)}, float32 logits"
    )
    return Table(head, rows, caption)


def memory_table(speed: dict) -> Table:
    """Saved-for-backward bytes and peak memory of one forward + backward, in logits' sizes."""
    head, rows = ["sampler"], {}
    for e in [e for e in speed["shapes"] if "memory" in e]:
        size = 4 * math.prod(e["shape"])  # float32 logits
        head += [f"saved, {shape_label(e['shape'])}", f"peak, {shape_label(e['shape'])}"]
        for name, m in e["memory"].items():
            peak = m.get("peak_rss_bytes") or m.get("cuda_peak_bytes")
            saved = f"{m['saved_for_backward_bytes'] / size:.2f}"
            rows.setdefault(name, [name]).extend([saved, f"{peak / size:.2f}" if peak else "n/a"])
    caption = "One forward + backward pass, in multiples of the logits' bytes"
    return Table(head, list(rows.values()), caption)


def samples_and_entries(numerics: dict, dtype: str) -> tuple[int, int]:
    """Relaxed samples (rows of ``chunk[1]`` categories) and entries drawn for ``dtype``."""
    entries = numerics["dtypes"][dtype]["draws"]
    return entries // numerics["settings"]["chunk"][1], entries


def nonfinite_table(numerics: dict) -> Table:
    """Per dtype: samples, entries, and the NaN and inf entries of both libraries."""
    head = ["dtype", "samples", "entries", "ours NaN", "ours inf", "torch NaN", "torch inf"]
    rows = []
    for name, stats in numerics["dtypes"].items():
        ours, theirs = stats["gumbel_lib"], stats["torch"]
        samples, entries = samples_and_entries(numerics, name)
        counts = (ours["nan"], ours["inf"], theirs["nan"], theirs["inf"])
        rows.append([name, f"{samples:,}", f"{entries:,}", *(f"{c:,}" for c in counts)])
    categories = numerics["settings"]["chunk"][1]
    caption = f"Relaxed samples of {categories:,} categories, tau = {numerics['settings']['tau']}"
    return Table(head, rows, caption)


def noise_table(numerics: dict) -> Table:
    """Per dtype: the extreme noise values each library drew, and our documented bounds."""
    head = ["dtype", "ours, drawn", "ours, bounds", "torch, drawn", "torch, not finite"]
    rows = []
    for name, stats in numerics["dtypes"].items():
        ours, theirs = stats["gumbel_lib"], stats["torch"]
        rows.append(
            [
                name,
                f"[{ours['noise_min']:.3f}, {ours['noise_max']:.3f}]",
                f"[{ours['bound_min']:.3f}, {ours['bound_max']:.3f}]",
                f"[{theirs['noise_min']:.3f}, {theirs['noise_max']:.3f}]",
                f"{theirs['noise_nonfinite']:,}",
            ]
        )
    return Table(head, rows, "Gumbel noise drawn in the dtype, finite values only")


def edge_table(numerics: dict) -> Table:
    """Per edge case, both libraries: non-finite outputs, NaN gradients, masked non-zeros."""
    rows = []
    for row in numerics["edge_cases"]:
        cells = []
        for lib in ("gumbel_lib", "torch"):
            r = row[lib]
            masked = r["masked_output_nonzero"] + r["masked_gradient_nonzero"]
            cells.append(f"{r['output_nonfinite']}, {r['gradient_nan']}, {masked}")
        rows.append([row["case"], *cells])
    caption = "Non-finite outputs, NaN gradients, masked entries not exactly 0 (1000 rows)"
    return Table(["case", "ours", "torch"], rows, caption)


def tokens_table(report: dict, n: int) -> Table:
    """Per batch and vocabulary at ``n`` threads: our ms and each rival's time / ours."""
    rows = [
        [f"{r['batch']} x {r['vocab']:,}", _ms(r["timings"][tokens.OURS]["median_ms"])]
        + [Spread.stored(r["ratios"][rival]).text() for rival in tokens.RIVALS]
        for r in report["rows"]
        if r["threads"] == n
    ]
    caption = (
        f"{machine(report)}, {threads_label(n)}. sample_tokens in ms (median), and each "
        f"rival's time / ours, {SPREAD_NOTE} over {report['settings']['rounds']} rounds; "
        f"{UNDECIDED_NOTE.format(1)}"
    )
    return Table(["batch x vocabulary", "ours, ms", *tokens.RIVALS], rows, caption)


TOUCHED = {  # the calls on whose code path each speed device lies (None: all of them)
    "NumPy float64 logarithms": None,
    "unshifted quotient under validation": ("soft fwd", "soft fwd+bwd", "hard fwd+bwd"),
    "-(centred + g) in the noise's storage": ("gumbel_max", "gumbel_topk", "sample_tokens"),
}


def trick_gains(report: dict, device: str) -> dict[str, list[float]]:
    """Per shape (as stored, ``str(tuple)``): the gains of ``device`` on the calls it touches."""
    by_shape = report["gains"][device]
    return {
        shape: [gains[call] for call in TOUCHED.get(device) or gains]
        for shape, gains in by_shape.items()
    }


def tricks_table(report: dict) -> Table:
    """Per shape and kept device: the lowest and highest gain over the calls it touches."""
    gains = {device: trick_gains(report, device) for device in tricks.DEVICES}
    keys = list(next(iter(gains.values())))  # shapes, as str(tuple)
    rows = [
        [key.strip("()").rstrip(",").replace(", ", " x ")]
        + [f"{min(gains[d][key]):.2f}–{max(gains[d][key]):.2f}" for d in tricks.DEVICES]
        for key in keys
    ]
    caption = (
        f"{machine(report)}, {threads_label(report['settings']['threads'])}. Time without the "
        "device / with it, the median over "
        f"{report['settings']['rounds']} rounds (the file stores no spread): lowest and "
        "highest over the calls it touches"
    )
    return Table(["shape", *tricks.DEVICES], rows, caption)
