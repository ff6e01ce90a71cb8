"""The book's labs: per chapter, coding exercises with checks and sample solutions, plus exercises to predict and test.

One module per chapter -- :mod:`~esclib.labs.ch00` (data), :mod:`~esclib.labs.ch01` (PANN transfer),
:mod:`~esclib.labs.ch02` (FixMatch), :mod:`~esclib.labs.ch03` (CAE), :mod:`~esclib.labs.ch04` (NPID),
:mod:`~esclib.labs.ch05` (SSL), :mod:`~esclib.labs.ch06` (overview) -- holds PCP-style sample solutions (plain
functions), checks ``check_...(student_function)`` that compare a student's function with the library's on
generated inputs and say what is wrong (:mod:`esclib.labs.check`), and ``EXERCISES``, the lab as exercise/solution
blocks. :func:`cells` turns a chapter's lab into notebook cells and :func:`insert_lab` puts them into a chapter
notebook (``python -m esclib.labs insert 02_fixmatch``). Notebooks: every chapter's lab.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pandas as pd
from nbformat import NotebookNode

from esclib.labs.cells import Exercise, insert_into_file, lab_cells

#: the chapter modules, in book order
MODULES: tuple[str, ...] = ("ch00", "ch01", "ch02", "ch03", "ch04", "ch05", "ch06")


def chapter_module(chapter: str) -> ModuleType:
    """The lab module of ``chapter``: a notebook stem (``02_fixmatch``), its number (``02``) or module (``ch02``)."""
    number = chapter.removeprefix("ch").split("_")[0]
    name = f"ch{number}"
    if name not in MODULES:
        stems = [importlib.import_module(f"esclib.labs.{m}").STEM for m in MODULES]
        raise ValueError(f"no lab for chapter {chapter!r}; chapters with a lab: {', '.join(stems)}")
    module = importlib.import_module(f"esclib.labs.{name}")
    if "_" in chapter and chapter != module.STEM:
        raise ValueError(f"chapter {chapter!r}: lab {name} belongs to notebook {module.STEM}")
    return module


def exercises(chapter: str) -> tuple[Exercise, ...]:
    """The exercises of ``chapter``'s lab, in order."""
    return chapter_module(chapter).EXERCISES


def cells(chapter: str) -> list[NotebookNode]:
    """``chapter``'s lab as notebook cells (tagged ``esc-lab``): an introduction, then per exercise its
    ``{exercise}`` block, the code cell to complete (coding exercises) and its ``{solution}`` block."""
    module = chapter_module(chapter)
    return lab_cells(module.EXERCISES, module.__name__.rsplit(".", 1)[1])


def insert_lab(notebook: Path, chapter: str | None = None, *, before: str | None = None) -> Path:
    """Insert ``chapter``'s lab (default: the notebook's stem) into ``notebook``: in place of its cells tagged
    ``esc-lab``, else before the first markdown cell starting with ``before``, else at the end."""
    return insert_into_file(Path(notebook), cells(chapter or Path(notebook).stem), before=before)


def summary() -> pd.DataFrame:
    """Per chapter: exercises, coding exercises (each with one check) and the checks' names."""
    rows = []
    for name in MODULES:
        module = importlib.import_module(f"esclib.labs.{name}")
        coding = [e for e in module.EXERCISES if e.coding]
        rows.append({"chapter": module.STEM, "exercises": len(module.EXERCISES), "coding exercises": len(coding),
                     "checks": ", ".join(f"`{name}.{e.check}`" for e in coding)})
    return pd.DataFrame(rows)
