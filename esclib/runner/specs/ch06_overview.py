"""Parameters of chapter 06, the overview (notebooks/06_overview.ipynb).

``paper``: issue 16's grid -- ESC-50 and UrbanSound8K on every official fold, 1, 2, 5, 10 and 20 labelled clips per
class and every label, every method of the book with its own chapter's ``paper`` recipe, model selection under the
``budgeted`` rule (validation labels come out of the budget). ``quick``: the synthetic ESC-50 only, three folds, 2
and 5 clips per class and every label, the methods that train in seconds on a CPU (the small CNN from scratch and
from the CAE, the frozen PANN with a linear or three-layer head), each with its chapter's ``quick`` recipe, so that
the chapter runs in about two minutes; the others (PANN fine-tuning and from scratch, FixMatch, chapter 4's ESResNet
from NPID, ImageNet or scratch, chapter 5's frozen self-supervised encoder with a probe or a kNN) are one parameter
away (``methods``); ImageNet runs only where torchvision's weights are in the local cache.
"""

from __future__ import annotations

from esclib.runner.spec import ChapterSpec, Param, folds_fit, parse_counts, parse_folds, parse_names

#: the overview's methods (esclib.experiments.overview.METHODS; kept literal so the spec imports no torch)
METHODS = ("cnn-scratch", "cae", "pann-scratch", "pann-freeze_l1", "pann-freeze_l3", "pann-fine-tune",
           "pann-fixmatch", "esresnet-scratch", "npid", "esresnet-imagenet", "ssl-probe", "ssl-knn")
#: chapter 5's self-supervised methods (esclib.experiments.ssl.METHOD_ARMS, literal for the same reason)
SSL_METHODS = ("simclr", "mocov2", "byol", "dino", "barlowtwins", "swav")
QUICK_METHODS = ("cnn-scratch", "cae", "pann-freeze_l1", "pann-freeze_l3")
#: model selections (esclib.data.splits.SELECTIONS, kept literal for the same reason)
SELECTIONS = ("validation-fold", "budgeted", "last")
DATASETS = ("esc50", "us8k")

SPEC = ChapterSpec(
    notebook="06_overview",
    title="Overview: which method, for how few labels?",
    experiment=None,
    after=("01_pann_transfer", "02_fixmatch", "03_cae", "04_npid", "05_ssl"),  # their pre-trainings and runs
    checks=(folds_fit("folds", n_folds=5),),
    smoke={"datasets": "esc50", "folds": "1", "budgets": "2", "methods": ",".join(QUICK_METHODS)},
    params={
        "datasets": Param("datasets (comma-separated; each on its official folds)", "esc50", ",".join(DATASETS),
                          parse=parse_names(DATASETS), scope="grid"),
        "folds": Param("test folds of every dataset ('all', '1-3', '1,3', ...); validation fold k+1 left out, the "
                       "labelled clips come from the other folds", "1-3", "all", parse=parse_folds, scope="grid"),
        "budgets": Param("labelled clips per class (class-balanced, nested: each budget's clips are in the next)",
                         "2,5", "1,2,5,10,20", parse=parse_counts, scope="grid"),
        "every_label": Param("also run every method on every label of the training folds", True, True,
                             choices=(True, False), scope="grid"),
        "methods": Param("methods (comma-separated), each run by its own chapter's experiment with that chapter's "
                         "recipe for the profile", ",".join(QUICK_METHODS), ",".join(METHODS),
                         parse=parse_names(METHODS), scope="grid"),
        "ssl_method": Param("chapter 5's method whose frozen encoder ssl-probe and ssl-knn evaluate (pre-trained on "
                            "each split's training folds, labels removed; default: study 001's best, SimCLR)",
                            "simclr", "simclr", choices=SSL_METHODS, scope="grid"),
        "selection": Param("how every method picks its model: 'budgeted' (a fifth of each budget held out for "
                           "validation; Oliver et al. 2018), 'validation-fold' (the labelled fold k+1: more labels "
                           "than the budget) or 'last' (the last epoch)", "budgeted", "budgeted",
                           choices=SELECTIONS, scope="grid"),
    },
)
