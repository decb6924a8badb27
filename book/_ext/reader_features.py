"""Reader features that Jupyter Book 1 does not configure by itself.

Loaded from ``_config.yml`` (``sphinx.local_extensions``). Three small things:

* **No Thebe.** Jupyter Book always loads ``sphinx_thebe``, which declares the inline
  script ``const THEBE_JS_URL = ...`` twice per page (a console ``SyntaxError``) even with
  ``launch_buttons.thebe: false``. The Binder and Colab launch buttons do not use Thebe,
  so when it is off we drop its script and stylesheet from every page.
* **The MyST source as a download.** Sphinx reads each chapter's ``.ipynb`` half (the
  ``.md`` half is excluded), so the theme's download menu offers only the notebook. We copy
  ``book/<slug>.md`` next to the notebook in ``_build/html/_sources/`` and add a ``.md``
  entry to the menu.
* **An index of theorems.** sphinx-proof's own index (``prf-prf.html``) lists labels only;
  we write ``theorems.html``: every numbered theorem, proposition, definition, ... by
  chapter, with its number and title, linked to it. ``sidebar-indices.html`` (in
  ``book/_templates``) links it, the index of library modules and the general index.
"""

from __future__ import annotations

import html
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

THEBE_ASSETS = ("sphinx-thebe.js", "sphinx-thebe.css")


def _thebe_enabled(app: Sphinx) -> bool:
    launch = app.config.html_theme_options.get("launch_buttons", {}) or {}
    return bool(launch.get("thebe"))


def _is_thebe_asset(asset: Any) -> bool:
    """Thebe's files, and the inline script that declares ``THEBE_JS_URL``."""
    filename = str(getattr(asset, "filename", "") or "")
    body = str(getattr(asset, "attributes", {}).get("body", ""))
    return filename.endswith(THEBE_ASSETS) or "THEBE_JS_URL" in body


def _markdown_source(app: Sphinx, pagename: str) -> Path | None:
    """``book/<slug>.md`` when the page is built from ``book/<slug>.ipynb``."""
    if pagename not in app.env.all_docs:
        return None
    source = Path(app.env.doc2path(pagename))
    markdown = source.with_suffix(".md")
    if source.suffix == ".ipynb" and markdown.is_file():
        return markdown
    return None


def update_page(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Drop Thebe's assets and add the ``.md`` source to the download menu."""
    if not _thebe_enabled(app):
        for key in ("script_files", "css_files"):
            if key in context:
                context[key][:] = [a for a in context[key] if not _is_thebe_asset(a)]

    markdown = _markdown_source(app, pagename)
    if markdown is None:
        return
    sources_url = context["pathto"]("_sources", 1)
    for group in context.get("header_buttons", []):
        if group.get("label") != "download-buttons":
            continue
        entry = {
            "type": "link",
            "url": f"{sources_url}/{pagename}.md",
            "text": ".md",
            "tooltip": "Download the MyST source (Jupytext pair of the notebook)",
            "icon": "fas fa-file-lines",
            "label": "download-myst-button",
        }
        buttons = group["buttons"]
        if all(b.get("label") != entry["label"] for b in buttons):
            buttons.insert(1, entry)


def copy_markdown_sources(app: Sphinx, exception: Exception | None) -> None:
    """Copy each chapter's ``.md`` half into ``_sources/`` so its download link resolves."""
    if exception is not None or app.builder.format != "html":
        return
    for docname in sorted(app.env.found_docs):
        markdown = _markdown_source(app, docname)
        if markdown is not None:
            target = Path(app.outdir, "_sources", docname + ".md")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(markdown, target)


def _is_proof_block(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Admonition) and {"realtype", "label"} <= set(node.attributes)


def collect_theorems(app: Sphinx, doctree: nodes.document) -> None:
    """Remember each sphinx-proof block of the document just read, in document order."""
    entries = [
        {
            "realtype": node["realtype"],
            "countertype": node["countertype"],
            "id": node["ids"][0],
            "title": node.next_node(nodes.title).astext() if node.next_node(nodes.title) else "",
        }
        for node in doctree.findall(_is_proof_block)
        if node["realtype"] != "proof" and node["ids"]
    ]
    if not hasattr(app.env, "reader_theorems"):
        app.env.reader_theorems = {}
    app.env.reader_theorems[app.env.docname] = entries


def reread_without_theorems(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """An environment saved before this extension was loaded has no theorems: read it all."""
    return [] if hasattr(env, "reader_theorems") else sorted(env.found_docs)


def purge_theorems(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    getattr(env, "reader_theorems", {}).pop(docname, None)


def merge_theorems(
    app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment
) -> None:
    if not hasattr(env, "reader_theorems"):
        env.reader_theorems = {}
    env.reader_theorems.update(getattr(other, "reader_theorems", {}))


def _toc_order(env: BuildEnvironment) -> list[str]:
    """Documents in the order of the table of contents, depth first from the root."""
    order: list[str] = []

    def visit(docname: str) -> None:
        if docname not in order:
            order.append(docname)
            for child in env.toctree_includes.get(docname, []):
                visit(child)

    visit(env.config.root_doc)
    return order


def theorem_index(app: Sphinx) -> Iterator[tuple[str, dict[str, Any], str]]:
    """The page ``theorems.html``: numbered statements by chapter, each linked to."""
    env = app.env
    found = getattr(env, "reader_theorems", {})
    parts = [
        "<h1>Index of theorems and definitions</h1>",
        "<p>Every numbered statement of the book, in reading order. sphinx-proof's "
        f'<a href="{app.builder.get_target_uri("prf-prf")}">index by label</a> '
        "lists the same blocks by their labels.</p>",
    ]
    for docname in _toc_order(env):
        entries = found.get(docname, [])
        if not entries:
            continue
        chapter = html.escape(env.titles[docname].astext())
        numbers = env.toc_secnumbers.get(docname, {}).get("", ())
        prefix = ".".join(map(str, numbers)) + ". " if numbers else ""
        parts.append(f"<h2>{prefix}{chapter}</h2>\n<ul>")
        for entry in entries:
            number = env.toc_fignumbers.get(docname, {}).get(entry["countertype"], {})
            number = ".".join(map(str, number.get(entry["id"], ())))
            name = html.escape(f"{entry['realtype'].title()} {number}".strip())
            title = html.escape(entry["title"])
            uri = app.builder.get_relative_uri("theorems", docname) + "#" + entry["id"]
            parts.append(f'<li><a class="reference internal" href="{uri}">{name}</a> {title}</li>')
        parts.append("</ul>")
    context = {"title": "Index of theorems and definitions", "body": "\n".join(parts)}
    yield "theorems", context, "page.html"


def setup(app: Sphinx) -> dict[str, Any]:
    # After sphinx-book-theme builds its header buttons (priority 501).
    app.connect("html-page-context", update_page, priority=900)
    app.connect("build-finished", copy_markdown_sources)
    app.connect("doctree-read", collect_theorems)
    app.connect("env-get-outdated", reread_without_theorems)
    app.connect("env-purge-doc", purge_theorems)
    app.connect("env-merge-info", merge_theorems)
    app.connect("html-collect-pages", theorem_index)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
