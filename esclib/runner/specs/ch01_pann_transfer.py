"""Parameters of chapter 01, transfer from pretrained audio neural networks (notebooks/01_pann_transfer.ipynb).

``paper``: the protocol behind study 003's Table IX (Kong et al. 2020, Sec. V; book/protocols.md): ESC-50's 5
official folds, each tested after training on the other 4 (``selection="last"``: no validation fold, the last step
kept), the released CNN14 (32 kHz) on whole 5-s clips, the authors' fixed-iteration recipe (their gtzan code: 10,000
iterations of 32 mixed clips, evaluated every 200; Adam 1e-4 with amsgrad, mixup α = 1, SpecAugment). ``quick``: the
same protocol on the synthetic ESC-50 with the mini PANN pre-trained on the synthetic mini-AudioSet, a shorter
schedule of smaller batches at a larger learning rate on whole 5-s clips, as the authors train (2-s crops left
fine-tune at 0.750 against 0.830 on whole clips with the same steps: a crop often misses a clip's events), without
SpecAugment and mixup (both sized for long schedules), so that the chapter runs in minutes on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from esclib.runner.spec import (
    ChapterSpec,
    Param,
    data_root_param,
    folds_fit,
    in_range,
    integer,
    parse_counts,
    parse_folds,
    parse_names,
)

#: transfer strategies of study 003 (esclib.models.transfer.STRATEGIES; kept literal so the spec imports no torch)
STRATEGIES = ("scratch", "fine-tune", "freeze_l1", "freeze_l3")
#: model selections (esclib.data.splits.SELECTIONS, kept literal for the same reason)
SELECTIONS = ("validation-fold", "budgeted", "last")
DATASETS = ("esc50", "esc10", "us8k")
#: the shared step of chapters 01 and 02 (esc book runs it once, before both): the quick mini PANN's pre-training
PREPARE_MINI_PANN = "esclib.experiments.pann_pretrain:prepare_mini_pann"


def checkpoint_name(value: Any) -> None:
    """``mini``, a registered checkpoint name / released file name, or an existing checkpoint file."""
    from esclib.models.panns.registry import find_checkpoint

    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ValueError("expected 'mini', a registered PANN checkpoint name (see `esc pann list`) or a file path")
    if str(value) != "mini" and find_checkpoint(str(value)) is None and not Path(value).expanduser().is_file():
        raise ValueError("not 'mini', not a registered PANN checkpoint (see `esc pann list`) and not an existing "
                         "file")


def architecture(value: Any) -> None:
    """A registered PANN architecture name."""
    from esclib.models.panns.registry import ARCHITECTURES

    if value not in ARCHITECTURES:
        raise ValueError(f"expected one of {list(ARCHITECTURES)}")


def checkpoint_rate(value: Any) -> int | None:
    """The sample rate of checkpoint ``value``'s frontend when known without loading it (``mini`` or a registered
    name), else None."""
    from esclib.models.panns.registry import find_checkpoint

    if str(value) == "mini":
        return 16000
    released = find_checkpoint(str(value))
    return released.frontend.sample_rate if released is not None else None


def sample_rate_fits(params: dict) -> None:
    """Cross-check: ``sample_rate`` must be the rate of the checkpoint's frontend (its filters fix it)."""
    rate, expected = params.get("sample_rate"), checkpoint_rate(params["checkpoint"])
    if rate is not None and expected is not None and rate != expected:
        raise ValueError(f"invalid value {rate!r} for parameter 'sample_rate': the checkpoint "
                         f"{params['checkpoint']!r} has a {expected} Hz frontend (set sample_rate {expected})")


checkpoint_name.description = "`mini`, a registered checkpoint or a file"  # type: ignore[attr-defined]
architecture.description = "a registered PANN architecture (`esc pann list`)"  # type: ignore[attr-defined]


SPEC = ChapterSpec(
    notebook="01_pann_transfer",
    title="Transfer from pretrained audio neural networks (PANNs)",
    experiment="pann_transfer",
    recipes=("esclib.experiments.pann_transfer:TransferRecipe",),
    checks=(folds_fit("folds", "few_shot_folds", dataset="dataset"), sample_rate_fits),
    prepare=(PREPARE_MINI_PANN,),
    # smoke: ESC-10 (ESC-50's subset: the same files, layout and code path) with its 50 clips instead of 250, so
    # that the frozen embeddings and the evaluations of Cnn14 on whole 5-s clips take seconds, not minutes
    smoke={"dataset": "esc10", "folds": "1", "batch_size": 4, "few_shot_folds": "1", "few_shot_per_class": "2",
           "selection_strategies": "freeze_l1"},
    params={
        "dataset": Param("dataset to transfer to", "esc50", "esc50", choices=DATASETS, scope="input"),
        "data_root": data_root_param(),
        "checkpoint": Param("pretrained PANN: 'mini' (the quick model pre-trained on the synthetic mini-AudioSet), "
                            "a registered name such as 'Cnn14' or 'Cnn14_16k', or a checkpoint file",
                            "mini", "Cnn14", check=checkpoint_name, scope="input"),
        "arch": Param("PANN architecture of a checkpoint file whose architecture cannot be inferred; None: from the "
                      "registry or the file", None, None, check=architecture, scope="input"),
        "sample_rate": Param("sample rate in Hz; must be the checkpoint's (Cnn14: 32000; Cnn14_16k, mini: 16000)",
                             16000, 32000, check=integer(1000, 192000), scope="input"),
        "folds": Param("test folds ('all', '1-2', '1,3', ...); training on the other folds (all of them, or all "
                       "but the next one under selection 'validation-fold')", "all", "all", parse=parse_folds,
                       scope="grid"),
        "strategies": Param("transfer strategies (comma-separated)", ",".join(STRATEGIES), ",".join(STRATEGIES),
                            parse=parse_names(STRATEGIES), scope="grid"),
        "epochs": Param("epochs of steps_per_epoch optimiser steps (the authors: 50 x 200 = 10,000 iterations)", 6,
                        50, check=integer(1, 100000)),
        "steps_per_epoch": Param("optimiser steps per epoch (the validation interval: the authors evaluate every "
                                 "200 iterations)", 10, 200, check=integer(1, 100000)),
        "batch_size": Param("mixed clips per optimiser step (the loader gives twice as many with mixup)", 16, 32,
                            check=integer(2, 4096)),
        "lr": Param("Adam learning rate (amsgrad)", 1e-3, 1e-4, check=in_range(0, 1, closed="right")),
        "mixup": Param("mixup α (0: no mixup; quick: off, it slows fitting in a few dozen steps)", 0.0, 1.0,
                       check=in_range(0, 100)),
        "specaugment": Param("SpecAugment inside the network while training scratch and fine-tune (time 64 x 2, "
                             "frequency 8 x 2); a frozen base never augments (quick: off -- stripes sized for the "
                             "authors' 10-s clips at 32 kHz cover up to 51 % of a 5-s clip at the mini's 20-ms hop)",
                             False, True, choices=(True, False)),
        "clip_seconds": Param("seconds of log-mel per training clip (a random crop; the clip's length: whole "
                              "clips, as the authors); tests read whole clips", 5.0, 5.0, check=in_range(0.1, 60)),
        "selection": Param("model selection: 'last' (train on every other fold, keep the last step: Table IX), "
                           "'validation-fold' (hold out fold k+1, keep its best epoch), 'budgeted' (a validation "
                           "share of the run's own labels)", "last", "last", choices=SELECTIONS),
        "few_shot_per_class": Param("labelled clips per class of the few-shot curve (Fig. 5 of the study)",
                                    "2,8", "1,2,5,10,20", parse=parse_counts, scope="grid"),
        "few_shot_folds": Param("test folds of the few-shot runs and the selection table (quick: two, which keeps "
                                "the book within 20 minutes on 2 cores)", "1-2", "all", parse=parse_folds,
                                scope="grid"),
        "selection_per_class": Param("labelled clips per class of the table comparing the three selections", 2, 2,
                                     check=integer(1, 10000), scope="grid"),
        "selection_strategies": Param("strategies of the table comparing the three selections (quick: the two "
                                      "frozen ones, which train on cached embeddings in a second each)",
                                      "freeze_l1,freeze_l3", ",".join(STRATEGIES), parse=parse_names(STRATEGIES),
                                      scope="grid"),
        "embedding_map": Param("2-D map of the frozen embeddings", "tsne", "tsne", choices=("tsne", "pca"),
                               scope="view"),
    },
)
