"""Parameters of chapter 05, the self-supervised comparison (notebooks/05_ssl.ipynb).

``paper``: study 001's setting as far as it is stated (QUACLRS slides; book/protocols.md): UrbanSound8K's ten
official folds and ten classes (the study's 13-class extension cannot be rebuilt), its 4-s, 128-band log-mel at
48 kHz resized to 224 x 224, ResNet-18, all six methods with their published heads, AdamW, each method pre-trained
on each split's training folds; every arm evaluated by the same linear probe and kNN. What the study leaves unsaid
(epochs, batch, learning rate, the evaluation) is set once for every method. ``quick``: the synthetic UrbanSound8K,
a 32 x 32 input, heads scaled by 1/8, three folds and one shared pre-training per method on the folds no evaluated
split tests or validates on, few epochs, and the methods that fit the book's time budget (``arms`` adds the
others), so that the chapter runs in about four minutes on two CPU cores.
"""

from __future__ import annotations

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

#: kept literal so the spec imports no torch: esclib.experiments.ssl.ARMS / POOLS, esclib.models.backbones.BACKBONES,
#: esclib.augment.views.VIEW_POLICIES, esclib.data.splits.SELECTIONS
ARMS = ("random", "simclr", "mocov2", "byol", "dino", "barlowtwins", "swav", "supervised-scratch")
POOLS = ("shared", "per-fold")
BACKBONES = ("alexnet", "convnext_tiny", "efficientnet_b0", "inception_v3", "mobilenet_v2", "resnet18", "resnet50",
             "vgg16")
VIEW_POLICIES = ("byola", "quaclrs_original", "quaclrs_time_stretch", "quaclrs_pitch_shift", "quaclrs_spec_augment",
                 "quaclrs_patch_augment", "quaclrs_noise")
SELECTIONS = ("validation-fold", "budgeted", "last")

SPEC = ChapterSpec(
    notebook="05_ssl",
    title="Self-supervised pre-training: six methods, one protocol",
    experiment="ssl",
    recipes=("esclib.experiments.ssl:PretrainRecipe", "esclib.experiments.ssl:EvalRecipe"),
    checks=(folds_fit("folds", n_folds=10),),
    smoke={"folds": "1", "batch_size": 16, "arms": "random,simclr,dino,supervised-scratch", "ssl_epochs": 1, "warmup_epochs": 0,
           "supervised_epochs": 1, "probe_epochs": 2, "probe_budgets": "1", "selection_arms": "random",
           "queue_size": 16, "proj_dims": "64", "moco_queues": "", "view_policies": ""},
    params={
        "data_root": data_root_param("UrbanSound8K"),
        "arms": Param("arms: random (the initial backbone, frozen), the six methods (pre-trained without labels, "
                      "frozen), supervised-scratch (trained with labels: the supervised reference)",
                      "random,simclr,byol,dino,supervised-scratch", ",".join(ARMS), parse=parse_names(ARMS),
                      scope="grid"),
        "folds": Param("official test folds ('all', '1-3', '1,3', ...); validation = next fold, training = the rest",
                       "1-3", "all", parse=parse_folds, scope="grid"),
        "pretraining_pool": Param("what the methods pre-train on: 'shared' (one run per method on the clips every "
                                  "evaluated split trains on: no test or validation fold of any) or 'per-fold' "
                                  "(each split's training folds)", "shared", "per-fold", choices=POOLS,
                                  scope="grid"),
        "backbone": Param("torchvision backbone (one input channel, random weights)", "resnet18", "resnet18",
                          choices=BACKBONES),
        "input_frames": Param("backbone input height: the log-mel's frames are resized to it (the study: 224)", 32,
                              224, check=integer(8, 1024)),
        "input_bins": Param("backbone input width: the 128 mel bands are resized to it (the study: 224)", 32, 224,
                            check=integer(8, 1024)),
        "view_policy": Param("how the two views are made: 'byola' (BYOL-A's mixup + random resize crop) or one of "
                             "the study's augmentations 'quaclrs_*'", "byola", "byola", choices=VIEW_POLICIES),
        "ssl_epochs": Param("pre-training epochs, the same for every method", 12, 100, check=integer(1, 10000)),
        "batch_size": Param("batch (clips; two views each), the same for every method and the supervised baseline",
                            64, 256, check=integer(2, 8192)),
        "lr": Param("AdamW learning rate (warm-up then cosine), every method", 1e-3, 1e-3,
                    check=in_range(0, 1, closed="right")),
        "weight_decay": Param("AdamW decoupled weight decay, every method", 1e-4, 1e-4, check=in_range(0, 1)),
        "warmup_epochs": Param("linear warm-up epochs before the cosine decay", 2, 10, check=integer(0, 10000)),
        "head_scale": Param("factor on the published widths of the methods' wide heads (hidden layers, DINO's "
                            "output, Barlow Twins' projector, SwAV's prototypes), one for all", 0.125, 1.0,
                            check=in_range(0, 1, closed="right")),
        "queue_size": Param("MoCo's and SwAV's queue (the study: 4,096 / 8,192; below the training clips)", 256, 4096,
                            check=integer(1)),
        "simclr_proj_dim": Param("SimCLR's projection width (the study's ablation: 64 / 128 / 256)", 128, 128,
                                 check=integer(1)),
        "probe_epochs": Param("most linear-probe epochs (early stopping after 20 without gain when a validation set "
                              "picks the model; the whole schedule under selection='last')", 200, 200,
                              check=integer(1, 100000)),
        "probe_budgets": Param("labels per class of the probe's label-efficiency curve (all labels are always run)",
                               "1,5,10", "1,5,10", parse=parse_counts),
        "knn_k": Param("neighbours of the weighted kNN (solo-learn: 20)", 20, 20, check=integer(1)),
        "knn_temperature": Param("temperature of the kNN's exp(similarity / T) weights (solo-learn: 0.07)", 0.07, 0.07,
                                 check=in_range(0, None, closed="neither")),
        "selection": Param("which clips pick the probe's and the supervised model's epoch: 'validation-fold', "
                           "'budgeted' (a fifth of the training labels held out), 'last' (the fixed schedule)",
                           "validation-fold", "validation-fold", choices=SELECTIONS),
        "supervised_epochs": Param("epochs of the supervised from-scratch baseline (early stopping under "
                                   "selection)", 12, 100, check=integer(1, 10000)),
        "selection_arms": Param("arms run under all three selections for the selection table", "random,simclr",
                                "random,simclr,supervised-scratch", parse=parse_names(ARMS), scope="grid"),
        "proj_dims": Param("SimCLR projection widths of the study's ablation (empty: not run)", "", "64,128,256",
                           parse=parse_counts, scope="grid"),
        "moco_queues": Param("MoCo v2 queue lengths of the study's ablation (empty: not run)", "", "4096,8192",
                             parse=parse_counts, scope="grid"),
        "view_policies": Param("view policies of the augmentation ablation, SimCLR (empty: not run)", "",
                               ",".join(VIEW_POLICIES), parse=parse_names(VIEW_POLICIES), scope="grid"),
        "examples": Param("clips shown with their two views", 3, 4, check=integer(1, 8), scope="view"),
    },
)
