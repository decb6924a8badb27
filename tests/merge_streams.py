"""Merge each cell's consecutive outputs of one stream into one, in executed notebooks.

    python tests/merge_streams.py book/<slug>.ipynb ...   (``make execute`` runs it)

The kernel sends printed text in pieces as it flushes, so a cell that prints once can store its
text as two stream outputs, which the book renders as two blocks (the browser check fails on
that). Merging consecutive pieces of the same stream, as nbval does before it compares, changes
no text; outputs with something between them (a figure, a glued value) stay apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbconvert.preprocessors import CoalesceStreamsPreprocessor


def merge(path: Path) -> bool:
    """Merge ``path``'s streams in place; whether anything changed."""
    notebook = nbformat.read(path, as_version=4)
    before = nbformat.writes(notebook)
    notebook, _ = CoalesceStreamsPreprocessor().preprocess(notebook, {})
    after = nbformat.writes(notebook)
    if after != before:
        path.write_text(after, encoding="utf-8")
    return after != before


if __name__ == "__main__":
    for name in sys.argv[1:]:
        if merge(Path(name)):
            print(f"merged split stream outputs in {name}")
