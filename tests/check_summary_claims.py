"""The claim register: every Summary bullet of a chapter names what backs it.

Usage: ``python tests/check_summary_claims.py book`` (part of ``make prose``).

A chapter's ``## Summary`` bullets are its claims. Each bullet must name at least one piece of
evidence in the book or the test suite:

* a cross-reference role to a label: ``{prf:ref}`thm-...```, ``{ref}`sec-...```,
  ``{numref}`...```, ``{eq}`...``` (the ``-n -W`` build fails when the label does not exist);
* or a test, as inline code ``tests/test_name.py`` or ``tests/test_name.py::test_function``,
  which must exist (the file, and the function when one is named).

Prints, per chapter, the number of bullets and how many name nothing (or a missing test), and
exits 1 when any does. Chapters without a Summary section (the appendices) are skipped.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REFERENCE = re.compile(r"\{(?:prf:ref|ref|numref|eq)\}`[^`]+`")
TEST = re.compile(r"`(tests/test_\w+\.py)(?:::(\w+))?`")
BULLET = re.compile(r"^[-*] ")


def summary_bullets(text: str) -> list[str]:
    """The bullets of the ``## Summary`` section, each joined into one line."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "## Summary")
    except StopIteration:
        return []
    bullets: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("#") or line.startswith("```"):
            break
        if BULLET.match(line):
            bullets.append(line[2:].strip())
        elif bullets and line.startswith("  ") and line.strip():
            bullets[-1] += " " + line.strip()
    return bullets


def unbacked(bullet: str, root: Path) -> str | None:
    """Why ``bullet`` names no evidence, or ``None`` when it does."""
    if REFERENCE.search(bullet):
        return None
    tests = TEST.findall(bullet)
    for path, function in tests:
        file = root / path
        if not file.is_file():
            return f"names {path}, which does not exist"
        if function and not re.search(rf"^def {function}\(", file.read_text(), re.M):
            return f"names {path}::{function}, which does not exist"
    return None if tests else "names no theorem, section, cell or test"


def main(folder: str) -> int:
    root = Path(folder).resolve().parent
    failures = 0
    for md in sorted(Path(folder).glob("*.md")):
        bullets = summary_bullets(md.read_text(encoding="utf-8"))
        if not bullets:
            continue
        problems = [(b, why) for b in bullets if (why := unbacked(b, root))]
        print(f"{md.name}: {len(bullets)} summary bullets, {len(problems)} unbacked")
        for bullet, why in problems:
            print(f"  - {why}: {bullet[:100]}")
        failures += len(problems)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "book"))
