"""A chapter launches where gumbel_lib is not installed, and the launch cell is silent where it is.

The launch cell (``tests/launch_cell.py``) is the first code cell of every chapter. Here:

* ``test_chapter_runs_in_a_fresh_environment`` (marked ``launch``; about a minute on 2 cores):
  a fresh virtual environment sees the pinned packages through a ``.pth`` file that names this
  environment's site-packages as a plain path, so the editable install's finder there is not
  loaded and ``import gumbel_lib`` fails (checked first: the negative control). The working
  tree (tracked files and untracked ones that git does not ignore: what a clone of the
  published repository holds once they are committed) is copied to a temporary folder and
  committed there, to a git repository of its own. *Introduction*, which reads
  ``../Makefile``, is checked by nbval in strict mode, run by the fresh environment's Python
  in an empty folder, under the chapters' settings (``CHAPTER_ENV`` of the Makefile), with
  ``GUMBEL_BOOK_SOURCE`` naming that repository (``file://``, so ``--depth`` applies): its
  launch cell must clone the repository (shallow) into that folder, install the library with
  pip from the clone (no index: everything else is found installed; no build isolation, which
  would need setuptools from an index), silently, and change into the clone's ``book/``, where
  the chapter's ``../Makefile`` and ``../requirements.txt`` resolve (from the folder the kernel
  started in they do not: checked); and every text output must equal the stored one. This is
  the chapter's one execution in ``make test``: ``make nbval`` leaves *Introduction* out. A
  probe cell added last (no stored output, so nbval runs it without comparing) writes where
  ``gumbel_lib`` was found: it must import from the fresh environment, torch from the pinned
  one, and the fresh site-packages must hold nothing but the library: pip found everything
  else installed.
* ``test_launch_cell_is_silent_where_the_library_imports``: in this environment the cell
  produces no output and leaves the working directory alone (nbval and the stored outputs
  are unchanged), with the source pointed at a repository that does not exist, so that a
  clone or an install attempt would fail loudly; where a clone of an earlier run is in the
  kernel's folder (a kernel restarted after the cell installed the library), it silently
  changes into the clone's ``book/``.
* the checker and the inserter, on a synthetic pair; the cell passes the project's lint and
  names the repository of ``_config.yml``.

No network: pip runs with ``PIP_NO_INDEX=1`` and no configuration file, and never touches
this environment (pip does not uninstall outside the environment it installs into).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from check_pairs import problems_with_pair
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from launch_cell import (
    CLONE,
    LAUNCH_CELL,
    REPOSITORY,
    SOURCE_VARIABLE,
    check,
    insert,
    problems_with,
)
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "book" / "intro.ipynb"  # reads ../Makefile; about 20 s
PINNED_SITE = Path(sysconfig.get_path("purelib"))  # this environment's packages
# The chapters' environment (Makefile CHAPTER_ENV), and a pip that can reach nothing.
KERNEL_ENV = {
    "GUMBEL_DEVICE": "cpu",
    "OMP_NUM_THREADS": "1",
    "TQDM_DISABLE": "1",
    "PIP_NO_INDEX": "1",
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_NO_CACHE_DIR": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PYTHONNOUSERSITE": "1",
}
# pip's double negative: PIP_NO_BUILD_ISOLATION=0 sets build_isolation to 0, i.e. builds with
# the environment's setuptools (isolation would need one from an index). Set only here.
NO_ISOLATION = {"PIP_NO_BUILD_ISOLATION": "0"}
GIT = ["git", "-c", "safe.directory=*", "-c", "init.defaultBranch=main"]
PROBE = """\
import importlib.metadata, json, os, sys
import gumbel_lib, torch
found = {"gumbel_lib": gumbel_lib.__file__, "torch": torch.__file__,
         "dist": str(importlib.metadata.distribution("gumbel_lib").locate_file("")),
         "prefix": sys.prefix, "cwd": os.getcwd(),
         "requirements": os.path.isfile("../requirements.txt")
         and open("../requirements.txt").read()}
if "LAUNCH_PROBE" in os.environ:
    with open(os.environ["LAUNCH_PROBE"], "w") as probe:
        json.dump(found, probe)
else:
    print(json.dumps(found))"""
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-cell-timeout=600"]
SANITIZE = ["--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg")]


def chapter_settings() -> dict[str, str]:
    """The variables the Makefile's ``CHAPTER_ENV`` sets, read from the Makefile."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    settings: dict[str, str] = {}
    for name in ("PORTABLE_NUMERICS", "CHAPTER_ENV"):
        line = re.search(rf"^{name} := (.*)$", makefile, re.M)
        assert line is not None, name
        settings |= dict(word.split("=", 1) for word in line.group(1).split() if "=" in word)
    return settings


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that could put the repository on a path."""
    drop = ("PYTHONPATH", "PYTHONHOME", "PIP_", "COVERAGE_", "VIRTUAL_ENV", "JUPYTER_PATH", "GIT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return env | KERNEL_ENV | extra


def run_notebook(notebook, python: Path, workdir: Path, env: dict[str, str], timeout: int):
    """Execute ``notebook`` in place in a kernel of ``python``, with cwd ``workdir``."""
    kernels = workdir.parent / f"kernels-{workdir.name}"
    spec = kernels / "under-test"
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "language": "python", "display_name": "under test"})
    )
    manager = AsyncKernelManager(
        kernel_name="under-test", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)])
    )
    client = NotebookClient(
        notebook, km=manager, timeout=timeout, resources={"metadata": {"path": str(workdir)}}
    )
    client.execute(env=env)
    return notebook


def probe_result(notebook) -> dict[str, str]:
    (output,) = notebook.cells[-1].outputs
    return json.loads(output.text)


def git(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [*GIT, *map(str, args)], cwd=cwd, env=clean_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def repository_of_the_working_tree(where: Path) -> Path:
    """A git repository holding the working tree as it is now, committed: what a clone gets.

    The files are those git lists as tracked or untracked but not ignored (a tracked file
    deleted in the working tree is left out); nothing is written in this repository.
    """
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    where.mkdir(parents=True)
    for name in sorted(set(filter(None, listed.split("\0")))):
        if (ROOT / name).is_file():
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, where / name)
    git("init", "--quiet", cwd=where)
    git("add", "--all", cwd=where)
    identity = ["-c", "user.name=launch test", "-c", "user.email=launch@test.invalid"]
    git(*identity, "-c", "commit.gpgsign=false", "commit", "--quiet", "-m", "tree", cwd=where)
    return where


def fresh_environment(where: Path) -> tuple[Path, Path]:
    """A venv without pip and without the repository, that sees the pinned packages."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(where)
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout.strip()
    site = Path(purelib)
    (site / "pinned.pth").write_text(f"{PINNED_SITE}\n")  # a plain path: its .pth files unread
    return python, site


@pytest.mark.launch
def test_chapter_runs_in_a_fresh_environment(tmp_path: Path) -> None:
    python, site = fresh_environment(tmp_path / "venv")
    env = clean_env()
    # The negative control: the pinned packages import, gumbel_lib does not.
    ok = subprocess.run(
        [python, "-c", "import torch, myst_nb, ipykernel, scipy, setuptools, nbval"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run(
        [python, "-c", "import gumbel_lib"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "No module named 'gumbel_lib'" in missing.stderr
    pinned_record = next(PINNED_SITE.glob("gumbel_lib-*.dist-info/RECORD"), None)
    before = pinned_record.stat().st_mtime_ns if pinned_record else None

    repository = repository_of_the_working_tree(tmp_path / "repository")
    workdir = tmp_path / "work"  # the kernel starts here, as a Colab kernel in /content
    workdir.mkdir()
    # Where the kernel starts, the chapter's relative paths do not resolve.
    assert (
        not (workdir / "../Makefile").exists() and not (workdir / "../requirements.txt").exists()
    )
    notebook = nbformat.read(CHAPTER, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert first.source == LAUNCH_CELL and first.outputs == []  # silent where it imports
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    nbformat.write(notebook, workdir / CHAPTER.name)
    probe = tmp_path / "probe.json"
    kernel_env = clean_env(
        **NO_ISOLATION,
        **chapter_settings(),
        **{SOURCE_VARIABLE: repository.as_uri(), "LAUNCH_PROBE": str(probe)},
    )
    checked = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *NBVAL, *SANITIZE, CHAPTER.name],
        env=kernel_env,
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout[-4000:] + checked.stderr[-2000:]

    found = json.loads(probe.read_text())
    clone = workdir / CLONE
    assert Path(found["cwd"]) == clone / "book", found["cwd"]
    assert found["requirements"] == (ROOT / "requirements.txt").read_text(), found["requirements"]
    assert git("rev-parse", "--is-shallow-repository", cwd=clone).strip() == "true"
    assert git("remote", "get-url", "origin", cwd=clone).strip() == repository.as_uri()
    assert Path(found["prefix"]) == tmp_path / "venv"
    assert Path(found["gumbel_lib"]).is_relative_to(site), found
    assert Path(found["dist"]) == site, found
    assert Path(found["torch"]).is_relative_to(PINNED_SITE), found
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    added = sorted(p.name for p in site.iterdir() if p.name != "__pycache__")
    assert added == ["gumbel_lib", f"gumbel_lib-{version}.dist-info", "pinned.pth"], added
    # This environment is untouched: its gumbel_lib record is where it was, unchanged.
    if pinned_record is not None:
        assert pinned_record.is_file() and pinned_record.stat().st_mtime_ns == before


def test_the_chapter_settings_are_the_makefiles() -> None:
    settings = chapter_settings()
    assert settings["GUMBEL_DEVICE"] == "cpu" and settings["ATEN_CPU_CAPABILITY"] == "avx2"
    assert "$(PORTABLE_NUMERICS)" not in settings and len(settings) >= 8


def test_make_nbval_leaves_the_launched_chapter_out() -> None:
    """The launch test is the chapter's one execution; ``make nbval`` runs every other one."""
    recipe = re.search(r"^nbval:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe is not None
    commands = recipe.group(1)
    assert f"$(filter-out book/{CHAPTER.name}," in commands and "book/*.ipynb" in commands


@pytest.mark.parametrize("earlier_clone", [False, True], ids=["no-clone", "clone-from-before"])
def test_launch_cell_is_silent_where_the_library_imports(
    tmp_path: Path, earlier_clone: bool
) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LAUNCH_CELL)])
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    workdir = tmp_path / "work"
    workdir.mkdir()
    if earlier_clone:  # what the cell left before the kernel restarted
        (workdir / CLONE / "book").mkdir(parents=True)
        (workdir / CLONE / "requirements.txt").write_text("from the clone\n")
    env = clean_env(**{SOURCE_VARIABLE: (tmp_path / "no-such-repository").as_uri()})
    run_notebook(notebook, Path(sys.executable), workdir, env, 120)
    assert notebook.cells[0].outputs == []
    found = probe_result(notebook)
    assert Path(found["gumbel_lib"]).is_relative_to(ROOT / "gumbel_lib")
    if earlier_clone:
        assert Path(found["cwd"]) == workdir / CLONE / "book"
        assert found["requirements"] == "from the clone\n"
    else:
        assert Path(found["cwd"]) == workdir and found["requirements"] is False
    assert sorted(p.name for p in workdir.iterdir()) == ([CLONE] if earlier_clone else [])


def test_the_cell_installs_from_the_configured_repository() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert REPOSITORY == config["repository"]["url"] and CLONE == "gumbel-max-book"
    assert f'os.environ.get("{SOURCE_VARIABLE}", "{REPOSITORY}")' in LAUNCH_CELL
    assert '"git", "clone", "--quiet", "--depth", "1", source, clone' in LAUNCH_CELL
    assert 'os.path.abspath(clone), "myst-nb"' in LAUNCH_CELL


def test_the_cell_passes_the_project_lint(tmp_path: Path) -> None:
    cell = tmp_path / "cell.py"
    cell.write_text(LAUNCH_CELL + "\n")
    config = ["--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    for command in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, *config, str(cell)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def _pair(folder: Path, slug: str, codes: list[str]) -> Path:
    cells = [nbformat.v4.new_markdown_cell(f"# {slug}\n\nSome prose.")]
    cells += [
        nbformat.v4.new_code_cell(code, execution_count=i + 1) for i, code in enumerate(codes)
    ]
    notebook = nbformat.v4.new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
    )
    nbformat.write(notebook, folder / f"{slug}.ipynb")
    md = folder / f"{slug}.md"
    md.write_text(jupytext.writes(jupytext.read(folder / f"{slug}.ipynb"), fmt="md:myst"))
    return md


def test_insert_puts_the_cell_first_in_both_halves_once(tmp_path: Path) -> None:
    md = _pair(tmp_path, "chapter", ["import math", "print(math.pi)"])
    prose = _pair(tmp_path, "appendix", [])
    assert len(check(tmp_path)) == 2  # chapter.md and chapter.ipynb; the appendix needs none
    assert insert(md) and not insert(prose)
    assert check(tmp_path) == []
    assert problems_with_pair(md, md.with_suffix(".ipynb")) == ["code cell 1 was never executed"]
    text, raw = md.read_text(), md.with_suffix(".ipynb").read_bytes()
    assert not insert(md)
    assert md.read_text() == text and md.with_suffix(".ipynb").read_bytes() == raw


def test_insert_leaves_an_unexecuted_notebook_to_make_execute(tmp_path: Path) -> None:
    md = _pair(tmp_path, "chapter", ["import math"])
    md.write_text(md.read_text().replace("Some prose.", "Edited prose."))
    raw = md.with_suffix(".ipynb").read_bytes()
    assert insert(md)
    assert md.with_suffix(".ipynb").read_bytes() == raw
    assert problems_with(md) == [] and "Edited prose." in md.read_text()
    assert problems_with(md.with_suffix(".ipynb")) != []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda cells: cells.pop(1), "is not the launch cell"),
        (lambda cells: cells.insert(2, cells.pop(1)), "not the first code cell"),
        (lambda cells: cells[1].metadata.update(tags=["hide-input"]), "has tags"),
        (
            lambda cells: cells[1].outputs.append(nbformat.v4.new_output("stream", text="x")),
            "stored output (stream)",
        ),
    ],
)
def test_check_fails_on_each_departure(tmp_path: Path, change, message: str) -> None:
    md = _pair(tmp_path, "chapter", [LAUNCH_CELL, "import math"])
    ipynb = md.with_suffix(".ipynb")
    assert problems_with(ipynb) == []
    notebook = nbformat.read(ipynb, as_version=4)
    change(notebook.cells)
    nbformat.write(notebook, ipynb)
    problems = problems_with(ipynb)
    assert len(problems) == 1 and message in problems[0], problems
