"""What every lab check shares: run a student's function on generated inputs, compare it with the library's
reference and say *what* is wrong.

A check (``esclib.labs.chNN.check_...``) is a :class:`FunctionCheck` -- a title, generated cases, the library's
reference, a comparison and the known mistakes, each a function that makes that mistake on purpose -- or a short
function over the same helpers. When the student's output differs from the reference, the known mistakes are run on
the same inputs: the one whose output the student's matches names the error ("pseudo-labels from the strong view",
"temperature ignored", ...). Otherwise the comparison's own message (shape, axis, values) is shown.

Checks never raise on a wrong answer, so a chapter that runs a student's unfinished cell still executes; they return
a :class:`Report` that renders in the notebook, is falsy when failed, and raises for graders with
:meth:`Report.raise_if_failed`. Notebooks: every chapter's lab.
"""

from __future__ import annotations

import copy
import html
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

#: what a comparison returns: None when the two outputs agree, else a sentence saying how they differ
Problem = str | None
Case = Mapping[str, Any]
_CODE = re.compile(r"`([^`]+)`")


@dataclass
class Report:
    """The outcome of one lab check: ``passed``, whether the student attempted it, and what was found."""

    title: str
    passed: bool
    messages: list[str] = field(default_factory=list)
    attempted: bool = True

    def __bool__(self) -> bool:
        return self.passed

    @property
    def verdict(self) -> str:
        """One word: passed, failed or not attempted."""
        return "passed" if self.passed else "failed" if self.attempted else "not attempted yet"

    def __str__(self) -> str:
        lines = [f"{self.title}: {self.verdict}"] + [f"  - {m}" for m in self.messages]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#1b7837" if self.passed else "#b2182b" if self.attempted else "#8c6d1f"
        items = "".join("<li>" + _CODE.sub(r"<code>\1</code>", html.escape(m)) + "</li>" for m in self.messages)
        return (f'<div class="esc-lab-report" style="border-left: 4px solid {colour}; padding-left: 0.6em">'
                f'<strong>{html.escape(self.title)}: <span style="color: {colour}">{self.verdict}</span></strong>'
                f"<ul>{items}</ul></div>")

    def raise_if_failed(self) -> "Report":
        """Raise ``AssertionError`` with the messages unless passed (for autograders); returns the report."""
        if not self.passed:
            raise AssertionError(str(self))
        return self


def not_attempted(title: str) -> Report:
    """The report of a function that still raises ``NotImplementedError`` (the lab's template)."""
    return Report(title, False, ["replace `raise NotImplementedError` with your code and run the cell again"],
                  attempted=False)


def raised(title: str, error: Exception, case: Case) -> Report:
    """The report of a student's function that raised on a generated case."""
    return Report(title, False, [f"raised {type(error).__name__}: {error} (inputs: {describe(case)})"])


def describe(case: Case) -> str:
    """The inputs of a case in a few words: shapes of arrays, values of scalars."""
    parts = []
    for name, value in case.items():
        if isinstance(value, (torch.Tensor, np.ndarray)):
            parts.append(f"{name} of shape {tuple(value.shape)}")
        elif isinstance(value, (int, float, str, bool)) or value is None or (
                isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value)):
            parts.append(f"{name}={value!r}")
        elif hasattr(value, "__len__"):
            parts.append(f"{name} ({type(value).__name__} of {len(value)} items)")
        else:
            parts.append(f"{name} ({type(value).__name__})")
    return ", ".join(parts)


def fresh(case: Case) -> dict[str, Any]:
    """A deep copy of a case, so that a function that modifies its inputs cannot change the next call's."""
    return {name: value.detach().clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)
            for name, value in case.items()}


def as_array(value: Any) -> np.ndarray | None:
    """A tensor, array, number or sequence of numbers as a float64 array; None if it is none of those."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array


def compare_arrays(got: Any, expected: Any, name: str = "the result", *, atol: float = 1e-5,
                   rtol: float = 1e-4) -> Problem:
    """None if ``got`` equals ``expected`` (tensors, arrays or numbers) within tolerance, else how it differs:
    its type, its shape (the usual sign of a wrong axis) or its values."""
    got_array, expected_array = as_array(got), as_array(expected)
    if got_array is None:
        return f"{name} is a {type(got).__name__}; expected a tensor of shape {tuple(expected_array.shape)}"
    if got_array.shape != expected_array.shape:
        if got_array.ndim == expected_array.ndim and got_array.shape[1:] == expected_array.shape[1:]:
            hint = " -- a different number of examples"
        elif got_array.size != expected_array.size:
            hint = " -- a reduction over the wrong axis, or a missing one?"
        else:
            hint = " -- the right values in the wrong layout?"
        return f"{name} has shape {tuple(got_array.shape)}, expected {tuple(expected_array.shape)}{hint}"
    if np.isnan(got_array).any() and not np.isnan(expected_array).any():
        return f"{name} holds NaN where the library's has numbers"
    close = np.isclose(got_array, expected_array, atol=atol, rtol=rtol, equal_nan=True)
    if close.all():
        return None
    worst = np.unravel_index(np.argmax(np.where(close, 0, np.abs(got_array - expected_array))), got_array.shape)
    at = f" at index {tuple(int(i) for i in worst)}" if got_array.ndim else ""
    return (f"{name} differs from the library's in {int((~close).sum())} of {close.size} value(s){at}: "
            f"{got_array[worst]:.6g} instead of {expected_array[worst]:.6g}")


def compare_tuples(names: Sequence[str], **tolerances: float) -> Callable[[Any, Any], Problem]:
    """A comparison of tuples of outputs (e.g. ``(mask_rate, accuracy)``), element by element, naming each."""
    def compare(got: Any, expected: Any) -> Problem:
        if not isinstance(got, (tuple, list)) or len(got) != len(names):
            return f"expected a tuple of {len(names)} values ({', '.join(names)}), got {type(got).__name__}"
        for name, g, e in zip(names, got, expected):
            problem = compare_arrays(g, e, name, **tolerances)
            if problem:
                return problem
        return None
    return compare


@dataclass(frozen=True)
class Mistake:
    """A known error, as a function with the student's signature that makes it, and what to tell the student."""

    function: Callable[..., Any]
    message: str


@dataclass
class FunctionCheck:
    """Compare a student's function with the library's ``reference`` on every case of ``cases()``.

    ``properties`` are further tests of the student's function alone (e.g. "no gradient reaches the weak view"),
    each returning None or a message; they run after the outputs agree.
    """

    title: str
    cases: Callable[[], list[dict[str, Any]]]
    reference: Callable[..., Any]
    mistakes: Sequence[Mistake] = ()
    compare: Callable[[Any, Any], Problem] = compare_arrays
    properties: Sequence[Callable[[Callable[..., Any]], Problem]] = ()

    def diagnose(self, cases: list[dict[str, Any]], outputs: list[Any]) -> list[str]:
        """The messages of the known mistakes that reproduce the student's ``outputs`` on every case."""
        found = []
        for mistake in self.mistakes:
            try:
                if all(self.compare(got, mistake.function(**fresh(case))) is None
                       for case, got in zip(cases, outputs)):
                    found.append(mistake.message)
            except Exception:  # a mistake that cannot run on these cases explains nothing here
                continue
        return found

    def __call__(self, student: Callable[..., Any]) -> Report:
        cases, outputs = self.cases(), []
        report = run_cases(self.title, student, cases, lambda case, got: outputs.append(got) or [])
        if not report.passed:
            return report
        for case, got in zip(cases, outputs):
            problem = self.compare(got, self.reference(**fresh(case)))
            if problem:
                return Report(self.title, False, (self.diagnose(cases, outputs) or [problem])
                              + [f"on inputs: {describe(case)}"])
        for test in self.properties:
            problem = test(student)
            if problem:
                return Report(self.title, False, [problem])
        if self.properties:
            report.messages[-1] += f" and {len(self.properties)} further test(s)"
        return report


def run_cases(title: str, student: Callable[..., Any], cases: list[dict[str, Any]],
              problems: Callable[[Case, Any], list[str]]) -> Report:
    """Run ``student`` on every case and report the first case where ``problems(case, output)`` finds any; a
    template still raising ``NotImplementedError`` is "not attempted", any other exception is reported."""
    if not callable(student):
        return Report(title, False, [f"expected your function, got a {type(student).__name__}"])
    for case in cases:
        try:
            got = student(**fresh(case))
        except NotImplementedError:
            return not_attempted(title)
        except Exception as error:  # the student's code may fail in any way: report it, do not crash the book
            return raised(title, error, case)
        found = problems(case, got)
        if found:
            return Report(title, False, found + [f"on inputs: {describe(case)}"])
    return Report(title, True, [f"agrees with the library on {len(cases)} generated case(s)"])


def generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (the checks' inputs are reproducible)."""
    return torch.Generator().manual_seed(seed)


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is one finite real number (a Python or numpy scalar, or a 0-d tensor/array)."""
    array = as_array(value)
    return array is not None and array.shape == () and math.isfinite(float(array))
