"""Dataset loaders on trees in the real layouts: ESC-50 / ESC-10 / UrbanSound8K with their genuine metadata and a
short wav for every row; ESC-US, DCASE 2013 SCD and audioset-mini in their documented layouts."""

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import esclib
from _reference import METADATA
from esclib.data import esc50, registry, us8k
from esclib.data.clips import CLIP_COLUMNS, UNLABELLED
from esclib.data.metadata import DatasetNotFoundError

#: the genuine ESC-50 / UrbanSound8K metadata files, kept in tests/reference
REFERENCE = METADATA
US8K_FOLDS = [873, 888, 925, 990, 936, 823, 838, 806, 816, 837]
US8K_CLASSES = {"air_conditioner": 1000, "car_horn": 429, "children_playing": 1000, "dog_bark": 1000,
                "drilling": 1000, "engine_idling": 1000, "gun_shot": 374, "jackhammer": 1000, "siren": 929,
                "street_music": 1000}
SILENCE = np.zeros(400, dtype=np.int16)  # 0.05 s at 8 kHz


def _write(path: Path, rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, SILENCE, rate)


def _genuine_tree(tmp_path_factory, module, file_column: str, folder) -> Path:
    """A dataset folder with the genuine metadata file and a short wav for every row, at ``folder(row)`` (hard
    links to one file: 10,000 files in a second)."""
    root = tmp_path_factory.mktemp(module.__name__.rsplit(".", 1)[1])
    (root / module.METADATA).parent.mkdir()
    shutil.copy(REFERENCE / module.METADATA.name, root / module.METADATA)
    template = root / "template.wav"
    _write(template)
    for _, row in pd.read_csv(root / module.METADATA).iterrows():
        (root / "audio" / folder(row)).mkdir(parents=True, exist_ok=True)
        os.link(template, root / "audio" / folder(row) / row[file_column])
    return root


def _linked_copy(root: Path, copy: Path) -> Path:
    """A copy of a tree whose files are hard links (replace a file with :func:`_replace`, never edit it)."""
    shutil.copytree(root, copy, copy_function=os.link)
    return copy


def _replace(path: Path, content: bytes) -> None:
    path.unlink()
    path.write_bytes(content)


@pytest.fixture(scope="module")
def esc50_root(tmp_path_factory) -> Path:
    return _genuine_tree(tmp_path_factory, esc50, "filename", lambda row: "")


@pytest.fixture(scope="module")
def us8k_root(tmp_path_factory) -> Path:
    return _genuine_tree(tmp_path_factory, us8k, "slice_file_name", lambda row: f"fold{row['fold']}")


def test_esc50_folds_classes_and_columns(esc50_root):
    clips = registry.load("esc50", esc50_root)
    assert list(clips.table.columns[:6]) == list(CLIP_COLUMNS)
    assert len(clips) == 2000 and clips.num_classes == 50 and clips.n_folds == 5 and clips.clip_seconds == 5.0
    assert clips.table["fold"].value_counts().sort_index().tolist() == [400] * 5
    assert (clips.table["target"].value_counts() == 40).all()
    row = clips.table.set_index("clip_id").loc["1-100032-A-0.wav"]
    assert (row.fold, row.target, row.category, row.source) == (1, 0, "dog", "100032")
    assert row.path == str(esc50_root.resolve() / "audio" / "1-100032-A-0.wav")
    assert clips.classes[0] == "dog" and all(Path(p).is_file() for p in clips.paths)


def test_esc10_is_the_esc10_rows_on_esc50_folds_reindexed(esc50_root):
    clips = registry.load("esc10", esc50_root)
    assert len(clips) == 400 and clips.num_classes == 10
    assert sorted(clips.table["target"].unique()) == list(range(10))
    assert (clips.table["target"].value_counts() == 40).all()
    assert clips.table["fold"].value_counts().sort_index().tolist() == [80] * 5
    assert clips.classes == ("dog", "rooster", "rain", "sea_waves", "crackling_fire", "crying_baby", "sneezing",
                             "clock_tick", "helicopter", "chainsaw")
    esc50 = registry.load("esc50", esc50_root).table.set_index("clip_id")
    for clip, target, category in zip(clips.table["clip_id"], clips.table["target"], clips.table["category"]):
        assert esc50.loc[clip, "category"] == category == clips.classes[target]


def test_us8k_fold_sizes_class_counts_and_paths(us8k_root):
    clips = registry.load("us8k", us8k_root)
    assert len(clips) == 8732 and clips.n_folds == 10 and clips.clip_seconds == 4.0
    assert clips.table["fold"].value_counts().sort_index().tolist() == US8K_FOLDS
    assert clips.table["category"].value_counts().to_dict() == US8K_CLASSES
    assert clips.classes == tuple(sorted(US8K_CLASSES))
    row = clips.table.set_index("clip_id").loc["100263-2-0-117.wav"]
    assert (row.fold, row.target, row.category, row.source, row.start) == (5, 2, "children_playing", "100263", 58.5)
    assert row.path.endswith("audio/fold5/100263-2-0-117.wav")


def test_a_metadata_row_without_its_file_is_an_error_naming_it_or_skipped(esc50_root, tmp_path):
    root = _linked_copy(esc50_root, tmp_path / "ESC-50")
    gone = root / "audio" / "1-100038-A-14.wav"
    gone.unlink()
    with pytest.raises(registry.DataFileError, match="1-100038-A-14.wav") as err:
        registry.load("esc50", root)
    assert [p.path for p in err.value.problems] == [str(gone.resolve())]
    with pytest.warns(UserWarning, match="1-100038-A-14.wav"):
        clips = registry.load("esc50", root, on_error="skip")
    assert len(clips) == 1999 and "1-100038-A-14.wav" not in set(clips.table["clip_id"])


def test_unreadable_files_are_caught_at_the_header_level(esc50_root, tmp_path):
    root = _linked_copy(esc50_root, tmp_path / "ESC-50")
    _replace(root / "audio" / "1-100032-A-0.wav", b"")
    _replace(root / "audio" / "1-100038-A-14.wav", b"not audio at all")
    assert len(registry.load("esc50", root)) == 2000  # the default check only looks for the files
    with pytest.raises(registry.DataFileError) as err:
        registry.load("esc50", root, check="header")
    assert sorted(Path(p.path).name for p in err.value.problems) == ["1-100032-A-0.wav", "1-100038-A-14.wav"]
    with pytest.warns(UserWarning):
        assert len(registry.load("esc50", root, check="header", on_error="skip")) == 1998


def test_missing_dataset_and_bad_metadata_errors_say_what_to_do(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="esc data download us8k"):
        registry.load("us8k", tmp_path)
    (tmp_path / "meta").mkdir()
    pd.DataFrame({"filename": ["a.wav"], "fold": [1]}).to_csv(tmp_path / "meta" / "esc50.csv", index=False)
    with pytest.raises(ValueError, match="esc50.csv: lacks the column"):
        registry.load("esc50", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        registry.load("esc51", tmp_path)


def test_escus_folders_of_clips_with_freesound_sources(tmp_path):
    names = {"01": ["000001-12345-0.0-5.0.ogg", "000002-12345-5.0-10.0.ogg"], "02": ["010001-777-1.5-6.5.ogg"]}
    for part, files in names.items():
        for name in files:
            (tmp_path / part).mkdir(exist_ok=True)
            sf.write(tmp_path / part / name, SILENCE, 44100, format="OGG", subtype="VORBIS")
    (tmp_path / "ESC-US.csv").write_text("freesound details\n")
    clips = registry.load("escus", tmp_path, check="decode")
    assert len(clips) == 3 and clips.n_folds == 0 and clips.classes == ()
    assert (clips.targets == UNLABELLED).all() and (clips.folds == 0).all()
    assert clips.table["source"].tolist() == ["12345", "12345", "777"]
    assert clips.table["part"].tolist() == ["01", "01", "02"]
    assert clips.table["clip_id"].iloc[2] == "02/010001-777-1.5-6.5.ogg" and clips.table["end"].iloc[2] == 6.5
    assert len(registry.load("escus", tmp_path, parts=["02"])) == 1
    with pytest.raises(DatasetNotFoundError, match="parts"):
        registry.load("escus", tmp_path, parts=["25"])


def test_dcase2013_two_sets_as_two_folds(tmp_path):
    scenes = ("bus", "busystreet", "office", "openairmarket", "park", "quietstreet", "restaurant", "supermarket",
              "tube", "tubestation")
    for folder in ("scenes_stereo", "scenes_stereo_testset"):
        for scene in scenes:
            for number in ("01", "05"):
                _write(tmp_path / folder / f"{scene}{number}.wav")
    clips = registry.load("dcase2013", tmp_path)
    assert len(clips) == 40 and clips.n_folds == 2 and clips.classes == scenes and clips.clip_seconds == 30.0
    assert clips.table.groupby("fold")["target"].value_counts().eq(2).all()
    assert clips.table["set"].value_counts().to_dict() == {"development": 20, "test": 20}
    assert clips.table["source"].nunique() == 40  # dev bus01 and test bus01 are different recordings
    _write(tmp_path / "scenes_stereo" / "kitchen01.wav")
    with pytest.raises(ValueError, match="kitchen01.wav"):
        registry.load("dcase2013", tmp_path)


def test_audioset_mini_multi_label_from_the_pann_layout(tmp_path):
    meta = tmp_path / "metadata"
    meta.mkdir()
    shutil.copy(Path(esclib.__file__).parent / "resources" / "audioset_labels.csv", meta / "class_labels_indices.csv")
    (meta / "balanced_train_segments.csv").write_text(
        "# Segments csv created Sun Mar  5 10:54:31 2017\n"
        "# num_ytids=2, num_segs=2, num_unique_labels=3, num_positive_labels=3\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
        '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"\n'
        '--ZhevVpy1s, 50.000, 60.000, "/m/012xff"\n')
    for ytid in ("--PJHxphWEs", "--ZhevVpy1s"):
        _write(tmp_path / "audios" / "balanced_train_segments" / f"Y{ytid}.wav")
    clips = registry.load("audioset-mini", tmp_path)
    assert clips.multi_label and clips.num_classes == 527 and clips.classes[0] == "Speech"
    assert (clips.targets == UNLABELLED).all() and clips.table["source"].tolist() == ["--PJHxphWEs", "--ZhevVpy1s"]
    labels = pd.read_csv(meta / "class_labels_indices.csv").set_index("mid")["index"]
    assert clips.table["labels"].tolist() == [tuple(sorted((labels["/m/09x0r"], labels["/t/dd00088"]))),
                                              (labels["/m/012xff"],)]
    with open(meta / "balanced_train_segments.csv", "a") as handle:
        handle.write('--aaaaaaaaa, 0.000, 10.000, "/m/not_a_label"\n')
    with pytest.raises(ValueError, match="balanced_train_segments.csv:6"):
        registry.load("audioset-mini", tmp_path)
