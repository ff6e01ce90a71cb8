"""``esc data verify`` and the loaders on bad input, in the real layouts: the genuine ESC-50 and UrbanSound8K metadata
(tests/reference) with one cell spoilt, and small DCASE 2013 trees. Each malformed metadata file gets one line
naming the file, row, column, value and what was expected (exit 2, nothing decoded); each file in the clip folders
that the dataset does not list is a problem line (exit 1)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from _reference import METADATA
from esclib.cli import data as cli
from esclib.data import audio, dcase2013, registry
from esclib.data.metadata import MetadataError

#: where each dataset's metadata lives under its root, and the genuine file
CSV = {"esc50": ("meta/esc50.csv", METADATA / "esc50.csv"),
       "us8k": ("metadata/UrbanSound8K.csv", METADATA / "UrbanSound8K.csv")}


def esc(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="esc")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def genuine_tree(root: Path, dataset: str, *, audio_files: bool = True) -> Path:
    """The dataset's real layout under ``root``: its genuine metadata and (empty) files at every listed path."""
    relative, genuine = CSV[dataset]
    (root / relative).parent.mkdir(parents=True)
    shutil.copy(genuine, root / relative)
    if audio_files:
        for path in registry.spec(dataset).loader(root).paths:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).touch()
    return root


def spoil(root: Path, dataset: str, row: int, column: str, value: str | None) -> Path:
    """Write ``value`` into one cell of the metadata (None: drop the column); returns the metadata path."""
    path = root / CSV[dataset][0]
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if value is None:
        table = table.drop(columns=column)
    else:
        table.loc[row, column] = value
    table.to_csv(path, index=False)
    return path


#: (dataset, data row, column, value written, what the message must say after "column ...: expected ")
BAD_CELLS = [
    ("esc50", 1234, "fold", "x", "a fold number in 1..5 (esc50 has 5 folds), found 'x'"),
    ("esc50", 1234, "fold", "6", "a fold number in 1..5 (esc50 has 5 folds), found 6"),
    ("esc50", 1234, "fold", "2.5", "a fold number in 1..5 (esc50 has 5 folds), found 2.5"),
    ("esc50", 7, "fold", "", "a fold number in 1..5 (esc50 has 5 folds), found an empty cell"),
    ("esc50", 1234, "target", "dog", "an integer, found 'dog'"),
    ("esc50", 1234, "target", "50", "a class index in 0..49 (50 classes), found 50"),
    ("esc50", 1999, "esc10", "yes", "True or False, found 'yes'"),
    ("esc50", 3, "filename", "", "a file name, found an empty cell"),
    ("esc50", 3, "filename", "1-100032-A-0.wav", "each file listed once, but row 1 already lists it, found "
                                                 "'1-100032-A-0.wav'"),
    ("us8k", 4321, "classID", "10", "a class index in 0..9 (10 classes), found 10"),
    ("us8k", 4321, "classID", "-1", "a class index in 0..9 (10 classes), found -1"),
    ("us8k", 8731, "fold", "fold1", "a fold number in 1..10 (us8k has 10 folds), found 'fold1'"),
    ("us8k", 4321, "fold", "11", "a fold number in 1..10 (us8k has 10 folds), found 11"),
    ("us8k", 0, "start", "abc", "a number, found 'abc'"),
    ("us8k", 0, "end", "inf", "a number, found inf"),
    ("us8k", 100, "fsID", "", "an integer, found an empty cell"),
]


@pytest.mark.parametrize(("dataset", "row", "column", "value", "expected"), BAD_CELLS)
def test_a_bad_cell_is_named_with_file_row_column_value_and_expectation(tmp_path, capsys, monkeypatch, dataset, row,
                                                                       column, value, expected):
    root = genuine_tree(tmp_path, dataset, audio_files=False)
    path = spoil(root, dataset, row, column, value)
    monkeypatch.setattr(audio, "find_problems", lambda *a, **k: pytest.fail("files checked after a metadata error"))
    assert esc(["data", "verify", dataset, "--root", str(root)]) == 2
    out, err = capsys.readouterr()
    message = f"{path.resolve()}, row {row + 1} (line {row + 2}), column {column!r}: expected {expected}"
    assert err == f"error: {message}\n" and out == ""
    with pytest.raises(MetadataError) as raised:
        registry.load(dataset, root)
    assert str(raised.value) == message


def test_a_missing_column_and_a_non_csv_file_are_named(tmp_path, capsys):
    root = genuine_tree(tmp_path, "us8k", audio_files=False)
    path = spoil(root, "us8k", 0, "fold", None)
    assert esc(["data", "verify", "us8k", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path.resolve()}: lacks the column(s) ['fold']; expected the columns "
                          f"['slice_file_name', 'fsID', 'start', 'end', 'salience', 'fold', 'classID', 'class']")
    path.write_bytes(b"\xff\xfe\x00garbage\x00\xff")
    assert esc(["data", "verify", "us8k", "--root", str(root)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path.resolve()}: not a readable CSV file")


def test_a_class_index_with_two_names_is_named(tmp_path):
    root = genuine_tree(tmp_path, "esc50", audio_files=False)
    path = spoil(root, "esc50", 0, "category", "cat")  # row 1 is dog, target 0; cat is target 5
    with pytest.raises(MetadataError) as err:
        registry.load("esc50", root)
    assert str(err.value) == f"{path.resolve()}: target 0 must have one category throughout the file, found 'cat' " \
                             f"on row 1, 'dog' on row 15"


def test_class_indices_must_number_the_classes_present(tmp_path):
    """A small tree of 3 named classes: indices must run 0..2, whatever the dataset's full count."""
    root = genuine_tree(tmp_path, "us8k", audio_files=False)
    path = root / CSV["us8k"][0]
    table = pd.read_csv(path)
    table = table[table["classID"].isin([0, 1])].groupby("classID").head(3).reset_index(drop=True)
    table.loc[5, ["classID", "class"]] = [3, "dog_bark"]  # class 2 left out of a pruned copy
    table.to_csv(path, index=False)
    with pytest.raises(MetadataError) as err:
        registry.load("us8k", root)
    assert str(err.value) == (f"{path.resolve()}, row 6 (line 7), column 'classID': expected a class index in 0..2 "
                              f"(the file names 3 classes in column 'class', so their indices run 0..2), found 3")


def test_the_genuine_trees_verify_clean(tmp_path, capsys):
    esc50 = genuine_tree(tmp_path / "ESC-50", "esc50")
    assert esc(["data", "verify", "esc50", "--root", str(esc50), "--level", "exists"]) == 0
    out = capsys.readouterr().out
    assert "2000 good clips" in out and "0 problem(s)" in out
    assert esc(["data", "verify", "esc10", "--root", str(esc50), "--level", "exists"]) == 0
    assert "400 good clips" in capsys.readouterr().out  # ESC-50's other 1,600 files are not ESC-10's strays
    us8k = genuine_tree(tmp_path / "UrbanSound8K", "us8k")
    assert esc(["data", "verify", "us8k", "--root", str(us8k), "--level", "exists"]) == 0
    out = capsys.readouterr().out
    assert "8732 good clips" in out and "0 problem(s)" in out


@pytest.mark.parametrize("name", ["esc50", "esc10"])
def test_a_file_the_csv_does_not_list_is_a_problem_line(tmp_path, capsys, name):
    root = genuine_tree(tmp_path, "esc50")
    (root / "audio" / "1-99999-A-0.wav").touch()
    (root / "audio" / ".DS_Store").touch()  # hidden files are not clips
    assert esc(["data", "verify", name, "--root", str(root), "--level", "exists"]) == 1
    out = capsys.readouterr().out
    assert f"{2000 if name == 'esc50' else 400} good clips" in out and "1 problem(s):" in out
    assert f"  {root.resolve() / 'audio' / '1-99999-A-0.wav'}: not listed in meta/esc50.csv" in out.splitlines()


def test_a_clip_in_the_wrong_fold_folder_is_missing_and_unlisted(tmp_path, capsys):
    root = genuine_tree(tmp_path, "us8k").resolve()
    (root / "audio" / "fold6" / "100032-3-0-0.wav").write_bytes(b"")
    (root / "audio" / "fold5" / "100032-3-0-0.wav").unlink()
    assert esc(["data", "verify", "us8k", "--root", str(root), "--level", "exists"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "2 problem(s):" in lines and "8731 good clips" in lines
    assert f"  {root}/audio/fold5/100032-3-0-0.wav: file not found" in lines
    assert (f"  {root}/audio/fold6/100032-3-0-0.wav: not listed in metadata/UrbanSound8K.csv (it lists "
            f"100032-3-0-0.wav at audio/fold5/100032-3-0-0.wav)") in lines


@pytest.fixture
def dcase_tree(tmp_path):
    """DCASE 2013 SCD in its layout: both set folders, one short stereo recording per class and set."""
    for folder, _, _ in dcase2013.SETS:
        (tmp_path / folder).mkdir()
        for scene in dcase2013.CLASSES:
            sf.write(tmp_path / folder / f"{scene}01.wav", np.zeros((4410, 2), np.float32), 44100, subtype="PCM_16")
    return tmp_path


def test_dcase2013_reports_stray_files_and_names_a_misnamed_clip(dcase_tree, capsys):
    assert esc(["data", "verify", "dcase2013", "--root", str(dcase_tree)]) == 0
    assert "20 good clips" in capsys.readouterr().out
    (dcase_tree / "scenes_stereo_testset" / "notes.txt").write_text("x")
    assert esc(["data", "verify", "dcase2013", "--root", str(dcase_tree)]) == 1
    out = capsys.readouterr().out
    assert (f"  {dcase_tree.resolve()}/scenes_stereo_testset/notes.txt: not a clip of the dataset (its clips are "
            f"<class><NN>.wav files)") in out.splitlines()
    (dcase_tree / "scenes_stereo" / "bus1.wav").write_bytes(b"")
    assert esc(["data", "verify", "dcase2013", "--root", str(dcase_tree)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {dcase_tree.resolve()}/scenes_stereo/bus1.wav: expected a "
                                              f"file name <class><NN>.wav")
