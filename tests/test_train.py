"""The shared training loop: it learns, resumes from its checkpoint, stops early and accumulates gradients."""

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from esclib.train import EarlyStopping, fit, predict


def _problem(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    idx = torch.arange(n)
    return TensorDataset(x, y, idx)


def _loader(ds, batch_size=16):
    return DataLoader(ds, batch_size=batch_size, shuffle=False)


def test_fit_learns_a_separable_problem():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    ds = _problem()
    hist = fit(model, _loader(ds), epochs=30, optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
               loss_fn=nn.functional.cross_entropy, val_loader=_loader(ds), progress=False)
    assert len(hist.epochs) == 30
    assert hist.epochs[-1]["val_acc"] >= 0.95
    assert hist.epochs[-1]["loss"] < hist.epochs[0]["loss"]
    scores, targets = predict(model, _loader(ds))
    assert scores.shape == (64, 2) and abs(scores.sum(1) - 1).max() < 1e-5
    assert (targets == ds.tensors[1].numpy()).all()


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    ds = _problem()

    def run(epochs, ckpt):
        torch.manual_seed(0)
        model = nn.Linear(4, 2)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=6)
        fit(model, _loader(ds), epochs=epochs, optimizer=opt, scheduler=sched, loss_fn=nn.functional.cross_entropy,
            checkpoint=ckpt, progress=False)
        return model, opt

    straight, _ = run(6, tmp_path / "a.pt")
    run(3, tmp_path / "b.pt")  # "interrupted" after 3 epochs
    resumed, opt = run(6, tmp_path / "b.pt")
    for p, q in zip(straight.parameters(), resumed.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)  # cosine schedule reached its end
    assert torch.load(tmp_path / "b.pt", weights_only=False)["epoch"] == 5


def test_early_stopping_stops_and_restores_the_best_epoch():
    stopper = EarlyStopping(patience=2, monitor="val_loss", mode="min")
    values = iter([0.9, 0.5, 0.7, 0.8, 0.1])
    best_weights = {}

    def val_fn(model, loader, device):
        v = next(values)
        if v == 0.5:
            best_weights["w"] = copy.deepcopy(model.weight.detach())
        return {"val_loss": v}

    model = nn.Linear(4, 2)
    ds = _problem()
    hist = fit(model, _loader(ds), epochs=10, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
               loss_fn=nn.functional.cross_entropy, val_loader=[], val_fn=val_fn, early_stopping=stopper,
               progress=False)
    assert [r["val_loss"] for r in hist.epochs] == [0.9, 0.5, 0.7, 0.8]
    assert hist.stopped_early and stopper.best_epoch == 2
    assert torch.equal(model.weight.detach(), best_weights["w"])


def test_gradient_accumulation_equals_one_big_batch():
    ds = _problem(n=32)

    def one_step(batch_size, accumulate):
        torch.manual_seed(0)
        model = nn.Linear(4, 2)
        fit(model, _loader(ds, batch_size), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            loss_fn=nn.functional.cross_entropy, accumulate=accumulate, progress=False)
        return model.weight.detach()

    assert torch.allclose(one_step(32, 1), one_step(8, 4), atol=1e-6)


def test_fit_rejects_ambiguous_arguments():
    model = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="exactly one of loss_fn"):
        fit(model, [], epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    with pytest.raises(KeyError, match="val_acc"):
        EarlyStopping(monitor="val_acc", mode="max").update({"val_loss": 1.0})


def test_the_same_checkpoint_saved_anywhere_has_the_same_bytes_and_digest(tmp_path):
    from esclib.experiments.base import checkpoint_identity
    from esclib.train.checkpoint import atomic_save, load_checkpoint

    content = {"iteration": 3, "model": {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}}
    first, second = tmp_path / "a" / "checkpoint.pth", tmp_path / "b" / "other.pth"
    atomic_save(content, first)
    atomic_save(content, second)
    assert first.read_bytes() == second.read_bytes()
    assert checkpoint_identity(first, "mini")["digest"] == checkpoint_identity(second, "mini")["digest"]
    loaded = load_checkpoint(second)
    assert loaded["iteration"] == 3 and torch.equal(loaded["model"]["w"], content["model"]["w"])
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["checkpoint.pth"]  # no temporary file left
    atomic_save({**content, "iteration": 4}, first)
    assert first.read_bytes() != second.read_bytes()


def test_a_save_that_cannot_be_written_names_its_file_and_leaves_no_file(tmp_path, monkeypatch):
    """A write that fails (here the process's file size limit; on CI a full disk, which torch alone reports as
    'unexpected pos') raises an OSError naming the checkpoint, and neither the checkpoint nor a temporary file is
    left; a disk with less room than the tensors need is refused before anything is written."""
    import resource
    import shutil
    import signal

    from esclib.train.checkpoint import atomic_save, tensor_bytes

    content = {"model": {"w": torch.zeros(1 << 20), "view": None},
               "optimizer": [torch.ones(3), (torch.ones(2).to_sparse(),)]}  # a sparse tensor is not counted
    content["model"]["view"] = content["model"]["w"][:10]  # shares w's storage: counted once
    assert tensor_bytes(content) == 4 * (1 << 20) + 4 * 3
    path = tmp_path / "run.pt"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))
    try:
        with pytest.raises(OSError, match=f"cannot save {path}: File too large"):
            atomic_save(content, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert list(tmp_path.iterdir()) == []

    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10 << 30, 10 << 30, 1 << 20))
    with pytest.raises(OSError, match=rf"cannot save {path}: it needs about 4 MiB and its disk has 1 MiB free"):
        atomic_save(content, path)
    assert list(tmp_path.iterdir()) == []
