"""Open every page of the built book in headless Chromium and fail on anything a reader would see.

Usage (``make browser`` runs it after ``make book``)::

    python tests/browser_check.py [_build/html] [--screenshots _build/screenshots]

The pages are served by Python's ``http.server`` on 127.0.0.1 and opened with Playwright
driving the system Chromium (``/usr/bin/chromium`` from the package manager; never a browser
that Playwright downloads). A page fails on

* a console error or an uncaught exception;
* a request that failed or answered with an HTTP error;
* a request to any host other than the local server (it is blocked, and reported);
* an image that did not load;
* a link to a local page or file that does not exist, or a ``#fragment`` with no such id;
* math left untypeset: a ``.math`` element without MathJax output, MathJax error nodes,
  or raw TeX delimiters left in the text;
* a table, code block or display formula wider than its column that does not scroll;
* a cell's text output (a ``pre`` in MyST-NB's ``.cell_output``) wider than its column that
  does not scroll, reported as such;
* a cell's printed text split into several output blocks: two or more blocks of the same
  stream in one ``.cell_output`` with nothing visible between them, which is what a
  ``glue(..., display=False)`` between two ``print`` calls leaves (glue renders as nothing,
  but ends the stream output before it).

Each page gets a screenshot under ``--screenshots``; the report has one line per page and a
total, and the exit status is 1 when any page failed (2 when the check could not run).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SKIP_SCHEMES = ("mailto:", "javascript:", "tel:", "data:")

# Runs in the page after load: MathJax's first typeset, images, links, math, wide tables.
PAGE_PROBE = r"""
async () => {
  // Never wait forever: a promise that does not settle in 30 s counts as not done.
  const within = (promise) => Promise.race([promise, new Promise((r) => setTimeout(r, 30000))]);
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) { await within(mj.startup.promise); }
  const images = Array.from(document.images);
  for (const img of images) { img.loading = "eager"; }
  const settled = (img) => new Promise((done) => {
    img.addEventListener("load", done);
    img.addEventListener("error", done);
  });
  await within(Promise.all(images.map((img) => (img.complete ? null : settled(img)))));
  const brokenImages = images.filter((img) => !(img.complete && img.naturalWidth > 0))
    .map((img) => img.currentSrc || img.getAttribute("src") || "(no src)");
  const mathNodes = Array.from(document.querySelectorAll(".math"));
  const untypeset = mathNodes.filter((m) => !m.querySelector("mjx-container"))
    .map((m) => m.textContent.trim().slice(0, 60));
  const mathErrors = Array.from(document.querySelectorAll("mjx-merror, [data-mjx-error]"))
    .map((e) => (e.getAttribute("data-mjx-error") || e.textContent).slice(0, 80));
  const rawTex = [];
  const walker = document.createTreeWalker(document.querySelector("main") || document.body,
                                           NodeFilter.SHOW_TEXT);
  const skip = "script, style, pre, code, textarea, mjx-container, .highlight, .output";
  // \( \[ $$ \begin{ left in the text, or a $...$ span holding a TeX command ($\mu$).
  const rawTexPattern = /\\\(|\\\[|\$\$|\\begin\{|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$/;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.nodeValue;
    if (rawTexPattern.test(text) && !node.parentElement.closest(skip)) {
      rawTex.push(text.trim().slice(0, 60));
    }
  }
  // Links, and the favicon (which a headless browser does not request by itself).
  const links = Array.from(document.querySelectorAll("a[href], link[rel~='icon'][href]"))
    .map((a) => [a.getAttribute("href"), a.href]);
  // Wide content (tables, code, display math) must scroll inside the column, not be cut
  // off: its first ancestor that clips must be a scroll container. Dropdowns are opened
  // for the measurement so that the solutions are checked too.
  const article = document.querySelector(".bd-article") || document.body;
  const closed = Array.from(document.querySelectorAll("details:not([open])"));
  for (const d of closed) { d.open = true; }
  const columnRight = article.getBoundingClientRect().right + 1;
  const cutOff = [];
  // Text outputs of notebook cells (MyST-NB: .cell_output > .output > div.highlight > pre)
  // get their own message; the rule is the same.
  const textCutOff = [];
  const firstLine = (el) => (el.textContent || "").trim().split("\n")[0].slice(0, 50);
  for (const el of article.querySelectorAll("table, pre, mjx-container[display='true']")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) { continue; }
    const contentRight = box.left + Math.max(box.width, el.scrollWidth) - 1;
    let clipper = null;
    for (let a = el; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== "visible") { clipper = a; break; }
    }
    const overflow = clipper ? getComputedStyle(clipper).overflowX : "visible";
    const scrolls = overflow === "auto" || overflow === "scroll";
    const limit = clipper
      ? Math.min(clipper.getBoundingClientRect().right, columnRight) : columnRight;
    if (!scrolls && contentRight > limit) {
      if (el.tagName === "PRE" && el.closest(".cell_output")) {
        textCutOff.push(firstLine(el));
      } else {
        cutOff.push(`<${el.tagName.toLowerCase()}> ${(el.textContent || "").trim().slice(0, 40)}`);
      }
    }
  }
  // One cell's printed text split into several output blocks: MyST-NB renders each stream
  // output of the notebook as its own block, and a glue(..., display=False) (or any display
  // call) between two prints ends one stream output and starts the next, while the glue
  // itself renders as nothing. So a run of two or more blocks of the same stream (stdout:
  // .output.stream; stderr: .output.stderr) with nothing visible between them, in one
  // .cell_output, is a table or list shown in pieces.
  const fragmented = [];
  const streamOf = (el) => (!el.classList.contains("output") ? null
    : el.classList.contains("stderr") ? "stderr"
    : el.classList.contains("stream") ? "stdout" : null);
  const invisible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width === 0 || r.height === 0;
  };
  for (const area of article.querySelectorAll(".cell_output")) {
    let run = [];
    const flush = () => {
      if (run.length > 1) { fragmented.push([run.length, firstLine(run[0])]); }
      run = [];
    };
    for (const child of area.children) {
      const stream = streamOf(child);
      if (stream === null) {
        if (!invisible(child)) { flush(); }
        continue;
      }
      if (run.length && streamOf(run[0]) !== stream) { flush(); }
      run.push(child);
    }
    flush();
  }
  for (const d of closed) { d.open = false; }
  return {brokenImages, untypeset, mathErrors, rawTex, links, cutOff, textCutOff, fragmented,
          nMath: mathNodes.length, nImages: images.length};
}
"""


class _PageScanner(HTMLParser):
    """The ids a ``#fragment`` may target (``id``, ``<a name>``) and a meta-refresh target."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.refresh: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key, value in attrs:
            if value and (key == "id" or (tag == "a" and key == "name")):
                self.ids.add(value)
        if tag == "meta" and (values.get("http-equiv") or "").lower() == "refresh":
            content = values.get("content") or ""
            if "url=" in content.lower():
                self.refresh = content[content.lower().index("url=") + 4 :].strip(" '\"")


@functools.cache
def scan(path: Path) -> _PageScanner:
    parser = _PageScanner()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def html_pages(root: Path) -> list[Path]:
    """Every HTML page of the site, except the theme's and extensions' static files."""
    return sorted(
        p for p in root.rglob("*.html") if not p.relative_to(root).parts[0].startswith("_")
    )


def _local_target(root: Path, path: str) -> Path:
    target = root / unquote(path).lstrip("/")
    return target / "index.html" if path.endswith("/") or target.is_dir() else target


def check_link(root: Path, origin: str, href: str, absolute: str) -> str | None:
    """Why a link from a page does not resolve, or None when it does (or is not local)."""
    if not href or href.startswith(SKIP_SCHEMES):
        return None
    parts = urlsplit(absolute)
    if f"{parts.scheme}://{parts.netloc}" != origin:
        return None  # an outside link is fine to show; only requests to it are errors
    target = _local_target(root, parts.path)
    if not target.is_file():
        return f"broken link {href!r}: no file {target.relative_to(root)}"
    fragment = unquote(parts.fragment)
    if fragment and target.suffix == ".html" and fragment not in scan(target).ids:
        return f"broken anchor {href!r}: no id {fragment!r} in {target.relative_to(root)}"
    return None


@dataclass
class PageResult:
    page: str
    problems: list[str] = field(default_factory=list)
    n_math: int = 0
    n_images: int = 0
    n_links: int = 0
    seconds: float = 0.0


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a tab closed mid-transfer
            super().handle_error(request, client_address)


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a thread; yields the origin URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _summary(kind: str, items: list[str], out_of: int | None = None) -> list[str]:
    """One line for a problem found many times on a page: the count and three examples."""
    if not items:
        return []
    count = f"{len(items)}" + (f" of {out_of}" if out_of is not None else "")
    examples = ", ".join(repr(item) for item in items[:3])
    return [f"{kind} ({count}): {examples}" + (", ..." if len(items) > 3 else "")]


def check_page(context, root: Path, origin: str, page: Path, shots: Path | None) -> PageResult:
    """Open one page and collect every problem (see the module docstring)."""
    rel = page.relative_to(root).as_posix()
    result = PageResult(rel)
    problems = result.problems
    start = time.perf_counter()
    tab = context.new_page()
    tab.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    tab.on("pageerror", lambda e: problems.append(f"uncaught exception: {e}"))
    tab.on(
        "requestfailed",
        lambda r: (
            r.url.startswith(origin)
            and problems.append(f"request failed: {r.url[len(origin) :]} ({r.failure})")
        ),
    )
    tab.on(
        "response",
        lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"),
    )
    try:
        url = f"{origin}/{rel}" + ("?q=gumbel" if rel == "search.html" else "")
        redirect = scan(page).refresh  # index.html sends the reader to the first chapter
        tab.goto(url, wait_until="load", timeout=60_000)
        if redirect is not None:
            why = check_link(root, origin, redirect, urljoin(url, redirect))
            if why:
                problems.append(f"redirect: {why}")
            else:
                tab.wait_for_url(urljoin(url, redirect), wait_until="load", timeout=60_000)
        probe = tab.evaluate(PAGE_PROBE)
        tab.wait_for_load_state("networkidle", timeout=30_000)
        if rel == "search.html":
            tab.wait_for_selector("#search-results li", timeout=30_000)
        if shots is not None:
            shot = shots / (rel.replace("/", "__").removesuffix(".html") + ".png")
            tab.screenshot(path=str(shot), full_page=True)
    except Exception as error:  # a timeout or a crashed page is a failure of that page
        problems.append(f"could not check the page: {type(error).__name__}: {error}")
        probe = None
    finally:
        tab.close()
    if probe is not None:
        result.n_math, result.n_images = probe["nMath"], probe["nImages"]
        result.n_links = len(probe["links"])
        problems += [f"image not loaded: {src}" for src in probe["brokenImages"]]
        problems += _summary("math not typeset", probe["untypeset"], result.n_math)
        problems += [f"MathJax error: {text!r}" for text in dict.fromkeys(probe["mathErrors"])]
        problems += _summary("raw TeX in the text", probe["rawTex"])
        problems += [f"cut off at the column (does not scroll): {t!r}" for t in probe["cutOff"]]
        problems += [
            f"text output wider than the column (does not scroll): {t!r}"
            for t in probe["textCutOff"]
        ]
        problems += [
            f"text output split into {n} blocks (print it whole, then glue): {t!r}"
            for n, t in probe["fragmented"]
        ]
        page_url = f"{origin}/{rel}"
        for href, absolute in probe["links"]:
            why = check_link(root, origin, href, absolute or urljoin(page_url, href))
            if why and why not in problems:
                problems.append(why)
    result.seconds = time.perf_counter() - start
    return result


def run_check(
    root: Path, shots: Path | None, browser: str, only: list[str] | None = None
) -> list[PageResult]:
    """Check every page of ``root`` (or those matching ``only``); one line per page."""
    from playwright.sync_api import sync_playwright

    pages = html_pages(root)
    if only:
        pages = [p for p in pages if any(p.relative_to(root).match(g) for g in only)]
    if not pages:
        raise SystemExit(f"browser check: no HTML pages under {root}")
    if shots is not None:
        shutil.rmtree(shots, ignore_errors=True)
        shots.mkdir(parents=True)
    results = []
    with serve(root) as origin, sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=browser,
            headless=True,
            args=CHROMIUM_ARGS,
            # Playwright hides scrollbars in headless mode; keep them, so that the screenshots
            # show what a desktop reader sees: a scrollbar under every block that scrolls.
            ignore_default_args=["--hide-scrollbars"],
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        external: list[str] = []

        def block_outside(route) -> None:
            if route.request.url.startswith(origin + "/"):
                route.continue_()
            else:
                external.append(route.request.url)
                route.abort("blockedbyclient")

        context.set_default_timeout(60_000)
        context.route("**/*", block_outside)
        # Every page is a reader's first visit: nothing stored by the pages opened before.
        context.add_init_script(
            "try { localStorage.clear(); sessionStorage.clear(); } catch (e) {}"
        )
        for page in pages:
            result = check_page(context, root, origin, page, shots)
            result.problems += [f"request to another host (blocked): {u}" for u in external]
            external.clear()
            results.append(result)
            status = "FAIL" if result.problems else "ok  "
            print(
                f"{status} {result.page:<40} {result.n_math:5d} math {result.n_images:3d} img "
                f"{result.n_links:4d} links {result.seconds:5.1f} s",
                flush=True,
            )
            for problem in result.problems:
                print(f"       {problem}", flush=True)
        context.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="_build/html", type=Path)
    parser.add_argument("--screenshots", default="_build/screenshots", type=Path)
    parser.add_argument("--no-screenshots", action="store_true")
    parser.add_argument("--only", nargs="+", metavar="GLOB", help="check only these pages")
    parser.add_argument("--browser", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args(argv)
    if not Path(args.browser).is_file():
        print(f"browser check: no browser at {args.browser} (apt-get install chromium)")
        return 2
    start = time.perf_counter()
    shots = None if args.no_screenshots else args.screenshots
    results = run_check(args.root.resolve(), shots, args.browser, args.only)
    failed = [r for r in results if r.problems]
    print(
        f"browser check: {len(results)} pages, {len(results) - len(failed)} passed, "
        f"{len(failed)} failed, {sum(r.n_math for r in results)} formulas, "
        f"{sum(r.n_images for r in results)} images, {sum(r.n_links for r in results)} links "
        f"in {time.perf_counter() - start:.1f} s"
        + (f"; screenshots in {shots}" if shots is not None else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
