"""Tables from the benchmark results files, for the chapter *Numerics and performance*.

The chapter reads ``benchmarks/results/*.json`` through these helpers, so that its cells show
tables rather than JSON plumbing. Each ``*_table`` function returns a :class:`Table`: a header
and rows of strings, which a notebook displays as an HTML table and prints as fixed-width
text (what nbval compares). Nothing here times anything; the files come from
``benchmarks/run.py`` (speed and memory), ``numerics.py``, ``tokens.py`` and ``tricks.py``,
whose docstrings give their schemas. Every ratio is a median of per-round ratios: the scripts
store those of each rival against ours, and the per-round times from which :func:`paired`
forms the others (validation on against off, a component against the reference).
"""

from __future__ import annotations

import html
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import run, tokens, tricks

RESULTS = Path(__file__).resolve().parent / "results"
SOFT, HARD, ROC = "softmax soft, forward", "softmax hard, forward", "RelaxedOneHotCategorical"
BACKWARD = " + backward"
TOPK = "top-{k} without replacement"
REFERENCE = (run.FLOOR, "uniform + softmax")  # the file's "floor": a reference, not a floor
DRAW = (run.COMPONENTS, "uniform draw, float64 (rand)")  # every sampler of ours makes it
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


@dataclass
class Table:
    """A header, rows of strings and a caption: HTML in a notebook, fixed-width text in print."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""

    def __repr__(self) -> str:
        table = [self.header, *self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(self.header))]
        lines = [self.caption] if self.caption else []
        for row in table:
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        def cells(row: list[str], tag: str) -> str:
            # the first column is a label and may wrap; figures do not (headers may)
            styles = ["text-align:left"] + [
                "text-align:right" + ("" if tag == "th" else ";white-space:nowrap")
            ] * (len(row) - 1)
            return "".join(
                f'<{tag} style="{style};padding:0.1em 0.5em">{html.escape(c)}</{tag}>'
                for c, style in zip(row, styles, strict=True)
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


def ratio(
    speed: dict, shape: tuple[int, ...], n: str, group: str, rival: str, mode: str = "on"
) -> float:
    """Median of the per-round ratios ``rival / ours`` as the file stores it."""
    by_mode = entry(speed, shape)["by_threads"][n]["ratios"][group][rival]
    return float(by_mode[mode]["median"])


def median_ms(
    speed: dict, shape: tuple[int, ...], n: str, group: str, name: str = run.OURS
) -> float:
    """The median time per call of ``name`` (by default ours) in ``group``, in milliseconds."""
    return float(entry(speed, shape)["by_threads"][n]["timings"][group][name]["median_ms"])


def times_ms(speed: dict, shape: tuple[int, ...], n: str, group: str, name: str) -> list[float]:
    """Every round's time per call of ``name`` in ``group``, in milliseconds."""
    return entry(speed, shape)["by_threads"][n]["timings"][group][name]["times_ms"]


def paired(
    speed: dict, shape: tuple[int, ...], n: str, a: tuple[str, str], b: tuple[str, str]
) -> float:
    """Median over the rounds of ``time(a) / time(b)``; ``a`` and ``b`` are (group, name)."""
    top, bottom = times_ms(speed, shape, n, *a), times_ms(speed, shape, n, *b)
    return statistics.median(x / y for x, y in zip(top, bottom, strict=True))


def validation_cost(speed: dict, shape: tuple[int, ...], n: str, group: str) -> float:
    """Median over the rounds of ``time with validation / time without``, ours only."""
    return paired(speed, shape, n, (group, run.OURS), (group, run.OURS_OFF))


def validation_extra(speed: dict, shape: tuple[int, ...], n: str, group: str) -> float:
    """:func:`validation_cost` minus one: the extra time as a fraction."""
    return validation_cost(speed, shape, n, group) - 1


def validation_extra_us(speed: dict, shape: tuple[int, ...], n: str, group: str) -> float:
    """Median over the rounds of ``time with validation - time without``, in microseconds."""
    on = times_ms(speed, shape, n, group, run.OURS)
    off = times_ms(speed, shape, n, group, run.OURS_OFF)
    return 1e3 * statistics.median(a - b for a, b in zip(on, off, strict=True))


def slower(speed: dict, mode: str = "on") -> list[tuple[str, str, str, str, float]]:
    """Every comparison in which PyTorch's call was the faster (ratio below 1), as
    ``(shape, threads, ours, theirs, ratio)``, in the order of :func:`speed_table`."""
    return [
        (shape_label(s), n, call_name(speed, group), label, r)
        for group, rival, label in comparisons(speed)
        for s in shapes(speed)
        for n in threads(speed)
        if (r := ratio(speed, s, n, group, rival, mode)) < 1
    ]


def component_ms(speed: dict, shape: tuple[int, ...], n: str = "1") -> dict[str, float]:
    """Median milliseconds of each component (a draw, a pass, a reduction) at ``shape``."""
    parts = entry(speed, shape)["by_threads"][n]["timings"][run.COMPONENTS]
    return {name: t["median_ms"] for name, t in parts.items()}


def _ms(value: float) -> str:
    """Milliseconds with three significant digits, and whole numbers from 100 on."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _per_shape(
    speed: dict, n: str, value: Callable[..., float], *args: object, fmt: str = "{:.2f}"
) -> list[str]:
    """One cell per shape: ``value(speed, shape, n, *args)``, formatted."""
    return [fmt.format(value(speed, s, n, *args)) for s in shapes(speed)]


def groups(speed: dict) -> list[str]:
    """The groups of the speed file that hold one of our calls, in table order."""
    return list(dict.fromkeys(group for group, _, _ in comparisons(speed)))


def sampler_groups(speed: dict) -> list[str]:
    """:func:`groups` without the density, which draws nothing."""
    return [g for g in groups(speed) if g != "Concrete log-density"]


def below_reference(speed: dict) -> list[tuple[str, str, str, float]]:
    """Every sampler call faster than the reference, as ``(shape, threads, call, ratio)``
    with ``ratio`` = ours / reference below 1, in the order of :func:`reference_table`."""
    return [
        (shape_label(s), n, call_name(speed, g), r)
        for g in sampler_groups(speed)
        for n in threads(speed)
        for s in shapes(speed)
        if (r := paired(speed, s, n, (g, run.OURS), REFERENCE)) < 1
    ]


def speed_table(speed: dict, n: str, mode: str = "on") -> Table:
    """Rows: our call against PyTorch's; columns: shapes; cells: theirs / ours at ``n``
    threads."""
    head = ["gumbel_lib", "PyTorch"] + [shape_label(s) for s in shapes(speed)]
    rows = [
        [call_name(speed, group), label] + _per_shape(speed, n, ratio, group, rival, mode)
        for group, rival, label in comparisons(speed)
    ]
    caption = (
        f"{speed['machine']['description']}. PyTorch's time / ours at {n} thread(s), median "
        f"of {speed['settings']['rounds']} paired rounds, validation {mode}; above 1 "
        "gumbel_lib is faster. + bwd: with the backward pass. ROHC: RelaxedOneHotCategorical."
    )
    return Table(head, rows, caption)


def reference_table(speed: dict) -> Table:
    """Our samplers' time / the reference's (a uniform draw and a softmax), and last the
    float64 uniform draw that each of them makes, per shape and thread count."""
    head = ["call", "threads"] + [shape_label(s) for s in shapes(speed)]
    calls = [(call_name(speed, g), (g, run.OURS)) for g in sampler_groups(speed)]
    calls.append(("float64 uniform draw alone", DRAW))
    rows = [
        [name if n == threads(speed)[0] else "", n] + _per_shape(speed, n, paired, a, REFERENCE)
        for name, a in calls
        for n in threads(speed)
    ]
    return Table(head, rows, "Time / the reference's (uniform + softmax), validation on")


def validation_table(speed: dict) -> Table:
    """Per call, thread count and shape: time with validation / time without, minus one."""
    head = ["call", "threads"] + [shape_label(s) for s in shapes(speed)]
    rows = [
        [call_name(speed, g) if n == threads(speed)[0] else "", n]
        + _per_shape(speed, n, validation_extra, g, fmt="{:+.0%}")
        for g in groups(speed)
        for n in threads(speed)
    ]
    return Table(head, rows, "Extra time that validation costs our call")


def component_table(speed: dict, n: str = "1") -> Table:
    """Nanoseconds per entry of each component, per shape, at ``n`` threads."""
    head = ["component, ns per entry"] + [shape_label(s) for s in shapes(speed)]
    parts = {s: component_ms(speed, s, n) for s in shapes(speed)}
    rows = [
        [name] + [f"{1e6 * parts[s][name] / math.prod(s):.2f}" for s in shapes(speed)]
        for name in parts[shapes(speed)[0]]
    ]
    return Table(head, rows, f"Median time per entry, {n} thread(s), float32 logits")


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
        + [f"{r['ratios'][rival]['median']:.2f}" for rival in tokens.RIVALS]
        for r in report["rows"]
        if r["threads"] == n
    ]
    caption = (
        f"{report['machine']['description']}. sample_tokens in ms, and each rival's time / "
        f"ours at {n} thread(s), median of {report['settings']['rounds']} paired rounds"
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
        f"{report['machine']['description']}. Time without the device / with it, lowest and "
        f"highest over the calls it touches, median of {report['settings']['rounds']} rounds"
    )
    return Table(["shape", *tricks.DEVICES], rows, caption)
