"""A chapter's lab as notebook cells, ready to insert into ``notebooks/NN_name.ipynb``.

Every exercise becomes a markdown cell with a plain sphinx-exercise ``{exercise}`` block (papermill keeps only
plain ones intact), a code cell for coding exercises -- the function to complete and the call of its check from
``esclib.labs`` -- and a markdown cell with the ``{solution}`` block. A coding exercise's solution shows the sample solution's source, taken
from ``esclib/labs/chNN.py`` at build time (``literalinclude :pyobject:``), so the instructor edition always shows
the code the tests check; the student edition (``esc book --edition student``) drops every solution block.

Every inserted cell carries the tag :data:`LAB_TAG`; :func:`insert_lab` replaces the cells so tagged, so a lab can
be re-inserted after its exercises change. Notebooks: every chapter's lab.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

#: tag of every cell a lab inserts (and that :func:`insert_lab` replaces)
LAB_TAG = "esc-lab"

LAB_INTRO = """\
## Lab

Each coding exercise below has a cell with a function to complete and a check from `esclib.labs` that runs your
function and the library's on generated inputs. The check says what is wrong (a shape, an axis, a view, a
normalisation...), not only whether it passes; run the cell again after every change. The exercises without code
ask you to predict an outcome before you test it with `esc run`."""


@dataclass(frozen=True)
class Exercise:
    """One lab exercise.

    ``prompt`` and ``solution`` are MyST markdown. A coding exercise also has ``template`` (the code cell: the
    function to complete, then its check) and ``sample`` (the name of the sample solution in the chapter's
    ``esclib.labs`` module, shown in the solution) and ``check`` (the name of its check there).
    """

    label: str
    title: str
    prompt: str
    solution: str
    template: str | None = None
    sample: str | None = None
    check: str | None = None

    @property
    def coding(self) -> bool:
        """Whether the student writes code checked by ``esclib.labs``."""
        return self.check is not None


def exercise_markdown(exercise: Exercise) -> str:
    """The ``{exercise}`` block of ``exercise``."""
    return f"```{{exercise}} {exercise.title}\n:label: {exercise.label}\n\n{exercise.prompt.strip()}\n```"


def solution_markdown(exercise: Exercise, module: str) -> str:
    """The ``{solution}`` block of ``exercise``; for a coding exercise it includes the sample solution's source from
    ``esclib/labs/<module>.py`` and says which call checks it."""
    body = exercise.solution.strip()
    if exercise.sample:
        body += textwrap.dedent(f"""

            The sample solution, `esclib.labs.{module}.{exercise.sample}`:

            ```{{literalinclude}} /esclib/labs/{module}.py
            :language: python
            :pyobject: {exercise.sample}
            ```

            `{module}.{exercise.check}({module}.{exercise.sample})` passes.""")
    return f"````{{solution}} {exercise.label}\n:class: dropdown\n\n{body}\n````"


def _tagged(cell: NotebookNode) -> NotebookNode:
    cell.metadata["tags"] = [LAB_TAG]
    return cell


def exercise_cells(exercise: Exercise, module: str) -> list[NotebookNode]:
    """The cells of one exercise: the exercise, the code to complete (coding exercises), the solution."""
    cells = [nbformat.v4.new_markdown_cell(exercise_markdown(exercise))]
    if exercise.template:
        cells.append(nbformat.v4.new_code_cell(exercise.template.strip()))
    cells.append(nbformat.v4.new_markdown_cell(solution_markdown(exercise, module)))
    return [_tagged(cell) for cell in cells]


def lab_cells(exercises: tuple[Exercise, ...], module: str) -> list[NotebookNode]:
    """The whole lab of a chapter: the introduction, then every exercise's cells. Their ids are numbered from the
    module's name (``lab-ch02-00`` ...), so inserting the same lab again leaves the notebook file unchanged."""
    cells = [_tagged(nbformat.v4.new_markdown_cell(LAB_INTRO))]
    for exercise in exercises:
        cells += exercise_cells(exercise, module)
    for number, cell in enumerate(cells):
        cell.id = f"lab-{module.rsplit('.', 1)[-1]}-{number:02d}"
    return cells


def insert_cells(nb: NotebookNode, cells: list[NotebookNode], *, before: str | None = None) -> NotebookNode:
    """Put ``cells`` into ``nb`` in place of its cells tagged :data:`LAB_TAG`; without such cells, before the first
    markdown cell starting with ``before`` (e.g. ``"## What we learned"``), or at the end. Returns ``nb``."""
    tagged = [i for i, cell in enumerate(nb.cells) if LAB_TAG in cell.metadata.get("tags", [])]
    if tagged:
        at = tagged[0]
        nb.cells = [cell for i, cell in enumerate(nb.cells) if i not in set(tagged)]
    elif before is not None:
        starts = [i for i, cell in enumerate(nb.cells)
                  if cell.cell_type == "markdown" and cell.source.lstrip().startswith(before)]
        if not starts:
            raise ValueError(f"no markdown cell starts with {before!r}; where should the lab go?")
        at = starts[0]
    else:
        at = len(nb.cells)
    nb.cells[at:at] = cells
    return nb


def insert_into_file(path: Path, cells: list[NotebookNode], *, before: str | None = None) -> Path:
    """:func:`insert_cells` on the notebook file ``path``, written back."""
    nb = nbformat.read(path, as_version=4)
    insert_cells(nb, cells, before=before)
    nbformat.write(nb, path)
    return path
