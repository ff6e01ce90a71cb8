"""Student and instructor editions (esclib.runner.editions, ``esc book --edition``), the bibliography, glue and the
download button, down to a real build of a tiny book."""

import argparse
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from esclib.cli import run as run_cli
from esclib.labs import cells
from esclib.runner.assets import ASSETS_DIR, REQUIRED
from esclib.runner.editions import (finish_student_edition, launch_problems, strip_solutions, student_config)

REPO = Path(__file__).parent.parent
#: words that appear only inside the solutions of the tiny book (its own and the FixMatch lab's)
SOLUTION_ONLY = ("SENTINEL-SOLUTION-TEXT", "Dividing by the number of confident clips instead",
                 "hard pseudo-labels from the weak view, kept where their confidence reaches")  # sample's docstring


def esc(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="esc")
    run_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def test_strip_solutions_removes_solution_blocks_only():
    text = ("Intro\n```{exercise} E\n:label: e\nDo it.\n```\n"
            "````{solution} e\n:class: dropdown\nSecret.\n```{literalinclude} /x.py\n:pyobject: f\n```\nMore.\n"
            "````\n:::{solution} e\nColon secret.\n:::\nOutro")
    stripped = strip_solutions(text)
    assert "Secret" not in stripped and "literalinclude" not in stripped and "More." not in stripped
    assert "Colon secret" not in stripped
    assert stripped.startswith("Intro\n```{exercise} E") and "Do it." in stripped and stripped.endswith("Outro")


def test_finish_student_edition_strips_sources_and_reports_leaks(tmp_path):
    html = tmp_path / "html"
    (html / "_sources" / "book").mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("```{solution} e\nSecret\n```\nKept")])
    nbformat.write(nb, html / "_sources" / "book" / "ch.ipynb")
    (html / "_sources" / "book" / "intro.md").write_text("A\n```{solution} x\nHidden\n```\n")
    (html / "clean.html").write_text('<div class="exercise admonition">Do it</div>')
    assert finish_student_edition(html) == []
    cell = nbformat.read(html / "_sources" / "book" / "ch.ipynb", 4).cells[0]
    assert cell.source == "Kept" and "Hidden" not in (html / "_sources" / "book" / "intro.md").read_text()
    (html / "leak.html").write_text('<div class="solution dropdown admonition" id="s">Secret</div>')
    assert finish_student_edition(html) == ["student edition: leak.html still shows a solution"]


def test_launch_buttons_need_a_repository(tmp_path):
    config = tmp_path / "_config.yml"
    assert launch_problems(REPO / "_config.yml") == []  # off by default: the book reads offline
    config.write_text(yaml.safe_dump({"launch_buttons": {"colab_url": "https://colab.research.google.com"}}))
    (problem,) = launch_problems(config)
    assert "launch_buttons.colab_url set but repository.url is empty" in problem
    config.write_text(yaml.safe_dump({"launch_buttons": {"binderhub_url": "https://mybinder.org"},
                                      "repository": {"url": "https://github.com/o/r"}}))
    assert launch_problems(config) == []


def test_book_refuses_launch_buttons_without_repository(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    config["launch_buttons"]["colab_url"] = "https://colab.research.google.com"
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    assert esc("book", "--root", tmp_path, "--skip-run") == 1
    assert "repository.url is empty" in capsys.readouterr().err and not (tmp_path / "_build" / "html").exists()


def test_student_config_hides_solutions_and_keeps_the_rest(tmp_path):
    shutil.copy(REPO / "_config.yml", tmp_path / "_config.yml")
    written = yaml.safe_load(student_config(tmp_path).read_text())
    original = yaml.safe_load((REPO / "_config.yml").read_text())
    assert original["sphinx"]["config"]["hide_solutions"] is False
    assert written["sphinx"]["config"]["hide_solutions"] is True
    written["sphinx"]["config"]["hide_solutions"] = False
    assert written == original


def test_edition_option_is_checked():
    with pytest.raises(SystemExit):
        esc("book", "--edition", "teacher")


def _tiny_book(root: Path) -> None:
    """A book of one intro page (with a citation and a solution) and one chapter notebook holding a glued number
    and the FixMatch lab, configured exactly as the real book (offline assets stubbed)."""
    shutil.copy(REPO / "_config.yml", root / "_config.yml")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n- file: book/chapters/lab\n"
                                   "- file: book/bibliography\n")
    shutil.copytree(REPO / "book" / "_static", root / "book" / "_static")
    for name in ("references.bib", "bibliography.md"):
        shutil.copy(REPO / "book" / name, root / "book" / name)
    # the lab's solution is included from esclib/labs/ch02.py under the book's root; the whole package is copied so
    # that the kernel (working directory: the root) imports one complete esclib, never a partial namespace package
    shutil.copytree(REPO / "esclib", root / "esclib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in REQUIRED:  # the offline JavaScript, stubbed: its download is not under test here
        (root / ASSETS_DIR / name).parent.mkdir(parents=True, exist_ok=True)
        (root / ASSETS_DIR / name).write_text("")
    (root / "book" / "intro.md").write_text(
        "# Tiny\n\nAs {cite:t}`kong2020panns` show.\n\n```{exercise}\n:label: intro-ex\nEXERCISE-PROMPT-TEXT\n```\n\n"
        "```{solution} intro-ex\nSENTINEL-SOLUTION-TEXT\n```\n")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Lab chapter\n\nThe glued value is {glue:text}`answer:.3f`."),
        nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('from myst_nb import glue\nglue("answer", 0.4213, display=False)'),
        nbformat.v4.new_code_cell('import ipywidgets\nipywidgets.IntSlider(description="a widget")'),
        nbformat.v4.new_code_cell('from IPython.display import HTML, display\n'
                                  'print("RUN-ONE-SUMMARY", flush=True)\ndisplay(HTML("<i>bar</i>"))\n'
                                  'print("RUN-TWO-SUMMARY", flush=True)'),
        *cells("02_fixmatch")])
    nb.metadata.update(kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
                       language_info={"name": "python"})
    (root / "notebooks").mkdir()
    nbformat.write(nb, root / "notebooks" / "lab.ipynb")


def _texts(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text(errors="replace") for p in folder.rglob("*")
            if p.is_file() and p.suffix in (".html", ".js", ".ipynb", ".md", ".txt")}


@pytest.mark.slow
def test_student_edition_has_no_solution_and_instructor_edition_has_all(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ESCLIB_RESULTS", str(tmp_path / "results"))
    _tiny_book(tmp_path)
    assert esc("book", "--root", tmp_path, "--no-progress") == 0  # executes the chapter, instructor edition
    assert esc("book", "--root", tmp_path, "--skip-run", "--edition", "student") == 0
    instructor, student = tmp_path / "_build" / "html", tmp_path / "_build" / "student" / "html"
    teacher_pages, student_pages = _texts(instructor), _texts(student)
    for text in SOLUTION_ONLY:
        assert any(text in page for page in teacher_pages.values()), f"instructor edition lacks {text!r}"
        leaks = [name for name, page in student_pages.items() if text in page]
        assert not leaks, f"student edition shows {text!r} in {leaks}"
    chapter = "book/chapters/lab.html"
    for pages in (teacher_pages, student_pages):
        assert "EXERCISE-PROMPT-TEXT" in pages["book/intro.html"]
        assert pages[chapter].count('class="exercise admonition"') == 4  # the same four exercises
        assert 'FixMatch unlabelled loss: <span style="color: #8c6d1f">not attempted yet' in pages[chapter]
        assert "0.421" in pages[chapter]  # glued from the run
        assert "Kong <em>et al.</em>" in pages["book/intro.html"]  # author-year citation
        assert "PANNs: large-scale pretrained audio neural networks" in pages["book/bibliography.html"]
        assert "_sources/book/chapters/lab.ipynb" in pages[chapter]  # the download button's notebook
        assert "colab" not in pages[chapter].lower() and "mybinder" not in pages[chapter].lower()
    assert teacher_pages[chapter].count('class="solution') >= 4
    scripts = re.findall(r"<script\b[^>]*>.*?</script>", teacher_pages[chapter], flags=re.DOTALL)
    repeated = {tag[:80] for tag in scripts if scripts.count(tag) > 1}
    assert not repeated, f"scripts repeated on the page (esclib.runner.sphinx_page): {repeated}"
    widget_js = [name for tag in scripts for name in ("require.js", "widgets-offline.js", "embed-amd.js") if name in tag]
    assert widget_js == ["require.js", "widgets-offline.js", "embed-amd.js"], widget_js  # the saved slider's loaders
    assert 'data-default-mode="light"' in teacher_pages[chapter]
    assert "RUN-ONE-SUMMARY\nRUN-TWO-SUMMARY" in teacher_pages[chapter]  # a cell's printed lines in one block
    downloaded = json.loads(student_pages["_sources/book/chapters/lab.ipynb"])
    assert any(o.get("output_type") for c in downloaded["cells"] for o in c.get("outputs", []))  # executed
    assert not any("{solution}" in "".join(c["source"]) for c in downloaded["cells"])


def test_repeated_scripts_are_dropped_once_each_in_order():
    from sphinx.builders.html._assets import _JavaScript

    from esclib.runner.sphinx_page import drop_repeated_scripts

    thebe = {"body": "const THEBE_JS_URL = 1"}
    scripts = [_JavaScript("a.js"), _JavaScript(None, **thebe), _JavaScript("b.js", defer="defer"),
               _JavaScript("", **thebe), _JavaScript("a.js"), _JavaScript("b.js")]
    context = {"script_files": scripts}
    drop_repeated_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] is scripts  # changed in place: Sphinx renders the list it holds
    assert [(s.filename, s.attributes) for s in scripts] == [
        ("a.js", {}), (None, thebe), ("b.js", {"defer": "defer"}), ("b.js", {})]  # other attributes: kept
