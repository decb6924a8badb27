"""The first code cell of every chapter: it makes the chapter run when opened alone.

    python tests/launch_cell.py --check book            # every chapter starts with the cell
    python tests/launch_cell.py --insert book/<slug>.md  # insert it (both halves of the pair)
    python tests/launch_cell.py --print                 # show the cell

Where ``import gumbel_lib`` works (this repository's environment, Binder, nbval) the cell
does nothing and prints nothing, so the stored outputs do not change. Where it fails (Colab,
a bare Jupyter) it fetches the book's repository and installs the library from it:

    git clone --quiet --depth 1 https://github.com/gumbel-lib/gumbel-max-book gumbel-max-book
    pip install --quiet ./gumbel-max-book myst-nb

(``myst-nb`` for ``glue``, which the chapters call), changes the working directory to the
clone's ``book/`` folder and imports the library. The clone is needed, not only the library:
some chapters read files of the repository by relative paths (``../Makefile``,
``../benchmarks/results/*.json``, ``../requirements.txt``), which hold in ``book/``. pip
installs only what is missing: torch and the other installed packages are kept (Colab's CUDA
build of torch stays). The clone goes into the notebook's working directory (``/content`` on
Colab), and a clone already there is reused; where the library imports and such a clone is
there (the kernel was restarted after the cell installed the library), the cell only changes
into its ``book/``. In this repository's ``book/`` there is none, so the cell does nothing.

The environment variable ``GUMBEL_BOOK_SOURCE`` names another repository to clone: whatever
``git clone`` takes, a fork's URL or a local repository (``file:///path/to/repo``; a plain
path works too, but git ignores ``--depth`` for it and says so). The default is
``repository.url`` of ``_config.yml``. pip's own environment variables apply to the install:
``tests/test_launch.py``, which runs a chapter in a fresh environment without a network, sets
``PIP_NO_INDEX=1`` and ``PIP_NO_BUILD_ISOLATION=0`` (pip reads this double negative as "no
isolation": setuptools is taken from the environment, as it cannot be downloaded there);
on Colab pip builds the library in an isolated environment with a downloaded setuptools.

The cell stays visible (no ``hide-input``): it is how the chapter gets its library, and a
reader who copies the chapter elsewhere needs to see it. It is short, and a cell with no
output takes one small box on the page.

``--insert`` puts the cell before the first code cell of each given chapter: in the ``.md``,
and in the ``.ipynb`` (no outputs, no execution count) when the pair is in sync; then run
``make execute``, which executes the cell (``tests/check_pairs.py`` fails on a code cell that
was never executed). A chapter that already starts with the cell is left alone, and a page
with no code cell (an API page, the bibliography) needs none.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat

REPOSITORY = "https://github.com/gumbel-lib/gumbel-max-book"  # _config.yml: repository.url
SOURCE_VARIABLE = "GUMBEL_BOOK_SOURCE"
CLONE = REPOSITORY.rsplit("/", 1)[1]  # the clone's folder, in the notebook's directory
CELL_OPEN = re.compile(r"^(`{3,})\{code-cell\}[^\n]*")

LAUNCH_CELL = f"""\
# Where gumbel_lib is missing (Colab, a bare Jupyter): clone the book's repository, install the
# library from it with myst-nb (for glue; installed packages such as torch are kept), and work
# in the clone's book/, where the chapters' paths to repository files hold (also after a kernel
# restart). Where gumbel_lib imports and no clone is here, the cell does nothing.
import os

clone = "{CLONE}"  # in the notebook's folder
try:
    import gumbel_lib  # noqa: F401
except ImportError:
    import importlib
    import subprocess
    import sys

    source = os.environ.get("{SOURCE_VARIABLE}", "{REPOSITORY}")
    if not os.path.isdir(clone):
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", source, clone], check=True)
    pip_install = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip_install, os.path.abspath(clone), "myst-nb"], check=True)
    importlib.invalidate_caches()
    import gumbel_lib  # noqa: F401
if os.path.isdir(os.path.join(clone, "book")):
    os.chdir(os.path.join(clone, "book"))"""


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def problems_with(path: Path) -> list[str]:
    """Why the notebook or MyST file ``path`` does not start with the launch cell ([] if it does).

    The first code cell must have exactly the cell's source, no tags (it stays visible) and,
    in an ``.ipynb``, no stored output (where the library imports, it prints nothing).
    """
    cells = code_cells(jupytext.read(path))
    if not cells:
        return []
    first = cells[0]
    found = []
    if first.source != LAUNCH_CELL:
        if any(cell.source == LAUNCH_CELL for cell in cells[1:]):
            found.append("the launch cell is not the first code cell")
        else:
            found.append("the first code cell is not the launch cell (tests/launch_cell.py)")
        return found
    if first.metadata.get("tags"):
        found.append(f"the launch cell has tags {first.metadata['tags']}; it must be plain")
    if path.suffix == ".ipynb" and first.get("outputs"):
        kinds = sorted({output.output_type for output in first.outputs})
        found.append(f"the launch cell stored output ({', '.join(kinds)}); it must print nothing")
    return found


def check(folder: Path) -> list[str]:
    """Every problem of every chapter in ``folder`` (both halves of each pair)."""
    found = []
    for path in sorted([*folder.glob("*.md"), *folder.glob("*.ipynb")]):
        found += [f"{path}: {problem}" for problem in problems_with(path)]
    return found


def insert(md: Path) -> bool:
    """Insert the launch cell into the pair ``md`` / ``.ipynb``; False when it is already there.

    The ``.md`` gets the cell before its first ``{code-cell}``, laid out as jupytext writes it.
    The ``.ipynb`` gets it too when the pair is in sync; when it is not (a chapter edited but
    not yet executed), only the ``.md`` changes, and ``make execute`` rewrites the ``.ipynb``.
    """
    text = md.read_text(encoding="utf-8")
    cells = code_cells(jupytext.reads(text, fmt="md:myst"))
    if not cells or cells[0].source == LAUNCH_CELL:
        return False
    if any(cell.source == LAUNCH_CELL for cell in cells):
        raise ValueError(f"{md}: the launch cell is there but not first; move it by hand")
    lines = text.splitlines(keepends=True)
    at, fence = next((i, m) for i, line in enumerate(lines) if (m := CELL_OPEN.match(line)))
    lines.insert(at, f"{fence.group(0)}\n{LAUNCH_CELL}\n{fence.group(1)}\n\n")
    new_text = "".join(lines)
    ipynb = md.with_suffix(".ipynb")
    notebook = jupytext.read(ipynb) if ipynb.is_file() else None
    if notebook is not None and jupytext.writes(notebook, fmt="md:myst") == text:
        first = code_cells(notebook)[0]
        notebook.cells.insert(notebook.cells.index(first), nbformat.v4.new_code_cell(LAUNCH_CELL))
        if jupytext.writes(notebook, fmt="md:myst") != new_text:
            raise RuntimeError(f"{md}: inserting would put the pair out of sync; nothing written")
        nbformat.write(notebook, ipynb)
    md.write_text(new_text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", type=Path, metavar="FOLDER", help="check every chapter")
    action.add_argument("--insert", type=Path, nargs="+", metavar="MD", help="insert the cell")
    action.add_argument("--print", action="store_true", help="print the cell")
    args = parser.parse_args(argv)
    if args.print:
        print(LAUNCH_CELL)
        return 0
    if args.insert:
        for md in args.insert:
            changed = insert(md.with_suffix(".md"))
            print(f"{md.with_suffix('.md')}: {'inserted' if changed else 'unchanged'}")
        print("now run `make execute` for the changed chapters")
        return 0
    found = check(args.check)
    for problem in found:
        print(problem, file=sys.stderr)
    print(f"launch cell: {len(found)} problem(s) in {args.check}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
