"""Check the built book in a real browser: every chapter page in headless Chromium, offline.

For each page of ``_build/html/book/chapters/`` (or another built edition) it counts what a reader should see --
figures that loaded (``naturalWidth > 0``), tables, typeset math (MathJax's ``mjx-container``; any "Math input
error" is a failure), audio players whose clip decoded (a finite ``duration``, after asking players made with
``preload="none"`` to load), rendered Jupyter widgets, exercises and solutions -- collects the console errors and
failed requests, and saves a screenshot of the top of the page. A page fails when an image did not load, math did
not typeset, an audio clip did not decode, or the page logged an error.

Needs Chromium and Playwright (``pip install -e '.[browser]'``; Debian's ``chromium`` package, or
``--chromium PATH``)::

    python -m esclib.runner.pages _build/html                    # the instructor edition
    python -m esclib.runner.pages _build/student/html --student  # also fails on any solution shown
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

#: flags that keep Chromium off the network (a closed machine refuses its background connections)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required")

_LOAD_AUDIO = """() => document.querySelectorAll('main audio').forEach(a => {
  if (a.preload === 'none') { a.preload = 'metadata'; a.load(); }
})"""

_COUNT = """() => {
  const images = [...document.querySelectorAll('main img')];
  const audio = [...document.querySelectorAll('main audio')];
  return {
    figures: images.length,
    broken_figures: images.filter(i => !(i.complete && i.naturalWidth > 0)).length,
    tables: document.querySelectorAll('main table').length,
    math: document.querySelectorAll('main mjx-container').length,
    math_errors: [...document.querySelectorAll('main mjx-merror')].length
                 + (document.body.innerText.includes('Math input error') ? 1 : 0),
    audio: audio.length,
    silent_audio: audio.filter(a => !isFinite(a.duration) || a.duration <= 0).length,
    widgets: document.querySelectorAll('main .jupyter-widgets').length,
    exercises: document.querySelectorAll('main .exercise').length,
    solutions: document.querySelectorAll('main .solution').length,
  };
}"""


def chapter_pages(html: Path) -> list[Path]:
    """The executed chapters' pages of a built book (``book/chapters/*.html``, not the failed or smoke copies)."""
    pages = sorted((html / "book" / "chapters").glob("*.html"))
    if not pages:
        raise FileNotFoundError(f"no chapter pages under {html / 'book' / 'chapters'}: build the book first "
                                "(`esc book`)")
    return pages


def check_pages(html: str | Path, *, student: bool = False, chromium: str = "/usr/bin/chromium",
                screenshots: str | Path | None = None, settle_ms: int = 4000) -> pd.DataFrame:
    """One row per chapter page of the book built in ``html``: the counts above, the errors, and ``ok``. With
    ``student``, a page that shows a solution fails too. Screenshots (the first 1280 x 2000 pixels) go to
    ``screenshots`` when given."""
    from playwright.sync_api import sync_playwright

    html = Path(html)
    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_FLAGS))
        for page_path in chapter_pages(html):
            page = browser.new_page(viewport={"width": 1280, "height": 2000})
            errors: list[str] = []
            page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.on("requestfailed", lambda r, errors=errors: errors.append(f"failed request {r.url[:120]}"))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(settle_ms)  # MathJax and the widget manager typeset after load
            page.evaluate(_LOAD_AUDIO)  # players made with preload="none" decode only when asked
            page.wait_for_timeout(settle_ms)
            counts = page.evaluate(_COUNT)
            if screenshots is not None:
                Path(screenshots).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(Path(screenshots) / f"{page_path.stem}.png"))
            page.close()
            checks = {"broken_figures": "figure(s) did not load", "math_errors": "math error(s)",
                      "silent_audio": "audio clip(s) did not decode",
                      **({"solutions": "solution(s) in the student edition"} if student else {})}
            problems = [f"{counts[key]} {what}" for key, what in checks.items() if counts[key]] + errors
            rows.append({"page": page_path.stem, **counts, "ok": not problems, "problems": "; ".join(problems)})
        browser.close()
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", help="a built book's HTML folder (_build/html or _build/student/html)")
    parser.add_argument("--student", action="store_true", help="the student edition: no solution may show")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--screenshots", help="folder for a screenshot of each page")
    args = parser.parse_args(argv)
    table = check_pages(args.html, student=args.student, chromium=args.chromium, screenshots=args.screenshots)
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(table.to_string(index=False))
    return 0 if table["ok"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
