"""Generating a synthetic world on disk: sizes, difficulty, resumable parallel rendering (:func:`generate`)."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

from tqdm.auto import tqdm

from esclib.data.synth import classes
from esclib.data.synth.files import write_text
from esclib.data.synth.worlds import (LAYOUT_FILES, Difficulty, Job, Plan, plan_audioset, plan_dcase2013, plan_esc50,
                                      plan_escus, plan_us8k, render_job)
from esclib.locks import file_lock

#: bump when a change to the generators changes what a seed produces (recorded in each tree's manifest)
WORLD_VERSION = 2

DATASETS: tuple[str, ...] = ("esc50", "us8k", "escus", "audioset-mini", "dcase2013")

_ESC10_CLASSES = tuple(c for c in classes.ESC50 if c.name in classes.ESC10)

#: what each size holds: ``tiny`` (tests), ``smoke`` (the real dataset's classes, folds, rate, clip length and
#: channels with a clip or two per class and fold: the paper profile's smoke runs), ``quick`` (the quick profile),
#: ``full`` (real-dataset order of size)
SIZES: dict[str, dict[str, dict]] = {
    "esc50": {"tiny": dict(classes=_ESC10_CLASSES[:2], clips_per_class=5),
              "smoke": dict(classes=classes.ESC50, clips_per_class=5),
              "quick": dict(classes=_ESC10_CLASSES, clips_per_class=40),
              "full": dict(classes=classes.ESC50, clips_per_class=40)},
    "us8k": {"tiny": dict(classes=classes.US8K[:2], sources_per_fold=1, max_occurrences=1, max_slices=2),
             "smoke": dict(sources_per_fold=1, max_occurrences=1, max_slices=1),
             "quick": dict(sources_per_fold=3, max_occurrences=2, max_slices=3),
             "full": dict(sources_per_fold=10, max_occurrences=3, max_slices=6)},
    "escus": {"tiny": dict(n_clips=12), "smoke": dict(n_clips=20), "quick": dict(n_clips=600),
              "full": dict(n_clips=10_000)},
    "audioset-mini": {"tiny": dict(n_clips=20, seconds=5.0), "smoke": dict(n_clips=24, sr=32000),
                      "quick": dict(n_clips=3_000, seconds=2.0), "full": dict(n_clips=20_000)},
    "dcase2013": {"tiny": dict(clips_per_scene=1, seconds=2.0), "smoke": dict(clips_per_scene=1),
                  "quick": dict(clips_per_scene=5), "full": dict(clips_per_scene=10)},
}

#: how hard each world is; the ESC-50 one calibrated with :mod:`esclib.data.synth.calibrate` (quick: a small CNN
#: reaches 86 % with all labels, 39 % with 10 %)
DIFFICULTY: dict[str, Difficulty] = {
    "esc50": Difficulty(snr_db=(0.0, 18.0), distractors=(0, 1), distractor_db=(-16.0, -6.0)),
    "us8k": Difficulty(snr_db=(3.0, 20.0), distractors=(0, 1), distractor_db=(-16.0, -6.0)),
    "escus": Difficulty(snr_db=(0.0, 20.0), widen=1.4),
    "audioset-mini": Difficulty(snr_db=(8.0, 30.0)),
    "dcase2013": Difficulty(snr_db=(6.0, 20.0)),
}

_PLANNERS = {"esc50": plan_esc50, "us8k": plan_us8k, "escus": plan_escus, "audioset-mini": plan_audioset,
             "dcase2013": plan_dcase2013}
MANIFEST = ".esclib-synth.json"


def plan(name: str, root: str | Path, size: str = "quick", seed: int = 0) -> Plan:
    """The jobs and metadata of synthetic world ``name`` at ``size`` for ``seed`` (nothing is written)."""
    if name not in _PLANNERS:
        raise ValueError(f"unknown synthetic dataset name={name!r}; expected one of {DATASETS}")
    if size not in SIZES[name]:
        raise ValueError(f"unknown size={size!r} for {name!r}; expected one of {tuple(SIZES[name])}")
    return _PLANNERS[name](Path(root).resolve(), int(seed), difficulty=DIFFICULTY[name], **SIZES[name][size])


def _done(job: Job) -> bool:
    return all(os.path.exists(out.path) for out in job.outputs)


def _render_all(jobs: list[Job], workers: int, desc: str, progress: bool) -> None:
    bar = tqdm(total=len(jobs), desc=desc, unit="rec", disable=not progress)
    if workers <= 1 or len(jobs) < 8:
        for job in jobs:
            render_job(job)
            bar.update()
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for _ in pool.map(render_job, jobs, chunksize=max(1, len(jobs) // (workers * 16))):
                bar.update()
    bar.close()


def _remove_world(root: Path, dataset: str) -> None:
    """Delete the files of synthetic world ``dataset`` under ``root`` (and unfinished temporary files)."""
    for pattern in LAYOUT_FILES[dataset]:
        for path in root.glob(pattern):
            path.unlink()
    for path in root.rglob(".*.tmp"):
        path.unlink()


def world_lock(root: str | Path) -> AbstractContextManager[None]:
    """The lock a process holds while it generates the synthetic world at ``root`` (the file ``.<name>.lock`` beside
    it, an :func:`esclib.locks.file_lock`): a second process generating the same world waits, then finds it
    complete."""
    root = Path(root).expanduser().resolve()
    return file_lock(root.parent / f".{root.name}.lock", what=f"the synthetic world {root}")


def generate(name: str, root: str | Path, size: str = "quick", seed: int = 0, *, workers: int | None = None,
             overwrite: bool = False, progress: bool = True) -> Path:
    """Write synthetic world ``name`` (one of :data:`DATASETS`) under ``root`` in the real dataset's layout,
    deterministically from ``seed`` (byte for byte); returns ``root``.

    Resumable: a tree already complete for the same (name, size, seed, generator version) is left as it is; an
    interrupted one is finished (files are written atomically, so existing ones are whole); one made by another
    generator version is replaced. ``root`` must be empty or hold a synthetic world (its manifest
    ``.esclib-synth.json``); another world (dataset, size or seed) there is an error unless ``overwrite=True``,
    which deletes that world's files first. ``workers`` processes render (default: the CPU count); they are
    spawned, so a script that calls this needs the usual ``if __name__ == "__main__":`` guard. One process at a time
    writes a world (:func:`world_lock`); another one asking for it meanwhile waits.
    """
    root = Path(root).expanduser().resolve()
    the_plan = plan(name, root, size, seed)
    with world_lock(root):
        _write_world(the_plan, root, dict(dataset=name, size=size, seed=int(seed), version=WORLD_VERSION), workers,
                     overwrite, progress)
    return root


def _write_world(the_plan: Plan, root: Path, spec: dict, workers: int | None, overwrite: bool, progress: bool
                 ) -> None:
    """:func:`generate`'s work under the world's lock: check the manifest, render what is missing, finish."""
    manifest = root / MANIFEST
    if manifest.exists():
        previous = json.loads(manifest.read_text())
        complete = previous.pop("complete", False)
        if previous == spec and complete:
            return
        if any(previous.get(key) != spec[key] for key in ("dataset", "size", "seed")) and not overwrite:
            raise FileExistsError(f"{root} holds the synthetic world {previous}, not {spec}; pass overwrite=True "
                                  f"to replace it, or choose another root")
        if previous != spec:
            _remove_world(root, previous["dataset"])
    elif root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty and holds no synthetic world ({MANIFEST} missing); refusing to "
                              f"write into it: choose an empty or new folder")
    root.mkdir(parents=True, exist_ok=True)
    write_text(manifest, json.dumps(dict(spec, complete=False), indent=1))
    todo = [job for job in the_plan.jobs if not _done(job)]
    _render_all(todo, workers or os.cpu_count() or 1, f"synth {spec['dataset']} ({spec['size']})", progress)
    for rel, text in the_plan.metadata.items():
        write_text(root / rel, text)
    write_text(manifest, json.dumps(dict(spec, complete=True), indent=1))
