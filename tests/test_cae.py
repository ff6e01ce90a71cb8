"""Study 002's CAE (chapter 3): unpooling, decoder shapes, encoder transfer, pre-training, the study's splits, model
selection, the experiment's helpers."""

import copy

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader, TensorDataset

from esclib.data.clips import ClipSet
from esclib.experiments import cae as exp
from esclib.features import CAEInput
from esclib.data.splits import LeakError
from esclib.experiments.base import RunContext, Split
from esclib.models.cae import CAEClassifier, CAEEncoder, ConvAutoencoder, Switches, Unpool2d, Upsample2d
from esclib.results.store import ResultsStore
from esclib.results.summary import Results
from esclib.train import EarlyStopping, fit, loop, steps

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
        if name.endswith("weight"):  # biases start at zero in both (Keras' initialisation)
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
    loss, logs = steps.reconstruction_step(Shift(), (x,), torch.device("cpu"))  # the training step's loss too
    assert float(loss) == pytest.approx(4.0) and logs["loss"] == pytest.approx(4.0)


def test_study_split_sizes_are_1280_320_400_on_2000_clips():
    assert exp.study_split_sizes(2000) == (1280, 320, 400)
    assert exp.study_split_sizes(137) == (88, 22, 27)  # its notebook: test n // 5, validation (n - test) // 5
    assert exp.study_split_sizes(400) == (256, 64, 80)  # the quick synthetic ESC-50


def test_labelled_equivalent_interpolates_the_scratch_curve():
    curve = pd.DataFrame({
        "arm": ["supervised"] * 3 + ["cae-unpool"] * 3,
        "labelled_fraction": [0.25, 0.5, 1.0] * 2,
        "n_labelled": [100, 200, 400] * 2,
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
    assert len(pool.val) == 4 and len(pool.test) == 4 and pool.kind == "random"
    with pytest.raises(ValueError, match="pool_size=99"):
        exp.pretraining_pool(us, 99)


def _recipe(**changes) -> exp.FinetuneRecipe:
    base = dict(n_mels=28, n_fft=12288, hop_length=6144, lr=1e-3, batch_size=8, filters=4, pretrain_epochs=2,
                patience=1, finetune_epochs=2, labelled_fraction=1.0, hidden_activation="linear",
                selection="validation-fold", restore_best=False)
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


def test_chapter_defaults_follow_the_studys_code_in_both_profiles():
    from esclib.data.splits import SELECTIONS
    from esclib.runner.spec import resolve
    from esclib.runner.specs import ch03_cae
    from esclib.runner.specs.ch03_cae import SPEC

    assert ch03_cae.SELECTIONS == SELECTIONS and ch03_cae.ARMS == exp.ARMS  # the spec's literals follow the library
    for profile in ("quick", "paper"):
        params = resolve(SPEC, profile)
        # Dense(128) without activation, the split's validation clips pick the model, the stopped epoch is tested
        assert params["hidden_activation"] == "linear" and params["selection"] == "validation-fold"
        assert params["restore_best"] is False and params["patience"] == 5 and params["lr"] == 1e-3
        assert (params["n_mels"], params["n_fft"], params["hop_length"]) == (28, 12288, 6144)
    assert resolve(SPEC, "quick")["folds"] == "all"  # the 5 official folds in the quick book too
    with pytest.raises(ValueError, match="'selection'"):
        resolve(SPEC, "quick", selection="best-on-test")


# ------------------------------------------------------------------------------------- the study's splits
def _esc50_table(n_classes=50, per_class=40):
    """An ESC-50 clip table in the real layout (``{fold}-{source}-{take}-{target}.wav``, rows in the metadata's
    file-name order), without audio: the split functions read only the table."""
    rng = np.random.default_rng(5)
    rows = []
    for target in range(n_classes):
        for i in range(per_class):
            fold, source = i % 5 + 1, int(rng.integers(10_000, 300_000))
            rows.append({"clip_id": f"{fold}-{source}-{'AB'[i % 2]}-{target}.wav", "fold": fold, "target": target,
                         "category": f"class{target}", "source": str(source)})
    table = pd.DataFrame(rows).sort_values("clip_id").reset_index(drop=True)
    table["path"] = "/nowhere/audio/" + table["clip_id"]
    return ClipSet("esc50", "/nowhere", tuple(f"class{c}" for c in range(n_classes)), 5, 5.0, table)


def _study_datahandler_split(file_list, test_size, val_size):
    """The study's DataHandler.create_splits, step by step: np.random.seed(1337), shuffle, test / val / train."""
    np.random.seed(1337)
    files = list(file_list)
    np.random.shuffle(files)
    return files[test_size + val_size:], files[test_size:test_size + val_size], files[:test_size]


def test_the_random_split_is_the_one_the_studys_datahandler_made():
    esc = _esc50_table()
    # its file list: the class folders '101 - Dog' ... '510 - Hand saw' (targets 0..49) one after the other,
    # each folder's files by name
    by_class = esc.table.sort_values(["target", "clip_id"])
    train, val, test = _study_datahandler_split(by_class["clip_id"], 2000 // 5, (2000 - 2000 // 5) // 5)
    split = exp.evaluation_split(esc, "random")
    assert (len(split.train), len(split.val), len(split.test)) == (1280, 320, 400)
    for ours, theirs in ((split.train, train), (split.val, val), (split.test, test)):
        assert sorted(ours.table["clip_id"]) == sorted(theirs)
    # known answer: the first files of the shuffled list go to test (legacy MT19937 seeded 1337)
    first = [by_class["clip_id"].iloc[i] for i in (967, 628, 577, 89, 1171)]
    assert first == test[:5] and set(first) <= set(split.test.table["clip_id"])
    assert split.kind == "random" and split.seed == 1337


def test_the_pretraining_pool_is_the_one_the_studys_datahandler_made():
    names = [f"{folder:02d}/{i:06d}-{1000 + i}-0.0-5.0.ogg" for folder in (3, 1, 2) for i in range(40)]
    table = pd.DataFrame({"clip_id": names, "path": ["/nowhere/" + n for n in names], "fold": 0, "target": -1,
                          "category": "", "source": [n.split("-")[1] for n in names]})
    us = ClipSet("escus", "/nowhere", (), 0, 5.0, table)
    train, val, test = _study_datahandler_split(sorted(names), 16, 120 // 5)  # folders 01, 02, 03 in turn
    pool = exp.pretraining_pool(us, None)
    assert (len(pool.train), len(pool.val), len(pool.test)) == (80, 24, 16)
    for ours, theirs in ((pool.train, train), (pool.val, val), (pool.test, test)):
        assert sorted(ours.table["clip_id"]) == sorted(theirs)
    first_folder = exp.pretraining_pool(us, 40)  # the first 40 files of the study's list: all of folder 01
    assert set(first_folder.train.table["clip_id"]).issubset({n for n in names if n.startswith("01/")})


@pytest.mark.parametrize("fraction", [0.25, 1.0])
@pytest.mark.parametrize("selection", ["validation-fold", "budgeted", "last"])
def test_no_test_clip_trains_or_picks_a_model_under_any_split_or_selection(tmp_path, selection, fraction):
    esc = _esc50_table(n_classes=4, per_class=40)
    experiment = exp.CAEExperiment(esc, None, store=ResultsStore(tmp_path), progress=False)
    for kind, fold in experiment.splits(True, [1, 2, 3, 4, 5]):
        split = experiment.split_of(kind, fold, fraction, selection)
        test = set(split.test.table["clip_id"])
        used = {role: set(split.parts[role].table["clip_id"]) for role in ("train", "val") if role in split.parts}
        assert all(not (clips & test) for clips in used.values())
        if kind == "folds":  # and no recording of a test clip
            sources = set(split.test.table["source"])
            assert all(not (set(split.parts[r].table["source"]) & sources) for r in used)
        whole = experiment.split_of(kind, fold, fraction, "validation-fold")
        if selection == "budgeted":  # the validation clips come out of the label budget, not the validation fold
            assert used["val"] | used["train"] == set(whole.train.table["clip_id"]) and not used["val"] & used["train"]
            assert np.bincount(split.val.targets).min() >= 1
        elif selection == "last":
            assert "val" not in split.parts and used["train"] == set(whole.train.table["clip_id"])
        else:
            assert used["val"] == set(evaluation_val(esc, kind, fold))
        expected = round(fraction * len(exp.evaluation_split(esc, kind, fold).train))
        assert len(whole.train) == expected


def evaluation_val(esc, kind, fold):
    return exp.evaluation_split(esc, kind, fold).val.table["clip_id"]


def test_training_refuses_a_split_whose_training_clips_hold_a_test_clip(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    esc, us = _tiny_world(tmp_path)
    _, experiment = _experiments(esc, us, ResultsStore(tmp_path / "results"))
    good = experiment.split_of("folds", 1, 1.0)
    leaky = ClipSet(esc.name, esc.root, esc.classes, esc.n_folds, esc.clip_seconds,
                    pd.concat([good.train.table, good.test.table.iloc[:1]], ignore_index=True))
    bad = Split({"train": leaky, "val": good.val, "test": good.test}, "official", 1)
    with pytest.raises(LeakError, match="refusing to train"):
        experiment.run("supervised", _recipe(), bad)


# --------------------------------------------------------------------- the pre-trained encoder in the classifier
def _fit_entries(monkeypatch):
    """Record the model each fine-tuning (ctx.fit) starts from."""
    seen = []
    original = RunContext.fit

    def spy(self, model, *args, **kwargs):
        seen.append(copy.deepcopy(model))
        return original(self, model, *args, **kwargs)

    monkeypatch.setattr(RunContext, "fit", spy)
    return seen


def test_the_fine_tuned_classifier_starts_from_its_arms_pretrained_encoder(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    esc, us = _tiny_world(tmp_path)
    pretraining, experiment = _experiments(esc, us, ResultsStore(tmp_path / "results"))
    recipe = _recipe(pretrain_epochs=3)
    autoencoders = {arm: pretraining.pretrained(arm, recipe.pretraining)[0] for arm in ("cae-unpool", "cae-upsample")}
    starts = _fit_entries(monkeypatch)
    split = experiment.split_of("folds", 1, 1.0)
    for arm in ("supervised", "cae-unpool", "cae-upsample"):
        experiment.run(arm, recipe, split)
    assert len(starts) == 3
    encoders = dict(zip(("supervised", "cae-unpool", "cae-upsample"), (m.encoder.state_dict() for m in starts)))
    for arm, autoencoder in autoencoders.items():
        source = autoencoder.encoder.state_dict()
        assert set(encoders[arm]) == set(source)
        for name, tensor in source.items():
            assert torch.equal(encoders[arm][name], tensor), f"{arm}: {name} is not the pre-trained encoder's"
        other = autoencoders["cae-upsample" if arm == "cae-unpool" else "cae-unpool"].encoder.state_dict()
        assert not any(torch.equal(encoders[arm][n], other[n]) for n in source if n.endswith("weight"))
        assert not any(torch.equal(encoders["supervised"][n], source[n]) for n in source if n.endswith("weight"))
    # the autoencoders were trained: their encoders are no longer what an untrained one starts from
    torch.manual_seed(0)
    untrained = ConvAutoencoder(1, 4, exp.KERNEL_SIZES, "unpool").encoder.state_dict()
    assert not torch.equal(untrained["convs.0.weight"], encoders["cae-unpool"]["convs.0.weight"])


def test_the_encoder_comes_from_the_autoencoder_of_the_same_batch_size(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    esc, us = _tiny_world(tmp_path)
    pretraining, experiment = _experiments(esc, us, ResultsStore(tmp_path / "results"))
    for batch_size in (4, 8):
        recipe = _recipe(batch_size=batch_size)
        wanted = pretraining.pretrained("cae-unpool", recipe.pretraining)[0].encoder.state_dict()
        got = experiment.classifier("cae-unpool", recipe).encoder.state_dict()
        assert all(torch.equal(got[k], v) for k, v in wanted.items())
    small, large = (pretraining.pretrained("cae-unpool", _recipe(batch_size=b).pretraining)[1]["id"] for b in (4, 8))
    assert small != large


# ------------------------------------------------------------------------------------------ decoders
def test_the_upsampling_decoder_ignores_the_switches_and_the_unpooling_decoder_follows_them():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 28, 36)
    for kind, follows in (("unpool", True), ("upsample", False)):
        model = ConvAutoencoder(filters=4, decoder=kind)
        with torch.no_grad():
            code, switches = model.encoder.encode(x)
            moved = [Switches(s.indices.flip(-1), s.size) for s in switches]  # other maxima, same sizes
            same = torch.equal(model.decoder(code, switches), model.decoder(code, moved))
        assert same != follows, kind
    assert exp.ARM_DECODER == {"supervised": None, "cae-unpool": "unpool", "cae-upsample": "upsample"}
    assert isinstance(ConvAutoencoder(filters=4, decoder="upsample").decoder.invert, Upsample2d)
    assert isinstance(ConvAutoencoder(filters=4, decoder="unpool").decoder.invert, Unpool2d)


def test_the_decoders_last_layer_is_linear_and_the_others_are_rectified():
    model = ConvAutoencoder(filters=4, decoder="upsample")
    with torch.no_grad():
        model.decoder.deconvs[-1].bias.fill_(-1e3)  # a ReLU after the last layer would clip this to zero
        out = model(torch.randn(1, 1, 28, 36))
    assert (out < -100).all()


# ----------------------------------------------------------------------------------- the classifier head
def test_dense_128_is_linear_as_the_studys_code():
    torch.manual_seed(0)
    model = CAEClassifier((28, 36), 10, filters=8)  # the experiment's defaults: hidden 128, linear
    dense, out = model.head[1], model.head[4]
    assert (dense.in_features, dense.out_features) == (8 * 3 * 4, exp.HIDDEN) == (96, 128)
    code = torch.randn(5, 8, 3, 4) - 3.0  # mostly negative: a ReLU would change the result
    by_hand = (code.flatten(1) @ dense.weight.T + dense.bias) @ out.weight.T + out.bias
    assert torch.allclose(model.head(code), by_hand, atol=1e-5)
    relu = CAEClassifier((28, 36), 10, filters=8, hidden_activation="relu")
    relu.load_state_dict(model.state_dict())
    assert not torch.allclose(relu.head(code), by_hand, atol=1e-3)


def test_the_experiments_classifier_is_the_studys(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    esc, us = _tiny_world(tmp_path)
    _, experiment = _experiments(esc, us, ResultsStore(tmp_path / "results"))
    model = experiment.classifier("supervised", _recipe(filters=6))
    assert [m.kernel_size for m in model.encoder.convs] == [(5, 5), (3, 3), (3, 3)]
    assert model.head[1].out_features == 128 and isinstance(model.head[2], torch.nn.Identity)
    assert model.head[3].p == 0.0 and model.head[4].out_features == esc.num_classes


def test_every_layer_starts_as_keras_started_the_studys():
    torch.manual_seed(0)
    for model in (ConvAutoencoder(filters=64), CAEClassifier((28, 36), 50, filters=64)):
        layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d,
                                                                 torch.nn.Linear))]
        assert len(layers) in (6, 5)
        for layer in layers:
            assert torch.count_nonzero(layer.bias) == 0
            w = layer.weight
            receptive = w[0, 0].numel()
            bound = (6 / ((w.shape[0] + w.shape[1]) * receptive)) ** 0.5  # Glorot uniform
            assert w.abs().max() <= bound
            if w.numel() > 5000:  # uniform on [-bound, bound]: sd = bound / sqrt(3)
                assert float(w.detach().std()) == pytest.approx(bound / 3 ** 0.5, rel=0.05)


# --------------------------------------------------------------------------------------- early stopping
class _Scripted:
    """A validation function that reports scripted accuracies and keeps a copy of the weights it saw."""

    def __init__(self, accuracies):
        self.accuracies, self.seen = list(accuracies), []

    def __call__(self, model, loader, device):
        self.seen.append(copy.deepcopy(model.state_dict()))
        return {"val_acc": self.accuracies[len(self.seen) - 1]}


@pytest.mark.parametrize("restore_best", [True, False])
def test_early_stopping_tests_the_best_epoch_or_the_epoch_it_stopped_at(restore_best):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    data = DataLoader(TensorDataset(torch.randn(16, 3), torch.randint(0, 2, (16,))), batch_size=4)
    scripted = _Scripted([0.2, 0.6, 0.4, 0.5, 0.3, 0.9])  # best at epoch 2; patience 3 stops after epoch 5
    history = fit(model, data, epochs=6, optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
                  loss_fn=torch.nn.functional.cross_entropy, val_loader=data, val_fn=scripted,
                  early_stopping=EarlyStopping(3, "val_acc", "max"), restore_best=restore_best, progress=False)
    assert len(history.epochs) == 5 and history.stopped_early
    kept = scripted.seen[1] if restore_best else scripted.seen[4]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in kept.items())
    assert not torch.equal(scripted.seen[1]["weight"], scripted.seen[4]["weight"])


@pytest.mark.parametrize("restore_best", [True, False])
def test_the_experiment_tests_the_weights_its_recipe_keeps(tmp_path, monkeypatch, restore_best):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    esc, us = _tiny_world(tmp_path)
    _, experiment = _experiments(esc, us, ResultsStore(tmp_path / "results"))
    validated, tested = [], []
    evaluate, predict = loop.evaluate, exp.predict

    def spy_evaluate(model, *args, **kwargs):
        validated.append(copy.deepcopy(model.state_dict()))
        return evaluate(model, *args, **kwargs)

    def spy_predict(model, *args, **kwargs):
        tested.append(copy.deepcopy(model.state_dict()))
        return predict(model, *args, **kwargs)

    monkeypatch.setattr(loop, "evaluate", spy_evaluate)
    monkeypatch.setattr(exp, "predict", spy_predict)
    recipe = _recipe(finetune_epochs=12, patience=2, lr=3e-2, restore_best=restore_best)
    result = experiment.run("supervised", recipe, experiment.split_of("folds", 1, 1.0))
    metrics, curve = result["metrics"], [c["val_acc"] for c in result["curves"]]
    assert metrics["best_epoch"] == 1 + int(np.argmax(curve))  # the first best epoch
    assert metrics["kept_epoch"] == (metrics["best_epoch"] if restore_best else len(curve))
    kept = validated[metrics["kept_epoch"] - 1]
    assert all(torch.equal(tested[-1][k], v) for k, v in kept.items())


def test_last_trains_the_whole_schedule_without_validation(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    esc, us = _tiny_world(tmp_path)
    _, experiment = _experiments(esc, us, ResultsStore(tmp_path / "results"))
    recipe = _recipe(finetune_epochs=4, selection="last")
    result = experiment.run("supervised", recipe, experiment.split_of("folds", 1, 1.0, "last"))
    assert result["metrics"]["kept_epoch"] == result["metrics"]["epochs"] == 4
    assert result["metrics"]["n_val"] == 0 and "val_acc" not in result["curves"][0]
    budgeted = experiment.run("supervised", recipe.replace(selection="budgeted"),
                              experiment.split_of("folds", 1, 1.0, "budgeted"))["metrics"]
    assert budgeted["n_labelled"] == budgeted["n_train"] + budgeted["n_val"] and budgeted["n_val"] >= 2


# ------------------------------------------------------------------------------------------- summaries
def _result(arm, split, fold, accuracy, batch_size=32, fraction=1.0, selection="validation-fold"):
    setting = {"dataset": "esc50", "split": split, **({"fold": fold} if fold else {}), "batch_size": batch_size,
               "filters": 16, "labelled_fraction": fraction, "selection": selection}
    identity = {"experiment": "cae", "arm": arm, "seed": 0, "recipe": {"batch_size": batch_size},
                "split": f"{split}{fold}", "setting": setting}
    return {"experiment": "cae", "arm": arm, "id": f"{arm}{split}{fold}{batch_size}", "setting": setting,
            "identity": identity, "metrics": {"accuracy": accuracy, "n_train": 100, "n_val": 20,
                                              "n_labelled": 100, "kept_epoch": 7}}


def test_paired_table_gives_the_fold_differences_and_the_random_split_apart():
    runs = Results([_result("supervised", "folds", f, a) for f, a in zip(range(1, 6), [.5, .6, .4, .5, .7])]
                   + [_result("cae-unpool", "folds", f, a) for f, a in zip(range(1, 6), [.6, .6, .5, .4, .9])]
                   + [_result("supervised", "random", None, .55), _result("cae-unpool", "random", None, .50)]
                   + [_result("supervised", "folds", 1, .3, batch_size=16)])
    table = exp.paired_table(runs)
    assert len(table) == 1 and table.loc[0, "batch_size"] == 32  # batch size 16 has no cae-unpool run
    assert table.loc[0, "mean difference"] == pytest.approx(0.06)
    assert table.loc[0, "random split"] == pytest.approx(-0.05)
    assert table.loc[0, "folds"] == 5 and table.loc[0, "folds higher"] == "3/5"
    assert exp.paired_table(Results(r for r in runs if r["arm"] == "supervised")).empty
    selection = exp.selection_table(runs.select(batch_size=32))
    assert selection.loc[0, "cae-unpool − supervised"].startswith("+0.060")


def test_mean_image_mse_and_the_linear_probe_known_answers():
    reference = np.stack([np.zeros((1, 2, 2)), np.array([[[0., 2.], [4., 6.]]])])  # mean image [[0, 1], [2, 3]]
    assert exp.mean_image_mse(reference, np.full((3, 1, 2, 2), 3.0)) == pytest.approx((9 + 4 + 1 + 0) / 4)
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 30)
    x = rng.normal(size=(90, 5)) + 6 * np.eye(3, 5)[y]  # three well-separated classes
    assert exp.probe_accuracy(x[::2], y[::2], x[1::2], y[1::2]) == 1.0
    assert exp.probe_accuracy(x[::2], y[::2], x[1::2], (y[1::2] + 1) % 3) == 0.0


def test_curve_story_gives_each_budget_its_own_verdict():
    up, down = [.1, .12, .08, .1, .11], [-.2, -.25, -.15, -.2, -.3]
    runs = Results([_result("supervised", "folds", f, .5, fraction=p) for p in (.25, 1.0) for f in range(1, 6)]
                   + [_result("cae-unpool", "folds", f, .5 + d, fraction=.25) for f, d in zip(range(1, 6), down)]
                   + [_result("cae-unpool", "folds", f, .5 + d, fraction=1.0) for f, d in zip(range(1, 6), up)])
    story = exp.curve_story(runs)
    assert story == "25% of the labels: -0.220 (hurts); 100%: +0.102 (helps)"
    assert exp.effect_words(-0.1, 0.2) == "makes no difference the folds can detect"
    assert exp.curve_story(Results()) == "not run"
