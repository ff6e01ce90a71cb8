"""The browser check of the built book (esclib.runner.pages) on hand-made pages: it must see what loaded and what
did not. Runs where Chromium and Playwright are installed (``.[browser]`` and Debian's chromium); skipped elsewhere."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from esclib.runner.pages import chapter_pages, check_pages

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_browser = pytest.mark.skipif(not Path(CHROMIUM).exists() or not shutil.which("chromium"),
                                   reason="no Chromium on this machine")


def test_a_book_without_chapter_pages_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no chapter pages under .*book/chapters.*esc book"):
        chapter_pages(tmp_path)


def _page(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.html").write_text(f"<html><body><main>{body}</main></body></html>")


@needs_browser
def test_counts_what_loaded_and_fails_what_did_not(tmp_path):
    pytest.importorskip("playwright")
    chapters = tmp_path / "book" / "chapters"
    chapters.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (8, 6), "red").save(chapters / "fig.png")
    sf.write(chapters / "clip.wav", (0.1 * np.sin(np.arange(8000) / 5)).astype("float32"), 8000)
    (chapters / "noise.wav").write_bytes(b"not a wav file")
    _page(chapters, "good", '<img src="fig.png"><table><tr><td>1</td></tr></table>'
                            '<audio controls src="clip.wav"></audio><div class="exercise">E</div>')
    _page(chapters, "bad", '<img src="missing.png"><audio controls src="noise.wav"></audio>'
                           '<div class="solution">S</div><script>throw new Error("boom")</script>')
    table = check_pages(tmp_path, chromium=CHROMIUM, settle_ms=500, student=True).set_index("page")
    good, bad = table.loc["good"], table.loc["bad"]
    assert (good.figures, good.broken_figures, good.tables, good.audio, good.silent_audio, good.exercises) == \
        (1, 0, 1, 1, 0, 1) and good.ok
    assert (bad.broken_figures, bad.silent_audio, bad.solutions) == (1, 1, 1) and not bad.ok
    assert "boom" in bad.problems and "solution(s) in the student edition" in bad.problems
