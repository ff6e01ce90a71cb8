"""Study 004's phase-2 pool (chapter 04): ESC-10 counted once, the study's transductive pool and the leak-free one."""

import pandas as pd
import pytest

from esclib.data.clips import ClipSet
from esclib.data.pooling import describe_pool, pool_datasets
from esclib.data.splits import LeakError, check_no_leak


def _clipset(name, rows, n_folds, classes=("a", "b")):
    table = pd.DataFrame(rows, columns=["clip_id", "path", "fold", "target", "category", "source"])
    return ClipSet(name, "/data", classes, n_folds, 5.0, table)


@pytest.fixture
def datasets():
    """ESC-50 (5 folds, 2 clips each; the first of each fold is also ESC-10), US8K (10 folds; fsID 500 also cut
    into fold 3 and fold 7), DCASE 2013 (2 folds)."""
    esc50 = _clipset("esc50", [(f"{f}-{k}.wav", f"/esc/{f}-{k}.wav", f, k, "ab"[k], f"src{f}{k}")
                               for f in range(1, 6) for k in range(2)], 5)
    esc10 = esc50.subset(esc50.table["clip_id"].str.endswith("-0.wav").to_numpy())
    esc10 = ClipSet("esc10", esc10.root, esc10.classes, 5, 5.0, esc10.table)
    us8k = _clipset("us8k", [(f"u{f}.wav", f"/us/u{f}.wav", f, f % 2, "ab"[f % 2], "500" if f in (3, 7) else f"fs{f}")
                             for f in range(1, 11)], 10)
    dcase = _clipset("dcase2013", [(f"d{f}.wav", f"/dc/d{f}.wav", f, 0, "a", f"set{f}/bus01") for f in (1, 2)], 2)
    return esc50, esc10, us8k, dcase


def test_the_study_pool_holds_every_clip_and_esc10_once(datasets):
    esc50, esc10, us8k, dcase = datasets
    pool = pool_datasets([esc50, esc10, us8k, dcase])
    assert len(pool) == 10 + 10 + 2  # ESC-10's 5 clips are ESC-50's
    assert pool.table["path"].is_unique and (pool.targets == -1).all()
    twice = pool_datasets([esc50, esc10, us8k, dcase], deduplicate=False)
    assert len(twice) == 27 and twice.table["path"].duplicated().sum() == 5  # the study's count
    counts = describe_pool(pool)
    assert counts.loc["esc50", "total"] == 10 and "esc10" not in counts.index


def test_the_leak_free_pool_holds_no_test_fold_clip_nor_its_sources(datasets):
    esc50, esc10, us8k, dcase = datasets
    test_folds = {"esc50": 1, "esc10": 2, "us8k": 3, "dcase2013": 1}
    pool = pool_datasets([esc50, esc10, us8k, dcase], held_out={k: [v] for k, v in test_folds.items()})
    for clips in (esc50, esc10, us8k, dcase):
        test = clips.subset(clips.folds == test_folds[clips.name])
        check_no_leak(test, pool)  # neither a test file nor a clip of a test clip's source recording
    paths = set(pool.table["path"])
    assert "/esc/2-0.wav" not in paths and "/esc/2-1.wav" in paths  # ESC-10's test clip leaves ESC-50 too
    assert "/us/u7.wav" not in paths  # fsID 500 is cut into the test fold 3
    assert len(pool) == 10 - 2 - 1 + 10 - 2 + 1
    with pytest.raises(LeakError):
        check_no_leak(esc50.subset(esc50.folds == 1), pool_datasets([esc50, us8k]))


def test_bad_pools_are_named(datasets):
    esc50, esc10, us8k, dcase = datasets
    with pytest.raises(ValueError, match="held_out names"):
        pool_datasets([esc50], held_out={"us8k": [1]})
    with pytest.raises(ValueError, match="each dataset once"):
        pool_datasets([esc50, esc50])
    with pytest.raises(ValueError, match="at least one"):
        pool_datasets([])
