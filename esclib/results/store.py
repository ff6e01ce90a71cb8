"""The results store: one JSON file per finished run, written atomically, never replaced by a failed run.

Layout: ``<root>/<experiment>/<arm>/<setting-slug>/`` holding ``progress.json`` while a run is in progress (its
parameters and per-epoch curves so far) and ``result.json`` once it finished (parameters, environment, curves,
final metrics). A chapter opens a run with :meth:`ResultsStore.run`; if the run is ``done`` it reuses the saved
result instead of training again (a re-run of a finished setting is skipped unless ``force=True``).
:func:`esclib.runner.start_chapter` gives every chapter a store rooted at ``results/<profile>/``.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from esclib import paths
from esclib.results.environment import environment, now
from esclib.results.studies import study_value

#: setting keys that repeat one configuration (aggregated over): the test fold and the seed
REPEAT_KEYS: tuple[str, ...] = ("fold", "seed")

#: environment variable naming a file to which every finished result path is appended (set by ``esc run``)
RESULTS_LOG_ENV = "ESC_RESULTS_LOG"

#: environment variable that, set to 1, makes every run re-compute and replace its finished result
#: (``esc run --force``)
RESULTS_FORCE_ENV = "ESC_FORCE_RESULTS"

#: columns of :meth:`ResultsStore.aggregate`
AGGREGATE_COLUMNS: tuple[str, ...] = (
    "experiment", "arm", "setting", "metric", "mean", "std", "n_runs", "study_value", "study_source",
)

#: numeric entries of a result's metrics that are counts, not metrics
_NOT_METRICS = frozenset({"n"})


def _jsonable(value: Any) -> Any:
    """``value`` with numpy / torch scalars and arrays turned into JSON types (NaN and infinities into None)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} as JSON")


def write_json_atomic(path: Path, data: Mapping) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temporary file in the same folder + ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(_jsonable(data), f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def setting_slug(setting: Mapping[str, object]) -> str:
    """Folder name of a setting: ``key=value`` pairs sorted by key, joined by ``,`` (``default`` when empty)."""
    if not setting:
        return "default"
    parts = []
    for key in sorted(setting):
        value = setting[key]
        text = "+".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{key}={text}")
    return re.sub(r"[^A-Za-z0-9._=,+-]", "-", ",".join(parts))


class Run:
    """One run of one setting: per-epoch curves while it trains, final metrics when it finishes.

    Get it from :meth:`ResultsStore.run`. Use it as a context manager to record a failure in ``progress.json``
    (the finished ``result.json``, if any, is left as it was).
    """

    def __init__(self, store: "ResultsStore", experiment: str, arm: str, setting: Mapping[str, object],
                 params: Mapping[str, object], force: bool = False) -> None:
        self.store, self.experiment, self.arm = store, experiment, arm
        self.setting = _jsonable(dict(setting))
        self.params = _jsonable(dict(params))
        self.force = force
        self.dir = store.root / experiment / arm / setting_slug(self.setting)
        self.result_path = self.dir / "result.json"
        self.progress_path = self.dir / "progress.json"
        if self.result_path.exists():
            saved = self.result()["setting"]
            if saved != self.setting:
                raise ValueError(f"{self.result_path} holds setting {saved}, not {self.setting}: two settings share "
                                 f"the folder name {self.dir.name!r}; rename a setting key or value")
        progress = self._read(self.progress_path) if self.progress_path.exists() and not self.done else {}
        self.curves: list[dict] = progress.get("curves", [])
        self._started = time.time()

    def __repr__(self) -> str:
        return f"Run({self.experiment}/{self.arm}/{self.dir.name}, done={self.done})"

    @staticmethod
    def _read(path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); delete it to re-run that setting") from err

    @property
    def done(self) -> bool:
        """Whether a finished result exists and is to be reused (always False with ``force=True``)."""
        return self.result_path.exists() and not self.force

    def result(self) -> dict:
        """The saved result: ``experiment, arm, setting, params, environment, curves, metrics, started, finished,
        seconds``."""
        if not self.result_path.exists():
            raise FileNotFoundError(f"run {self.experiment}/{self.arm}/{self.dir.name} has not finished: "
                                    f"no {self.result_path}")
        return self._read(self.result_path)

    @property
    def metrics(self) -> dict:
        """The saved final metrics."""
        return self.result()["metrics"]

    def _record(self, status: str, **extra: object) -> dict:
        return {"experiment": self.experiment, "arm": self.arm, "setting": self.setting, "params": self.params,
                "status": status, "curves": self.curves, **extra}

    def log_epoch(self, epoch: int, **values: float) -> None:
        """Record one epoch's values (e.g. ``loss``, ``val_accuracy``) in ``progress.json``; an epoch logged again
        (after a resume from a checkpoint) replaces the earlier entry."""
        self.curves = [c for c in self.curves if c["epoch"] != epoch] + [{"epoch": int(epoch), **_jsonable(values)}]
        self.curves.sort(key=lambda c: c["epoch"])
        write_json_atomic(self.progress_path, self._record("running", updated=now()))

    def finish(self, metrics: Mapping[str, object]) -> dict:
        """Write ``result.json`` (atomically) with the final ``metrics`` and remove ``progress.json``.

        Refuses to replace a finished result unless the run was opened with ``force=True``.
        """
        if self.done:
            raise RuntimeError(f"{self.result_path} already holds a finished run; open the run with force=True "
                               "to replace it")
        result = self._record(
            "finished", environment=environment(**self.store.meta), metrics=dict(metrics),
            started=now(self._started), finished=now(),
            seconds=round(time.time() - self._started, 3),
        )
        write_json_atomic(self.result_path, result)
        self.progress_path.unlink(missing_ok=True)
        self.force = False
        self.store.log_result(self.result_path)
        return self.result()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None and not self.done:
            write_json_atomic(self.progress_path, self._record("failed", error=f"{exc_type.__name__}: {exc}",
                                                               updated=now()))


class ResultsStore:
    """The runs of every experiment under one root (default ``paths.results_dir()``).

    ``meta`` (e.g. ``profile``, ``device``, ``seed``, ``notebook``) is written into every result's ``environment``.
    """

    def __init__(self, root: str | Path | None = None, *, meta: Mapping[str, object] | None = None) -> None:
        self.root = Path(root) if root is not None else paths.results_dir()
        self.meta = dict(meta or {})

    @classmethod
    def for_profile(cls, profile: str, **meta: object) -> "ResultsStore":
        """The store of one profile's runs: ``paths.results_dir()/<profile>`` (quick and paper never mix)."""
        return cls(paths.results_dir() / profile, meta={"profile": profile, **meta})

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    def run(self, experiment: str, arm: str, setting: Mapping[str, object], params: Mapping[str, object],
            *, force: bool | None = None) -> Run:
        """Open the run of ``experiment``/``arm`` in ``setting`` (e.g. ``{"dataset": "esc50", "fold": 1}``).

        ``params`` are every parameter the run used (stored with the result). Check ``run.done`` before training:
        a finished run is reused unless ``force`` (default: ``$ESC_FORCE_RESULTS`` is 1, set by ``esc run
        --force``).
        """
        if force is None:
            force = os.environ.get(RESULTS_FORCE_ENV) == "1"
        for name, value in (("experiment", experiment), ("arm", arm)):
            if not value or not re.fullmatch(r"[A-Za-z0-9._-]+", value):
                raise ValueError(f"{name} must be a non-empty name of letters, digits, '.', '_' or '-'; got {value!r}")
        run = Run(self, experiment, arm, setting, params, force=force)
        if run.done:
            self.log_result(run.result_path)
        return run

    @staticmethod
    def log_result(path: Path) -> None:
        """Append a finished result's path to ``$ESC_RESULTS_LOG`` (how ``esc run`` learns what a notebook wrote)."""
        log = os.environ.get(RESULTS_LOG_ENV)
        if log:
            with open(log, "a") as f:
                f.write(f"{path.resolve()}\n")

    def results(self, experiment: str | None = None) -> Iterator[dict]:
        """Every finished result (optionally of one experiment), in path order."""
        pattern = f"{experiment or '*'}/*/*/result.json"
        for path in sorted(self.root.glob(pattern)):
            yield Run._read(path)

    def aggregate(self, experiment: str | None = None) -> pd.DataFrame:
        """Mean ± std (sample std, ddof=1) of every scalar metric over the runs that differ only in
        :data:`REPEAT_KEYS` (folds, seeds), with the studies' published number beside it.

        Columns :data:`AGGREGATE_COLUMNS`; ``setting`` is the setting without the repeat keys (``""`` if nothing
        else). ``study_value`` / ``study_source`` come from :mod:`esclib.results.studies` (NaN / "" when the
        studies published no number for that arm and setting).
        """
        groups: dict[tuple, dict] = {}
        for result in self.results(experiment):
            setting = {k: v for k, v in result["setting"].items() if k not in REPEAT_KEYS}
            key = (result["experiment"], result["arm"], json.dumps(setting, sort_keys=True))
            group = groups.setdefault(key, {"setting": setting, "metrics": {}})
            for metric, value in result["metrics"].items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and metric not in _NOT_METRICS:
                    group["metrics"].setdefault(metric, []).append(value)
        rows = []
        for (exp, arm, _), group in groups.items():
            setting = group["setting"]
            for metric, values in group["metrics"].items():
                values = np.asarray(values, dtype=float)
                study = study_value(exp, arm, metric, setting)
                rows.append({
                    "experiment": exp, "arm": arm,
                    "setting": ", ".join(f"{k}={v}" for k, v in sorted(setting.items())),
                    "metric": metric, "mean": float(values.mean()),
                    "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                    "n_runs": len(values),
                    "study_value": study.value if study else float("nan"),
                    "study_source": study.study.source if study else "",
                })
        return pd.DataFrame(rows, columns=list(AGGREGATE_COLUMNS))

    def curves(self, experiment: str, metric: str) -> pd.DataFrame:
        """Per-epoch values of ``metric`` of every finished run of ``experiment`` as a long table
        (``arm, setting, fold, seed, epoch, value``), ready for ``seaborn.lineplot`` (mean ± std over folds)."""
        rows = []
        for result in self.results(experiment):
            setting = result["setting"]
            rest = ", ".join(f"{k}={v}" for k, v in sorted(setting.items()) if k not in REPEAT_KEYS)
            rows += [{"arm": result["arm"], "setting": rest, "fold": setting.get("fold"), "seed": setting.get("seed"),
                      "epoch": c["epoch"], "value": c[metric]} for c in result["curves"] if metric in c]
        return pd.DataFrame(rows, columns=["arm", "setting", "fold", "seed", "epoch", "value"])
