"""Fail when a chapter uses a ``gumbel_lib`` function without linking it to its API entry.

Usage: ``python tests/check_api_links.py book`` (part of ``make prose``).

Each chapter must link every public ``gumbel_lib`` function or class that its code cells use
(import, or reach through ``gumbel_lib.name`` / ``module_alias.name``) to the entry of
``book/api-reference.md`` that documents it, with a role such as
``{func}`~gumbel_lib.sampling.gumbel_max``` (``{class}`` for a class), and the link must come
the first time the prose names the function (a role or inline code naming it). The target
must be the path under which the API page documents the object (``automodule`` members or
``autofunction``): a re-exported path such as ``gumbel_lib.gumbel_max`` does not resolve.

Private helpers need no link: a leading underscore, or (unless the API page documents it) a
docstring whose summary says "internal", the library's convention for helpers that modules
share. Nor do constants or the ``benchmarks`` package.
The API reference, the bibliography and the reproducibility appendix are not chapters.

Prints, per chapter, how many functions it uses and links and what is missing; exits 1 when
anything is missing, linked only after an earlier unlinked mention, pointed at a path the API
page does not document, or used but not documented at all.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from pathlib import Path

from check_prose_numbers import prose_lines

NOT_CHAPTERS = {"bibliography", "reproducibility"}  # and the API pages, book/api-*.md
ROLE = re.compile(r"\{(?:py:)?(func|class|meth|data|obj|mod)\}`~?([^`<]*?(?:<([^>]+)>)?)`")
INLINE_CODE = re.compile(r"(?<![}`])``?([^`]+)``?")
CELL_OPEN = re.compile(r"^(`{3,})\{code-cell\}")


def documented(api_page: Path) -> dict[object, str]:
    """Map each object the API page documents to the dotted path it documents it under."""
    text = api_page.read_text(encoding="utf-8")
    paths: list[str] = []
    for block in re.split(r"\n(?=\.\. auto)", text):
        module = re.match(r"\.\. automodule:: (\S+)", block)
        members = re.search(r":members:(.*)", block)
        if module and members:
            names = [n.strip() for n in members.group(1).split(",") if n.strip()]
            paths += [f"{module.group(1)}.{name}" for name in names]
        paths += re.findall(r"^\.\. auto(?:function|class|data):: (\S+)", block, re.M)
    return {resolve(path): path for path in paths}


def resolve(path: str) -> object:
    """The object at a dotted path ``package.module.name``."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def code_cells(text: str) -> list[str]:
    """The sources of the ``{code-cell}`` blocks, without their option headers."""
    cells, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        opening = CELL_OPEN.match(lines[i])
        i += 1
        if not opening:
            continue
        body = []
        while i < len(lines) and lines[i].rstrip() != opening.group(1):
            body.append(lines[i])
            i += 1
        if body and body[0].strip() == "---":  # YAML options header
            end = next(j for j in range(1, len(body)) if body[j].strip() == "---")
            body = body[end + 1 :]
        body = [line for line in body if not re.match(r"^:[\w-]+:", line)]
        cells.append("\n".join("pass" if ln.startswith(("%", "!")) else ln for ln in body))
    return cells


def used_objects(cells: list[str]) -> dict[object, str]:
    """The public ``gumbel_lib`` functions and classes the cells use, with a name for each."""
    found: dict[object, str] = {}
    modules: dict[str, str] = {}  # local name -> gumbel_lib module, across cells
    for source in cells:
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gumbel_lib"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    target = getattr(module, alias.name)
                    if inspect.ismodule(target):
                        modules[alias.asname or alias.name] = target.__name__
                    else:
                        keep(found, target, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("gumbel_lib"):
                        modules[alias.asname or alias.name] = alias.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                base = dotted(node.value)
                if base in modules or base.startswith("gumbel_lib"):
                    module = importlib.import_module(modules.get(base, base))
                    if hasattr(module, node.attr):
                        keep(found, getattr(module, node.attr), node.attr)
    return found


def dotted(node: ast.expr) -> str:
    """``a.b.c`` for a chain of attribute accesses on a name, else ``""``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def keep(found: dict[object, str], target: object, name: str) -> None:
    """Record ``target`` when it is a public function or class of ``gumbel_lib``."""
    is_code = inspect.isfunction(target) or inspect.isclass(target)
    if is_code and not name.startswith("_"):
        if getattr(target, "__module__", "").startswith("gumbel_lib"):
            found.setdefault(target, name)


def internal(target: object) -> bool:
    """Whether the docstring's summary marks ``target`` as an internal helper."""
    return "internal" in (inspect.getdoc(target) or "").split("\n\n")[0]


def check(chapter: Path, api: dict[object, str]) -> tuple[int, int, list[str]]:
    """(used, linked, problems) for one chapter."""
    used = used_objects(code_cells(chapter.read_text(encoding="utf-8")))
    used = {obj: name for obj, name in used.items() if obj in api or not internal(obj)}
    first: dict[object, tuple[bool, str]] = {}  # object -> (first mention is a link, target)
    problems: list[str] = []
    for number, line in prose_lines(chapter.read_text(encoding="utf-8")):
        spans = []
        for match in ROLE.finditer(line):
            target = (match.group(3) or match.group(2)).strip()
            spans.append((match.start(), target, match.group(1) != "mod"))
        rest = ROLE.sub(lambda m: " " * len(m.group(0)), line)
        for match in INLINE_CODE.finditer(rest):
            words = re.findall(r"[A-Za-z_][\w.]*", match.group(1))
            ours = [w for w in words if "." not in w or w.startswith("gumbel_lib.")]
            spans += [(match.start(), word, False) for word in ours]
        for _, target, is_link in sorted(spans, key=lambda span: span[0]):
            name = target.rsplit(".", 1)[-1]
            hits = [obj for obj, short in used.items() if short == name or obj is _at(target)]
            for obj in hits:
                first.setdefault(obj, (is_link, target))
            if is_link and target.startswith("gumbel_lib") and target not in api.values():
                problems.append(f"line {number}: {target} is not a documented path")
    linked = 0
    for obj, name in sorted(used.items(), key=lambda item: item[1]):
        path = api.get(obj)
        is_link, target = first.get(obj, (False, ""))
        if path is None:
            problems.append(f"{name}: used but on no API page (book/api-*.md)")
        elif not target:
            problems.append(f"{name}: never named in the prose; link {path}")
        elif not is_link:
            problems.append(f"{name}: first named as `{target}` without a link to {path}")
        elif target != path:
            problems.append(f"{name}: first link points at {target}, documented as {path}")
        else:
            linked += 1
    return len(used), linked, problems


def _at(target: str) -> object:
    """The object a role's target names, or ``None``."""
    try:
        return resolve(target) if target.startswith("gumbel_lib.") else None
    except (ImportError, AttributeError, ValueError):
        return None


def api_pages(book: Path) -> list[Path]:
    """The API reference: its summary page and one page per group, ``book/api-*.md``."""
    return sorted(book.glob("api-*.md"))


def summary_problems(book: Path, api: dict[object, str]) -> list[str]:
    """Every documented function and class is in the summary table of ``api-reference.md``,
    under its documented path, and the table names nothing that is not documented."""
    listed = {
        match.group(2).lstrip("~")
        for match in ROLE.finditer((book / "api-reference.md").read_text(encoding="utf-8"))
        if match.group(1) in ("func", "class")
    }
    code = {path for obj, path in api.items() if inspect.isfunction(obj) or inspect.isclass(obj)}
    return [
        f"api-reference.md: {path} is documented but not in the summary"
        for path in sorted(code - listed)
    ] + [
        f"api-reference.md: the summary lists {path}, which no API page documents"
        for path in sorted(listed - code)
    ]


def main(folder: str) -> int:
    book = Path(folder)
    api: dict[object, str] = {}
    for page in api_pages(book):
        api.update(documented(page))
    totals = [0, 0, 0]
    problems = summary_problems(book, api)
    for problem in problems:
        print(problem)
    totals[2] += len(problems)
    for chapter in sorted(book.glob("*.md")):
        if chapter.stem in NOT_CHAPTERS or chapter.stem.startswith("api-"):
            continue
        used, linked, problems = check(chapter, api)
        totals = [totals[0] + used, totals[1] + linked, totals[2] + len(problems)]
        print(f"{chapter.stem}: used {used}, linked {linked}, missing {len(problems)}")
        for problem in problems:
            print(f"    {problem}")
    print(f"total: used {totals[0]}, linked {totals[1]}, missing {totals[2]}")
    return 1 if totals[2] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "book"))
