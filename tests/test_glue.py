"""No hand-typed results in the chapters' narrative (esclib.runner.narrative): the rule, and the chapters."""

from pathlib import Path

import nbformat
import pytest

from esclib.runner.narrative import glue_counts, hand_typed_numbers, hand_typed_numbers_in, main, prose

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))

#: hand-typed numbers a chapter may still have while it is rewritten to glue them (a count may only go down; a
#: chapter not listed must have none). Every chapter is at zero.
PENDING: dict[str, int] = {}


@pytest.mark.parametrize("text, number", [
    ("FixMatch reaches 0.83 on the test fold.", "0.83"),
    ("The study reports 84.07 % with 10 % of the labels.", "84.07 %"),
    ("SimCLR got 65% in one epoch.", "65%"),
    ("The mask rate rose to 37 % by the last epoch.", "37 %"),
    ("```{exercise}\n:label: x\nWhy is the accuracy 0.91 here?\n```", "0.91"),
    ("| arm | accuracy |\n|---|---|\n| fine-tune | 0.947 |", "0.947"),
    ("about 1,234.5 on average", "1,234.5"),
])
def test_results_typed_into_prose_are_flagged(text, number):
    assert [f.number for f in hand_typed_numbers_in(text)] == [number]


@pytest.mark.parametrize("text", [
    "The accuracy is {glue:text}`acc:.3f` and the gap {glue}`gap`.",
    "With $\\tau = 0.95$ and $$\\lambda_u = 1.0$$ the loss is fixed.",
    "Run `esc run 02_fixmatch -p threshold 0.75` to compare.",
    "As {cite:p}`kong2020panns` reports in Table 2.3 and Sec. 4.4, (Fig. 5) and eq. 3.1.",
    "Built with sphinx-exercise version 1.2.1 on Python 3.12.",
    "The threshold τ = 0.95 and a learning rate of 5.0e-4, momentum 0.5, temperature of 0.07.",
    "Each pair is mixed with weight w = 0.3, and k ≥ 0.5 of them.",
    "Clips at 44.1 kHz, windows of 0.5 s, noise at 2.5 dB.",
    "a 10 % labelled subset, 1 % of the training clips, 10 % and 100 % labels, 20 % of them for validation",
    "a class-balanced fraction of the training folds (10 % or 1 %)",
    "```python\nacc = 0.83\n```",
    "```{math}\nx = 0.5\n```",
    "<!-- measured 0.83 -->",
    "See [the results](https://example.org/acc-0.83.html) and https://example.org/v0.83.",
    "```{exercise}\n:label: lab-0.5\nNo number here.\n```",
    "Study 000 (2021) tested 8,732 clips in 10 folds.",
])
def test_non_results_pass(text):
    assert hand_typed_numbers_in(text) == [], hand_typed_numbers_in(text)


def test_prose_keeps_positions_and_directive_bodies():
    text = "```{note}\nReached 0.9.\n```\n```python\nx = 0.1\n```"
    blanked = prose(text)
    assert len(blanked) == len(text) and "Reached 0.9." in blanked and "0.1" not in blanked


def test_findings_name_cell_and_context():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("from myst_nb import glue\nglue('acc', 0.5, display=False)\nglue('b', 1)"),
        nbformat.v4.new_markdown_cell("FixMatch reaches 0.83 here; {glue:text}`acc:.2f` there.")])
    (finding,) = hand_typed_numbers(nb)
    assert (finding.cell, finding.number) == (2, "0.83") and "FixMatch reaches 0.83" in str(finding)
    assert glue_counts(nb) == {"glue roles": 1, "glue calls": 2}


def test_command_line_reports_and_fails_on_findings(tmp_path, capsys):
    path = tmp_path / "ch.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("We got 0.83.")]), path)
    assert main([str(path)]) == 1
    assert "1 hand-typed number(s)" in capsys.readouterr().out
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("We got {glue}`a`.")]), path)
    assert main([str(path)]) == 0


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_narratives_have_no_new_hand_typed_results(notebook):
    findings = hand_typed_numbers(notebook)
    allowed = PENDING.get(notebook.stem, 0)
    assert len(findings) <= allowed, (
        f"{notebook.name}: {len(findings)} hand-typed number(s) in the narrative (at most {allowed}); glue them "
        "from the run (myst_nb.glue + {glue:text}`name`) or write a setting as math/code:\n"
        + "\n".join(f"  {f}" for f in findings))
