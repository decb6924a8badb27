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
* **Indices in the sidebar.** ``sidebar-indices.html`` (in ``book/_templates``) links the
  index of theorems that sphinx-proof generates (``prf-prf.html``) and the general index.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

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


def setup(app: Sphinx) -> dict[str, Any]:
    # After sphinx-book-theme builds its header buttons (priority 501).
    app.connect("html-page-context", update_page, priority=900)
    app.connect("build-finished", copy_markdown_sources)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
