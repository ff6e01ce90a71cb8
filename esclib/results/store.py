"""The results store: one JSON file per finished run, keyed by the run's full identity, written atomically.

A run is named by its *identity*: every input that can change its result -- the experiment and arm, the profile, the
seed, every recipe parameter, the digests of its dataset and checkpoint, the digest of its split
(:mod:`esclib.experiments.base` builds it). Layout::

    <root>/<experiment>/<arm>/<setting-slug>-<id>/result.json     finished: identity, metrics, curves, environment
                                                  progress.json   while it trains (or after it failed)
                                                  .lock           held while a process trains it
    <root>/splits/<split digest>.json                              the clip ids of every split a run used

``<setting-slug>`` is a readable summary (``dataset=esc50,fold=1``); ``<id>`` is the digest of the identity. A
result is reused only when its stored identity equals the requested one exactly, so a re-run with any other
parameter trains anew and never returns a stale number; the earlier result stays (``esc results`` shows both,
grouped apart). A corrupt or truncated ``result.json`` is named in a warning and treated as absent: ``esc run``
trains the run again, ``esc results`` reports every other run. Two processes asking for the same run take turns:
the second waits for the first and then reuses its result. :func:`esclib.runner.start_chapter` gives every chapter
a store rooted at ``results/<profile>/``.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

import pandas as pd

from esclib import paths
from esclib.digest import canonical, digest
from esclib.locks import file_lock
from esclib.results.environment import environment, now

#: environment variable naming a file to which every finished result path is appended (set by ``esc run``)
RESULTS_LOG_ENV = "ESC_RESULTS_LOG"

#: environment variable that, set to 1, makes every run re-compute and replace its finished result
#: (``esc run --force``)
RESULTS_FORCE_ENV = "ESC_FORCE_RESULTS"


class CorruptResultWarning(UserWarning):
    """A result file that cannot be read (truncated, not JSON, not a result); it is skipped or re-computed."""


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
    """Write ``data`` as JSON to ``path`` atomically (a uniquely named temporary file in the same folder, then
    ``os.replace``), so that concurrent writers never see or leave a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(_jsonable(data), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_result(path: Path) -> dict | None:
    """The finished result at ``path``, or None (with a :class:`CorruptResultWarning` naming the file) when it
    cannot be read as one."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        warnings.warn(f"skipping {path}: not a readable result ({err}); `esc run` trains that run again",
                      CorruptResultWarning, stacklevel=2)
        return None
    if not isinstance(result, dict) or not {"identity", "metrics", "arm", "experiment"} <= set(result):
        warnings.warn(f"skipping {path}: not a result of this esclib (no identity / metrics; written by an older "
                      "version?); `esc run` trains that run again", CorruptResultWarning, stacklevel=2)
        return None
    return result


def setting_slug(setting: Mapping[str, object]) -> str:
    """Readable folder name of a setting: ``key=value`` pairs sorted by key, joined by ``,`` (``default`` when
    empty)."""
    if not setting:
        return "default"
    parts = []
    for key in sorted(setting):
        value = setting[key]
        text = "+".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{key}={text}")
    return re.sub(r"[^A-Za-z0-9._=,+-]", "-", ",".join(parts))[:120]


class Run:
    """One run: its identity, per-epoch curves while it trains, final metrics when it finishes.

    Get it from :meth:`ResultsStore.run`. Used as a context manager it holds the run's lock (a second process
    asking for the same run waits) and records a failure in ``progress.json`` (a finished ``result.json`` is left
    as it was); check :attr:`done` again inside the block -- another process may have finished the run meanwhile.
    """

    def __init__(self, store: "ResultsStore", experiment: str, arm: str, setting: Mapping[str, object],
                 identity: Mapping[str, object], split: Mapping[str, object] | None = None,
                 force: bool = False) -> None:
        self.store, self.experiment, self.arm = store, experiment, arm
        self.setting = _jsonable(dict(setting))
        self.identity = canonical(dict(identity))
        self.id = digest(self.identity, 12)
        self.split = _jsonable(dict(split)) if split is not None else None
        self.force = force
        self.dir = store.root / experiment / arm / f"{setting_slug(self.setting)}-{self.id}"
        self.result_path = self.dir / "result.json"
        self.progress_path = self.dir / "progress.json"
        self.curves: list[dict] = []
        self._saved: dict | None = None
        self._started = time.time()
        self._lock = None

    def __repr__(self) -> str:
        return f"Run({self.experiment}/{self.arm}/{self.dir.name}, done={self.done})"

    def _finished(self) -> dict | None:
        """The stored result if it is a readable result of exactly this identity."""
        if self._saved is None and self.result_path.is_file():
            saved = read_result(self.result_path)
            if saved is not None and saved["identity"] == self.identity:
                self._saved = saved
        return self._saved

    @property
    def done(self) -> bool:
        """Whether a finished result of exactly this identity exists and is to be reused (never with ``force``)."""
        return not self.force and self._finished() is not None

    def result(self) -> dict:
        """The saved result: ``experiment, arm, setting, identity, id, split, environment, curves, metrics, started,
        finished, seconds``."""
        saved = self._finished()
        if saved is None:
            raise FileNotFoundError(f"run {self.experiment}/{self.arm}/{self.dir.name} has not finished: no readable "
                                    f"result of this identity at {self.result_path}")
        return saved

    @property
    def metrics(self) -> dict:
        """The saved final metrics."""
        return self.result()["metrics"]

    def _record(self, status: str, **extra: object) -> dict:
        return {"experiment": self.experiment, "arm": self.arm, "setting": self.setting, "identity": self.identity,
                "id": self.id, "split": self.split, "status": status, "curves": self.curves, **extra}

    def log_epoch(self, epoch: int, **values: float) -> None:
        """Record one epoch's values (e.g. ``loss``, ``val_acc``) in ``progress.json``; an epoch logged again
        (after a resume from a checkpoint) replaces the earlier entry."""
        self.curves = [c for c in self.curves if c["epoch"] != epoch] + [{"epoch": int(epoch), **_jsonable(values)}]
        self.curves.sort(key=lambda c: c["epoch"])
        write_json_atomic(self.progress_path, self._record("running", updated=now()))

    def finish(self, metrics: Mapping[str, object], timing: Mapping[str, object] | None = None) -> dict:
        """Write ``result.json`` (atomically) with the final ``metrics`` (and ``timing``: optimiser steps, training
        seconds, device -- what the run cost, not what it found) and remove ``progress.json``.

        Refuses to replace a finished result of this identity unless the run was opened with ``force``.
        """
        if self.done:
            raise RuntimeError(f"{self.result_path} already holds a finished run; open the run with force=True "
                               "to replace it")
        result = self._record(
            "finished", environment=environment(**self.store.meta), metrics=dict(metrics),
            timing=dict(timing or {}), started=now(self._started), finished=now(),
            seconds=round(time.time() - self._started, 3),
        )
        write_json_atomic(self.result_path, result)
        self.progress_path.unlink(missing_ok=True)
        self.force, self._saved = False, None
        self.store.log_result(self.result_path)
        return self.result()

    def __enter__(self) -> "Run":
        self._lock = file_lock(self.dir / ".lock", what=f"run {self.experiment}/{self.arm}/{self.dir.name}")
        self._lock.__enter__()
        self._saved = None  # re-read: another process may have finished it while we waited
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc is not None and not self.done:
                write_json_atomic(self.progress_path, self._record("failed", error=f"{exc_type.__name__}: {exc}",
                                                                   updated=now()))
        finally:
            self._lock.__exit__(exc_type, exc, tb)


class ResultsStore:
    """The runs of every experiment under one root (default ``paths.results_dir()``).

    ``meta`` (e.g. ``profile``, ``device``, ``seed``, ``notebook``) is written into every result's ``environment``.
    """

    def __init__(self, root: str | Path | None = None, *, meta: Mapping[str, object] | None = None) -> None:
        self.root = Path(root) if root is not None else paths.results_dir()
        self.meta = dict(meta or {})

    @classmethod
    def for_profile(cls, profile: str, **meta: object) -> "ResultsStore":
        """The store of one profile's runs: ``paths.results_dir()/<profile>`` (quick and paper never mix; a smoke run,
        :mod:`esclib.smoke`, writes to ``<profile>-smoke``, never among real results)."""
        from esclib import smoke

        folder = f"{profile}-smoke" if smoke.active() else profile
        return cls(paths.results_dir() / folder, meta={"profile": profile, "smoke": smoke.active(), **meta})

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    def run(self, experiment: str, arm: str, setting: Mapping[str, object], identity: Mapping[str, object], *,
            split: Mapping[str, object] | None = None, force: bool | None = None) -> Run:
        """Open the run of ``experiment``/``arm`` with ``identity`` (everything its result depends on); ``setting``
        is the readable part shown in tables and folder names (e.g. ``{"dataset": "esc50", "fold": 1}``);
        ``split`` the :meth:`~esclib.data.splits.SplitRecord.to_json` of its clips (saved once under ``splits/``).

        Check ``run.done`` before training: a finished run of the same identity is reused unless ``force``
        (default: ``$ESC_FORCE_RESULTS`` is 1, set by ``esc run --force``).
        """
        if force is None:
            force = os.environ.get(RESULTS_FORCE_ENV) == "1"
        for name, value in (("experiment", experiment), ("arm", arm)):
            if not value or not re.fullmatch(r"[A-Za-z0-9._-]+", value):
                raise ValueError(f"{name} must be a non-empty name of letters, digits, '.', '_' or '-'; got {value!r}")
        summary = None
        if split is not None:
            self.save_split(split)
            summary = {"digest": split["digest"], "sizes": split["sizes"]}
        run = Run(self, experiment, arm, setting, identity, summary, force=force)
        if run.done:
            self.log_result(run.result_path)
        return run

    def save_split(self, split: Mapping[str, object]) -> Path:
        """Write a split record (:meth:`~esclib.data.splits.SplitRecord.to_json`) to ``splits/<digest>.json`` unless
        it is there already; returns its path."""
        path = self.root / "splits" / f"{split['digest']}.json"
        if not path.is_file():
            write_json_atomic(path, split)
        return path

    def split(self, split_digest: str) -> dict:
        """The split record of ``split_digest`` (the clip ids of every role)."""
        path = self.root / "splits" / f"{split_digest}.json"
        if not path.is_file():
            raise FileNotFoundError(f"no split {split_digest} in {self.root / 'splits'}")
        return json.loads(path.read_text())

    @staticmethod
    def log_result(path: Path) -> None:
        """Append a finished result's path to ``$ESC_RESULTS_LOG`` (how ``esc run`` learns what a notebook wrote)."""
        log = os.environ.get(RESULTS_LOG_ENV)
        if log:
            with open(log, "a") as f:
                f.write(f"{path.resolve()}\n")

    def results(self, experiment: str | None = None) -> Iterator[dict]:
        """Every readable finished result (optionally of one experiment), in path order; unreadable ones are
        skipped with a :class:`CorruptResultWarning` naming the file."""
        pattern = f"{experiment or '*'}/*/*/result.json"
        for path in sorted(self.root.glob(pattern)):
            result = read_result(path)
            if result is not None:
                yield result

    def aggregate(self, experiment: str | None = None) -> pd.DataFrame:
        """:func:`esclib.results.summary.summarise` of every finished run (of ``experiment``)."""
        from esclib.results.summary import summarise

        return summarise(list(self.results(experiment)))
