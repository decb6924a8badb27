"""The API-link checker accepts a chapter that links what it uses, and can fail."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # check_api_links imports check_prose_numbers
_spec = importlib.util.spec_from_file_location(
    "check_api_links", Path(__file__).with_name("check_api_links.py")
)
checker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checker)

API_PAGE = """# API reference

```{eval-rst}
.. automodule:: gumbel_lib.sampling
   :members: gumbel_max, perturb
```

```{eval-rst}
.. automodule:: gumbel_lib.stats
   :members: dkwm_test
```
"""

CHAPTER = """---
jupytext:
  text_representation:
    format_name: myst
---

# A toy chapter

{prose}

```{{code-cell}} ipython3
import gumbel_lib as gl
from gumbel_lib import stats as st
from gumbel_lib.sampling import gumbel_max
from gumbel_lib.sampling import negated_perturbed  # internal: needs no link

index = gumbel_max(logits)
verdict = st.dkwm_test(samples, cdf)  # reached through a module alias
z = gl.perturb(logits)  # and through the package
```
"""

LINKED = (
    "We draw with {func}`~gumbel_lib.sampling.gumbel_max` and test with\n"
    "{func}`~gumbel_lib.stats.dkwm_test`; `gumbel_max(logits)` returns indices.\n"
    "{func}`~gumbel_lib.sampling.perturb` gives `F.gumbel_softmax`'s noise."
)


def run(tmp_path: Path, prose: str) -> tuple[int, int, list[str]]:
    (tmp_path / "api-reference.md").write_text(API_PAGE)
    chapter = tmp_path / "toy.md"
    chapter.write_text(CHAPTER.format(prose=prose))
    return checker.check(chapter, checker.documented(tmp_path / "api-reference.md"))


def test_a_chapter_that_links_what_it_uses_passes(tmp_path: Path) -> None:
    assert run(tmp_path, LINKED) == (3, 3, [])


@pytest.mark.parametrize(
    ("prose", "complaint"),
    [
        ("We draw with {func}`~gumbel_lib.sampling.gumbel_max`.", "dkwm_test: never named"),
        (
            "`gumbel_max` draws; {func}`~gumbel_lib.sampling.gumbel_max` "
            "and {func}`~gumbel_lib.stats.dkwm_test`.",
            "gumbel_max: first named as `gumbel_max` without a link",
        ),
        (
            "{func}`~gumbel_lib.gumbel_max` and {func}`~gumbel_lib.stats.dkwm_test`.",
            "gumbel_lib.gumbel_max is not a documented path",
        ),
    ],
)
def test_the_checker_can_fail(tmp_path: Path, prose: str, complaint: str) -> None:
    _, _, problems = run(tmp_path, prose)
    assert any(complaint in problem for problem in problems), problems


def test_a_used_function_missing_from_the_api_page_is_reported(tmp_path: Path) -> None:
    chapter = tmp_path / "toy.md"
    chapter.write_text(CHAPTER.format(prose=LINKED))
    (tmp_path / "api-reference.md").write_text(API_PAGE.replace(", perturb", ""))
    _, _, problems = checker.check(chapter, checker.documented(tmp_path / "api-reference.md"))
    assert any("perturb: used but on no API page" in p for p in problems)


SUMMARY = """# API reference

| name | what |
| --- | --- |
| {func}`~gumbel_lib.sampling.gumbel_max` | samples |
| {func}`~gumbel_lib.stats.dkwm_test` | tests |
"""


def test_the_summary_table_must_list_every_documented_function(tmp_path: Path) -> None:
    (tmp_path / "api-reference.md").write_text(SUMMARY)
    (tmp_path / "api-group.md").write_text(API_PAGE)
    api = checker.documented(tmp_path / "api-group.md")
    problems = checker.summary_problems(tmp_path, api)
    assert problems == [
        "api-reference.md: gumbel_lib.sampling.perturb is documented but not in the summary"
    ]
    (tmp_path / "api-reference.md").write_text(
        SUMMARY + "| {func}`~gumbel_lib.sampling.perturb` | x |\n"
    )
    assert checker.summary_problems(tmp_path, api) == []
    (tmp_path / "api-reference.md").write_text(SUMMARY.replace("dkwm_test", "dkwm_sample_size"))
    assert any(
        "lists gumbel_lib.stats.dkwm_sample_size" in p
        for p in checker.summary_problems(tmp_path, api)
    )
