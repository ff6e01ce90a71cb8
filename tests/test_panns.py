"""esclib.models.panns against the authors' golden outputs, the released checkpoints' keys and shapes, the loader."""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import http.server
import json
import threading
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from _reference import GOLDEN
from esclib.cli import pann as pann_cli
from esclib.models import panns
from esclib.models.panns import (
    ARCHITECTURES,
    CHECKPOINTS,
    CheckpointError,
    Cnn10,
    Cnn14,
    Cnn14_16k,
    CnnMini16k,
    FrontendConfig,
    FrontendMismatchError,
    Wavegram_Logmel_Cnn14,
    audioset_labels,
    load_pann,
    save_pann_checkpoint,
)
from esclib.models.panns.registry import ReleasedCheckpoint, state_shapes

#: the authors' reference outputs and the released files' keys and shapes (see tests/_reference.py)
needs_golden = pytest.mark.usefixtures("golden")
GOLDEN_MODELS = ("Cnn6", "Cnn10", "MobileNetV1")
RELEASED_ARCHITECTURES = ("Cnn6", "Cnn10", "Cnn14", "Cnn14_16k", "MobileNetV1", "MobileNetV2", "ResNet38",
                          "Wavegram_Logmel_Cnn14")


@functools.cache
def _golden_input() -> torch.Tensor:
    return torch.from_numpy(np.load(GOLDEN / "input_32k.npy"))


@needs_golden
@pytest.mark.parametrize("name", GOLDEN_MODELS)
def test_golden_checkpoints_reproduce_the_authors_outputs(name: str) -> None:
    model = load_pann(GOLDEN / f"{name}_random.pth")  # architecture inferred from the keys and shapes
    assert type(model).__name__ == name and not model.training
    with torch.no_grad():
        out = model(_golden_input())
    np.testing.assert_allclose(out["clipwise_output"].numpy(), np.load(GOLDEN / f"{name}_clipwise_output.npy"),
                               atol=1e-5, rtol=0)
    np.testing.assert_allclose(out["embedding"].numpy(), np.load(GOLDEN / f"{name}_embedding.npy"),
                               atol=1e-5, rtol=0)
    assert model.labels == audioset_labels()


@needs_golden
def test_two_halves_and_embed_equal_forward() -> None:
    model = load_pann(GOLDEN / "Cnn10_random.pth")
    clip = _golden_input()[:, :32000]
    with torch.no_grad():
        out = model(clip)
        halves = model.forward_logmel(model.logmel(clip))
    assert model.logmel(clip).shape == (1, 1, 101, 64)
    torch.testing.assert_close(halves["embedding"], out["embedding"])
    model.train()
    torch.testing.assert_close(model.embed(clip), out["embedding"])
    assert model.training


@needs_golden
@pytest.mark.parametrize("name", RELEASED_ARCHITECTURES)
def test_architecture_has_exactly_the_released_keys_and_shapes(name: str) -> None:
    entry = json.loads((GOLDEN / "manifest.json").read_text())[name]
    config = dict(entry["config"])
    classes_num = config.pop("classes_num")
    with torch.device("meta"):  # built without allocating; the zeros below are assigned in place
        model = ARCHITECTURES[entry["class"]](classes_num=classes_num, frontend=FrontendConfig(**config))
    expected = {key: tuple(shape) for key, shape in entry["keys"].items()}
    assert state_shapes(model.state_dict()) == expected
    assert model.frontend == ARCHITECTURES[name].default_frontend
    zeros = {key: torch.zeros(shape, dtype=torch.long if key.endswith("num_batches_tracked") else torch.float32)
             for key, shape in expected.items()}
    model.load_state_dict(zeros, strict=True, assign=True)
    with torch.no_grad():
        out = model.eval()(torch.randn(1, config["sample_rate"] // 2))
    assert out["clipwise_output"].shape == (1, classes_num)
    assert out["embedding"].shape == (1, model.embedding_size)
    assert torch.isfinite(out["embedding"]).all()


@pytest.mark.parametrize(("name", "parameters"), [("Cnn6", 4_837_455), ("Cnn14", 80_753_615),
                                                  ("MobileNetV1", 4_796_303), ("Wavegram_Logmel_Cnn14", 81_065_487)])
def test_trainable_parameters_equal_the_paper(name: str, parameters: int) -> None:
    """Kong et al. 2020, Table IX (parameters; the frozen frontend is not counted)."""
    with torch.device("meta"):
        model = ARCHITECTURES[name]()
    assert sum(p.numel() for p in model.parameters()) == parameters


def test_registry_covers_every_architecture_with_zenodo_urls() -> None:
    assert set(RELEASED_ARCHITECTURES) <= set(ARCHITECTURES) and "CnnMini16k" in ARCHITECTURES
    assert {c.arch for c in CHECKPOINTS.values()} == set(RELEASED_ARCHITECTURES)
    for checkpoint in CHECKPOINTS.values():
        assert checkpoint.arch in ARCHITECTURES
        assert checkpoint.url.startswith("https://zenodo.org/record/3987831/files/")
        assert "%3D" in checkpoint.url and checkpoint.url.endswith("?download=1")
    assert CHECKPOINTS["Cnn10"].md5 == "bfb1f1f9968938fa8ef4012b8471f5f6" and CHECKPOINTS["Cnn10"].size == 25237595
    assert CHECKPOINTS["Cnn14_16k"].frontend.sample_rate == 16000


def test_a_16k_checkpoint_into_a_32k_model_names_the_frontend_and_the_fix() -> None:
    with pytest.raises(FrontendMismatchError) as err:
        Cnn14().load_state_dict(Cnn14_16k().state_dict())
    message = str(err.value)
    assert "16 kHz" in message and "window 512" in message and "arch='Cnn14_16k'" in message
    assert "size mismatch" not in message


def test_load_pann_by_path_with_wrong_arch_names_the_file(tmp_path: Path) -> None:
    path = save_pann_checkpoint(CnnMini16k(classes_num=5), tmp_path / "mini.pth", iteration=3)
    with pytest.raises(FrontendMismatchError, match=r"mini\.pth.*16 kHz.*arch='CnnMini16k'"):
        load_pann(path, arch="Cnn10")
    with pytest.raises(CheckpointError, match="classes_num=7"):
        load_pann(path, classes_num=7)
    assert isinstance(load_pann(path), CnnMini16k)


def test_save_and_load_round_trip_keeps_weights_iteration_and_labels(tmp_path: Path) -> None:
    model = CnnMini16k(classes_num=3)
    path = save_pann_checkpoint(model, tmp_path / "mini.pth", iteration=1200, labels=["dog", "rain", "siren"])
    content = torch.load(path, weights_only=True)
    assert set(content) == {"iteration", "model", "labels"} and content["iteration"] == 1200
    loaded = load_pann(path)
    assert loaded.labels == ["dog", "rain", "siren"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_unreadable_or_foreign_files_get_clear_errors(tmp_path: Path) -> None:
    torch.save({"model": {"encoder.weight": torch.zeros(3)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="other.pth.*match none"):
        load_pann(tmp_path / "other.pth")
    with pytest.raises(FileNotFoundError, match="registered"):
        load_pann(tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="waveform"):
        Wavegram_Logmel_Cnn14().forward_logmel(torch.zeros(1, 1, 101, 64))


def test_load_pann_by_name_offline_says_where_to_put_the_file(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from esclib.data import download

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path))
    monkeypatch.setattr(download, "_open", offline)
    with pytest.raises(download.DownloadError) as err:
        load_pann("Cnn14_16k", progress=False)
    message = str(err.value)
    assert "Cnn14_16k_mAP=0.438.pth" in message and str(tmp_path / "panns") in message
    assert "362fc5ff18f1d6ad2f6d464b45893f2c" in message


def test_load_pann_by_name_downloads_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "served"
    source = save_pann_checkpoint(CnnMini16k(classes_num=4), served / "Mini_mAP=0.1.pth", iteration=1)
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setattr(panns.registry, "ZENODO_RECORD", f"http://127.0.0.1:{server.server_address[1]}")
        entry = ReleasedCheckpoint("Mini", "Mini_mAP=0.1.pth", "CnnMini16k", 0.1, md5, source.stat().st_size)
        monkeypatch.setitem(CHECKPOINTS, "Mini", entry)
        model = load_pann("Mini", progress=False)
    finally:
        server.shutdown()
    assert isinstance(model, CnnMini16k) and model.classes_num == 4
    assert (tmp_path / "cache" / "panns" / "Mini_mAP=0.1.pth").is_file()


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="esc")
    pann_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_esc_pann_tag_prints_labels(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    wav = tmp_path / "tone.wav"
    sf.write(wav, 0.3 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050), 22050)
    audioset = save_pann_checkpoint(CnnMini16k(), tmp_path / "audioset.pth", 0)  # 527 classes, no labels
    assert _run_cli(["pann", "tag", str(wav), "--checkpoint", str(audioset), "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(line.split(maxsplit=1)[1] in audioset_labels() for line in lines[1:])
    mini = save_pann_checkpoint(CnnMini16k(classes_num=2), tmp_path / "mini.pth", 0, labels=["bark", "rain"])
    assert _run_cli(["pann", "tag", str(wav), "--checkpoint", str(mini), "--top", "2"]) == 0
    assert {line.split(maxsplit=1)[1] for line in capsys.readouterr().out.strip().splitlines()[1:]} == {"bark", "rain"}
    assert _run_cli(["pann", "tag", str(tmp_path / "nothing.wav"), "--checkpoint", str(mini)]) == 2
    assert "nothing.wav" in capsys.readouterr().err


def test_esc_pann_list_prints_the_registry(capsys: pytest.CaptureFixture) -> None:
    assert _run_cli(["pann", "list"]) == 0
    out = capsys.readouterr().out
    assert all(c.file_name in out for c in CHECKPOINTS.values())


def test_training_mode_applies_spec_augment_and_mixup() -> None:
    mixup = pytest.importorskip("esclib.augment.mixup")
    pytest.importorskip("esclib.augment.specaugment")
    model = Cnn10().train()
    lambdas = mixup.mixup_lambdas(4, 1.0, generator=torch.Generator().manual_seed(0))
    out = model(torch.randn(4, 16000), mixup_lambda=lambdas)
    assert out["clipwise_output"].shape == (2, 527) and out["embedding"].shape == (2, 512)
    out["clipwise_output"].sum().backward()
    assert model.conv_block1.conv1.weight.grad is not None
    assert model.spectrogram_extractor.stft.conv_real.weight.grad is None  # frozen frontend (a buffer)


def test_channels_last_changes_the_layout_not_the_function(tmp_path: Path) -> None:
    """CnnMini16k keeps its convolutions channels-last (a CPU speed-up); a copy of the same weights in the contiguous
    layout computes the same outputs, training step included, and a saved and reloaded checkpoint keeps the layout."""
    torch.manual_seed(0)
    model = CnnMini16k(classes_num=3, spec_augment=False)
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert not all(w.is_contiguous() for w in convs)  # a single-channel kernel is both
    assert all(m.weight.is_contiguous() for m in Cnn14(classes_num=3).modules() if isinstance(m, torch.nn.Conv2d))
    plain = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    x = torch.randn(2, 16000)
    for net in (model, plain):
        net.eval()
    assert torch.allclose(model(x)["clipwise_output"], plain(x)["clipwise_output"], atol=1e-5)
    for net in (model, plain):
        net.train()
        torch.manual_seed(1)
        net(x)["clipwise_output"].sum().backward()
    for (name, a), b in zip(model.named_parameters(), plain.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-4, rtol=1e-3), name
    loaded = load_pann(save_pann_checkpoint(model, tmp_path / "mini.pth", iteration=1))
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last)
               for m in loaded.modules() if isinstance(m, torch.nn.Conv2d))
