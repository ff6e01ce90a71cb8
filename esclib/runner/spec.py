"""Chapter parameters: what each notebook accepts, its defaults per profile, and how values are checked.

Every chapter ``notebooks/NN_name.ipynb`` has a spec ``esclib/runner/specs/chNN_name.py`` defining
``SPEC = ChapterSpec(...)``. The same spec validates ``esc run -p NAME VALUE`` before papermill starts, resolves the
parameters inside the notebook (:func:`esclib.runner.start_chapter`), and generates the book's parameter tables.
A parameter given as ``None`` takes its profile's default: ``quick`` (synthetic data, CPU, minutes) or ``paper``
(the study's protocol at full scale). Where a parameter's None has a meaning of its own (whole clips, every clip, one
pass), its ``none`` word asks for it in either profile (``-p crop_seconds whole``). The spec is the one source of the
defaults: the chapter's recipe (:class:`esclib.experiments.base.Recipe`) is built from the resolved parameters and has
no defaults of its own that a chapter could silently fall back on.

Each parameter has a *scope*, shown in the book's parameter tables and checked by the tests:

- ``recipe``: a field of the chapter's recipe (``ChapterSpec.recipes``): part of every run's identity;
- ``input``: which dataset tree or checkpoint is read: part of every run's identity through their digests;
- ``run``: ``seed`` and ``device``: part of every run's identity;
- ``grid``: which runs the chapter makes (folds, arms, label budgets, ablations): each run's identity records its own
  values, so changing them adds or drops runs and never changes a finished one;
- ``view``: figures and examples only; never changes a number.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

#: the two profiles every chapter runs in
PROFILES: tuple[str, ...] = ("quick", "paper")

#: what a parameter changes (see the module docstring)
SCOPES: tuple[str, ...] = ("recipe", "input", "run", "grid", "view")

Check = Callable[[Any], None]


@dataclass(frozen=True)
class Param:
    """One notebook parameter: its meaning, its default in each profile and what values it accepts.

    ``choices`` lists the allowed values; ``check(value)`` raises ValueError saying what was expected (its
    ``description`` attribute, if any, is shown in the book's parameter tables); ``parse``
    turns a given value into the value the chapter uses (e.g. :func:`parse_folds` turns ``"1-3"`` into
    ``(1, 2, 3)``). A resolved value of None (a default of None, e.g. "no data root: synthetic data") is not checked.
    ``scope`` is one of :data:`SCOPES`. ``none`` is the word that gives the parameter the value None where None means
    something (e.g. ``"whole"``: whole clips): a given None takes the profile's default, so without the word a profile
    whose default is not None could never ask for it.
    """

    help: str
    quick: Any
    paper: Any
    choices: Sequence[Any] | None = None
    check: Check | None = None
    parse: Callable[[Any], Any] | None = None
    scope: str = "recipe"
    none: str | None = None

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"Param scope must be one of {SCOPES}, got {self.scope!r}")
        if self.none is not None and self.none not in self.help:
            raise ValueError(f"Param {self.help!r}: its help must say what the word {self.none!r} (None) means")

    def default(self, profile: str) -> Any:
        """The value used in ``profile`` when none is given."""
        return self.quick if profile == "quick" else self.paper

    def shown(self, value: Any) -> Any:
        """``value`` as a user would give it: the ``none`` word for None where the parameter has one."""
        return self.none if value is None and self.none is not None else value

    def allowed(self, show: Callable[[Any], str] = repr) -> str:
        """The values the parameter accepts, in words: its choices (each through ``show``), else its check's or
        parser's ``description``; then its ``none`` word (through ``show``). Empty when none of them says."""
        if self.choices is not None:
            text = ", ".join(show(choice) for choice in self.choices)
        else:
            text = getattr(self.check, "description", "") or getattr(self.parse, "description", "")
        if self.none is not None:
            text = f"{text} or {show(self.none)}" if text else show(self.none)
        return text

    def validate(self, name: str, value: Any) -> Any:
        """``value`` parsed and checked (the ``none`` word becomes None); a ValueError names the parameter, the value
        and what was expected."""
        if self.none is not None and value == self.none:
            return None
        try:
            if self.parse is not None and value is not None:
                value = self.parse(value)
            if value is None:
                return None
            if self.choices is not None and value not in self.choices:
                raise ValueError(f"expected one of {list(self.choices)}")
            if self.check is not None:
                self.check(value)
        except (ValueError, TypeError) as err:
            also = f" or {self.none!r}" if self.none is not None else ""
            raise ValueError(f"invalid value {value!r} for parameter {name!r}: {err}{also} ({self.help})") from None
        return value


def _common_params() -> dict[str, Param]:
    return {
        "seed": Param("random seed: of the synthetic worlds, the labelled subsets and every run (each run's torch, "
                      "numpy and python generators start from it and the run's split)", 0, 0, check=integer(0),
                      scope="run"),
        "device": Param("torch device; None: cuda when available in the paper profile, else cpu", None, None,
                        check=device_name, scope="run"),
    }


CrossCheck = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class ChapterSpec:
    """The parameters of one chapter notebook (``notebook`` is its stem, e.g. ``"01_pann_transfer"``).

    ``experiment`` names the chapter's experiment in the results store (None for chapters without runs);
    ``recipes`` the chapter's recipe classes as ``"module:Class"`` (kept as text so that a spec imports no torch),
    whose fields are exactly the parameters of scope ``recipe``; ``checks`` run on the resolved parameters together
    (e.g. :func:`folds_fit`: folds the dataset has), each raising a ValueError that names the parameters;
    ``smoke`` the defaults a smoke run (:mod:`esclib.smoke`) takes instead of the paper ones (one fold, the smallest
    grid) -- everything else stays at the paper profile's value; ``after`` the chapters whose runs this one reuses:
    when ``esc book`` runs chapters at once, it starts only after them (instead of waiting on or repeating their
    work); ``prepare`` shared steps as ``"module:function"`` (called as ``function(params, notebook=stem)`` with the
    chapter's resolved parameters), e.g. a pre-training that several chapters reuse: ``esc book`` runs each distinct
    step once, as a job of its own, before the chapters that list it (a chapter run alone does the work itself).
    ``seed`` and ``device`` are added to ``params`` unless the spec defines them itself.
    """

    notebook: str
    title: str
    experiment: str | None
    params: Mapping[str, Param] = field(default_factory=dict)
    recipes: tuple[str, ...] = ()
    checks: tuple[CrossCheck, ...] = ()
    smoke: Mapping[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    prepare: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if "profile" in self.params:
            raise ValueError(f"spec {self.notebook}: 'profile' is not a parameter of its own; every chapter has it")
        object.__setattr__(self, "params", {**_common_params(), **self.params})
        unknown = [name for name in self.smoke if name not in self.params]
        if unknown:
            raise ValueError(f"spec {self.notebook}: smoke overrides {unknown} are not parameters")
        if self.notebook in self.after:
            raise ValueError(f"spec {self.notebook}: a chapter cannot run after itself (after={self.after})")
        malformed = [step for step in self.prepare if not re.fullmatch(r"[\w.]+:\w+", step)]
        if malformed:
            raise ValueError(f"spec {self.notebook}: prepare steps {malformed} are not 'module:function'")

    @property
    def names(self) -> list[str]:
        """Every parameter name, ``profile`` first."""
        return ["profile", *self.params]


def check_names(given: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
    """Raise a ValueError naming every name of ``given`` not in ``valid`` and listing the valid ones."""
    unknown = [name for name in given if name not in valid]
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(map(repr, unknown))} for {where}; "
                         f"valid parameters: {', '.join(valid)}")


def check_profile(profile: str) -> str:
    """``profile`` if it is one of :data:`PROFILES`, else a ValueError listing them."""
    if profile not in PROFILES:
        raise ValueError(f"invalid profile {profile!r}; expected one of {list(PROFILES)}")
    return profile


def resolve(spec: ChapterSpec, profile: str, **given: Any) -> dict[str, Any]:
    """Every parameter of ``spec`` resolved for ``profile``: the given value, or the profile's default where the
    value is missing or None; each parsed and checked. Returns a dict with ``profile`` first.

    Unknown names and invalid values raise a ValueError naming them (and listing the valid names). In a smoke run
    (:mod:`esclib.smoke`) of the paper profile the spec's ``smoke`` defaults replace the paper ones.
    """
    from esclib import smoke

    check_profile(profile)
    given = {k: v for k, v in given.items() if k != "profile"}
    check_names(given, spec.names, f"notebook {spec.notebook}")
    resolved: dict[str, Any] = {"profile": profile}
    defaults = spec.smoke if smoke.active() and profile == "paper" else {}
    for name, param in spec.params.items():
        value = given.get(name)
        default = defaults[name] if name in defaults else param.default(profile)
        resolved[name] = param.validate(name, default if value is None else value)
    for check in spec.checks:
        check(resolved)
    return resolved


def _interval(lo: float | None, hi: float | None, left_closed: bool, right_closed: bool) -> str:
    return (f"{'[' if left_closed and lo is not None else '('}{'-inf' if lo is None else lo}, "
            f"{'inf' if hi is None else hi}{']' if right_closed and hi is not None else ')'}")


def in_range(lo: float | None = None, hi: float | None = None, *, closed: str = "both",
             integral: bool = False) -> Check:
    """A check that a value is a number (an int if ``integral``) in the interval from ``lo`` to ``hi`` (None:
    unbounded); ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``."""
    if closed not in ("both", "left", "right", "neither"):
        raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither', got {closed!r}")
    left_closed, right_closed = closed in ("both", "left"), closed in ("both", "right")
    expected = f"expected {'an integer' if integral else 'a number'} in {_interval(lo, hi, left_closed, right_closed)}"

    def check(value: Any) -> None:
        kind = numbers.Integral if integral else numbers.Real
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(expected)
        below = lo is not None and (value < lo if left_closed else value <= lo)
        above = hi is not None and (value > hi if right_closed else value >= hi)
        if below or above:
            raise ValueError(expected)

    check.description = expected.removeprefix("expected ")  # type: ignore[attr-defined]
    return check


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    """A check that a value is an int in [``lo``, ``hi``] (None: unbounded)."""
    return in_range(lo, hi, integral=True)


def device_name(value: Any) -> None:
    """Check a torch device name -- ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` -- and that this machine has it."""
    if not isinstance(value, str) or not re.fullmatch(r"cpu|mps|cuda(:\d+)?", value):
        raise ValueError("expected 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if value != "cpu":
        from esclib.device import resolve_device

        resolve_device(value)


def existing_dir(value: Any) -> None:
    """Check that a value names an existing directory."""
    if not isinstance(value, (str, Path)) or not Path(value).expanduser().is_dir():
        raise ValueError("expected the path of an existing directory")


def parse_folds(value: Any) -> tuple[int, ...] | str:
    """Folds to run: ``"all"``, one fold (``3``), a range (``"1-3"``), a list (``"1,3,5"``, ``[1, 3]``) or a mix
    (``"1-2,5"``). Returns sorted fold numbers (1-based), or ``"all"``; see :func:`expand_folds`."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    if isinstance(value, str) and not value.strip() or isinstance(value, (list, tuple)) and not value:
        return ()
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        items: list[Any] = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    else:
        raise ValueError("expected 'all', a fold number, a range like '1-3' or a list like '1,3,5'")
    folds: set[int] = set()
    for item in items:
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", str(item).strip())
        if isinstance(item, bool) or not match:
            raise ValueError(f"cannot read {item!r} as a fold; expected 'all', '3', '1-3' or '1,3,5'")
        first, last = int(match[1]), int(match[2] or match[1])
        if first < 1 or last < first:
            raise ValueError(f"fold range {item!r} must be ascending and start at 1 or more")
        folds.update(range(first, last + 1))
    return tuple(sorted(folds))


def _items(value: Any) -> list:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def parse_names(allowed: Sequence[str]) -> Callable[[Any], tuple[str, ...]]:
    """A parser of a list of names (``"a,b"`` or ``["a", "b"]``), each one of ``allowed``; duplicates dropped,
    order kept (e.g. the arms a chapter runs). ``""`` (or ``"none"``) is the empty list."""

    def parse(value: Any) -> tuple[str, ...]:
        names = [str(n) for n in _items(value) if str(n) != "none"]
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise ValueError(f"expected names from {list(allowed)}, got {unknown}")
        return tuple(dict.fromkeys(names))

    parse.description = (f"a comma-separated list of {', '.join(f'`{a}`' for a in allowed)} (`''`: "  # type: ignore
                         "none)")
    return parse


def parse_counts(value: Any) -> tuple[int, ...]:
    """A list of positive integers (``"1,2,5"`` or ``[1, 2, 5]``), sorted, duplicates dropped (e.g. labelled clips
    per class of a few-shot curve)."""
    counts = []
    for item in _items(value):
        number = int(item) if isinstance(item, str) and item.isdigit() else item
        if not isinstance(number, numbers.Integral) or isinstance(number, bool) or number < 1:
            raise ValueError(f"expected positive integers such as '1,2,5,10', got {item!r}")
        counts.append(int(number))
    return tuple(sorted(set(counts)))


def parse_fractions(value: Any) -> tuple[float, ...]:
    """A list of fractions in (0, 1] (``"0.1,0.5"`` or ``[0.1, 0.5]``), sorted, duplicates dropped (e.g. labelled
    fractions of a curve); ``""`` is the empty list."""
    fractions = []
    for item in _items(value):
        try:
            number = float(item)
        except (TypeError, ValueError):
            raise ValueError(f"expected fractions in (0, 1] such as '0.1,0.25', got {item!r}") from None
        if isinstance(item, bool) or not 0 < number <= 1:
            raise ValueError(f"expected fractions in (0, 1] such as '0.1,0.25', got {item!r}")
        fractions.append(number)
    return tuple(sorted(set(fractions)))


def data_root_param(what: str = "dataset") -> Param:
    """The ``data_root`` parameter every chapter on a dataset shares (scope ``input``)."""
    return Param(f"{what} folder; None: synthetic data in quick, esclib.paths.data_dir() in paper", None, None,
                 check=existing_dir, scope="input")


def folds_fit(*folds: str, dataset: str | None = None, n_folds: int | None = None) -> CrossCheck:
    """A cross-check that the folds named by the parameters ``folds`` exist: in the dataset named by the parameter
    ``dataset`` (its official folds), or among ``n_folds`` folds (a chapter on one dataset)."""
    if (dataset is None) == (n_folds is None):
        raise ValueError("folds_fit: give exactly one of dataset (a parameter name) and n_folds")

    def check(params: Mapping[str, Any]) -> None:
        from esclib.data.registry import spec as dataset_spec

        count = n_folds if n_folds is not None else dataset_spec(params[dataset]).n_folds
        for name in folds:
            value = params.get(name)
            if value in (None, "all"):
                continue
            outside = [f for f in value if not 1 <= f <= count]
            if outside:
                where = f"{params[dataset]!r} has folds 1..{count}" if n_folds is None else f"folds are 1..{count}"
                raise ValueError(f"invalid value {value!r} for parameter {name!r}: fold(s) {outside} do not exist "
                                 f"({where})")

    return check


device_name.description = "`cpu`, `cuda`, `cuda:N` or `mps`"  # type: ignore[attr-defined]
existing_dir.description = "an existing folder"  # type: ignore[attr-defined]
parse_folds.description = "`all`, a fold (`3`), a range (`1-3`) or a list (`1,3,5`)"  # type: ignore[attr-defined]
parse_counts.description = "positive integers, comma-separated (`''`: none)"  # type: ignore[attr-defined]
parse_fractions.description = "fractions in (0, 1], comma-separated (`''`: none)"  # type: ignore[attr-defined]


def expand_folds(folds: tuple[int, ...] | str, n_folds: int) -> tuple[int, ...]:
    """The fold numbers of a parsed ``folds`` value for a dataset with ``n_folds`` folds (``"all"``: 1..n_folds)."""
    if folds == "all":
        return tuple(range(1, n_folds + 1))
    outside = [f for f in folds if not 1 <= f <= n_folds]
    if outside:
        raise ValueError(f"fold(s) {outside} outside 1..{n_folds}, the folds of this dataset")
    return tuple(folds)


def spec_help(spec: ChapterSpec) -> str:
    """The chapter's parameters as plain text (``esc run CHAPTER --help``): name, scope, quick and paper defaults,
    allowed values and meaning."""
    lines = [f"parameters of {spec.notebook} ({spec.title}); set with -p NAME VALUE:"]
    for name, param in spec.params.items():
        allowed = param.allowed(repr)
        defaults = f"quick: {param.shown(param.quick)!r}  paper: {param.shown(param.paper)!r}"
        lines.append(f"  {name}  [{param.scope}]  {defaults}" + (f"  allowed: {allowed}" if allowed else ""))
        lines.append(f"      {param.help}")
    return "\n".join(lines)
