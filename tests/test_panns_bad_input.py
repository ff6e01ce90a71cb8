"""Bad checkpoints and devices for ``load_pann`` and ``esc pann tag``: truncated, random, corrupt, foreign and
mismatched files and an absent GPU each get one sentence naming the file or parameter and what was expected, before
the model is built or the sound is read; the CLI exits 2."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from esclib.cli import pann as pann_cli
from esclib.device import DeviceError, resolve_device
from esclib.models import panns
from esclib.models.panns import (
    ARCHITECTURES,
    CheckpointError,
    CnnMini16k,
    FrontendMismatchError,
    load_pann,
    save_pann_checkpoint,
)
from esclib.models.panns.frontend import LogmelFilterBank, Spectrogram

#: what the messages must never hold: PyTorch's advice, its key dumps, a traceback
FORBIDDEN = ("weights_only", "Error(s) in loading state_dict", "Missing key(s)", "Traceback", "PytorchStreamReader")


def released_format(arch: str, path: Path) -> Path:
    """A checkpoint of ``arch`` in the released format, written by ``save_pann_checkpoint``: the real frontend
    tensors, every other tensor a zero-stride zero (small on disk, the released keys and shapes)."""
    with torch.device("meta"):
        model = ARCHITECTURES[arch]()
    config = model.frontend
    frontend = {**{f"spectrogram_extractor.{k}": v
                   for k, v in Spectrogram(config.window_size, config.hop_size).state_dict().items()},
                **{f"logmel_extractor.{k}": v for k, v in LogmelFilterBank(config).state_dict().items()}}
    state = {key: frontend.get(key, torch.zeros((), dtype=value.dtype).expand(value.shape))
             for key, value in model.state_dict().items()}
    model.load_state_dict(state, assign=True)
    return save_pann_checkpoint(model, path, iteration=0)


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real CnnMini16k checkpoint (2.6 MB) and a sound to tag."""
    folder = tmp_path_factory.mktemp("mini")
    sf.write(folder / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000), 16000)
    return save_pann_checkpoint(CnnMini16k(classes_num=3), folder / "mini.pth", 5, labels=["a", "b", "c"])


def one_sentence(message: str) -> None:
    assert "\n" not in message and len(message) < 450, message
    assert not any(text in message for text in FORBIDDEN), message


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="esc")
    pann_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_a_truncated_checkpoint_is_named_as_truncated(mini: Path, tmp_path: Path, keep: float) -> None:
    data = mini.read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError) as err:
        load_pann(path)
    message = str(err.value)
    assert message.startswith(f"{path} is truncated ({path.stat().st_size:,} bytes)") and "again" in message
    one_sentence(message)


def test_random_bytes_are_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "noise.pth"
    path.write_bytes(b"\x13\x37" + os.urandom(4096))
    with pytest.raises(CheckpointError) as err:
        load_pann(path)
    message = str(err.value)
    assert message.startswith(f"{path} is not a PyTorch checkpoint: it starts with the bytes 13 37")
    one_sentence(message)
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pth is empty \(0 bytes\)"):
        load_pann(tmp_path / "empty.pth")


def test_a_damaged_tensor_fails_its_checksum(mini: Path, tmp_path: Path) -> None:
    """torch itself reads a zip member with flipped bytes without a word; the CRC check names it."""
    data = bytearray(mini.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(255 - b for b in data[middle:middle + 64])
    path = tmp_path / "flipped.pth"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as err:
        load_pann(path)
    message = str(err.value)
    assert message.startswith(f"{path} is corrupt") and "/data/" in message and "checksum" in message
    one_sentence(message)


def test_a_truncated_legacy_pickle_checkpoint_is_corrupt(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.pth"
    torch.save({"model": CnnMini16k().state_dict()}, legacy, _use_new_zipfile_serialization=False)
    assert isinstance(load_pann(legacy), CnnMini16k)
    cut = tmp_path / "legacy_cut.pth"
    cut.write_bytes(legacy.read_bytes()[: legacy.stat().st_size // 2])
    with pytest.raises(CheckpointError) as err:
        load_pann(cut)
    assert str(err.value).startswith(f"{cut} is corrupt")
    one_sentence(str(err.value))


def test_python_objects_are_named_without_pytorchs_advice(tmp_path: Path) -> None:
    path = tmp_path / "objects.pth"
    torch.save({"model": {"fc_audioset.weight": torch.zeros(2, 2)}, "step": np.float64(3.0)}, path)
    with pytest.raises(CheckpointError) as err:
        load_pann(path)
    message = str(err.value)
    assert "holds a Python object besides tensors (numpy" in message and "save_pann_checkpoint" in message
    one_sentence(message)


def test_a_cnn6_file_loaded_as_cnn14_gets_a_short_summary(tmp_path: Path) -> None:
    path = released_format("Cnn6", tmp_path / "cnn6.pth")
    with pytest.raises(CheckpointError) as err:
        load_pann(path, "Cnn14")
    message = str(err.value)
    assert message == (f"{path} does not fit Cnn14 (48 missing and 0 unexpected keys, 7 of another shape; "
                       f"conv_block1.conv1.weight is [64,1,5,5] in the file but [64,1,3,3] in Cnn14): the file "
                       f"looks like Cnn6 — pass arch='Cnn6'")
    one_sentence(message)
    assert type(load_pann(path)).__name__ == "Cnn6"  # inferred from the keys and shapes


def test_a_16k_file_loaded_as_cnn14_names_both_frontends(tmp_path: Path) -> None:
    path = released_format("Cnn14_16k", tmp_path / "cnn14_16k.pth")
    with pytest.raises(FrontendMismatchError) as err:
        load_pann(path, "Cnn14")
    message = str(err.value)
    assert message.startswith(f"{path} has the 16 kHz PANN frontend (16 kHz, window 512")
    assert "Cnn14 expects the 32 kHz one (32 kHz, window 1024" in message and message.endswith("arch='Cnn14_16k'")
    one_sentence(message)


def test_a_mismatch_is_found_before_the_model_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = released_format("Cnn6", tmp_path / "cnn6.pth")
    built = []

    class Spy(ARCHITECTURES["Cnn14"]):
        def __init__(self, **kwargs: object) -> None:
            built.append(torch.empty(0).device.type)
            super().__init__(**kwargs)

    monkeypatch.setitem(ARCHITECTURES, "Cnn14", Spy)
    with pytest.raises(CheckpointError):
        load_pann(path, "Cnn14")
    assert built == ["meta"]


def test_unknown_arch_is_refused_before_the_file_is_read(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"unknown PANN architecture arch='Cnn99'; known: Cnn6, Cnn10"):
        load_pann(tmp_path / "never-read.pth", "Cnn99")


def _absent_gpu() -> str:
    """A CUDA device this machine does not have: ``cuda`` without a GPU, else one index past the last."""
    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


def test_a_gpu_the_machine_lacks_is_named(mini: Path) -> None:
    device = _absent_gpu()
    with pytest.raises(DeviceError) as err:
        load_pann(mini, device=device)
    message = str(err.value)
    assert message.startswith(f"device={device!r} ") and "'cpu'" in message
    one_sentence(message)
    with pytest.raises(DeviceError, match=r"--device='gpu' is not a torch device"):
        resolve_device("gpu", "--device")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_an_existing_gpu_is_accepted(mini: Path) -> None:
    model = load_pann(mini, device="cuda")
    assert next(model.parameters()).device.type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda:0")


def _fail_if_loaded(*args: object, **kwargs: object) -> None:
    raise AssertionError("load_pann was called")


@pytest.mark.parametrize("case", ["device", "audio"])
def test_tag_refuses_bad_input_before_loading_the_checkpoint(mini: Path, tmp_path: Path, case: str,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(panns, "load_pann", _fail_if_loaded)
    audio = mini.parent / "tone.wav"
    if case == "audio":
        audio = tmp_path / "not-audio.wav"
        audio.write_text("<html>not a sound</html>")
    device = _absent_gpu() if case == "device" else "cpu"
    assert run_cli(["pann", "tag", str(audio), "--checkpoint", str(mini), "--device", device]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and err.count("\n") == 0
    assert (f"--device={device!r}" if case == "device" else f"{audio}: not a readable audio file") in err


def test_tag_exits_2_with_one_line_for_each_bad_checkpoint(mini: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    audio = str(mini.parent / "tone.wav")
    cut = tmp_path / "cut.pth"
    cut.write_bytes(mini.read_bytes()[:1000])
    noise = tmp_path / "noise.pth"
    noise.write_bytes(os.urandom(1000))
    # a released file name holding another architecture: the registry says Cnn14, the file is Cnn6
    wrong = released_format("Cnn6", tmp_path / "Cnn14_mAP=0.431.pth")
    expected = {cut: "is truncated", noise: "is not a PyTorch checkpoint",
                wrong: "looks like Cnn6 — pass arch='Cnn6'"}
    for path, text in expected.items():
        assert run_cli(["pann", "tag", audio, "--checkpoint", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {path}") and text in err and err.count("\n") == 0, err
        one_sentence(err)
    assert run_cli(["pann", "tag", audio, "--checkpoint", str(mini), "--top", "2"]) == 0
