"""The browser check fails on each thing it promises to catch (a tiny synthetic site).

One Chromium session opens a good page and one page per failure mode; every bad page must
fail with the matching message, and the good page (local MathJax, an image, a link with an
anchor, notebook outputs as MyST-NB renders them) must pass. Near the edge of each output
rule: a text output 5 px wider than the column fails and one 5 px narrower passes; a print
split in two blocks fails and one block passes, as do blocks with a visible output between.
Skipped only when the system Chromium is absent (`.ci/run` installs it).
"""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

import pytest
from browser_check import html_pages, run_check

BROWSER = "/usr/bin/chromium"
# The smallest valid PNG: one transparent pixel.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
LOCAL_MATHJAX = '<script defer src="_static/mathjax/tex-chtml.js"></script>'
CDN_MATHJAX = (
    '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'
)
WIDE_ROW = "<tr>" + "".join(f"<td>cell_{i}_wide_value</td>" for i in range(40)) + "</tr>"
WIDE_LINE = "verdict: " + " ".join(f"statistic_{i}=0.{i:03d}" for i in range(40))


def _output(kind: str, text: str, style: str = "") -> str:
    """One notebook output block as MyST-NB renders it (a stream, stderr or text/plain)."""
    return (
        f'<div class="output {kind} highlight-myst-ansi notranslate" style="{style}">'
        f'<div class="highlight"><pre style="{style}">{text}\n</pre></div></div>'
    )


def _line_of_width(text: str, px: int) -> str:
    """A line of output exactly ``px`` wide (the synthetic column is 600 px)."""
    return f'<span style="display: inline-block; width: {px}px">{text}</span>'


def _cell(*outputs: str) -> str:
    return (
        '<div class="cell docutils container"><div class="cell_input docutils container">'
        "<pre>print(table)</pre></div>"
        f'<div class="cell_output docutils container">{"".join(outputs)}</div></div>'
    )


# The theme's text outputs scroll (overflow-x: auto on the pre and, from reader.css, on the
# .output block); one printed table is one block; blocks of different kinds, or with a
# visible output between them, are separate outputs, not fragments.
GOOD_OUTPUTS = (
    _cell(_output("stream", WIDE_LINE, "overflow-x: auto"))
    + _cell(_output("stream", "header  a  b\nrow 1   1  2\nrow 2   3  4"))
    + _cell(
        _output("stream", "first table"),
        _output("text_plain", "7"),
        _output("stream", "second table"),
    )
    + _cell(_output("stream", "out"), _output("stderr", "a warning"))
    + _cell(_output("stream", _line_of_width("fits by 5 px", 595), "overflow: visible"))
)

# page name -> (head, body, the messages the check must report; None for the good page)
PAGES = {
    "good": (
        LOCAL_MATHJAX,
        '<p><span class="math">\\(x^2\\)</span></p><div class="math">\\[\\sum_i e^{x_i}\\]</div>'
        '<img src="_images/pixel.png" alt=""><a href="other.html#target">there</a>'
        '<div style="overflow-x: auto"><table>' + WIDE_ROW + "</table></div>" + GOOD_OUTPUTS,
        None,
    ),
    "cdn-mathjax": (
        CDN_MATHJAX,
        '<span class="math">\\(x\\)</span>',
        ("request to another host", "math not typeset"),
    ),
    "missing-image": (LOCAL_MATHJAX, '<img src="_images/removed.png" alt="">', "image not loaded"),
    "broken-link": (LOCAL_MATHJAX, '<a href="book/nowhere.html">x</a>', "broken link"),
    "broken-anchor": (LOCAL_MATHJAX, '<a href="other.html#nowhere">x</a>', "broken anchor"),
    "console-error": (LOCAL_MATHJAX, '<script>console.error("boom")</script>', "console: boom"),
    "exception": (LOCAL_MATHJAX, "<script>notAFunction()</script>", "uncaught exception"),
    "tex-error": (LOCAL_MATHJAX, '<span class="math">\\(\\frac{x}\\)</span>', "MathJax error"),
    "raw-tex": ("", "<p>left as typed: \\(x^2\\)</p>", "raw TeX in the text"),
    "raw-dollars": (LOCAL_MATHJAX, "<p>typed: $\\mu_k$ costs $5</p>", "raw TeX in the text"),
    "cut-table": (
        LOCAL_MATHJAX,
        '<div style="overflow: hidden"><table>' + WIDE_ROW + "</table></div>",
        "cut off at the column",
    ),
    "cut-output": (
        LOCAL_MATHJAX,
        _cell(_output("stream", WIDE_LINE, "overflow: visible"))
        + _cell(_output("stream", _line_of_width("over by 5 px", 605), "overflow: visible")),
        (
            "text output wider than the column (does not scroll): 'verdict: statistic_0=0.000",
            "text output wider than the column (does not scroll): 'over by 5 px'",
        ),
    ),
    # Three prints with glue calls between them; and two with an output that renders as
    # nothing (an empty display) between them.
    "split-output": (
        LOCAL_MATHJAX,
        _cell(
            _output("stream", "header  a  b"),
            _output("stream", "row 1   1  2"),
            _output("stream", "row 2   3  4"),
        )
        + _cell(
            _output("stream", "p-values"),
            '<div class="output display_data"></div>',
            _output("stream", "0.31 0.52"),
        ),
        (
            "text output split into 3 blocks (print it whole, then glue): 'header  a  b'",
            "text output split into 2 blocks (print it whole, then glue): 'p-values'",
        ),
    ),
}


def _page(head: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>t</title>{head}</head>"
        f"<body><main><article class='bd-article' style='width: 600px'>{body}</article>"
        "</main></body></html>"
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    assert spec is not None and spec.origin is not None, "sphinx-mathjax-offline is missing"
    root = tmp_path_factory.mktemp("site")
    (root / "_static").mkdir()
    (root / "_static" / "mathjax").symlink_to(Path(spec.origin).parent / "static" / "mathjax")
    (root / "_images").mkdir()
    (root / "_images" / "pixel.png").write_bytes(PIXEL)
    (root / "other.html").write_text(_page("", '<h2 id="target">Target</h2>'))
    for name, (head, body, _) in PAGES.items():
        (root / f"{name}.html").write_text(_page(head, body))
    return root


@pytest.mark.skipif(not Path(BROWSER).is_file(), reason=f"no system Chromium at {BROWSER}")
def test_each_failure_mode_fails_and_the_good_page_passes(site: Path) -> None:
    assert len(html_pages(site)) == len(PAGES) + 1  # _static and _images are not pages
    results = {r.page: r for r in run_check(site, None, BROWSER)}
    assert results["good.html"].problems == []
    assert results["good.html"].n_math == 2 and results["good.html"].n_images == 1
    assert results["other.html"].problems == []
    for name, (_, _, expected) in PAGES.items():
        if expected is not None:
            problems = results[f"{name}.html"].problems
            for message in [expected] if isinstance(expected, str) else expected:
                assert any(message in p for p in problems), (name, message, problems)
