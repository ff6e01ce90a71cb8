"""No hand-typed results in a chapter's narrative: every number that reads like a result comes from ``{glue:}``.

A chapter's markdown cells may quote a result (an accuracy, a mask rate, a difference) only through myst-nb's glue:
the code cell computes it and calls ``myst_nb.glue("name", value, display=False)``, the prose writes
``{glue:text}`name:.3f```. :func:`hand_typed_numbers` finds what slipped through, by this rule:

*Looks like a result*: a decimal number (``0.83``, ``84.07``) or a percentage (``81.7 %``, ``65%``).

*Never flagged*, because it is not prose: text inside math (``$...$``, ``$$...$$``, ``{math}`` blocks), inline
code and roles (``{glue:text}`...```, ``{cite}`...```), fenced code, directive option lines (``:label:``), HTML
comments and link targets. A setting can therefore always be written as ``$\\tau = 0.95$`` or ```0.95```.

*Allowed*, as obvious non-results:

- references and versions: a number after Table, Fig., Figure, Sec., Section, Eq., chapter, version, Python, or
  with two dots (``1.2.1``);
- settings: a number right after ``=``, ``<``, ``>``, ``≤``, ``≥`` or ``×``, or within three words after a
  hyper-parameter's name (threshold, temperature, momentum, learning rate, weight decay, dropout, τ, μ, λ, α, ...),
  or followed by a unit (Hz, kHz, s, ms, dB, seconds, samples, bins, epochs, steps, clips, GB, MB);
- label budgets and splits: a percentage followed by a word about labels or by "of the/them/its" or "for
  validation/test" (``10 % labelled``, ``1 % of the training clips``, ``10 % and 100 % labels``, ``20 % of them
  for validation``), or within eight words after fraction, budget, share, subset or label(l)ed.

The published numbers of the studies are results too: they belong in tables generated from
:mod:`esclib.results.studies`, not in the prose. Notebooks: every chapter (checked by ``tests/test_glue.py``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

#: a decimal number or a percentage (with an optional space before %)
RESULT_LIKE = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?\s?%|\d+(?:,\d{3})*\.\d+)(?![\w.]*\d)")

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|:{3,}|~{3,})(?P<info>.*)$")
_PROSE_DIRECTIVES = {"exercise", "solution", "note", "warning", "tip", "important", "admonition", "hint",
                     "caution", "attention", "danger", "error", "seealso", "dropdown", "margin", "sidebar",
                     "topic", "epigraph", "figure", "card", "tab-item", "grid-item-card"}
_INLINE = [
    re.compile(r"\$\$.*?\$\$", re.S),                           # display math
    re.compile(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S),      # LaTeX environments
    re.compile(r"(?<![\\$])\$(?!\s)[^$\n]+?(?<!\s)\$"),          # inline math
    re.compile(r"\{[\w:.-]+\}`[^`]*`"),                          # roles: {glue:text}`..`, {cite}`..`, {doc}`..`
    re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S),             # inline code
    re.compile(r"<!--.*?-->", re.S),                             # HTML comments
    re.compile(r"\]\([^)]*\)"),                                  # link targets (the link text stays)
    re.compile(r"https?://\S+"),                                 # bare URLs
    re.compile(r"<[^>\n]+>"),                                    # HTML tags (their text stays)
]
_REFERENCE = re.compile(r"(?:tables?|fig\.|figs?\.|figures?|sec\.|sections?|§|eqs?\.|equations?|chapters?|"
                        r"appendix|version|python|v)\s*\(?$", re.I)
_SETTING_SYMBOL = re.compile(r"(?:=|<|>|≤|≥|×)\s*$")
_HYPERPARAMETER = re.compile(
    r"\b(?:threshold|temperature|momentum|learning rate|lr|weight decay|decay|dropout|τ|μ|λ|α|β|γ|nce-t|"
    r"ratio|probability|factor|scale|scales|snr)\b\W+(?:\S+\s+){0,2}\S*$", re.I)
_UNIT = re.compile(r"^\s?(?:hz|khz|s|ms|db|seconds?|samples?|bins?|epochs?|steps?|clips?|gb|mb)\b", re.I)
_BUDGET_AFTER = re.compile(r"^(?:\s*(?:,|or|and|to)\s*\d+(?:\.\d+)?\s?%)*\s*-?\s*(?:labell?ed|labels?\b|"
                           r"of\s+(?:the|them|its|their)\b|for\s+(?:validation|test))", re.I)
_BUDGET_BEFORE = re.compile(r"(?:fraction|budget|share|subset|labell?ed|labels?)\W+(?:\S+\s+){0,7}\S*$", re.I)


@dataclass(frozen=True)
class Finding:
    """A number in a chapter's narrative that looks like a hand-typed result."""

    cell: int
    number: str
    context: str

    def __str__(self) -> str:
        return f"cell {self.cell}: {self.number!r} in \"{self.context}\""


def prose(markdown: str) -> str:
    """The prose of a markdown cell, with math, code, roles, comments, link targets, fenced code and directive
    options blanked out (same length, so positions keep their meaning)."""
    lines, kept, fence = markdown.split("\n"), [], None
    for line in lines:
        match = _FENCE.match(line)
        if fence is None and match:
            info = match["info"].strip()
            directive = re.match(r"\{([\w-]+)\}", info)
            keeps_prose = directive is not None and directive.group(1) in _PROSE_DIRECTIVES
            fence = (match["fence"][0], len(match["fence"]), keeps_prose)
            kept.append(" " * len(line))
            continue
        if fence is not None and match and match["fence"][0] == fence[0] and len(match["fence"]) >= fence[1] \
                and not match["info"].strip():
            fence = None
            kept.append(" " * len(line))
            continue
        inside_code = fence is not None and not fence[2]
        option = fence is not None and re.match(r"^\s*:[\w-]+:", line)
        kept.append(" " * len(line) if inside_code or option or re.match(r"^\(\S+\)=\s*$", line) else line)
    text = "\n".join(kept)
    for pattern in _INLINE:
        text = pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    return text


def _allowed(text: str, start: int, end: int) -> bool:
    before, after, number = text[max(0, start - 60):start], text[end:end + 40], text[start:end]
    if _REFERENCE.search(before) or number.count(".") > 1:
        return True
    if _SETTING_SYMBOL.search(before) or _HYPERPARAMETER.search(before):
        return True
    if not number.endswith("%"):
        return bool(_UNIT.match(after))
    return bool(_BUDGET_AFTER.match(after) or _BUDGET_BEFORE.search(before))


def hand_typed_numbers_in(markdown: str, cell: int = 0) -> list[Finding]:
    """The result-like numbers of one markdown text that no rule of the module docstring allows."""
    text, findings = prose(markdown), []
    for match in RESULT_LIKE.finditer(text):
        if not _allowed(text, match.start(), match.end()):
            context = " ".join(markdown[max(0, match.start() - 40):match.end() + 20].split())
            findings.append(Finding(cell, match.group(0), context))
    return findings


def _notebook(notebook: Path | NotebookNode) -> NotebookNode:
    return notebook if isinstance(notebook, NotebookNode) else nbformat.read(notebook, as_version=4)


def hand_typed_numbers(notebook: Path | NotebookNode) -> list[Finding]:
    """Every result-like number typed into the markdown cells of ``notebook`` (a path or a notebook)."""
    nb = _notebook(notebook)
    return [finding for i, cell in enumerate(nb.cells) if cell.cell_type == "markdown"
            for finding in hand_typed_numbers_in(cell.source, i)]


def glue_counts(notebook: Path | NotebookNode) -> dict[str, int]:
    """How many ``{glue...}`` roles the markdown uses and how many ``glue(`` calls the code makes."""
    nb = _notebook(notebook)
    roles = sum(len(re.findall(r"\{glue(?::\w+)?\}`", c.source)) for c in nb.cells if c.cell_type == "markdown")
    calls = sum(len(re.findall(r"\bglue\(", c.source)) for c in nb.cells if c.cell_type == "code")
    return {"glue roles": roles, "glue calls": calls}


def main(argv: list[str] | None = None) -> int:
    """``python -m esclib.runner.narrative NOTEBOOK...``: print the hand-typed numbers of each notebook; exit 1 if
    any."""
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    total = 0
    for path in paths:
        findings = hand_typed_numbers(path)
        total += len(findings)
        counts = glue_counts(path)
        print(f"{path}: {len(findings)} hand-typed number(s); {counts['glue roles']} glue role(s), "
              f"{counts['glue calls']} glue call(s)")
        for finding in findings:
            print(f"  {finding}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
