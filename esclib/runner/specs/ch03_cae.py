"""Parameters of chapter 03, convolutional-autoencoder pre-training (notebooks/03_cae.ipynb).

``paper``: study 002's protocol (Jensen & Pethick, DTU; book/protocols.md): CAE pre-training on 50,000 ESC-US
clips (its folders 01-05), fine-tuning on ESC-50, the 1x28x36 log-mel, ``(64)5c-2p-(64)3c-2p-(64)3c-2p``, Adam 1e-3,
early stopping with patience 5 (at most 50 pre-training and 150 fine-tuning epochs), batch sizes 16 / 32 / 64;
reported on the study's random split (seed 1337, 1,280 / 320 / 400, made as its code made it) and on the 5
official folds; the model tested is the one its code tested (early stopping on the validation clips, the weights of
the epoch it stopped at). ``quick``: the synthetic ESC-US (600 clips) and ESC-50 (10 classes), f = 16, the study's
best batch size (32) only, the 5 folds and shorter epoch budgets, so that the chapter runs in about two minutes on a
CPU; ``batch_sizes=16,32`` adds Table 1's other row.
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
    parse_fractions,
    parse_names,
)

#: arms of the results store (esclib.experiments.cae.ARMS; kept literal so the spec imports no torch)
ARMS = ("supervised", "cae-unpool", "cae-upsample")
#: activation after the classifier's Dense(128): none, as the study's code, or ReLU, as its text
HIDDEN_ACTIVATIONS = ("linear", "relu")
#: how a run picks its model (esclib.data.splits.SELECTIONS; kept literal so the spec imports no torch)
SELECTIONS = ("validation-fold", "budgeted", "last")

SPEC = ChapterSpec(
    notebook="03_cae",
    title="Convolutional autoencoders: pre-training on unlabelled sounds",
    experiment="cae",
    recipes=("esclib.experiments.cae:PretrainRecipe", "esclib.experiments.cae:FinetuneRecipe"),
    checks=(folds_fit("folds", n_folds=5),),
    smoke={"pool_size": None, "pool_sizes": "10", "batch_sizes": "32", "folds": "1", "random_split": False,
           "labelled_fractions": "0.5", "selection_fractions": "1.0", "examples": 4},
    params={
        "esc50_root": data_root_param("ESC-50"),
        "escus_root": data_root_param("ESC-US"),
        "pool_size": Param("ESC-US clips for pre-training, the first of the study's file order ('all': every clip; "
                           "the study: 50,000, its folders 01-05)",
                           None, 50_000, check=integer(20), scope="input", none="all"),
        "arms": Param("arms: supervised (random init), cae-unpool / cae-upsample (CAE pre-training with unpooling "
                      "/ upsampling)", ",".join(ARMS), ",".join(ARMS), parse=parse_names(ARMS), scope="grid"),
        "batch_sizes": Param("batch sizes of the grid (pre-training and fine-tuning; Table 1 of the study)",
                             "32", "16,32,64", parse=parse_counts, scope="grid"),
        "filters": Param("filters f per convolution of (f)5c-2p-(f)3c-2p-(f)3c-2p (the study's grid: 16,32,64)",
                         "16", "64", parse=parse_counts, scope="grid"),
        "random_split": Param("report on the study's random split (seed 1337, 64/16/20 %: 1,280/320/400 clips)",
                              True, True, choices=(True, False), scope="grid"),
        "folds": Param("official test folds ('all', '1-2', '1,3', ...); validation = next fold, training = the rest",
                       "all", "all", parse=parse_folds, scope="grid"),
        "labelled_fractions": Param("fractions of the training clips for the labelled-data curve (class-balanced; "
                                    "all clips are always run)", "0.25,0.5", "0.1,0.25,0.5", parse=parse_fractions,
                                    scope="grid"),
        "selection": Param("which clips pick the model: 'validation-fold' (the split's labelled validation clips, as "
                           "the study), 'budgeted' (a fifth of the label budget, held out), 'last' (none: the last "
                           "epoch of finetune_epochs)", "validation-fold", "validation-fold", choices=SELECTIONS),
        "restore_best": Param("with a validation set, test the best epoch's weights (True) or those of the epoch "
                              "early stopping stopped at, as the study's code (False)", False, False,
                              choices=(True, False)),
        "selection_fractions": Param("labelled fractions at which the chapter compares the three selections "
                                     "(official folds, curve_batch_size)", "0.25", "0.1,1.0", parse=parse_fractions,
                                     scope="grid"),
        "curve_batch_size": Param("batch size of the labelled-data curve (the study's best: 32)", 32, 32,
                                  check=integer(1, 4096), scope="grid"),
        "pretrain_epochs": Param("most pre-training epochs (early stopping on the validation loss)", 15, 50,
                                 check=integer(1, 10000)),
        "finetune_epochs": Param("most fine-tuning epochs (early stopping on the validation accuracy; the whole schedule "
                                 "under selection='last')", 30, 150,
                                 check=integer(1, 10000)),
        "patience": Param("epochs without improvement before early stopping (the study: 5)", 5, 5,
                          check=integer(1, 10000)),
        "lr": Param("Adam learning rate (the study: 1e-3)", 1e-3, 1e-3, check=in_range(0, 1, closed="right")),
        "hidden_activation": Param("activation after the classifier's Dense(128): 'linear' as the study's code, "
                                   "'relu' as its text", "linear", "linear", choices=HIDDEN_ACTIVATIONS),
        "n_mels": Param("mel bands of the input (the study: 28)", 28, 28, check=integer(8, 512)),
        "n_fft": Param("FFT window in samples at 44.1 kHz (the study: 12288)", 12288, 12288, check=integer(16)),
        "hop_length": Param("hop in samples (the study: 6144, giving 36 frames)", 6144, 6144, check=integer(1)),
        "pool_sizes": Param("smaller ESC-US pools for the pre-training ablation (cae-unpool, probed on the folds; "
                            "the chapter's own pool is added)", "150", "5000,20000", parse=parse_counts,
                            scope="grid"),
        "examples": Param("held-out ESC-US clips shown in the reconstruction figure", 6, 8, check=integer(1, 16),
                          scope="view"),
    },
)
