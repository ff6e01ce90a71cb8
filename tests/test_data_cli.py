"""``esc data verify | download | synth``: counts per fold and class, every problem named, exit status 1 on a
problem; the download error offline; the synth hook."""

import argparse
import hashlib
import socket
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from esclib.cli import data as cli
from esclib.data import registry
from esclib.data.registry import Remote


def esc(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="esc")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def us8k_tree(tmp_path):
    """A small tree in the UrbanSound8K layout: 2 folds x 2 classes x 2 slices of mixed formats."""
    rows = []
    for fold, fsid, class_id, name in [(1, 100, 0, "air_conditioner"), (2, 200, 1, "car_horn")]:
        for slice_number in range(2):
            file = f"{fsid}-{class_id}-0-{slice_number}.wav"
            rows.append((file, fsid, 0.5 * slice_number, 0.5 * slice_number + 0.2, 1, fold, class_id, name))
            (tmp_path / "audio" / f"fold{fold}").mkdir(parents=True, exist_ok=True)
            sf.write(tmp_path / "audio" / f"fold{fold}" / file, np.zeros((1600, fold), np.float32), 8000 * fold,
                     subtype="PCM_U8" if fold == 1 else "PCM_24")
    (tmp_path / "metadata").mkdir()
    pd.DataFrame(rows, columns=["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
                 ).to_csv(tmp_path / "metadata" / "UrbanSound8K.csv", index=False)
    return tmp_path


def test_verify_prints_counts_and_exits_0_on_a_good_tree(us8k_tree, capsys):
    assert esc(["data", "verify", "us8k", "--root", str(us8k_tree)]) == 0
    out = capsys.readouterr().out
    assert "4 good clips" in out and "0 problem(s)" in out
    assert "air_conditioner    2" in out and "car_horn           2" in out


def test_verify_names_every_broken_file_and_exits_1(us8k_tree, capsys):
    folder = us8k_tree / "audio"
    (folder / "fold1" / "100-0-0-0.wav").unlink()  # metadata row without its file
    (folder / "fold1" / "100-0-0-1.wav").write_bytes(b"")  # zero-length
    data = (folder / "fold2" / "200-1-0-0.wav").read_bytes()
    (folder / "fold2" / "200-1-0-0.wav").write_bytes(data[: len(data) // 2])  # truncated
    (folder / "fold2" / "200-1-0-1.wav").write_text("<html>not audio</html>")  # non-audio
    assert esc(["data", "verify", "us8k", "--root", str(us8k_tree)]) == 1
    out = capsys.readouterr().out
    assert "4 problem(s)" in out and "0 good clips" in out
    for name, reason in [("100-0-0-0.wav", "file not found"), ("100-0-0-1.wav", "zero-length"),
                         ("200-1-0-0.wav", "truncated"), ("200-1-0-1.wav", "not a readable audio file")]:
        assert any(name in line and reason in line for line in out.splitlines()), name


def test_verify_without_a_dataset_exits_2_and_says_how_to_get_it(tmp_path, capsys):
    assert esc(["data", "verify", "esc50", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: esc50: metadata file meta/esc50.csv not found") and "esc data download esc50" in err


def test_download_offline_exits_1_with_the_manual_instructions(tmp_path, monkeypatch, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    remote = Remote(f"http://127.0.0.1:{port}/UrbanSound8K.tar.gz", "UrbanSound8K.tar.gz", "9" * 32)
    monkeypatch.setitem(registry.SPECS, "us8k", replace(registry.SPECS["us8k"], remotes=lambda: [remote]))
    assert esc(["data", "download", "us8k", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert remote.url in err and str(tmp_path / "UrbanSound8K.tar.gz") in err
    assert "zenodo.org/record/1203745" in err and "metadata/UrbanSound8K.csv" in err


def test_download_keeps_a_hand_placed_archive_with_the_wrong_md5(tmp_path, monkeypatch, capsys):
    remote = Remote("http://127.0.0.1:9/UrbanSound8K.tar.gz", "UrbanSound8K.tar.gz", "9aa69802bbf37fb986f71ec1483a196e")
    monkeypatch.setitem(registry.SPECS, "us8k", replace(registry.SPECS["us8k"], remotes=lambda: [remote]))
    (tmp_path / "UrbanSound8K.tar.gz").write_bytes(b"not the archive")
    assert esc(["data", "download", "us8k", "--root", str(tmp_path)]) == 1
    aside = tmp_path / f"UrbanSound8K.tar.gz.md5-mismatch-{hashlib.md5(b'not the archive').hexdigest()}"
    assert aside.read_bytes() == b"not the archive"
    err = capsys.readouterr().err
    assert f"expected {remote.md5}" in err and f"kept as {aside}" in err


def test_download_refuses_a_root_that_is_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert esc(["data", "download", "us8k", "--root", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err == f"error: --root {tmp_path / 'file'} is a file; expected the dataset folder " \
                                      f"(created if absent)\n"


def test_synth_calls_the_generator_lazily(tmp_path, monkeypatch, capsys):
    from esclib.data import synth

    calls = []
    monkeypatch.setattr(synth, "generate", lambda name, root, size, seed: calls.append((name, root, size, seed))
                        or root)
    assert esc(["data", "synth", "esc50", "--root", str(tmp_path), "--size", "full", "--seed", "3"]) == 0
    assert calls == [("esc50", tmp_path, "full", 3)]
