"""The pre-training of the ``quick`` profile's PANN as a run of the results store (study 003, Sec. III).

Notebooks: 01_pann_transfer, 02_fixmatch -- both transfer from its one checkpoint. :class:`PannPretraining`
(experiment ``pann_pretrain``, metric ``map``: the held-out mean average precision) wraps the training function of
:mod:`esclib.train.pann_pretrain` (the authors' recipe: balanced sampling, mixup, ``clip_bce``, Adam with amsgrad)
on the foundation of :mod:`esclib.experiments.base`: the run's identity holds the corpus's digest and every field of
the pre-training configuration, a finished run is reused by every chapter that asks for the same model, and its
checkpoint is kept with the run (an artifact; a result whose checkpoint was deleted is trained again).
:func:`resolve_checkpoint` turns a chapter's ``checkpoint`` parameter into a file: ``"mini"`` becomes this run's
checkpoint, a registered name or a path is returned as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from esclib.data.clips import ClipSet
from esclib.data.identity import dataset_identity
from esclib.experiments.base import Experiment, Recipe, RunContext, Split
from esclib.models.panns.registry import ARCHITECTURES
from esclib.results.store import ResultsStore
from esclib.train.loop import History
from esclib.train.pann_pretrain import MINI_CONFIG, PretrainConfig, pretrain, train_holdout_split

EXPERIMENT = "pann_pretrain"
#: the ``checkpoint`` value naming the quick profile's mini model pre-trained on the synthetic mini-AudioSet
MINI = "mini"
#: the file each pre-training run keeps (released format, with ``<file>.json`` beside it: the pre-training report)
CHECKPOINT = "checkpoint.pth"


@dataclass(frozen=True)
class PretrainRecipe(Recipe):
    """A pre-training run: the whole :class:`~esclib.train.pann_pretrain.PretrainConfig` (architecture, schedule,
    optimiser, augmentation, crop, hold-out share, seed), recorded field by field in the run's identity."""

    config: PretrainConfig


class PannPretraining(Experiment):
    """Pre-training a PANN on one multi-label tagging corpus (one arm per architecture; setting ``dataset``,
    ``arch``); metrics ``map`` and ``auc`` on the corpus's held-out clips."""

    name = EXPERIMENT
    arms = tuple(ARCHITECTURES)
    #: 2: the quick CnnMini16k runs channels-last (the same method, other floating-point sums); 3: CnnMini16k's
    #: frontend hops 20 ms (was 10)
    version = 3
    artifacts = (CHECKPOINT,)

    def __init__(self, corpus: ClipSet, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not corpus.multi_label:
            raise ValueError(f"PannPretraining: {corpus.name} is single-label; pre-training needs a multi-label "
                             "tagging corpus (e.g. audioset-mini)")
        self.corpus = corpus

    def inputs(self) -> dict[str, Any]:
        return {"corpus": dataset_identity(self.corpus, progress=self.progress)}

    def split(self, config: PretrainConfig) -> Split:
        """The corpus's training and held-out clips, as :func:`~esclib.train.pann_pretrain.pretrain` splits it."""
        train, held_out = train_holdout_split(self.corpus, config.holdout_fraction, config.seed)
        return Split({"train": train, "held_out": held_out}, "pool")

    def setting(self, arm: str, recipe: Recipe, split: Split) -> dict[str, Any]:
        return {"dataset": self.corpus.name, "arch": arm}

    def train(self, ctx: RunContext, arm: str, recipe: PretrainRecipe, split: Split) -> dict[str, Any]:
        if arm != recipe.config.arch:
            raise ValueError(f"PannPretraining: arm {arm!r} but the configuration trains {recipe.config.arch!r}")
        report = pretrain(self.corpus, recipe.config, ctx.artifact(CHECKPOINT), device=ctx.device,
                          progress=ctx.progress)
        ctx.histories.append(History(report["history"]))
        held_out = report["held_out_metrics"]
        return {"map": held_out["mAP"], "auc": held_out["auc"], "n_train": report["corpus"]["train"],
                "n_test": report["corpus"]["held_out"]}

    def pretrained(self, config: PretrainConfig) -> tuple[Path, dict]:
        """The checkpoint of ``config`` (trained, or the stored run's) and the run's result; the run is shown as
        one progress bar and one summary line."""
        result = self.grid([(config.arch, PretrainRecipe(config), self.split(config))], desc="pre-training")[0]
        return self.artifact(result, CHECKPOINT), result


def mini_pann(store: ResultsStore, *, profile: str = "quick", seed: int = 0, device: str = "cpu",
              progress: bool = True, data_root: str | Path | None = None,
              config: PretrainConfig | None = None) -> tuple[Path, dict]:
    """The ``quick`` profile's pretrained PANN and its run: ``config`` (default the pre-training module's
    ``MINI_CONFIG`` with ``seed``) trained on the synthetic ``audioset-mini`` corpus of ``seed`` (or the corpus at
    ``data_root``), recorded in ``store`` as experiment ``pann_pretrain``. Chapters 01 and 02 call it with their
    store, profile, seed and device, and so share one run and one checkpoint."""
    from esclib.data.registry import load
    from esclib.data.sources import dataset_root

    corpus = load("audioset-mini", dataset_root("audioset-mini", "quick", data_root, seed=seed))
    experiment = PannPretraining(corpus, store=store, profile=profile, seed=seed, device=device, progress=progress)
    return experiment.pretrained(config or replace(MINI_CONFIG, seed=seed))


def prepare_mini_pann(params: Mapping[str, Any], *, notebook: str) -> None:
    """``esc book``'s shared step before chapters 01 and 02 (their specs' ``prepare``): with checkpoint ``mini``,
    the pre-training that :func:`resolve_checkpoint` would otherwise run inside whichever chapter came first, run in
    chapter ``notebook`` as entered with its resolved ``params`` (:func:`esclib.runner.chapter.enter_chapter`: the
    chapter's threads, device and store), so that both chapters start from the stored run; nothing for another
    checkpoint."""
    from esclib.runner.chapter import enter_chapter

    if str(params["checkpoint"]) != MINI:
        return
    device, store = enter_chapter(notebook, params)
    resolve_checkpoint(MINI, store=store, profile=params["profile"], seed=params["seed"], device=str(device),
                       progress=False)


def resolve_checkpoint(checkpoint: str | Path, *, store: ResultsStore | None = None, profile: str = "quick",
                       seed: int = 0, device: str = "cpu", progress: bool = True) -> str:
    """The checkpoint file a chapter loads: :data:`MINI` becomes :func:`mini_pann`'s checkpoint (pre-trained on
    first use and recorded in ``store``, default the ``profile``'s store); a registered name or a file path is
    returned as it is -- except in a smoke run (:mod:`esclib.smoke`), where a registered name becomes a
    random-weight file in the released format."""
    from esclib import smoke
    from esclib.models.panns.registry import find_checkpoint

    if smoke.active() and not Path(checkpoint).is_file() and find_checkpoint(str(checkpoint)) is not None:
        return str(smoke.smoke_checkpoint(str(checkpoint)))
    if str(checkpoint) != MINI:
        return str(checkpoint)
    store = store if store is not None else ResultsStore.for_profile(profile)
    return str(mini_pann(store, profile=profile, seed=seed, device=str(device), progress=progress)[0])
