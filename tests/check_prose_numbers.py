"""Fail when the prose of a chapter states a decimal number that no cell computed.

Usage: ``python tests/check_prose_numbers.py book`` (part of ``make test``); after a build,
``python tests/check_prose_numbers.py book --html _build/html`` checks that every glued
number appears, formatted, in the built pages.

Every number that a sentence states about a computed result must come from the cell that
computed it, through MyST-NB's ``glue`` and the ``{glue:text}`name:fmt``` role, so that a
changed result changes the page (DESIGN.md section 5). Hand-typed numbers go stale. This
script scans the prose of every ``book/*.md`` for hand-typed numbers and fails unless each
one is on the chapter's allow-list below.

What counts as prose. Everything outside code: code cells (```` ```{code-cell} ````), other
fenced code blocks (```` ```python ````, ```` ```bash ````), inline code and the
YAML front matter are skipped; directive bodies (theorems, proofs, dropdowns, admonitions)
and the text of roles other than code are scanned. Math is scanned too, between dollar signs
and in ``{math}`` directives: a stale result hides as easily in ``$\\approx 0.0368$`` as in
words, and a formula's constants are integers or fractions (``2``, ``1/2``, ``K - 1``), which
are not flagged.

What counts as a hand-typed number: a decimal (``0.5``, ``1.5e-3``), a percentage
(``30%``, ``30\\%``), or a power of ten (``10^{-6}``, ``1e-6``). Integers are not flagged:
they are counts, indices, dimensions and parameters (``K = 3``, ``20 rolls``) far more often
than results, and the results among them are asserted by the cells that print them.

The allow-list (``tests/prose_allowlist.py``) names, per chapter, the numbers the chapter
*sets* (a temperature, a learning rate, a probability vector, a false-failure rate) or that
are not results at all (a software version), each with a reason. Every allowed number must
also appear literally in one of the chapter's code cells (so it really is what the code
uses), and must still occur in the prose (so the list cannot go stale). The script prints,
per chapter, the count of glued numbers and of allowed hand-typed numbers.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

from prose_allowlist import ALLOWED, NOT_A_RESULT

NUMBER = re.compile(
    r"(?<![\w.])("
    r"10\^\{?-?\d+\}?"  # 10^{-6}, 10^6
    r"|\d+(?:\.\d+)?[eE][-+]?\d+"  # 1e-6, 2.5e3
    r"|\d+\.\d+(?:\s*\\?%)?"  # 0.5, 30.5%
    r"|\d+\s*\\?%"  # 30%, 30\%
    r")(?![\w])"
)
# a role ({name}`content`) or an inline code span, whichever starts first
ROLE_OR_CODE = re.compile(r"(\{[\w:-]+\}`[^`]*`)|``[^`]+``|`[^`]+`")


def glue_names(line: str) -> list[str]:
    """The names the ``{glue}`` roles of one prose line paste (inline code is not a role)."""
    names = []
    for match in ROLE_OR_CODE.finditer(line):
        role = match.group(1)
        if role and role.startswith(("{glue}", "{glue:text}", "{glue:md}", "{glue:any}")):
            content = role.split("`")[1]
            names.append(content.rsplit(":", 1)[0] if role.startswith("{glue:text}") else content)
    return names


FENCE = re.compile(r"^(\s*)(`{3,}|~{3,}|:{3,})\s*(\{[^}]+\})?\s*(\S*)")
CODE_DIRECTIVES = {"{code-cell}", "{code-block}", "{code}", "{eval-rst}"}


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The (line number, text) pairs of the prose of a MyST notebook."""
    lines = text.splitlines()
    out: list[tuple[int, str]] = []
    start = 0
    if lines and lines[0].strip() == "---":  # YAML front matter
        start = next(i for i in range(1, len(lines)) if lines[i].strip() == "---") + 1
    stack: list[tuple[str, bool]] = []  # (fence, is code)
    for number, line in enumerate(lines[start:], start + 1):
        match = FENCE.match(line)
        if stack and stack[-1][1]:  # inside code: look only for its closing fence
            if match and match.group(2) == stack[-1][0] and not (match.group(3) or match.group(4)):
                stack.pop()
            continue
        if match:
            fence, directive, info = match.group(2), match.group(3), match.group(4)
            if not directive and not info and stack and fence == stack[-1][0]:
                stack.pop()
                continue
            is_code = (directive in CODE_DIRECTIVES) or (not directive and bool(info))
            if directive or info or not stack or fence != stack[-1][0]:
                stack.append((fence, is_code))
                continue
        if re.match(r"^\s*:[\w-]+:|^\(\S+\)=\s*$", line) or line.startswith(("+++", "%")):
            continue  # directive options, cell breaks, comments, labels
        out.append((number, line))
    return out


def scan(path: Path) -> tuple[int, list[tuple[int, str]]]:
    """Count glued numbers and list hand-typed ones (line, number) in one chapter."""
    glued, typed = 0, []
    for number, line in prose_lines(path.read_text()):
        glued += len(glue_names(line))
        bare = ROLE_OR_CODE.sub(" ", line)
        typed += [(number, m.group(1)) for m in NUMBER.finditer(bare)]
    return glued, typed


def code_text(path: Path) -> str:
    """The source of the chapter's code cells, for checking allowed numbers."""
    text, keep, inside = path.read_text(), [], False
    for line in text.splitlines():
        if line.startswith("```{code-cell}"):
            inside = True
        elif inside and line.startswith("```"):
            inside = False
        elif inside:
            keep.append(line)
    return "\n".join(keep)


def normalise(number: str) -> str:
    return re.sub(r"\s|\\", "", number)


def code_forms(number: str) -> list[str]:
    """How an allowed prose number may be spelled in code: 10^{-6} as 1e-6, 30% as 30."""
    power = re.fullmatch(r"10\^\{?(-?\d+)\}?", number)
    if power:
        return [f"1e{power.group(1)}", f"10**{power.group(1)}", f"10 ** {power.group(1)}"]
    return [number.rstrip("%")]


def glue_records(notebook: Path) -> dict[str, str]:
    """The text/plain form of every value a notebook glued, by name."""
    records = {}
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                records[name] = output["data"].get("application/papermill.record/text/plain")
    return records


def glue_problems(path: Path) -> list[str]:
    """Glued names the prose uses that the notebook lacks, or stores in a form (such as
    ``np.float64(0.5)``) that the ``{glue:text}`` format spec cannot parse."""
    notebook = path.with_suffix(".ipynb")
    if not notebook.exists():
        return []
    records = glue_records(notebook)
    problems = []
    names = [name for _, line in prose_lines(path.read_text()) for name in glue_names(line)]
    for name in names:
        if name not in records:
            problems.append(f"{path}: glued name {name!r} is not in {notebook.name}")
            continue
        try:
            ast.literal_eval(records[name])
        except (SyntaxError, ValueError):
            problems.append(f"{path}: glued {name!r} is stored as {records[name]!r}; glue a float")
    return problems


def check(book: Path) -> int:
    failures = []
    print(f"{'chapter':<28}{'glued':>7}{'allowed':>9}{'not allowed':>13}")
    for path in sorted(book.glob("*.md")):
        slug = path.stem
        failures += glue_problems(path)
        allowed = ALLOWED.get(slug, {})
        glued, typed = scan(path)
        bad = [(line, n) for line, n in typed if normalise(n) not in allowed]
        failures += [f"{path}:{line}: hand-typed number {n!r}" for line, n in bad]
        seen = {normalise(n) for _, n in typed}
        code = code_text(path)
        for n in allowed:
            if n not in seen:
                failures.append(f"{path}: allow-list entry {n!r} no longer in the prose")
            set_in_code = any(form in code for form in code_forms(n))
            if not set_in_code and not allowed[n].startswith(NOT_A_RESULT):
                failures.append(f"{path}: allowed {n!r} is not set in any code cell")
        print(f"{slug:<28}{glued:>7}{len(typed) - len(bad):>9}{len(bad):>13}")
    for failure in failures:
        print(failure)
    return 1 if failures else 0


def check_html(book: Path, html: Path) -> int:
    """After a build: every glued number must appear, formatted, in the chapter's HTML page."""
    from myst_nb.core.variables import format_plain_text

    missing = 0
    for path in sorted(book.glob("*.md")):
        notebook, page = path.with_suffix(".ipynb"), html / book.name / f"{path.stem}.html"
        if not notebook.exists() or not page.exists():
            continue
        records = glue_records(notebook)
        text, roles, shown = page.read_text(), 0, 0
        for _, line in prose_lines(path.read_text()):
            for match in ROLE_OR_CODE.finditer(line):
                role = match.group(1)
                if not (role and role.startswith("{glue:text}")):
                    continue
                content = role.split("`")[1]
                name, spec = content.rsplit(":", 1) if ":" in content else (content, "s")
                pasted = format_plain_text(records.get(name, "''"), spec)
                roles += 1
                shown += f'<span class="pasted-text">{pasted}</span>' in text
        if roles:
            print(f"{path.stem:<28} glued {roles:>3}, in the HTML {shown:>3}")
        missing += roles - shown
    return 1 if missing else 0


if __name__ == "__main__":
    # python tests/check_prose_numbers.py book [--html _build/html]
    book_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "book")
    if "--html" in sys.argv:
        sys.exit(check_html(book_dir, Path(sys.argv[sys.argv.index("--html") + 1])))
    sys.exit(check(book_dir))
