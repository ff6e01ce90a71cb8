"""Parameters of chapter 00, the data tour (notebooks/00_data.ipynb)."""

from esclib.runner.spec import ChapterSpec, Param, data_root_param, integer

SPEC = ChapterSpec(
    notebook="00_data",
    title="The data: datasets, folds, synthetic worlds, features and augmentations",
    experiment=None,
    params={
        "dataset": Param("dataset to tour (single-label, with official folds)", "esc50", "esc50",
                         choices=("esc50", "esc10", "us8k", "dcase2013"), scope="input"),
        "data_root": data_root_param(),
        "examples": Param("clips shown and played per class", 2, 4, check=integer(1, 20), scope="view"),
    },
)
