"""The studies' published numbers, keyed by (experiment, arm, metric) and the setting they were measured in.

Every number is copied from the studies and the reference implementations' published results (the book's appendix
*Protocols and decisions*, ``book/protocols.md``, says where each comes from and what its protocol leaves open); each
carries its source table. Values are fractions (0-1), the unit of the results store; error rates are converted to
accuracy (1 - error). Results tables show them *beside* ours (columns ``study_value``, ``study_source``), never as
ours.

Experiments, arms and the setting keys a chapter must use for its runs to be matched:

``pann_transfer`` (chapter 01, study 003, Kong et al. 2020)
    arms ``scratch``, ``fine-tune``, ``freeze_l1`` (frozen base + 1 linear layer), ``freeze_l3`` (frozen base +
    3 fully connected layers); setting keys ``dataset``, ``fold``.
``fixmatch`` (chapter 02, study 000, ROCLING 2021)
    arms ``supervised-pann`` / ``supervised-scratch`` (CNN14-16k trained on the labelled subset only, from the
    AudioSet checkpoint / from random weights) and ``fixmatch-pann`` / ``fixmatch-scratch`` (the same with FixMatch
    on the unlabelled rest); the fully supervised upper bound is ``supervised-pann`` with ``labelled_fraction=1.0``.
    Setting keys ``dataset``, ``fold``, ``labelled_fraction`` (fraction of the training folds) or
    ``labels_per_class``, ``threshold`` (FixMatch τ), ``batch_size``, ``optimizer`` (``adam`` / ``sgd`` /
    ``ranger``), ``mixup`` (bool), ``grad_accum`` (bool).
``cae`` (chapter 03, study 002, DTU)
    arms ``supervised`` (random init), ``cae-unpool`` (CAE pre-training with max-pool switches),
    ``cae-upsample`` (CAE pre-training with plain upsampling); setting keys ``dataset``, ``split`` (``random``: the
    study's seed-1337 1280/320/400 split; ``folds``: the official folds), ``fold``, ``batch_size``.
``npid`` (study 004, DLS)
    arms ``npid`` (NPID pre-trained then fine-tuned), ``scratch``, ``imagenet`` (ImageNet-initialised), ``npid-knn``
    (weighted kNN on the NPID embedding); setting keys ``dataset``, ``fold``. Study 004 gives figures only, so the
    registry holds ESResNet's published accuracies (its ImageNet-initialised backbone) as anchors and the study's
    claims read off its Fig. 4 as :data:`STUDY_CLAIMS` (:func:`study_claims`).
``ssl`` (study 001, QUACLRS)
    arms ``simclr``, ``mocov2``, ``moco``, ``byol``, ``swav``, ``dino``, ``barlowtwins`` (pre-training + evaluation),
    ``supervised-imagenet``, ``linear-imagenet``, ``supervised-scratch``; setting keys ``dataset``, ``backbone``,
    ``fold``.

A study value applies to a run group when every item of its ``setting`` equals the group's; the most specific
matching value wins, and the study's own number wins over anchors from other work (``primary``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pandas as pd


@dataclass(frozen=True)
class Study:
    """A published source of numbers: the study's id (``"000"`` ... ``"004"`` for the seeds), its table, and the
    protocol its numbers were measured under (shown beside every number; book/protocols.md)."""

    id: str
    source: str
    protocol: str = ""


@dataclass(frozen=True)
class StudyValue:
    """One published number: what it measures, in which setting, and where it was printed."""

    experiment: str
    arm: str
    metric: str
    value: float
    study: Study
    setting: Mapping[str, object] = field(default_factory=dict)
    note: str = ""
    primary: bool = True

    def matches(self, experiment: str, arm: str, metric: str, setting: Mapping[str, object]) -> bool:
        """Whether this number applies to our runs of (experiment, arm, metric) in ``setting``."""
        return (
            (self.experiment, self.arm, self.metric) == (experiment, arm, metric)
            and all(k in setting and setting[k] == v for k, v in self.setting.items())
        )


S003 = Study("003", "Kong et al. 2020 (PANNs), Table IX",
             "ESC-50 official 5-fold CV (train on 4 folds), AudioSet-pretrained CNN14 at 32 kHz, 5-s clips")
_P000 = "UrbanSound8K 10-fold CV (test k, validation k+1), CNN14-16k, 16 kHz"
S000_T2 = Study("000", "ROCLING 2021, Table 2", f"{_P000}; label fraction inferred as 1 %")
S000_T3 = Study("000", "ROCLING 2021, Table 3", f"{_P000}; label fraction inferred as 1 %")
S000_T4 = Study("000", "ROCLING 2021, Table 4", f"{_P000}; label fraction inferred as 1 %")
S000_T5 = Study("000", "ROCLING 2021, Table 5", _P000)
_P002 = "one random split of ESC-50 (seed 1337; 1,280 / 320 / 400 clips), 1 x 28 x 36 log-mel, no CV"
S002_T1 = Study("002", "DTU CAE (study 002), Table 1", _P002)
S002_T2 = Study("002", "DTU CAE (study 002), Table 2", _P002)
S002_TEXT = Study("002", "DTU CAE (study 002), Sec. 4 text", _P002)
_P001 = "13-class extended UrbanSound8K (not rebuildable), 224 x 224 mel images"
S001_SSL = Study("001", "QUACLRS slides (study 001), SSL 1-fold-1-epoch table",
                 f"{_P001}; evaluation not stated ('1-fold-1-epoch')")
S001_FT = Study("001", "QUACLRS slides (study 001), pretrained full fine-tuning table", f"{_P001}; 10-fold CV")
S001_T5 = Study("001", "QUACLRS slides (study 001), Table 5", f"{_P001}; 10-fold CV, linear probe")
S001_T9 = Study("001", "QUACLRS slides (study 001), Table 9", f"{_P001}; 10-fold CV, from scratch")
USB = Study("USB", "Wang et al. 2022 (USB), results/usb_audio.csv",
            "one split (US8K folds 1-8 / 9 / 10; ESC-50 folds 1-3 / 4 / 5), HuBERT-base, best test error of 3 seeds")
CANCES_V1 = Study("Cancès", "Cancès et al. 2021, arXiv v1, as quoted in ROCLING 2021 Table 5",
                  "WRN-28-2 from scratch, UrbanSound8K 10-fold CV")
CANCES = Study("Cancès", "Cancès, Labbé, Pellegrini 2022, EURASIP JASMP abstract",
               "WRN-28-2 from scratch, 10-fold CV")
ESRESNET = Study("ESResNet", "Guzhov et al. 2021 (ESResNet)",
                 "ImageNet-initialised ESResNet, official folds, 300 epochs")

S004_FIG4 = Study("004", "Hornauer et al. (DLS), Fig. 4, read off the figure (approximate)",
                  "phase-2 pooled pre-training (test folds included), fine-tuning all layers, mean ± std over the "
                  "official folds, every epoch's test accuracy (no model selection)")

#: label-fraction caveat of study 000's Tables 2-4 (book/protocols.md, study 000)
_ONE_PERCENT = "label fraction of Tables 2-4 inferred as 1 % (text lost)"
_TABLE3 = "row label lost; inferred from the caption (τ = 0.75, batch 32)"


def _acc_auc(experiment: str, arm: str, acc: float, auc: float | None, study: Study, setting: dict,
             note: str = "", primary: bool = True) -> list[StudyValue]:
    values = [StudyValue(experiment, arm, "accuracy", acc, study, setting, note, primary)]
    if auc is not None:
        values.append(StudyValue(experiment, arm, "auc", auc, study, setting, note, primary))
    return values


def _fixmatch() -> list[StudyValue]:
    us8k = {"dataset": "us8k"}
    p10, p1, p100 = ({**us8k, "labelled_fraction": f} for f in (0.1, 0.01, 1.0))
    t3 = {**p1, "threshold": 0.75}
    t4 = {**t3, "batch_size": 32}
    rows = [
        ("supervised-scratch", 0.6983, 0.9440, S000_T5, p10, ""),
        ("supervised-pann", 0.8168, 0.9797, S000_T5, p10, ""),
        ("fixmatch-scratch", 0.7942, 0.9760, S000_T5, p10, ""),
        ("fixmatch-pann", 0.8407, 0.9835, S000_T5, p10, ""),
        ("supervised-pann", 0.9549, 0.9983, S000_T5, p100, ""),
        ("supervised-scratch", 0.3955, 0.8400, S000_T2, p1, _ONE_PERCENT),
        ("supervised-pann", 0.7455, 0.9554, S000_T2, p1, _ONE_PERCENT),
        ("fixmatch-pann", 0.7523, 0.9328, S000_T2, p1, _ONE_PERCENT),
        ("fixmatch-pann", 0.7391, 0.9260, S000_T2, {**p1, "mixup": False}, _ONE_PERCENT),
        ("fixmatch-pann", 0.7544, 0.9179, S000_T3, t3, f"{_TABLE3}; {_ONE_PERCENT}"),
        ("fixmatch-pann", 0.7966, 0.9494, S000_T3, t4, f"{_TABLE3}; {_ONE_PERCENT}"),
        ("fixmatch-pann", 0.7841, 0.9377, S000_T3, {**t3, "grad_accum": True}, f"{_TABLE3}; {_ONE_PERCENT}"),
        ("fixmatch-pann", 0.7129, 0.9486, S000_T4, {**t4, "optimizer": "sgd"}, _ONE_PERCENT),
        ("fixmatch-pann", 0.7966, 0.9494, S000_T4, {**t4, "optimizer": "adam"}, _ONE_PERCENT),
        ("fixmatch-pann", 0.7517, 0.9454, S000_T4, {**t4, "optimizer": "ranger"}, _ONE_PERCENT),
    ]
    values = [v for arm, acc, auc, study, setting, note in rows
              for v in _acc_auc("fixmatch", arm, acc, auc, study, setting, note)]
    anchors = [
        ("supervised-scratch", 0.7625, CANCES_V1, p10, ""),
        ("supervised-scratch", 0.8204, CANCES_V1, p100, ""),
        ("fixmatch-scratch", 0.8173, CANCES_V1, p10, ""),
        ("supervised-scratch", 1 - 0.2329, CANCES, p100, "error rate 23.29 %"),
        ("fixmatch-scratch", 1 - 0.1333, CANCES, {"dataset": "esc10", "labelled_fraction": 0.1}, "error 13.33 %"),
    ]
    usb = [  # (arm, dataset, labels per class, error rate %)
        ("supervised-pann", "us8k", 10, 42.65), ("supervised-pann", "us8k", 40, 27.6),
        ("supervised-pann", "esc50", 5, 49.83), ("supervised-pann", "esc50", 10, 38.75),
        ("fixmatch-pann", "us8k", 10, 40.02), ("fixmatch-pann", "us8k", 40, 20.83),
        ("fixmatch-pann", "esc50", 5, 43.58), ("fixmatch-pann", "esc50", 10, 32.0),
    ]
    anchors += [(arm, round(1 - err / 100, 4), USB, {"dataset": ds, "labels_per_class": n}, f"error rate {err} %")
                for arm, ds, n, err in usb]
    anchors += [("supervised-pann", round(1 - err / 100, 4), USB, {"dataset": ds, "labelled_fraction": 1.0},
                 f"fully supervised, error rate {err} %") for ds, err in (("us8k", 15.93), ("esc50", 25.0))]
    return values + [StudyValue("fixmatch", arm, "accuracy", acc, study, setting, note, primary=False)
                     for arm, acc, study, setting, note in anchors]


def _pann_transfer() -> list[StudyValue]:
    esc50 = {"dataset": "esc50"}
    table = {"scratch": 0.833, "fine-tune": 0.947, "freeze_l1": 0.908, "freeze_l3": 0.918}
    note = "the text swaps Freeze_L1 / Freeze_L3 (0.918 / 0.908); the table is used"
    return [StudyValue("pann_transfer", arm, "accuracy", acc, S003, esc50, note if "freeze" in arm else "")
            for arm, acc in table.items()]


def _cae() -> list[StudyValue]:
    split = {"dataset": "esc50", "split": "random", "labelled_fraction": 1.0}
    note = "single random split (seed 1337), no cross-validation; all 1,280 training labels"
    rows = [("supervised", 16, 0.414), ("cae-unpool", 16, 0.502), ("supervised", 32, 0.492),
            ("cae-unpool", 32, 0.507), ("supervised", 64, 0.474)]
    values = [StudyValue("cae", arm, "accuracy", acc, S002_T1, {**split, "batch_size": b}, note)
              for arm, b, acc in rows]
    values.append(StudyValue("cae", "cae-upsample", "accuracy", 0.018, S002_TEXT, split,
                             "after 7 pre-training + 29 classification epochs; batch size not given"))
    values += [StudyValue("cae", arm, "accuracy", acc, S002_T2, split, note, primary=False)
               for arm, acc in (("random-forest", 0.440), ("piczak-cnn", 0.655), ("cae-unpool", 0.507))]
    return values


def _npid() -> list[StudyValue]:
    note = "ESResNet's own recipe (300 epochs); study 004 reports curves only"
    return [StudyValue("npid", "imagenet", "accuracy", acc, ESRESNET, {"dataset": ds}, note, primary=False)
            for ds, acc in (("esc10", 0.970), ("esc50", 0.915), ("us8k", 0.842))]


def _ssl() -> list[StudyValue]:
    note = "13-class extended UrbanSound8K; evaluation protocol not stated"
    ssl = {"simclr": (0.65, 0.64), "mocov2": (0.62, 0.62), "moco": (0.60, 0.59), "byol": (0.46, 0.40),
           "swav": (0.39, 0.33), "dino": (0.27, 0.24), "barlowtwins": (0.08, 0.09)}
    resnet18 = {"backbone": "resnet18"}
    values = [StudyValue("ssl", arm, metric, v, S001_SSL, resnet18, note)
              for arm, (acc, f1) in ssl.items() for metric, v in (("accuracy", acc), ("macro_f1", f1))]
    values += [StudyValue("ssl", arm, "accuracy", acc, study, resnet18, note)
               for arm, acc, study in (("supervised-imagenet", 0.7933, S001_FT), ("linear-imagenet", 0.7102, S001_T5),
                                       ("supervised-scratch", 0.8249, S001_T9))]
    return values


@dataclass(frozen=True)
class StudyClaim:
    """A published result that is a shape, not a number (a curve read off a figure): what it claims, in which
    setting, from which figure."""

    experiment: str
    claim: str
    study: Study
    setting: Mapping[str, object] = field(default_factory=dict)


#: the published results that are claims about curves (study 004 gives figures only, no table)
STUDY_CLAIMS: tuple[StudyClaim, ...] = tuple(
    StudyClaim("npid", claim, S004_FIG4, {"dataset": dataset}) for dataset, claim in (
        ("esc10", "DLS ≈ 80 % within the first 3 epochs; scratch below 40 %; DLS ≥ ImageNet in epochs 1-3"),
        ("esc50", "DLS above 60 % within 15 epochs; beats scratch for the first 18 epochs"),
        ("us8k", "DLS ≈ ImageNet; beats scratch for the first 5-6 epochs"),
        ("dcase2013", "DLS best for 11 epochs, then all arms toward ~50 %")))


def study_claims(experiment: str) -> pd.DataFrame:
    """The published claims read off a study's figures for ``experiment``, with their setting, source and
    protocol (empty when the study gives numbers)."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; expected one of {EXPERIMENTS}")
    return pd.DataFrame([{**c.setting, "claim": c.claim, "source": c.study.source, "protocol": c.study.protocol}
                         for c in STUDY_CLAIMS if c.experiment == experiment])


#: every published number, in the order of the chapters
STUDY_VALUES: tuple[StudyValue, ...] = tuple(_pann_transfer() + _fixmatch() + _cae() + _npid() + _ssl())

#: experiment names, in book order
EXPERIMENTS: tuple[str, ...] = ("pann_transfer", "fixmatch", "cae", "npid", "ssl")


def study_values(experiment: str, arm: str, metric: str, setting: Mapping[str, object]) -> list[StudyValue]:
    """The published numbers that apply to our runs of (experiment, arm, metric) in ``setting``, best first.

    Ordered by: the study's own numbers before anchors from other work, then the most specific setting.
    """
    found = [v for v in STUDY_VALUES if v.matches(experiment, arm, metric, setting)]
    return sorted(found, key=lambda v: (not v.primary, -len(v.setting)))


def study_value(experiment: str, arm: str, metric: str, setting: Mapping[str, object]) -> StudyValue | None:
    """The one published number shown beside ours in results tables (see :func:`study_values`), or None."""
    found = study_values(experiment, arm, metric, setting)
    return found[0] if found else None


def study_table(experiment: str | None = None) -> pd.DataFrame:
    """Every registered number (optionally of one experiment) as a table, with its setting, source, protocol and
    note."""
    rows = [
        {"experiment": v.experiment, "arm": v.arm, "metric": v.metric, "value": v.value,
         "setting": ", ".join(f"{k}={s}" for k, s in v.setting.items()), "study": v.study.id,
         "source": v.study.source, "protocol": v.study.protocol, "note": v.note, "primary": v.primary}
        for v in STUDY_VALUES if experiment in (None, v.experiment)
    ]
    if experiment is not None and experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; expected one of {EXPERIMENTS}")
    return pd.DataFrame(rows)
