"""Parameters of chapter 02, FixMatch on a pretrained PANN (notebooks/02_fixmatch.ipynb).

``paper``: study 000's protocol (ROCLING 2021; book/protocols.md): UrbanSound8K's 10 official folds, 10 % of the
training folds labelled (class-balanced), the released ``Cnn14_16k``, μ = 7, τ = 0.95, λ_u = 1, Adam 5e-4, batch 32,
mixup on the labelled batch, cosine annealing over 35 epochs, SpecAugment views of Table 1, whole 4-s clips; the
ablations of Tables 2-4 at 1 % labels. ``quick``: the synthetic UrbanSound8K with the mini PANN pre-trained on the
synthetic mini-AudioSet, three folds, short crops, small batches and few steps, so that the chapter runs in minutes
on a CPU.
"""

from __future__ import annotations

from typing import Any, Callable

from esclib.runner.spec import (
    ChapterSpec,
    Param,
    data_root_param,
    folds_fit,
    in_range,
    integer,
    parse_folds,
    parse_names,
)
from esclib.runner.specs.ch01_pann_transfer import PREPARE_MINI_PANN, architecture, checkpoint_name

#: kept literal so the spec imports no torch: esclib.experiments.fixmatch.ARMS / ABLATIONS / POLICIES,
#: esclib.train.fixmatch.PASS_STRUCTURES, esclib.data.splits.SELECTIONS
ARMS = ("supervised-pann", "supervised-scratch", "fixmatch-pann", "fixmatch-scratch")
ABLATIONS = ("threshold", "mixup", "optimizer", "accumulate")
POLICIES = ("rocling", "sslh")
PASSES = ("joint", "separate")
SELECTIONS = ("validation-fold", "budgeted", "last")
OPTIMIZERS = ("adam", "adamw", "sgd", "ranger")
DATASETS = ("us8k", "esc50", "esc10")


def _fraction(closed: str = "right") -> Callable[[Any], None]:
    return in_range(0, 1, closed=closed)


SPEC = ChapterSpec(
    notebook="02_fixmatch",
    title="FixMatch: pseudo-labels from a pretrained PANN",
    experiment="fixmatch",
    recipes=("esclib.experiments.fixmatch:FixMatchRecipe",),
    prepare=(PREPARE_MINI_PANN,),  # quick: the mini PANN pre-trained on the synthetic mini-AudioSet, as chapter 01
    checks=(folds_fit("folds", "ablation_folds", dataset="dataset"),),
    smoke={"folds": "1", "batch_size": 2, "upper_bound": False, "compare_passes": False, "selections": "",
           "ablations": "none"},
    params={
        "dataset": Param("single-label dataset", "us8k", "us8k", choices=DATASETS, scope="input"),
        "data_root": data_root_param(),
        "checkpoint": Param("pretrained PANN: 'mini' (the quick model pre-trained on the synthetic mini-AudioSet), "
                            "a registered name such as 'Cnn14_16k', or a checkpoint file", "mini", "Cnn14_16k",
                            check=checkpoint_name, scope="input"),
        "arch": Param("PANN architecture of a checkpoint file whose architecture cannot be inferred; None: from the "
                      "registry or the file", None, None, check=architecture, scope="input"),
        "folds": Param("test folds ('all', '1-3', '1,3', ...); validation = next fold, training = the rest",
                       "1-3", "all", parse=parse_folds, scope="grid"),
        "arms": Param("arms (comma-separated; quick: the two PANN arms, the scratch arms on request)",
                      "supervised-pann,fixmatch-pann", ",".join(ARMS), parse=parse_names(ARMS), scope="grid"),
        "upper_bound": Param("also train supervised-pann on 100 % of the labels", True, True, choices=(True, False),
                             scope="grid"),
        "labelled_fraction": Param("labelled share of the training folds (class-balanced)", 0.1, 0.1,
                                   check=_fraction()),
        "epochs": Param("epochs of cosine annealing", 10, 35, check=integer(1, 10000)),
        "steps_per_epoch": Param("optimiser steps per epoch ('pass': one pass over the unlabelled clips)", 100, None,
                                 check=integer(1, 1_000_000), none="pass"),
        "batch_size": Param("labelled clips per optimiser step (twice as many loaded with mixup)", 8, 32,
                            check=integer(1, 4096)),
        "mu": Param("unlabelled clips per labelled clip in a step (μ; quick: SSLH's 1)", 1, 7, check=integer(1, 64)),
        "threshold": Param("confidence threshold τ of the pseudo-labels (quick: the study's better 0.75, Table 3: the "
                           "small quick model seldom reaches 0.95 within its few hundred steps)", 0.75, 0.95,
                           check=_fraction("both")),
        "lambda_u": Param("weight λ_u of the unlabelled loss", 1.0, 1.0, check=in_range(0, 100)),
        "optimizer": Param("optimiser (study 000, Table 4)", "adam", "adam", choices=OPTIMIZERS),
        "lr": Param("learning rate (quick: 1e-3; at 3e-3 the validation loss of the all-label arm spiked and it "
                    "under-fitted)", 1e-3, 5e-4, check=in_range(0, 1, closed="right")),
        "mixup": Param("mixup (α = 1) on the labelled batch (quick: off; it slows fitting in a few hundred steps)",
                       False, True, choices=(True, False)),
        "accumulate": Param("micro-batches whose gradients make one step (study 000's gradient accumulation)",
                            1, 1, check=integer(1, 64)),
        "policies": Param("weak/strong views: 'rocling' (SpecAugment, study 000 Table 1) or 'sslh' (Cancès et "
                          "al.'s waveform occlusion + speed + cut-out)", "rocling", "rocling", choices=POLICIES),
        "crop_seconds": Param("seconds of audio per training clip, a random crop ('whole': whole clips); "
                              "validation and test read whole clips", 1.0, None, check=in_range(0.25, 60),
                              none="whole"),
        "views_to_crop": Param("scale the SpecAugment stripes' time widths to the crop (crop / clip length), so that "
                               "they mask the share of a crop the study's stripes mask of a 4-s clip (no effect on "
                               "whole clips)", True, True, choices=(True, False)),
        "passes": Param("FixMatch's pass structure: 'joint' (Sohn et al.'s reference: labelled, weak and strong views "
                        "in one forward pass, pseudo-labels from its weak part) or 'separate' (the weak views in a "
                        "pass of their own)", "joint", "joint", choices=PASSES),
        "selection": Param("how each run's tested model is picked: 'validation-fold' (best epoch on the labelled "
                           "validation fold, the study's 1:1:8), 'budgeted' (on a fifth of the labelled clips, held "
                           "out of training; Oliver et al. 2018) or 'last' (the final epoch)", "validation-fold",
                           "validation-fold", choices=SELECTIONS),
        "compare_passes": Param("also run fixmatch-pann with the other pass structure (the chapter's curves of mask "
                                "rate and pseudo-label accuracy under both; quick: off, on request -- inside the fold "
                                "noise there, and a fifth of the chapter's time)", False, True,
                                choices=(True, False), scope="grid"),
        "selections": Param("other selection rules to run supervised-pann and fixmatch-pann with (the selection "
                            "table, beside the final epoch every run also tests; comma-separated, 'none': none; "
                            "quick: none, its steps go to the main arms)",
                            "none", "budgeted",
                            parse=parse_names(SELECTIONS), scope="grid"),
        "ablations": Param("ablations of study 000's Tables 2-4 on fixmatch-pann (comma-separated; 'none': none; "
                           "quick: none, on request)", "none",
                           ",".join(ABLATIONS), parse=parse_names(ABLATIONS), scope="grid"),
        "ablation_fraction": Param("labelled share of the ablations (study 000's Tables 2-4: 1 %, inferred)",
                                   0.1, 0.01, check=_fraction(), scope="grid"),
        "ablation_folds": Param("test folds of the ablations", "1-3", "all", parse=parse_folds, scope="grid"),
    },
)
