"""Study 002's CAE (chapter 3): unpooling, decoder shapes, encoder transfer, pre-training, the experiment's helpers."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader, TensorDataset

from esclib.data.clips import ClipSet
from esclib.experiments import cae as exp
from esclib.features import CAEInput
from esclib.models.cae import CAEClassifier, CAEEncoder, ConvAutoencoder, Switches, Unpool2d, Upsample2d
from esclib.results.store import ResultsStore
from esclib.train import EarlyStopping, fit, steps

# a 4x5 map (odd width: the last column is dropped by 2x2 floor pooling) and where each block's maximum sits
HAND = torch.tensor([[1., 5., 0., 2., 9.],
                     [3., 0., 7., 1., 8.],
                     [0., 4., 2., 6., 1.],
                     [8., 1., 3., 0., 7.]]).view(1, 1, 4, 5)
MAX_AT = {(0, 0): (0, 1), (0, 1): (1, 2), (1, 0): (3, 0), (1, 1): (2, 3)}


def _pooled_hand():
    pooled, indices = torch.nn.MaxPool2d(2, return_indices=True)(HAND)
    return pooled, Switches(indices, HAND.shape[-2:])


def test_unpooling_puts_each_value_back_where_its_maximum_was_and_zeros_elsewhere():
    pooled, switches = _pooled_hand()
    assert pooled.flatten().tolist() == [5., 7., 8., 6.]
    values = torch.tensor([[10., 20.], [30., 40.]]).view(1, 1, 2, 2)
    out = Unpool2d()(values, switches)
    expected = torch.zeros(1, 1, 4, 5)
    for (i, j), (r, c) in MAX_AT.items():
        expected[0, 0, r, c] = values[0, 0, i, j]
    assert out.shape == HAND.shape
    assert torch.equal(out, expected)


def test_upsampling_repeats_each_value_and_zero_pads_to_the_pre_pool_size():
    _, switches = _pooled_hand()
    values = torch.tensor([[10., 20.], [30., 40.]]).view(1, 1, 2, 2)
    expected = torch.tensor([[10., 10., 20., 20., 0.],
                             [10., 10., 20., 20., 0.],
                             [30., 30., 40., 40., 0.],
                             [30., 30., 40., 40., 0.]]).view(1, 1, 4, 5)
    assert torch.equal(Upsample2d()(values, switches), expected)


def test_encoder_pools_28x36_down_to_3x4_with_floor():
    encoder = CAEEncoder(filters=8)
    code, switches = encoder.encode(torch.randn(2, 1, 28, 36))
    assert code.shape == (2, 8, 3, 4)
    assert [tuple(s.size) for s in switches] == [(28, 36), (14, 18), (7, 9)]
    assert encoder.code_shape((28, 36)) == (8, 3, 4)


@pytest.mark.parametrize("decoder", ["unpool", "upsample"])
@pytest.mark.parametrize("size", [(28, 36), (64, 87)])
def test_decoder_output_has_the_input_shape(decoder, size):
    model = ConvAutoencoder(filters=8, decoder=decoder)
    x = torch.randn(3, 1, *size, requires_grad=True)
    out = model(x)
    assert out.shape == x.shape
    out.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_unpooling_decoder_leaves_only_the_bias_where_no_maximum_was():
    # with a 1x1 last transposed convolution, the unpooled map's zeros show through (plus the bias)
    model = ConvAutoencoder(filters=4, kernel_sizes=(1, 3, 3), decoder="unpool")
    x = torch.randn(1, 1, 28, 36)
    with torch.no_grad():
        code, switches = model.encoder.encode(x)
        out = model.decoder(code, switches)
    bias = model.decoder.deconvs[-1].bias
    hit = torch.zeros(28 * 36, dtype=torch.bool)
    hit[switches[0].indices.flatten()] = True
    assert torch.allclose(out.flatten()[~hit], bias.expand((~hit).sum()))


def test_bad_inputs_are_refused_with_the_expected_shape_in_the_message():
    with pytest.raises(ValueError, match="height, width >= 8"):
        ConvAutoencoder(filters=4)(torch.randn(1, 1, 6, 36))
    with pytest.raises(ValueError, match="decoder must be one of"):
        ConvAutoencoder(decoder="transpose")
    with pytest.raises(ValueError, match="hidden_activation"):
        CAEClassifier(hidden_activation="tanh")


def test_pretrained_encoder_weights_transfer_into_the_classifier():
    torch.manual_seed(0)
    cae = ConvAutoencoder(filters=8)
    pretrained = CAEClassifier((28, 36), 50, filters=8).load_encoder(cae)
    torch.manual_seed(1)
    scratch = CAEClassifier((28, 36), 50, filters=8)
    source = cae.encoder.state_dict()
    assert set(pretrained.encoder.state_dict()) == set(source)
    for name, tensor in pretrained.encoder.state_dict().items():
        assert torch.equal(tensor, source[name])
        assert not torch.equal(scratch.encoder.state_dict()[name], source[name])
    # copied, not shared: fine-tuning the classifier leaves the autoencoder as it was
    with torch.no_grad():
        pretrained.encoder.convs[0].weight.add_(1.0)
    assert not torch.equal(pretrained.encoder.convs[0].weight, cae.encoder.convs[0].weight)


def test_classifier_shape_hidden_activation_and_mismatched_encoder():
    linear = CAEClassifier((28, 36), 50, filters=8)
    relu = CAEClassifier((28, 36), 50, filters=8, hidden_activation="relu")
    assert linear.head[1].in_features == 8 * 3 * 4 and linear.head[1].out_features == 128
    assert isinstance(linear.head[2], torch.nn.Identity) and isinstance(relu.head[2], torch.nn.ReLU)
    assert linear(torch.randn(5, 1, 28, 36)).shape == (5, 50)
    assert CAEClassifier((64, 87), 10, filters=8)(torch.randn(2, 1, 64, 87)).shape == (2, 10)
    with pytest.raises(ValueError, match="filters"):
        linear.load_encoder(ConvAutoencoder(filters=16))


def _spectrogram_like(n, seed=0):
    """Smooth, structured 28x36 'spectrograms' in dB (something an autoencoder can learn)."""
    g = torch.Generator().manual_seed(seed)
    mels, frames = torch.linspace(0, 1, 28).view(28, 1), torch.linspace(0, 1, 36).view(1, 36)
    centre, width = torch.rand(n, 1, 1, 1, generator=g), 0.05 + 0.2 * torch.rand(n, 1, 1, 1, generator=g)
    onset = torch.rand(n, 1, 1, 1, generator=g)
    x = -80 * (1 - torch.exp(-((mels - centre) / width) ** 2) * torch.sigmoid(20 * (frames - onset)))
    return x


@pytest.mark.parametrize("decoder", ["unpool", "upsample"])
def test_a_few_epochs_of_pretraining_reduce_the_reconstruction_loss(decoder):
    torch.manual_seed(0)
    x = _spectrogram_like(64)
    loader = DataLoader(TensorDataset(x), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(_spectrogram_like(32, seed=1)), batch_size=32)
    model = ConvAutoencoder(filters=8, decoder=decoder)
    before = steps.reconstruction_loss(model, val)["val_loss"]
    history = fit(model, loader, epochs=6, optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
                  step_fn=steps.reconstruction_step, val_loader=val, val_fn=steps.reconstruction_loss,
                  early_stopping=EarlyStopping(5, "val_loss", "min"), progress=False)
    after = steps.reconstruction_loss(model, val)["val_loss"]
    assert after < 0.5 * before
    assert history.epochs[-1]["loss"] < history.epochs[0]["loss"]
    assert after == pytest.approx(min(r["val_loss"] for r in history.epochs), rel=1e-5)


def test_reconstruction_loss_is_the_mean_squared_error_over_every_bin():
    x = torch.randn(10, 1, 28, 36)

    class Shift(torch.nn.Module):
        def forward(self, t):
            return t + 2.0

    loader = DataLoader(TensorDataset(x), batch_size=3)
    assert steps.reconstruction_loss(Shift(), loader)["val_loss"] == pytest.approx(4.0)


def test_study_split_sizes_are_1280_320_400_on_2000_clips():
    assert exp.study_split_sizes(2000) == (1280, 320, 400)
    assert sum(exp.study_split_sizes(137)) == 137


def test_labelled_equivalent_interpolates_the_scratch_curve():
    curve = pd.DataFrame({
        "arm": ["supervised"] * 3 + ["cae-unpool"] * 3,
        "labelled_fraction": [0.25, 0.5, 1.0] * 2,
        "n_train": [100, 200, 400] * 2,
        "accuracy": [0.2, 0.3, 0.5, 0.25, 0.4, 0.6],
    })
    worth = exp.labelled_equivalent(curve).set_index("labelled_clips")
    assert worth.loc[100, "supervised clips for it"] == pytest.approx(150.0)  # 0.25 halfway from 0.2 to 0.3
    assert worth.loc[200, "supervised clips for it"] == pytest.approx(300.0)  # 0.4 halfway from 0.3 to 0.5
    assert np.isnan(worth.loc[400, "supervised clips for it"])  # 0.6: scratch never gets there
    assert worth.loc[100, "worth (x labelled clips)"] == pytest.approx(1.5)


def _tiny_world(tmp_path, n_classes=2, per_class=10, n_unlabelled=24):
    """A two-class ESC-50-like set (5 folds) and an ESC-US-like pool of 5 s WAV files at 44.1 kHz."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(220500) / 44100

    def write(path, freq):
        sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype("float32"),
                 44100)

    rows = []
    for c in range(n_classes):
        for i in range(per_class):
            path = tmp_path / f"esc-{c}-{i}.wav"
            write(path, 300 * (c + 1) * (1 + 0.05 * i))
            rows.append({"clip_id": path.name, "path": str(path), "fold": i % 5 + 1, "target": c,
                         "category": f"class{c}", "source": path.stem})
    esc = ClipSet("esc50", tmp_path, tuple(f"class{c}" for c in range(n_classes)), 5, 5.0, pd.DataFrame(rows))
    us_rows = []
    for i in range(n_unlabelled):
        path = tmp_path / f"us-{i:02d}.wav"
        write(path, 200 + 50 * i)
        us_rows.append({"clip_id": path.name, "path": str(path), "fold": 0, "target": -1, "category": "",
                        "source": path.stem})
    return esc, ClipSet("escus", tmp_path, (), 0, 5.0, pd.DataFrame(us_rows))


def test_cae_inputs_are_the_cae_input_of_each_clip_and_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    esc, _ = _tiny_world(tmp_path, per_class=2)
    feature = CAEInput()
    x = exp.cae_inputs(esc, feature, progress=False)
    assert x.shape == (4, 1, 28, 36)
    wave = torch.from_numpy(sf.read(esc.paths[2], dtype="float32")[0]).unsqueeze(0)
    np.testing.assert_allclose(x[2], feature(wave)[0].numpy(), atol=1e-4)
    again = exp.cae_inputs(esc, feature, progress=False)
    assert again.filename == x.filename and len(list((tmp_path / "cache" / "cae-inputs").glob("*.npy"))) == 1
    larger = exp.cae_inputs(esc, CAEInput(n_mels=40, n_fft=2048, hop_length=1024), progress=False)
    assert larger.shape == (4, 1, 40, 216)
    # a changed file is a new cache entry, never the stale array
    sf.write(esc.paths[2], np.zeros(44100, dtype="float32"), 44100)
    changed = exp.cae_inputs(esc, feature, progress=False)
    assert changed.filename != x.filename and not np.allclose(changed[2], x[2])


def test_pretraining_pool_takes_the_first_clips_in_path_order_and_holds_out_validation(tmp_path):
    _, us = _tiny_world(tmp_path, per_class=1)
    pool = exp.pretraining_pool(us, 20)
    ids = sorted(pool.train.table["clip_id"].tolist() + pool.val.table["clip_id"].tolist()
                 + pool.test.table["clip_id"].tolist())
    assert ids == [f"us-{i:02d}.wav" for i in range(20)]
    assert len(pool.val) == 4 and pool.kind == "random"
    with pytest.raises(ValueError, match="pool_size=99"):
        exp.pretraining_pool(us, 99)


def _recipe(**changes) -> exp.FinetuneRecipe:
    base = dict(n_mels=28, n_fft=12288, hop_length=6144, lr=1e-3, batch_size=8, filters=4, pretrain_epochs=2,
                patience=1, finetune_epochs=2, labelled_fraction=1.0, hidden_activation="linear")
    return exp.FinetuneRecipe(**{**base, **changes})


def _experiments(esc, us, store):
    pretraining = exp.CAEPretraining(exp.pretraining_pool(us, None), store=store, progress=False)
    return pretraining, exp.CAEExperiment(esc, pretraining, store=store, progress=False)


def test_experiment_runs_records_and_reuses_finished_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    esc, us = _tiny_world(tmp_path)
    store = ResultsStore(tmp_path / "results")
    pretraining, experiment = _experiments(esc, us, store)
    splits = experiment.splits(random=True, folds=[1])
    runs = experiment.run_grid(["supervised", "cae-unpool"], _recipe(), [8], [4], splits)
    frame = runs.frame()
    assert len(runs) == 4 and set(frame["split"]) == {"random", "folds"}
    assert frame["accuracy"].between(0, 1).all()
    random_run = frame[(frame["split"] == "random") & (frame["arm"] == "cae-unpool")].iloc[0]
    assert random_run["n_test"] == 4 and random_run["n_train"] == 13  # 20 clips: 13 / 3 / 4
    pretrain = list(store.results("cae_pretrain"))
    assert len(pretrain) == 1 and pretrain[0]["curves"][0]["val_loss"] > 0
    # the pre-trained arm's identity names the pre-training run its encoder came from
    unpool = runs.select(arm="cae-unpool")[0]
    assert unpool["identity"]["inputs"]["encoder"] == pretrain[0]["id"]
    again = _experiments(esc, us, store)[1].run_grid(["supervised", "cae-unpool"], _recipe(), [8], [4], splits)
    assert [r["metrics"] for r in again] == [r["metrics"] for r in runs]
    assert len(list(store.results("cae"))) == 4
    # any other recipe value is another run: a new result beside the first, never the stale one
    faster = _experiments(esc, us, store)[1].run_grid(["supervised"], _recipe(lr=1e-2), [8], [4], splits[:1])
    assert faster[0]["identity"]["recipe"]["lr"] == 1e-2 and len(list(store.results("cae"))) == 5
    table = runs.summary(["accuracy"])
    assert set(table["arm"]) == {"supervised", "cae-unpool"} and (table["runs"] == 1).all()


def test_pretraining_weights_are_kept_and_the_classifier_starts_from_them(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    esc, us = _tiny_world(tmp_path)
    pretraining, experiment = _experiments(esc, us, ResultsStore(tmp_path / "results"))
    recipe = _recipe()
    model, result = pretraining.pretrained("cae-unpool", recipe.pretraining)
    weights = pretraining.artifact(result, "autoencoder.pt")
    assert weights.is_file()
    again, _ = pretraining.pretrained("cae-unpool", recipe.pretraining)
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    weights.unlink()  # a result whose weights are gone is trained again (same identity, same weights)
    rebuilt, _ = pretraining.pretrained("cae-unpool", recipe.pretraining)
    for a, b in zip(model.state_dict().values(), rebuilt.state_dict().values()):
        assert torch.equal(a, b)


def test_same_parameters_give_the_same_numbers_under_other_folders(tmp_path, monkeypatch):
    """No seed depends on a path: the world copied elsewhere, other cache and results folders, same metrics."""
    metrics = []
    for name in ("a", "b"):
        monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / name / "cache"))
        esc, us = _tiny_world(tmp_path / name / "data")
        _, experiment = _experiments(esc, us, ResultsStore(tmp_path / name / "results"))
        runs = experiment.run_grid(["supervised", "cae-unpool"], _recipe(), [8], [4], [("folds", 1)])
        metrics.append([(r["arm"], r["id"], r["metrics"]["accuracy"], r["metrics"]["val_acc"], r["curves"])
                        for r in runs])
    assert metrics[0] == metrics[1]


def test_chapter_spec_resolves_the_study_protocol_and_names_bad_values():
    from esclib.runner.spec import resolve
    from esclib.runner.specs.ch03_cae import SPEC

    paper = resolve(SPEC, "paper")
    assert paper["batch_sizes"] == (16, 32, 64) and paper["filters"] == (64,) and paper["pool_size"] == 50_000
    assert paper["folds"] == "all" and paper["random_split"] is True and paper["hidden_activation"] == "linear"
    quick = resolve(SPEC, "quick", filters="16,32", labelled_fractions=[0.5, 0.1])
    assert quick["filters"] == (16, 32) and quick["labelled_fractions"] == (0.1, 0.5)
    with pytest.raises(ValueError, match="'batch_sizes'"):
        resolve(SPEC, "quick", batch_sizes="32,zero")
    with pytest.raises(ValueError, match="'arms'"):
        resolve(SPEC, "quick", arms="supervised,cae-transpose")
    with pytest.raises(ValueError, match="'labelled_fractions'"):
        resolve(SPEC, "quick", labelled_fractions="0.5,1.5")
