"""Sweeps: one run of a chapter per fold or parameter value, resumable (``esc run --folds 1-5``, ``--sweep``).

Setting ``folds=3`` of chapter ``01_pann_transfer`` runs into
``book/chapters/sweeps/01_pann_transfer/folds=3.ipynb``. A setting is done when its executed copy finished without
error, was run with the same parameters, and every result it wrote is still in the results store; a re-run of the
sweep skips done settings (unless forced), so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import nbformat

from esclib.results.store import setting_slug
from esclib.runner.execute import Execution, check_request, executed_ok


def sweep_settings(sweeps: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the swept values, in the order given (the last name varies fastest)."""
    names = list(sweeps)
    return [dict(zip(names, values)) for values in itertools.product(*(sweeps[n] for n in names))]


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def setting_done(path: Path, parameters: Mapping[str, Any], root: Path) -> bool:
    """Whether the executed copy at ``path`` is a finished run with ``parameters`` whose results all still exist."""
    if not executed_ok(path):
        return False
    nb = nbformat.read(path, as_version=4)
    if not _same(nb.metadata.get("papermill", {}).get("parameters", {}), parameters):
        return False
    return all((root / p).is_file() for p in nb.metadata.get("esc", {}).get("results", []))


def run_sweep(
    source: Path,
    out_dir: Path,
    base: Mapping[str, Any],
    sweeps: Mapping[str, Sequence[Any]],
    *,
    profile: str,
    root: Path,
    run: Callable[..., Execution],
    force: bool = False,
    progress: bool = True,
) -> list[Execution]:
    """Run ``source`` once per setting of ``sweeps`` (each on top of ``base``) into ``out_dir/<setting>.ipynb``.

    Every setting is checked before the first one starts. Done settings are skipped unless ``force`` (which also
    re-computes their finished results); a failed setting does not stop the others. ``run`` is :func:`esclib.runner.execute.execute`. Returns the executions
    actually run.
    """
    settings = sweep_settings(sweeps)
    requests = [{**base, **setting} for setting in settings]
    for parameters in requests:
        check_request(source, profile, parameters)
    executions = []
    for setting, parameters in zip(settings, requests):
        output = out_dir / f"{setting_slug(setting)}.ipynb"
        if not force and setting_done(output, {"profile": profile, **parameters}, root):
            print(f"[esc] {source.stem} {setting_slug(setting)}: done earlier, skipped ({output})")
            continue
        print(f"[esc] {source.stem} {setting_slug(setting)}: running")
        executions.append(run(source, output, parameters, profile=profile, root=root, progress=progress, force=force))
    return executions
