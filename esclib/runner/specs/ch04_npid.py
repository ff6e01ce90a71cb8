"""Parameters of chapter 04, NPID / DLS (notebooks/04_npid.ipynb).

``paper``: study 004's protocol (Hornauer et al.; book/protocols.md): ESResNet-50 with attention on ESResNet's
3-band spectrogram (44.1 kHz, n_fft 2048, hop 561, window 1654); NPID with a 128-d embedding, memory momentum 0.5,
NCE with K = 64 noise clips at T = 0.4, batch 64, 200 epochs (lemniscate's SGD where the study is silent); kNN with
K = 5 (the study) and 200 (NPID); phase 2 pooled both as the study (test folds in) and leak-free; fine-tuning of all
layers from DLS, ImageNet and scratch with ESResNet's recipe (Adam 2.5e-4, weight decay 5e-4, warm-up + x0.985 per
epoch, batch 16, 300 epochs) on ESC-10, ESC-50, UrbanSound8K and DCASE 2013, every official fold.
``quick``: the synthetic ESC-50 (ten classes), ResNet-18 on a coarse 3-band grid (22.05 kHz, 3 x 32 x 101 for 5 s),
2-s fine-tuning crops, three folds, short schedules and no phase 2, so that the chapter runs in a few minutes on a CPU.
"""

from __future__ import annotations

from typing import Any, Mapping

from esclib.runner.spec import (
    ChapterSpec,
    Param,
    data_root_param,
    in_range,
    integer,
    parse_counts,
    parse_folds,
    parse_names,
)

#: fine-tuning arms (esclib.experiments.npid.ARMS; literal so the spec imports no torch)
ARMS = ("npid", "npid-pooled", "npid-leak-free", "imagenet", "scratch")
#: datasets of study 004
DATASETS = ("esc10", "esc50", "us8k", "dcase2013")
#: how a run picks the epoch it reports (esclib.data.splits.SELECTIONS)
SELECTIONS = ("validation-fold", "budgeted", "last")
#: torchvision ResNets ESResNet is built on (esclib.models.esresnet.ARCHS)
ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def folds_in_every_dataset(params: Mapping[str, Any]) -> None:
    """The folds asked for exist in every dataset of the chapter (DCASE 2013 has 2, ESC 5, UrbanSound8K 10)."""
    from esclib.data.registry import spec as dataset_spec

    folds = params.get("folds")
    if folds in (None, "all"):
        return
    for name in params.get("datasets") or ():
        count = dataset_spec(name).n_folds
        outside = [f for f in folds if not 1 <= f <= count]
        if outside:
            raise ValueError(f"invalid value {folds!r} for parameter 'folds': fold(s) {outside} do not exist in "
                             f"{name!r} (folds 1..{count}); run that dataset with fewer folds or 'all'")


_crop = in_range(0, 30, closed="right")


SPEC = ChapterSpec(
    notebook="04_npid",
    title="Instance discrimination: NPID pre-training and fine-tuning (DLS)",
    experiment="npid",
    recipes=("esclib.experiments.npid:PretrainRecipe", "esclib.experiments.npid:FinetuneRecipe"),
    checks=(folds_in_every_dataset,),
    # smoke: one dataset and fold; its smoke world holds 40 training clips, fewer than the study's 64 noise clips
    # and its batch of 64. Phase 2 (every dataset pooled: three more worlds through ResNet-50) is left to
    # `esc run 04_npid --smoke -p phase2 True`, to keep CI's smoke of every chapter within minutes
    smoke={"datasets": "esc10", "folds": "1", "selections": "", "nce_k": 16, "npid_batch_size": 16,
           "finetune_batch_size": 4, "phase2": False},
    params={
        "esc10_root": data_root_param("ESC-10 (ESC-50's folder: ESC-10 is its subset)"),
        "esc50_root": data_root_param("ESC-50"),
        "us8k_root": data_root_param("UrbanSound8K"),
        "dcase2013_root": data_root_param("DCASE 2013 SCD"),
        "datasets": Param("datasets to pre-train on, fine-tune and test (each on its official folds)", "esc50",
                          ",".join(DATASETS), parse=parse_names(DATASETS), scope="grid"),
        "folds": Param("official test folds of every dataset ('all', '1-3', ...); validation = next fold",
                       "1-3", "all", parse=parse_folds, scope="grid"),
        "arms": Param("fine-tuning arms: npid (phase-1 DLS), npid-pooled (phase 2 as the study: test folds in the "
                      "pool), npid-leak-free (phase 2 without the test fold), imagenet (torchvision's weights, when "
                      "in the local cache), scratch", "npid,imagenet,scratch", ",".join(ARMS),
                      parse=parse_names(ARMS), scope="grid"),
        "phase2": Param("run phase 2 (NPID on every dataset pooled, as the study and leak-free)", False, True,
                        choices=(True, False), scope="grid"),
        "selection": Param("which epoch's test accuracy a run reports: best on the validation fold "
                           "('validation-fold'), best on a fifth of the training clips held out ('budgeted'), or "
                           "the last ('last'); every run also records its last and its best test epoch",
                           "validation-fold", "validation-fold", choices=SELECTIONS),
        "selections": Param("other selections the chapter runs for its selection table", "", "budgeted,last",
                            parse=parse_names(SELECTIONS), scope="grid"),
        "arch": Param("ESResNet's torchvision ResNet (the study: resnet50)", "resnet18", "resnet50", choices=ARCHS),
        "attention": Param("ESResNet's attention gates (the study's ESResNet-attention)", True, True,
                           choices=(True, False)),
        "sample_rate": Param("sample rate in Hz (ESResNet: 44100)", 22050, 44100, check=integer(8000, 192000)),
        "n_fft": Param("FFT size of the 3-band spectrogram (ESResNet: 2048; 3 bands of n_fft/6 bins)", 192, 2048,
                       check=integer(12)),
        "hop_length": Param("hop in samples (ESResNet: 561)", 1102, 561, check=integer(1)),
        "win_length": Param("Blackman-Harris window in samples (ESResNet: 1654)", 192, 1654, check=integer(2)),
        "augment": Param("ESResNet's waveform augmentation in training (time flip, speed scale, pad/crop)", True,
                         True, choices=(True, False)),
        "npid_epochs": Param("NPID pre-training epochs (the study: 200)", 6, 200, check=integer(1, 10000)),
        "npid_batch_size": Param("NPID batch size (the study: 64)", 16, 64, check=integer(1, 4096)),
        "npid_crop_seconds": Param("length of NPID's training crops in s ('whole': whole clips, as ESResNet; a 2-s "
                                   "crop gives views of one clip that share little in quick, see the chapter)", None,
                                   None, check=_crop, none="whole"),
        "low_dim": Param("NPID embedding size (the study: 128)", 128, 128, check=integer(2, 4096)),
        "nce_k": Param("NCE noise clips per instance (the study: 64; lemniscate: 4096; 0: full softmax)", 64, 64,
                       check=integer(0)),
        "temperature": Param("NCE temperature (the study: 0.4; lemniscate: 0.07)", 0.4, 0.4,
                             check=in_range(0, None, closed="neither")),
        "memory_momentum": Param("memory-bank momentum (the study: 0.5)", 0.5, 0.5, check=in_range(0, 1, closed="left")),
        "npid_lr": Param("NPID SGD learning rate (lemniscate: 0.03; the study does not say)", 0.03, 0.03,
                         check=in_range(0, 10, closed="right")),
        "npid_weight_decay": Param("NPID SGD weight decay (lemniscate: 1e-4)", 1e-4, 1e-4, check=in_range(0, 1)),
        "knn_ks": Param("neighbours of the weighted kNN (the study: 5; NPID: 200)", "5,20", "5,200",
                        parse=parse_counts),
        "knn_temperature": Param("temperature of the kNN vote (None: the NCE temperature, as lemniscate)", None, None,
                                 check=in_range(0, None, closed="neither")),
        "finetune_epochs": Param("fine-tuning epochs (ESResNet: 300; the study's Fig. 4 shows the first ones)", 12, 300,
                                 check=integer(1, 10000)),
        "finetune_batch_size": Param("fine-tuning batch size (ESResNet: 16)", 16, 16, check=integer(1, 4096)),
        "finetune_crop_seconds": Param("length of fine-tuning's training crops in s ('whole': whole clips, as "
                                       "ESResNet; testing always sees whole clips)", 2.0, None, check=_crop,
                                       none="whole"),
        "finetune_lr": Param("fine-tuning Adam learning rate (ESResNet: 2.5e-4)", 2.5e-4, 2.5e-4,
                             check=in_range(0, 1, closed="right")),
        "finetune_weight_decay": Param("fine-tuning weight decay (ESResNet: 5e-4)", 5e-4, 5e-4, check=in_range(0, 1)),
        "gamma": Param("per-epoch decay after the warm-up (ESResNet: 0.985)", 0.985, 0.985,
                       check=in_range(0, 1, closed="right")),
        "cold_epochs": Param("epochs at a tenth of the learning rate before the warm-up (ESResNet: 5)", 1, 5,
                             check=integer(0, 1000)),
        "warm_epochs": Param("epochs of linear warm-up (ESResNet: 10)", 1, 10, check=integer(1, 1000)),
        "neighbours": Param("clips whose nearest neighbours the chapter plays", 3, 3, check=integer(1, 10),
                            scope="view"),
    },
)
