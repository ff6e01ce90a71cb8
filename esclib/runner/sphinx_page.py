"""A Sphinx extension for the book's HTML pages (listed under ``sphinx.extra_extensions`` in ``_config.yml``).

jupyter-book 1.x adds sphinx-thebe's inline configuration script to every page twice, so each page logs
"Identifier 'THEBE_JS_URL' has already been declared" in the browser (found by ``python -m esclib.runner.pages``).
(once with ``filename=None``, once with ``filename=''``, so Sphinx's own check does not see the repeat). This
extension keeps the first of any scripts that are the same file (or the same inline body) with the same attributes.
"""

from __future__ import annotations

from typing import Any


def drop_repeated_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """``html-page-context`` handler: remove repeated entries from the page's ``script_files``."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        key = (str(getattr(script, "filename", script) or ""),  # an inline script's filename is None or ""
               tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def setup(app: Any) -> dict[str, Any]:
    """Register the handler early: ``html-page-context`` is emitted with ``emit_firstresult``, so a handler after
    one that returns a template name is never called (the repeated scripts are there from the start of the build)."""
    app.connect("html-page-context", drop_repeated_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
