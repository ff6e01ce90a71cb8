"""The first call of every chapter: validate its parameters, seed, pick the device, show what produces the run.

A chapter's code cell right after its ``parameters`` cell reads::

    cfg = esclib.runner.start_chapter("01_pann_transfer", globals())

(the spec's parameters are read from the notebook's namespace: nothing is listed twice) and then uses
``cfg.<param>``, ``cfg.device``, ``cfg.store``, ``cfg.profile`` and ``cfg.seed``.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from esclib.results.environment import environment
from esclib.results.store import ResultsStore
from esclib.runner.spec import ChapterSpec, resolve
from esclib.runner.specs import get_spec

#: packages listed in a chapter's run-metadata table
SHOWN_PACKAGES: tuple[str, ...] = ("esclib", "torch", "numpy", "librosa", "scikit-learn")


def pick_device(profile: str, device: str | None = None):
    """The torch device of a run: ``device`` if given (checked to exist here: :func:`esclib.device.resolve_device`),
    else cuda when available in the paper profile, else cpu."""
    import torch

    from esclib.device import resolve_device

    if device is not None:
        return resolve_device(device, "parameter 'device'")
    return torch.device("cuda" if profile == "paper" and torch.cuda.is_available() else "cpu")


class RunMetadata(dict):
    """What produced a chapter run, shown as HTML tables in the notebook and the book (plain text elsewhere)."""

    def rows(self) -> list[tuple[str, str]]:
        """(field, value) pairs of the run table."""
        packages = ", ".join(f"{k} {v}" for k, v in self["packages"].items() if k in SHOWN_PACKAGES)
        keys = ("notebook", "profile", "smoke", "dataset", "device", "seed", "commit", "date", "python", "platform")
        return [(k, str(self[k])) for k in keys if k in self] + [("packages", packages)]

    def _repr_html_(self) -> str:
        def table(caption: str, rows: list[tuple[str, str]]) -> str:
            body = "".join(f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(v)}</code></td></tr>"
                           for k, v in rows)
            return f"<table><caption>{caption}</caption><tbody>{body}</tbody></table>"

        params = [(k, repr(v)) for k, v in self["parameters"].items()]
        return table("Run", self.rows()) + table("Parameters (resolved for this profile)", params)

    def __repr__(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        lines = [f"{k:<{width}}  {v}" for k, v in self.rows()]
        lines += [f"{'parameters':<{width}}  " + ", ".join(f"{k}={v!r}" for k, v in self["parameters"].items())]
        return "\n".join(lines)


@dataclass
class ChapterContext:
    """A started chapter: resolved parameters as attributes, plus ``device``, ``store``, ``profile``, ``seed``."""

    spec: ChapterSpec
    params: dict[str, Any]
    device: Any
    store: ResultsStore
    metadata: RunMetadata = field(repr=False)

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"chapter {self.__dict__['spec'].notebook} has no parameter {name!r}; "
                             f"parameters: {', '.join(params)}")

    @property
    def profile(self) -> str:
        """``quick`` or ``paper``."""
        return self.params["profile"]

    @property
    def seed(self) -> int:
        """The run's random seed."""
        return self.params["seed"]

    def run_args(self, **extra: Any) -> dict[str, Any]:
        """The arguments every experiment takes from the chapter (:class:`esclib.experiments.base.Experiment`):
        ``store``, ``profile``, ``seed``, ``device`` (plus ``extra``)."""
        return {"store": self.store, "profile": self.profile, "seed": self.seed, "device": self.device, **extra}


def _show(metadata: RunMetadata) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(metadata)
    else:
        print(repr(metadata))


def available_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


#: torch's threads in a quick chapter, whatever the machine: CPU kernels sum in another order on another thread
#: count and a short training amplifies the difference, so a fixed count gives the same numbers on any machine, in
#: ``esc run`` as in ``esc book``
QUICK_THREADS = 1


def torch_threads(profile: str = "paper") -> int:
    """Threads for torch in a chapter of ``profile``: :data:`QUICK_THREADS` in quick; otherwise
    ``$OMP_NUM_THREADS`` when set (a machine shared with other jobs), else the cores this process may run on."""
    if profile == "quick":
        return QUICK_THREADS
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    return available_cores()


def enter_chapter(notebook_stem: str, params: Mapping[str, Any]) -> tuple[Any, ResultsStore]:
    """Enter chapter ``notebook_stem`` with its resolved ``params``: seed python / numpy / torch, set torch's thread
    count (:func:`torch_threads`), pick the device and open the profile's results store for the chapter; returns
    ``(device, store)``. :func:`start_chapter` does this, and so does a shared step of ``esc book``
    (:attr:`ChapterSpec.prepare`), so that the step's runs are exactly those the chapter would have run."""
    import torch

    from esclib.experiments.base import seed_everything

    seed_everything(params["seed"])
    torch.set_num_threads(torch_threads(params["profile"]))
    device = pick_device(params["profile"], params["device"])
    return device, ResultsStore.for_profile(params["profile"], notebook=notebook_stem, device=str(device),
                                            seed=params["seed"])


def start_chapter(notebook_stem: str, namespace: Mapping[str, Any] | None = None, **given: Any) -> ChapterContext:
    """Start chapter ``notebook_stem`` (e.g. ``"01_pann_transfer"``): read its parameters from ``namespace`` (the
    notebook's ``globals()``: every name of the spec found there) and ``given``, resolve them against its spec
    (unknown names and invalid values raise a ValueError naming them), enter it (:func:`enter_chapter`: seeds,
    torch's threads, device, store), show the run-metadata table and return the context. ``profile`` defaults to
    ``quick``."""
    spec = get_spec(notebook_stem)
    if spec is None:
        raise ValueError(f"no spec for notebook {notebook_stem!r}: expected esclib/runner/specs/ch{notebook_stem}.py "
                         "defining SPEC")
    if namespace is not None:
        given = {**{name: namespace[name] for name in spec.names if name in namespace}, **given}
    params = resolve(spec, given.pop("profile", None) or "quick", **given)
    device, store = enter_chapter(notebook_stem, params)
    from esclib import smoke

    metadata = RunMetadata(environment(notebook=notebook_stem, profile=params["profile"],
                                       **({"smoke": "yes: synthetic data, random weights, numbers mean nothing"}
                                          if smoke.active() else {}),
                                       **({"dataset": params["dataset"]} if "dataset" in params else {}),
                                       device=str(device), seed=params["seed"]), parameters=params)
    _show(metadata)
    return ChapterContext(spec=spec, params=params, device=device, store=store, metadata=metadata)
