"""Official folds, the random split, class-balanced labelled subsets and the leak guard, on the genuine ESC-50 and
UrbanSound8K metadata (the loaders read the tables; the split helpers never open the audio)."""

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from _reference import METADATA
from esclib.data import esc50, splits, us8k
from esclib.data.splits import LeakError, check_no_leak, fold_split, labelled_subset, random_split

#: the genuine ESC-50 / UrbanSound8K metadata files, kept in tests/reference
REFERENCE = METADATA
CROSS_FOLD_FSIDS = {"77751", "106905", "132016", "176638", "180937"}


def _genuine_metadata(tmp_path_factory, module) -> Path:
    """A dataset folder holding only the dataset's genuine metadata file, where its loader looks for it."""
    root = tmp_path_factory.mktemp(module.__name__.rsplit(".", 1)[1])
    (root / module.METADATA).parent.mkdir()
    shutil.copy(REFERENCE / module.METADATA.name, root / module.METADATA)
    return root


@pytest.fixture(scope="module")
def esc(tmp_path_factory):
    return esc50.load(_genuine_metadata(tmp_path_factory, esc50))


@pytest.fixture(scope="module")
def urban(tmp_path_factory):
    return us8k.load(_genuine_metadata(tmp_path_factory, us8k))


def _no_source_crosses(split):
    test_sources = set(split.test.table["source"])
    for part in (split.train, split.val):
        assert not test_sources & set(part.table["source"])
        assert not set(split.test.table["clip_id"]) & set(part.table["clip_id"])


def test_us8k_folds_test_k_validation_k_plus_1_training_the_rest(urban):
    for k in range(1, 11):
        split = fold_split(urban, k)
        assert (split.test.folds == k).all() and len(split.test) == (urban.folds == k).sum()
        assert split.val_fold == k % 10 + 1 and (split.val.folds == split.val_fold).all()
        assert not np.isin(split.train.folds, [k, split.val_fold]).any()
        _no_source_crosses(split)
        total = len(split.train) + len(split.val) + len(split.test) + len(split.excluded)
        assert total == len(urban)
        assert set(split.train.table["split"]) == {"train"} and set(split.test.table["split"]) == {"test"}
        assert split.kind == "official"


def test_the_five_cross_fold_us8k_recordings_never_train_against_their_own_test_slices(urban):
    split = fold_split(urban, 1)  # fold 1 holds slices of 106905, 132016, 176638 and 180937
    excluded = urban.table[urban.table["clip_id"].isin(split.excluded)]
    assert set(excluded["source"]) <= CROSS_FOLD_FSIDS
    assert {"106905", "132016", "176638", "180937"} <= set(excluded["source"])
    assert not CROSS_FOLD_FSIDS & set(split.test.table["source"]) & set(split.train.table["source"])


def test_esc50_and_esc10_folds(esc, tmp_path):
    for k in range(1, 6):
        split = fold_split(esc, k)
        assert len(split.test) == 400 and len(split.val) <= 400
        _no_source_crosses(split)
    esc10 = esc50.load_esc10(esc.root)
    split = fold_split(esc10, 3)
    assert len(split.test) == 80 and split.val_fold == 4 and len(split.train) == 240


def test_fold_arguments_are_checked(esc):
    with pytest.raises(ValueError, match="test_fold"):
        fold_split(esc, 6)
    with pytest.raises(ValueError, match="val_fold"):
        fold_split(esc, 2, val_fold=2)
    no_val = fold_split(esc, 2, val_fold=0)
    assert len(no_val.val) == 0 and len(no_val.train) + len(no_val.test) + len(no_val.excluded) == 2000
    two_folds = replace(esc.subset(esc.folds <= 2), n_folds=2)
    assert fold_split(two_folds, 1).val_fold == 0
    with pytest.raises(ValueError, match="no official folds"):
        fold_split(replace(esc, n_folds=0), 1)


@pytest.mark.parametrize("fraction", [0.1, 0.01])
def test_fraction_subsets_are_class_balanced_from_training_folds_only(urban, fraction):
    split = fold_split(urban, 4)
    labelled, unlabelled = labelled_subset(split.train, fraction=fraction, seed=0)
    counts = np.bincount(labelled.targets, minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == round(fraction * len(split.train))
    assert len(labelled) + len(unlabelled) == len(split.train)
    assert not set(labelled.table["clip_id"]) & set(unlabelled.table["clip_id"])
    assert (unlabelled.targets == -1).all() and (unlabelled.table["hidden_target"] >= 0).all()
    check_no_leak(split.test, labelled, unlabelled)


def test_per_class_subsets_equal_the_count_nest_and_follow_the_seed(esc):
    train = fold_split(esc, 1).train
    subsets = {n: labelled_subset(train, per_class=n, seed=7)[0] for n in (1, 2, 5, 10)}
    for n, labelled in subsets.items():
        assert (np.bincount(labelled.targets, minlength=50) == n).all()
    for small, large in ((1, 2), (2, 5), (5, 10)):
        assert set(subsets[small].table["clip_id"]) <= set(subsets[large].table["clip_id"])
    again = labelled_subset(train, per_class=5, seed=7)[0]
    other = labelled_subset(train, per_class=5, seed=8)[0]
    assert again.table["clip_id"].tolist() == subsets[5].table["clip_id"].tolist()
    assert other.table["clip_id"].tolist() != subsets[5].table["clip_id"].tolist()
    with pytest.raises(ValueError, match="fewer than the 40 requested"):
        labelled_subset(train, per_class=40)
    with pytest.raises(ValueError, match="exactly one"):
        labelled_subset(train, fraction=0.1, per_class=1)


def test_the_leak_guard_names_test_clips_and_shared_sources(esc):
    split = fold_split(esc, 1)
    test_clip = split.test.subset([0])
    with pytest.raises(LeakError, match=test_clip.table["clip_id"].iloc[0]):
        check_no_leak(split.test, split.train, test_clip)
    sibling = esc.table[(esc.table["source"] == "134049") & (esc.folds == 3)]  # hen in fold 2, rooster in fold 3
    assert len(sibling) == 1
    with pytest.raises(LeakError, match="134049"):
        check_no_leak(fold_split(esc, 2).test, esc.subset(sibling.index.to_numpy()))
    assert "3-134049-A-1.wav" in fold_split(esc, 2).excluded
    with pytest.raises(LeakError, match="refusing to train"):
        splits.assert_trainable(split.test)
    splits.assert_trainable(split.train)


def test_random_split_reproduces_study_002_sizes_and_is_labelled_random(esc):
    split = random_split(esc, (1280, 320, 400), seed=1337)
    assert (len(split.train), len(split.val), len(split.test)) == (1280, 320, 400)
    assert split.kind == "random" and split.seed == 1337 and split.test_fold is None
    ids = [set(part.table["clip_id"]) for part in (split.train, split.val, split.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert random_split(esc, (1280, 320, 400), seed=1337).test.table["clip_id"].tolist() == \
        split.test.table["clip_id"].tolist()
    assert random_split(esc, (1280, 320, 400), seed=1).test.table["clip_id"].tolist() != \
        split.test.table["clip_id"].tolist()
    assert len(random_split(esc, (None, 100, 16), seed=0).train) == 1884
    assert "random split" in split.describe()
    with pytest.raises(ValueError, match="do not fit"):
        random_split(esc, (2000, 1, 0), seed=0)



@pytest.mark.parametrize("chapter", ["01_pann_transfer", "02_fixmatch", "03_cae", "04_npid", "05_ssl"])
def test_every_recipe_names_itself_when_its_selection_is_unknown(chapter):
    import dataclasses

    from esclib.data.splits import SELECTIONS, check_selection
    from esclib.experiments.base import recipe_class
    from esclib.runner.spec import resolve
    from esclib.runner.specs import get_spec

    assert [check_selection(s) for s in SELECTIONS] == list(SELECTIONS)
    spec = get_spec(chapter)
    config = {**resolve(spec, "quick"), "batch_size": 32, "filters": 32, "labelled_fraction": 0.5}
    checked = 0
    for path in spec.recipes:
        cls = recipe_class(path)
        if "selection" not in {f.name for f in dataclasses.fields(cls)}:
            continue
        with pytest.raises(ValueError, match=r"selection must be one of \['validation-fold', 'budgeted', 'last'\], "
                                             r"got 'best'") as refused:
            cls.from_config({**config, "selection": "best"})
        assert cls.__name__ in str(refused.value), (path, str(refused.value))  # names the recipe
        checked += 1
    assert checked
