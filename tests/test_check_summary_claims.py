"""The claim register accepts Summary bullets that name their evidence, and can fail."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "check_summary_claims", Path(__file__).with_name("check_summary_claims.py")
)
checker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checker)

CHAPTER = """# A chapter

Text.

## Summary

{bullets}

## Exercises

- an exercise bullet names nothing and is not a claim
"""


def run(tmp_path: Path, bullets: str) -> int:
    book = tmp_path / "book"
    book.mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_thing.py").write_text("def test_it():\n    pass\n")
    (book / "toy.md").write_text(CHAPTER.format(bullets=bullets))
    return checker.main(str(book))


def test_bullets_that_name_their_evidence_pass(tmp_path: Path) -> None:
    bullets = (
        "- a theorem ({prf:ref}`thm-x`);\n"
        "- a section, over two lines\n  ({ref}`sec-y`);\n"
        "- a test: `tests/test_thing.py::test_it`."
    )
    assert run(tmp_path, bullets) == 0


@pytest.mark.parametrize(
    "bullet",
    [
        "- a claim that names nothing",
        "- a test that does not exist: `tests/test_missing.py`",
        "- a function that does not exist: `tests/test_thing.py::test_other`",
        "- a glue role is not evidence: {glue:text}`value`",
    ],
)
def test_a_bullet_that_names_nothing_fails(tmp_path: Path, bullet: str) -> None:
    assert run(tmp_path, "- a backed claim ({prf:ref}`thm-x`)\n" + bullet) == 1
