"""Check every Jupytext pair in a folder: in sync, executed, and error-free.

    python tests/check_pairs.py book

For each ``<slug>.md`` / ``<slug>.ipynb`` pair it fails when
* one half is missing;
* the ``.md`` differs from what jupytext writes from the ``.ipynb`` (someone edited one half
  without ``make execute``);
* a code cell has no execution count (nbval would pass such a cell vacuously), the counts are
  not 1, 2, 3, ... in order (the notebook was not run top to bottom in one kernel), or a cell
  stored an error.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import jupytext


def problems_with_pair(md: Path, ipynb: Path) -> list[str]:
    found: list[str] = []
    notebook = jupytext.read(ipynb)
    expected = jupytext.writes(notebook, fmt="md:myst")
    actual = md.read_text(encoding="utf-8")
    if expected != actual:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), str(ipynb), str(md), lineterm="", n=1
        )
        found.append("out of sync; run `make execute`:\n" + "\n".join(list(diff)[:40]))
    counts = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if cell.execution_count is None:
            found.append(f"code cell {index} was never executed")
        counts.append(cell.execution_count)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"code cell {index} stored an error: {output.get('ename')}")
    if None not in counts and counts != list(range(1, len(counts) + 1)):
        found.append(f"execution counts are {counts}, not 1..{len(counts)} in order")
    return found


def main(folder: str) -> int:
    root = Path(folder)
    mds = {p.stem for p in root.glob("*.md")}
    ipynbs = {p.stem for p in root.glob("*.ipynb")}
    failures = [f"{root / s}.md has no paired .ipynb" for s in sorted(mds - ipynbs)]
    failures += [f"{root / s}.ipynb has no paired .md" for s in sorted(ipynbs - mds)]
    for stem in sorted(mds & ipynbs):
        for problem in problems_with_pair(root / f"{stem}.md", root / f"{stem}.ipynb"):
            failures.append(f"{root / stem}: {problem}")
    for failure in failures:
        print(failure, file=sys.stderr)
    print(f"{len(mds & ipynbs)} pairs checked, {len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "book"))
