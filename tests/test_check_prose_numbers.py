"""The prose-number checker flags hand-typed results and nothing else (and can fail)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "check_prose_numbers", Path(__file__).with_name("check_prose_numbers.py")
)
checker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checker)

CHAPTER = """---
jupytext:
  text_representation:
    format_name: myst
---

(toy)=
# A toy chapter

We set $\\tau = 0.5$ and find a loss of {glue:text}`loss:.3f`, shown in `x = 0.25`.

```{code-cell} ipython3
tau = 0.5
print(0.125)
```

````{dropdown} Solution
The answer is {glue:text}`loss:.2f`.

```python
y = 3.75
```
````
"""


def _write(tmp_path: Path, text: str, record: str = "0.125") -> Path:
    path = tmp_path / "toy.md"
    path.write_text(text)
    output = {
        "output_type": "display_data",
        "data": {"application/papermill.record/text/plain": record},
        "metadata": {"scrapbook": {"name": "loss"}},
    }
    notebook = {"cells": [{"cell_type": "code", "outputs": [output]}]}
    path.with_suffix(".ipynb").write_text(json.dumps(notebook))
    return path


def test_counts_glued_and_skips_code(tmp_path: Path) -> None:
    glued, typed = checker.scan(_write(tmp_path, CHAPTER))
    assert glued == 2
    assert [number for _, number in typed] == ["0.5"]  # not 0.25 (inline code), 0.125, 3.75


@pytest.mark.parametrize(
    "sentence",
    ["a gain of 30%", "about $0.0368$", "roughly 1.5e-3", "at most $10^{-6}$", "30\\% more"],
)
def test_flags_hand_typed_results(tmp_path: Path, sentence: str) -> None:
    """Negative control: a hand-typed number in prose or math must be found."""
    _, typed = checker.scan(_write(tmp_path, CHAPTER + f"\nWe measured {sentence}.\n"))
    assert len(typed) == 2


def test_check_fails_unless_allowed_and_set_in_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, CHAPTER)
    monkeypatch.setattr(checker, "ALLOWED", {})
    assert checker.check(tmp_path) == 1
    monkeypatch.setattr(checker, "ALLOWED", {"toy": {"0.5": "the temperature tau"}})
    assert checker.check(tmp_path) == 0
    _write(tmp_path, CHAPTER.replace("tau = 0.5\n", "tau = 0.7\n"))
    assert checker.check(tmp_path) == 1  # allowed, but no code cell sets it


def test_glue_stored_as_numpy_repr_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, CHAPTER, record="np.float64(0.125)")
    monkeypatch.setattr(checker, "ALLOWED", {"toy": {"0.5": "the temperature tau"}})
    assert checker.check(tmp_path) == 1


def test_the_book_passes() -> None:
    assert checker.check(Path(__file__).parents[1] / "book") == 0
