"""The experiment foundation every chapter stands on: run identity, seeding, train-or-reuse, recording, the grid.

A chapter's experiment subclasses :class:`Experiment` (as solo-learn's methods subclass its ``BaseMethod``) and
keeps only what is its own:

- ``name`` (the results-store experiment) and ``arms``;
- :meth:`Experiment.inputs` -- the identity of what it reads besides the split (datasets, checkpoints:
  :func:`esclib.data.identity.dataset_identity`, :func:`checkpoint_identity`);
- :meth:`Experiment.train` -- how one arm trains and tests on one split with one recipe, returning its metrics.

The base owns the rest. :meth:`Experiment.run` builds the run's **identity** -- experiment, arm, profile, seed,
device type, every field of the recipe, the inputs' digests, the split's digest and the run's readable setting --
and reuses a stored result only when that identity matches exactly; otherwise it trains, always inside the run's
context (a failure is recorded, a second process waits), seeds python / numpy / torch from the seed and the split
alone (never a path, a clock or a process id), hands :meth:`train` a :class:`RunContext` (checkpoint path keyed by
the identity, device, progress, a ``fit`` that records the per-epoch curves) and writes the result atomically.
:meth:`Experiment.grid` runs a list of cells with one progress bar and one summary line per run and returns
:class:`~esclib.results.summary.Results`, which every chapter summarises the same way.

A recipe is a frozen dataclass deriving from :class:`Recipe`: built from a chapter's resolved parameters with
:meth:`Recipe.from_config` -- strictly: every field must be a parameter of the chapter (no silent default) -- and
recorded whole in the identity, so a parameter added to a recipe later is covered without anyone listing it again.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping, Sequence, TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from esclib import paths, smoke
from esclib.data.splits import SplitRecord
from esclib.digest import canonical, file_digest, seed_from
from esclib.results.store import ResultsStore, Run
from esclib.results.summary import Results
from esclib.train.checkpoint import atomic_save
from esclib.train.loop import History, fit


R = TypeVar("R", bound="Recipe")


@dataclass(frozen=True)
class Recipe:
    """Base of every chapter's recipe: a frozen dataclass of everything that changes how a run trains.

    Subclasses declare their fields with the chapter's paper defaults; :meth:`from_config` fills every field from a
    chapter's resolved parameters.
    """

    @classmethod
    def from_config(cls, config: Any, **fixed: Any):
        """The recipe from ``config`` (a chapter context or a mapping of resolved parameters): every field is read
        from it under its own name -- a field the chapter does not define is an error, never a silent default --
        except those given in ``fixed`` (values the chapter derives itself)."""
        values = config.params if hasattr(config, "params") else dict(config)
        missing = [f.name for f in fields(cls) if f.name not in fixed and f.name not in values]
        if missing:
            raise ValueError(f"{cls.__name__}: the chapter's parameters lack {missing}; every recipe field must be a "
                             "chapter parameter (or be fixed by the chapter)")
        spec = getattr(config, "spec", None)
        if spec is not None:
            known = {f.name for path in spec.recipes for f in fields(recipe_class(path))}
            unused = [name for name, p in spec.params.items() if p.scope == "recipe" and name not in known]
            if unused:
                raise ValueError(f"chapter {spec.notebook}: parameter(s) {unused} have scope 'recipe' but no recipe "
                                 f"of the chapter ({', '.join(spec.recipes) or 'none'}) has them: they would change "
                                 "nothing")
        return cls(**{f.name: fixed[f.name] if f.name in fixed else values[f.name] for f in fields(cls)})

    def identity(self) -> dict[str, Any]:
        """Every field, as recorded in a run's identity."""
        return canonical(dataclasses.asdict(self))

    def replace(self, **changes: Any):
        """A copy with ``changes`` (a variant of the recipe, e.g. for an ablation)."""
        return dataclasses.replace(self, **changes)

    def part(self, recipe: type["R"]) -> "R":
        """The recipe ``recipe`` made of this recipe's fields of the same names (the pre-training recipe a
        fine-tuning recipe holds, so that both read one set of chapter parameters)."""
        return recipe(**{f.name: getattr(self, f.name) for f in fields(recipe)})


def recipe_class(path: str) -> type[Recipe]:
    """The recipe class named ``"module:Class"`` (as chapter specs name them)."""
    import importlib

    module, _, name = path.partition(":")
    cls = getattr(importlib.import_module(module), name, None)
    if not (isinstance(cls, type) and issubclass(cls, Recipe)):
        raise ValueError(f"{path!r} does not name a Recipe class ('module:Class')")
    return cls


def checkpoint_identity(path: str | Path, name: str | None = None) -> dict[str, object]:
    """``{"name", "digest"}`` of a checkpoint file: its name as given (``Cnn14``, ``mini``, a file's stem) and the
    sha256 of its bytes -- the same file anywhere is the same checkpoint, another file another one."""
    path = Path(path)
    return {"name": name or path.stem, "digest": file_digest(path)[:20]}


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Split:
    """The clips of one run by role (``train``, ``val``, ``test``, ``labelled``, ``unlabelled``, ``pool`` ...) with
    its kind (``official``, ``random``, ``pool``) and test fold; :attr:`record` is what the store keeps."""

    parts: dict[str, Any]
    kind: str = "official"
    fold: int | None = None

    def __getattr__(self, role: str):
        parts = self.__dict__.get("parts", {})
        if role in parts:
            return parts[role]
        raise AttributeError(f"this split has no {role!r} clips; roles: {', '.join(parts)}")

    @property
    def record(self) -> SplitRecord:
        """The clip ids of every role and their digest."""
        dataset = next(iter(self.parts.values())).name if self.parts else ""
        return SplitRecord.of(dataset, self.kind, self.fold, **self.parts)


@dataclass
class RunContext:
    """What :meth:`Experiment.train` gets: the run (its ``setting`` and ``identity``), the seed everything was
    seeded with, the device, where its resumable training checkpoint lives, and :meth:`fit`."""

    run: Run
    seed: int
    device: torch.device
    checkpoint: Path
    progress: bool
    desc: str
    histories: list[History] = field(default_factory=list)

    @property
    def setting(self) -> dict:
        """The run's readable setting (``dataset``, ``fold`` ...)."""
        return self.run.setting

    def fit(self, model: torch.nn.Module, train_loader: Iterable, *, stage: str = "", **kwargs: Any) -> History:
        """:func:`esclib.train.fit` with this run's device, checkpoint (one per ``stage``), progress and label; the
        per-epoch history is recorded with the result (keys prefixed ``<stage>_`` for a named stage)."""
        checkpoint = self.checkpoint.with_name(f"{self.checkpoint.stem}{'-' + stage if stage else ''}.pt")
        if smoke.active():
            kwargs.update(epochs=min(kwargs["epochs"], smoke.EPOCHS), limit_batches=smoke.STEPS)
        history = fit(model, train_loader, device=self.device, checkpoint=checkpoint, progress=self.progress,
                      desc=f"{self.desc} {stage}".strip(), **kwargs)
        self.histories.append(History([{(k if k == "epoch" or not stage else f"{stage}_{k}"): v
                                         for k, v in r.items()} for r in history.epochs], history.stopped_early,
                                      history.steps, history.seconds))
        return history

    def artifact(self, name: str) -> Path:
        """A file kept with the run after it finished (e.g. pre-trained weights other runs load), keyed by its
        identity: ``cache_dir()/artifacts/<experiment>/<arm>-<id>/<name>`` (its folder is created)."""
        path = paths.cache_dir() / "artifacts" / self.run.experiment / f"{self.run.arm}-{self.run.id}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def save_artifact(self, name: str, obj: Any) -> Path:
        """``obj`` (e.g. a state dict) written atomically to :meth:`artifact` ``name``
        (:func:`esclib.train.checkpoint.atomic_save`: the same content gives the same bytes); returns the path."""
        path = self.artifact(name)
        atomic_save(obj, path)
        return path


class Experiment:
    """Base of every chapter's experiment (see the module docstring).

    ``store``: where runs are kept (a chapter's ``cfg.store``); ``profile``: ``quick`` or ``paper`` (part of every
    identity); ``seed``; ``device``; ``progress``: the grid's progress bar and one line per run; ``train_progress``:
    also each run's epoch bars and per-epoch lines (long ``paper`` runs).
    """

    #: the experiment's name in the results store
    name: ClassVar[str] = ""
    #: the arms it can run
    arms: ClassVar[tuple[str, ...]] = ()
    #: bumped when the method's code changes its results, so that runs of the old code are not reused
    version: ClassVar[int] = 1
    #: files each run keeps (:meth:`artifact`) that later runs load; a stored result without them is trained again
    artifacts: ClassVar[tuple[str, ...]] = ()

    def __init__(self, store: ResultsStore, *, profile: str = "quick", seed: int = 0,
                 device: str | torch.device = "cpu", progress: bool = True, train_progress: bool = False) -> None:
        if not self.name or not self.arms:
            raise TypeError(f"{type(self).__name__} must set the class attributes name and arms")
        self.store, self.profile, self.seed = store, profile, int(seed)
        self.device = torch.device(device)
        self.progress, self.train_progress = progress, train_progress
        self._inputs: dict | None = None

    # ------------------------------------------------------------------------------------- for subclasses
    def inputs(self) -> dict[str, Any]:
        """The identity of what every run reads besides its split: datasets and checkpoints (digests). Called once."""
        return {}

    def run_inputs(self, arm: str, recipe: Recipe, split: Split) -> dict[str, Any]:
        """The identity of what one run reads besides :meth:`inputs` (e.g. the pre-training run whose weights it
        starts from); none by default."""
        return {}

    def train(self, ctx: RunContext, arm: str, recipe: Recipe, split: Split) -> dict[str, Any]:
        """Train ``arm`` with ``recipe`` on ``split``, test it and return its metrics (scalars, lists)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ the base
    def check_arm(self, arm: str) -> str:
        """``arm`` if this experiment has it, else a ValueError listing the arms."""
        if arm not in self.arms:
            raise ValueError(f"{self.name}: unknown arm {arm!r}; expected one of {list(self.arms)}")
        return arm

    @property
    def input_identity(self) -> dict[str, Any]:
        """:meth:`inputs`, computed once."""
        if self._inputs is None:
            self._inputs = canonical(self.inputs())
        return self._inputs

    def identity(self, arm: str, recipe: Recipe, split: Split, setting: Mapping[str, Any]) -> dict[str, Any]:
        """Everything a run's result depends on (see the module docstring)."""
        return {"experiment": self.name, "version": self.version, "arm": arm, "profile": self.profile,
                "seed": self.seed, "device": self.device.type,
                # CPU training sums in another order with another thread count: not the same numbers
                **({"cpu_threads": torch.get_num_threads()} if self.device.type == "cpu" else {}),
                "recipe": recipe.identity(),
                "inputs": {**self.input_identity, **canonical(self.run_inputs(arm, recipe, split))},
                "split": split.record.digest, "setting": canonical(dict(setting))}

    def run_seed(self, split: Split) -> int:
        """The seed a run starts from: the chapter's seed and the split's digest (shared by every arm and recipe on
        the split, so that arms are compared on the same draws)."""
        return seed_from({"seed": self.seed, "split": split.record.digest})

    def setting(self, arm: str, recipe: Recipe, split: Split) -> dict[str, Any]:
        """The readable setting of a run (folder names, tables, matching the studies' numbers): by default the
        split's dataset, its kind when not the official folds, and its test fold; subclasses add what their tables
        need (it is part of the identity too, so it can never disagree with the run)."""
        record = split.record
        return {"dataset": record.dataset, **({"split": split.kind} if split.kind != "official" else {}),
                **({"fold": split.fold} if split.fold is not None else {})}

    def open(self, arm: str, recipe: Recipe, split: Split) -> Run:
        """The store's run of this identity (not trained)."""
        self.check_arm(arm)
        setting = self.setting(arm, recipe, split)
        return self.store.run(self.name, arm, setting, self.identity(arm, recipe, split, setting),
                              split=split.record.to_json())

    def run(self, arm: str, recipe: Recipe, split: Split) -> dict:
        """The result of ``arm`` with ``recipe`` on ``split``: reused when a run of the same identity finished
        before, else trained (resuming from its checkpoint if it was interrupted) and recorded."""
        run = self.open(arm, recipe, split)
        if run.done and not self._has_artifacts(run):
            run.force = True
        if not run.done:
            with run:
                if not run.done:
                    self._train(run, arm, recipe, split)
        return run.result()

    def artifact(self, run: Run | Mapping, name: str) -> Path:
        """The file ``name`` kept by a run (:meth:`RunContext.artifact`), from the run or its result."""
        experiment, arm, run_id = ((run.experiment, run.arm, run.id) if isinstance(run, Run) else
                                   (run["experiment"], run["arm"], run["id"]))
        return paths.cache_dir() / "artifacts" / experiment / f"{arm}-{run_id}" / name

    def _has_artifacts(self, run: Run) -> bool:
        return all(self.artifact(run, name).is_file() for name in self.artifacts)

    def _train(self, run: Run, arm: str, recipe: Recipe, split: Split) -> None:
        seed = self.run_seed(split)
        seed_everything(seed)
        desc = f"{arm} " + " ".join(f"{k} {v}" for k, v in run.setting.items() if k != "dataset")
        ctx = RunContext(run, seed, self.device, paths.cache_dir() / "checkpoints" / self.name / f"{arm}-{run.id}.pt",
                         self.train_progress, desc.strip())
        metrics = self.train(ctx, arm, recipe, split)
        epochs: dict[int, dict] = {}
        for history in ctx.histories:
            for record in history.epochs:
                epochs.setdefault(int(record["epoch"]), {}).update(record)
        for epoch, values in sorted(epochs.items()):
            run.log_epoch(**values)
        steps, seconds = sum(h.steps for h in ctx.histories), sum(h.seconds for h in ctx.histories)
        run.finish({"epochs": len(epochs), **metrics},
                   timing={"steps": steps, "train_seconds": seconds, "device": str(self.device),
                           "seconds_per_step": round(seconds / steps, 4) if steps else None})
        for checkpoint in ctx.checkpoint.parent.glob(f"{ctx.checkpoint.stem}*.pt"):
            checkpoint.unlink(missing_ok=True)

    def planned_steps(self, arm: str, recipe: Recipe, split: Split) -> int | None:
        """The optimiser steps a run of ``arm`` will take (for :meth:`plan`'s estimate); None when not known.
        Default: the recipe's ``steps``, else ``epochs`` x ``steps_per_epoch``, else ``epochs`` x the batches of
        ``batch_size`` in the split's ``train`` (or ``labelled``) clips; subclasses with other schedules override."""
        fields = recipe.identity()
        if isinstance(fields.get("steps"), int):
            return fields["steps"]
        epochs = fields.get("epochs")
        if not isinstance(epochs, int):
            return None
        if isinstance(fields.get("steps_per_epoch"), int):
            return epochs * fields["steps_per_epoch"]
        clips = split.parts.get("train", split.parts.get("labelled"))
        if isinstance(fields.get("batch_size"), int) and clips is not None:
            return epochs * -(-len(clips) // fields["batch_size"])
        return None

    def plan(self, cells: Sequence[tuple[str, Recipe, Split]]) -> str:
        """What :meth:`grid` is about to do: runs to train and to reuse, optimiser steps, and -- from the seconds per
        step that this experiment's smoke runs (:mod:`esclib.smoke`) measured on this kind of device, per arm, scaled
        by the ratio of batch sizes when the recipe has one (a smoke run may take smaller batches) -- an estimate of
        the time it will take (issue "paper profile smoke": printed before a long paper run)."""
        todo = [(arm, recipe, split) for arm, recipe, split in cells if not self.open(arm, recipe, split).done]
        steps = [(arm, recipe, self.planned_steps(arm, recipe, split)) for arm, recipe, split in todo]
        known = [n for _, _, n in steps if n is not None]
        rates = self.smoke_seconds_per_step()
        seconds = [n * rates[arm][0] * _batch_ratio(recipe, rates[arm][1]) for arm, recipe, n in steps
                   if n is not None and arm in rates]
        text = (f"[{self.name}] plan: {len(cells)} runs, {len(cells) - len(todo)} reused, {len(todo)} to train"
                f"{f', {sum(known):,} optimiser steps' if known else ''}")
        if not todo:
            return text
        if seconds and len(seconds) == len(todo):
            return text + (f"; about {_duration(sum(seconds))} on {self.device.type} at the smoke runs' seconds "
                           f"per step (steps only: evaluation and data loading come on top)")
        reasons = [*(["some runs have no step count"] if len(known) < len(todo) else []),
                   *(["run `esc run CHAPTER --smoke` on this device first"] if len(seconds) < len(known) else [])]
        return text + "; no estimate: " + " and ".join(reasons)

    def smoke_seconds_per_step(self) -> dict[str, tuple[float, int | None]]:
        """Per arm, the median seconds per optimiser step of this experiment's finished smoke runs of the same
        profile on this kind of device (``results/<profile>-smoke``) and the batch size they ran with (None when
        the recipe has none); empty when there are none."""
        store = ResultsStore(paths.results_dir() / f"{self.profile}-smoke")
        measured: dict[str, list[tuple[float, int | None]]] = {}
        for result in store.results(self.name):
            timing = result.get("timing") or {}
            rate = timing.get("seconds_per_step")
            if rate and str(timing.get("device", "")).split(":")[0] == self.device.type:
                batch = result.get("identity", {}).get("recipe", {}).get("batch_size")
                measured.setdefault(result["arm"], []).append((float(rate), batch))
        return {arm: (float(np.median([r for r, _ in runs])), runs[0][1]) for arm, runs in measured.items()}

    def grid(self, cells: Sequence[tuple[str, Recipe, Split]] | Iterable[tuple[str, Recipe, Split]], *,
             desc: str | None = None, label: Any = None) -> Results:
        """Run every ``(arm, recipe, split)`` cell (finished ones are reused) with one progress bar and one line per
        run; ``label(arm, recipe)``, if given, names each run's variant (stored in ``result["label"]``). In the
        ``paper`` profile (not in a smoke run) it first prints :meth:`plan`."""
        cells = list(cells)
        if self.profile == "paper" and not smoke.active():
            print(self.plan(cells), flush=True)
        results = Results()
        bar = tqdm(cells, desc=desc or f"{self.name} runs", disable=not self.progress)
        for arm, recipe, split in bar:
            reused = self.open(arm, recipe, split).done
            result = dict(self.run(arm, recipe, split))
            if label is not None:
                result["label"] = label(arm, recipe)
            results.append(result)
            if self.progress:
                bar.write(self.describe(result, reused))
        return results

    @staticmethod
    def describe(result: Mapping, reused: bool = False) -> str:
        """One line about a finished run: arm, setting, headline metric, epochs and time (or that it was reused)."""
        metrics = result["metrics"]
        headline = next((f"{k} {metrics[k]:.3f}" for k in ("accuracy", "map", "knn_accuracy", "val_mse")
                         if isinstance(metrics.get(k), (int, float))), "")
        where = ", ".join(f"{k} {v}" for k, v in result["setting"].items() if k != "dataset")
        how = "reused (same identity)" if reused else (f"{metrics.get('epochs', '?')} epochs, "
                                                       f"{result.get('seconds', 0):.0f} s")
        return f"{result.get('label', result['arm'])} [{where}]: {headline} ({how})"


def _batch_ratio(recipe: Recipe, smoke_batch: int | None) -> float:
    """How many times larger ``recipe``'s batches are than the smoke run's (1 when either has none)."""
    batch = recipe.identity().get("batch_size")
    return batch / smoke_batch if isinstance(batch, int) and isinstance(smoke_batch, int) and smoke_batch else 1.0


def _duration(seconds: float) -> str:
    """``seconds`` as a readable duration (``42 s``, ``7.5 min``, ``3.2 h``)."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
