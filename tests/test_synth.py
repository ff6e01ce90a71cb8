"""esclib.data.synth: the synthetic worlds' layouts, metadata, audio formats, determinism and resumability."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from esclib.data.synth import SIZES, generate, plan
from esclib.data.synth.build import world_lock
from esclib.data.synth.classes import CATALOGUE, ESC10, ESC50, EXTRA, FAMILIES, SOUND_TYPES, US8K, L, R
from esclib.data.synth.events import GENERATORS, harmonic
from esclib.data.synth.files import without_riff_chunk, write_audio
from esclib.data.synth.ontology import LABELS, SOURCE_TYPES, coverage, pretraining_only
from esclib.data.synth.scene import Channel, active_rms, apply_channel, render_example

ESC50_COLUMNS = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
US8K_COLUMNS = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
US8K_NAMES = ["air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling", "engine_idling", "gun_shot",
              "jackhammer", "siren", "street_music"]


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    """The four worlds at size ``tiny``, seed 0."""
    base = tmp_path_factory.mktemp("synth")
    return {name: generate(name, base / name, "tiny", seed=0, workers=1, progress=False)
            for name in ("esc50", "us8k", "escus", "audioset-mini")}


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_esc50_layout_metadata_and_audio(trees):
    root = trees["esc50"]
    meta = pd.read_csv(root / "meta" / "esc50.csv")
    assert list(meta.columns) == ESC50_COLUMNS
    size = SIZES["esc50"]["tiny"]
    names = [c.name for c in size["classes"]]
    assert len(meta) == len(names) * size["clips_per_class"]
    assert sorted(meta.groupby("target").category.first().tolist()) == sorted(names)
    assert meta.esc10.dtype == bool and meta.esc10.eq(meta.category.isin(ESC10)).all()
    assert (meta.groupby(["target", "fold"]).size() == size["clips_per_class"] // 5).all()
    assert (meta.groupby("src_file").fold.nunique() == 1).all(), "one source recording, one fold"
    for row in meta.itertuples():
        assert row.filename == f"{row.fold}-{row.src_file}-{row.take}-{row.target}.wav"
        info = sf.info(root / "audio" / row.filename)
        assert (info.samplerate, info.frames, info.channels, info.subtype) == (44100, 220500, 1, "PCM_16")
    assert sorted(p.name for p in (root / "audio").iterdir()) == sorted(meta.filename)


def test_us8k_layout_slices_and_formats(trees):
    root = trees["us8k"]
    meta = pd.read_csv(root / "metadata" / "UrbanSound8K.csv")
    assert list(meta.columns) == US8K_COLUMNS
    assert set(meta.fold) == set(range(1, 11)) and set(meta.salience) <= {1, 2}
    assert all(US8K_NAMES[c] == name for c, name in zip(meta.classID, meta["class"]))
    assert (meta.groupby("fsID").fold.nunique() == 1).all()
    assert ((meta.end - meta.start) <= 4.0 + 1e-6).all()
    rates, channels = set(), set()
    for row in meta.itertuples():
        fs_id, class_id, occurrence, k = map(int, Path(row.slice_file_name).stem.split("-"))
        assert (fs_id, class_id) == (row.fsID, row.classID)
        info = sf.info(root / "audio" / f"fold{row.fold}" / row.slice_file_name)
        assert abs(info.frames / info.samplerate - (row.end - row.start)) < 2.0 / info.samplerate + 1e-6
        rates.add(info.samplerate)
        channels.add(info.channels)
    assert len(rates) >= 2 and channels <= {1, 2}
    starts = meta.assign(occ=meta.slice_file_name.str.split("-").str[2],
                         k=meta.slice_file_name.str.split("-").str[3].str[:-4].astype(int))
    for _, group in starts.groupby(["fsID", "occ"]):
        origin = group.start - 0.5 * group.k
        assert np.allclose(origin, origin.iloc[0], atol=1e-5), "slice k starts 0.5 k s after its occurrence"


def test_escus_layout(trees):
    root = trees["escus"]
    files = sorted(root.glob("*/*.ogg"))
    assert len(files) == SIZES["escus"]["tiny"]["n_clips"]
    pattern = re.compile(r"^(\d{6})-(\d+)-(\d+\.\d)-(\d+\.\d)\.ogg$")
    ids = []
    for path in files:
        match = pattern.match(path.name)
        assert match and re.fullmatch(r"\d\d", path.parent.name)
        assert float(match[4]) - float(match[3]) == 5.0
        ids.append(int(match[1]))
        info = sf.info(path)
        assert (info.samplerate, info.frames, info.channels, info.format) == (44100, 220500, 1, "OGG")
    assert sorted(ids) == list(range(1, len(files) + 1))
    recordings = pd.read_csv(root / "ESC-US.csv")
    assert list(recordings.columns) == ["freesound_id", "n_clips", "tags"]
    assert recordings.n_clips.sum() == len(files) and (root / "README.txt").is_file()


def test_audioset_mini_layout_and_labels(trees):
    root = trees["audioset-mini"]
    lines = (root / "metadata" / "balanced_train_segments.csv").read_text().splitlines()
    assert [line.startswith("#") for line in lines[:4]] == [True, True, True, False]
    assert lines[2] == "# YTID, start_seconds, end_seconds, positive_labels"
    indices = pd.read_csv(root / "metadata" / "class_labels_indices.csv")
    assert list(indices.columns) == ["index", "mid", "display_name"]
    assert indices.display_name.tolist() == list(SOUND_TYPES + FAMILIES) == list(LABELS)
    row = re.compile(r'^([A-Za-z0-9_-]{11}), (\d+\.000), (\d+\.000), "([^"]+)"$')
    name_of = dict(zip(indices.mid, indices.display_name))
    counts = []
    for line in lines[3:]:
        match = row.match(line)
        assert match, line
        assert float(match[3]) - float(match[2]) == 5.0
        labels = {name_of[mid] for mid in match[4].split(",")}
        types = labels & set(SOUND_TYPES)
        assert types and labels - types == {parent_of[t] for t in types}, "each sound type with its parent, only"
        counts.append(len(types))
        info = sf.info(root / "audios" / "balanced_train_segments" / f"Y{match[1]}.wav")
        assert (info.samplerate, info.frames, info.channels) == (16000, 80000, 1)
    assert len(counts) == SIZES["audioset-mini"]["tiny"]["n_clips"] and max(counts) >= 2, "mixtures are multi-label"


parent_of = {c.label: c.family for c in CATALOGUE.values()}


def test_audioset_mini_labels_are_the_sources_it_mixes(tmp_path):
    the_plan = plan("audioset-mini", tmp_path, "tiny", seed=3)
    indices = pd.read_csv(io.StringIO(the_plan.metadata["metadata/class_labels_indices.csv"]))
    name_of = dict(zip(indices.mid, indices.display_name))
    rows = [line for line in the_plan.metadata["metadata/balanced_train_segments.csv"].splitlines()
            if not line.startswith("#")]
    for job, line in zip(the_plan.jobs, rows):
        assert Path(job.outputs[0].path).stem == "Y" + line.split(",")[0]
        mixed = [CATALOGUE[layer.cls] for layer in job.scene.layers]
        assert {name_of[mid] for mid in line.split('"')[1].split(",")} == {
            label for cls in mixed for label in (cls.label, cls.family)}
        assert len({cls.label for cls in mixed}) == len(mixed), "the sources of a clip are distinct sound types"
        assert max(layer.level_db for layer in job.scene.layers) == 0.0
        assert min(layer.level_db for layer in job.scene.layers) >= -10.0


# --- how the worlds relate: the mini-AudioSet's ontology covers the downstream classes ----------------------------
@pytest.mark.parametrize("downstream", [ESC50, US8K], ids=["esc50", "us8k"])
def test_every_downstream_class_has_a_mini_audioset_label_drawn_from_its_own_model(downstream):
    by_label = {cls.label: cls for cls in SOURCE_TYPES}
    for cls in downstream:
        assert cls.label in LABELS and cls.family in LABELS
        source = by_label[cls.label]
        assert (source.generator, source.params, source.pattern) == (cls.generator, cls.params, cls.pattern), (
            f"{cls.name}: the mini-AudioSet's {cls.label!r} recordings come from another sound model")
    table = coverage(downstream)
    assert table["class"].tolist() == [c.name for c in downstream]
    assert table["mini-AudioSet label"].isin(LABELS).all() and table["parent"].isin(FAMILIES).all()


def test_one_label_per_sound_model_and_parents_apart_from_types():
    models = {}
    for cls in CATALOGUE.values():
        models.setdefault(cls.label, set()).add((cls.generator, repr(sorted(cls.params.items()))))
    assert all(len(m) == 1 for m in models.values()), "a label names one sound model"
    assert len(SOURCE_TYPES) == len(SOUND_TYPES) == len(models)
    assert len({(c.generator, repr(sorted(c.params.items()))) for c in SOURCE_TYPES}) == len(SOURCE_TYPES)
    assert not set(SOUND_TYPES) & set(FAMILIES)
    assert coverage()["class"].is_unique and len(coverage()) == len({c.name for c in ESC50 + US8K})
    assert set(pretraining_only()) == {c.label for c in EXTRA} and not set(pretraining_only()) & {
        c.label for c in ESC50 + US8K}, "the pre-training corpus holds sound types no downstream dataset has"


def test_the_mini_audioset_records_its_own_sources_never_downstream_clips(tmp_path):
    seeds = {name: {job.scene.seed for job in plan(name, tmp_path / name, "quick", seed=0).jobs}
             for name in ("esc50", "us8k", "audioset-mini")}
    assert not seeds["audioset-mini"] & (seeds["esc50"] | seeds["us8k"])
    sources = {name: {json.dumps(layer.source, sort_keys=True) for job in plan(name, tmp_path / name, "quick").jobs
                      for layer in job.scene.layers} for name in ("esc50", "audioset-mini")}
    assert not sources["audioset-mini"] & sources["esc50"], "no dog of the mini-AudioSet barks in the ESC-50"


@pytest.mark.parametrize("name", ["esc50", "us8k", "escus", "audioset-mini"])
def test_same_seed_same_bytes_other_seed_other_bytes(trees, tmp_path, name):
    again = digests(generate(name, tmp_path / "again", "tiny", seed=0, workers=1, progress=False))
    assert again == digests(trees[name])
    other = digests(generate(name, tmp_path / "other", "tiny", seed=1, workers=1, progress=False))
    audio = {path: digest for path, digest in again.items() if path.endswith((".wav", ".ogg"))}
    assert audio and not set(other.values()) & set(audio.values())


def test_float_wavs_carry_no_clock_stamped_peak_chunk(tmp_path):
    samples = np.random.default_rng(0).uniform(-0.5, 0.5, (800, 2)).astype(np.float32)
    write_audio(tmp_path / "x.wav", samples, 8000, "FLOAT")
    data = (tmp_path / "x.wav").read_bytes()
    assert b"PEAK" not in data and data[:4] == b"RIFF" and int.from_bytes(data[4:8], "little") == len(data) - 8
    decoded, sr = sf.read(tmp_path / "x.wav", dtype="float32")
    assert sr == 8000 and np.array_equal(decoded, samples) and sf.info(tmp_path / "x.wav").subtype == "FLOAT"


def test_without_riff_chunk_drops_only_that_chunk_and_keeps_padding():
    def chunk(name: bytes, body: bytes) -> bytes:
        return name + len(body).to_bytes(4, "little") + body + b"\0" * (len(body) % 2)

    body = chunk(b"fmt ", b"F" * 16) + chunk(b"PEAK", b"P" * 5) + chunk(b"data", b"D" * 3)
    riff = b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WAVE" + body
    kept = chunk(b"fmt ", b"F" * 16) + chunk(b"data", b"D" * 3)
    assert without_riff_chunk(riff, b"PEAK") == b"RIFF" + (4 + len(kept)).to_bytes(4, "little") + b"WAVE" + kept
    assert without_riff_chunk(riff, b"LIST") == riff
    with pytest.raises(ValueError, match="RIFF/WAVE"):
        without_riff_chunk(b"OggS" + riff[4:], b"PEAK")


def test_a_second_generation_of_a_world_waits_for_the_first(tmp_path):
    root = tmp_path / "w"
    done = threading.Event()
    with world_lock(root):
        worker = threading.Thread(target=lambda: (generate("escus", root, "tiny", workers=1, progress=False),
                                                  done.set()))
        worker.start()
        assert not done.wait(1.5) and not root.exists(), "generate must not touch a world another process is writing"
    worker.join(60)
    assert done.is_set() and json.loads((root / ".esclib-synth.json").read_text())["complete"]


def test_two_processes_generating_one_world_do_not_collide(tmp_path):
    code = ("import sys; from esclib.data.synth import generate; "
            "generate('audioset-mini', sys.argv[1], 'tiny', workers=1, progress=False)")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    runs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "w")], env=env, stderr=subprocess.PIPE)
            for _ in range(2)]
    assert [run.wait(120) for run in runs] == [0, 0], [run.stderr.read().decode()[-2000:] for run in runs]
    alone = generate("audioset-mini", tmp_path / "alone", "tiny", workers=1, progress=False)
    assert digests(tmp_path / "w") == digests(alone) and not list((tmp_path / "w").rglob("*.tmp"))


def test_generate_resumes_refuses_and_overwrites(tmp_path):
    root = generate("audioset-mini", tmp_path / "w", "tiny", seed=0, workers=1, progress=False)
    manifest = root / ".esclib-synth.json"
    kept, lost = sorted(root.rglob("Y*.wav"))[:2]
    stamp = kept.stat().st_mtime_ns
    lost.unlink()
    manifest.write_text(manifest.read_text().replace("true", "false"))  # as if interrupted
    generate("audioset-mini", root, "tiny", seed=0, workers=1, progress=False)
    assert lost.is_file() and kept.stat().st_mtime_ns == stamp, "resuming writes only what is missing"
    spec = json.loads(manifest.read_text())
    assert spec["complete"]
    manifest.write_text(json.dumps(dict(spec, version=-1)))  # made by another generator version: replaced
    generate("audioset-mini", root, "tiny", seed=0, workers=1, progress=False)
    assert json.loads(manifest.read_text()) == spec and kept.stat().st_mtime_ns != stamp
    with pytest.raises(FileExistsError, match="overwrite"):
        generate("audioset-mini", root, "tiny", seed=1, workers=1, progress=False)
    generate("audioset-mini", root, "tiny", seed=1, workers=1, progress=False, overwrite=True)
    segments = (root / "metadata" / "balanced_train_segments.csv").read_text().splitlines()
    listed = {line.split(",")[0] for line in segments if not line.startswith("#")}
    assert {p.stem[1:] for p in root.rglob("Y*.wav")} == listed, "no file of the replaced world is left"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        generate("esc50", foreign, "tiny", workers=1, progress=False)
    with pytest.raises(ValueError, match="unknown synthetic dataset"):
        plan("esc-50", tmp_path)
    with pytest.raises(ValueError, match="unknown size"):
        plan("esc50", tmp_path, "huge")


def test_loaders_read_the_trees(trees):
    registry = pytest.importorskip("esclib.data.registry")
    size = SIZES["esc50"]["tiny"]
    esc50 = registry.load("esc50", trees["esc50"])
    assert len(esc50) == len(size["classes"]) * size["clips_per_class"] and esc50.n_folds == 5
    assert list(esc50.classes) == [c.name for c in size["classes"]]
    assert len(registry.load("esc10", trees["esc50"])) == len(esc50)
    us8k = registry.load("us8k", trees["us8k"])
    assert us8k.n_folds == 10 and len(us8k) == len(pd.read_csv(trees["us8k"] / "metadata" / "UrbanSound8K.csv"))
    escus = registry.load("escus", trees["escus"], parts=["01"])
    assert 0 < len(escus) < SIZES["escus"]["tiny"]["n_clips"] and (escus.targets == -1).all()
    audioset = registry.load("audioset-mini", trees["audioset-mini"])
    assert audioset.multi_label and audioset.classes == LABELS


SMOKE_FORMATS = {  # the real datasets' sample rates, clip lengths (s) and channels
    "esc50": ({44100}, {5.0}, {1}),
    "escus": ({44100}, {5.0}, {1}),
    "audioset-mini": ({32000}, {10.0}, {1}),
    "dcase2013": ({44100}, {30.0}, {2}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["esc50", "us8k", "escus", "audioset-mini", "dcase2013"])
def test_smoke_worlds_load_with_the_real_loaders_at_the_real_format(tmp_path, name):
    from esclib.data import registry

    root = generate(name, tmp_path / name, "smoke", workers=2, progress=False)
    clips = registry.load(name, root, check="header")
    infos = [sf.info(path) for path in clips.paths]
    rates, lengths, channels = ({i.samplerate for i in infos}, {round(i.duration, 3) for i in infos},
                                {i.channels for i in infos})
    if name == "us8k":
        assert len(rates) >= 3 and max(lengths) <= 4.0 and channels == {1, 2}, (rates, lengths, channels)
    else:
        assert (rates, lengths, channels) == SMOKE_FORMATS[name]
    expected_classes = {"esc50": 50, "us8k": 10, "escus": 0, "audioset-mini": len(LABELS), "dcase2013": 10}[name]
    assert len(clips.classes) == expected_classes
    if expected_classes and not clips.multi_label:
        per_cell = clips.table.groupby(["target", "fold"]).size()
        assert len(per_cell) == expected_classes * clips.n_folds and per_cell.max() <= 3, "a clip or two per cell"
        assert clips.n_folds == {"esc50": 5, "us8k": 10, "dcase2013": 2}[name]
    assert len(clips) <= 250


def test_quick_and_full_sizes_plan_the_stated_amounts(tmp_path):
    esc50 = plan("esc50", tmp_path, "quick")
    assert len(esc50.jobs) == 400
    assert len(plan("esc50", tmp_path, "full").jobs) == 2000
    slices = sum(len(job.outputs) for job in plan("us8k", tmp_path, "quick").jobs)
    assert 450 <= slices <= 800
    assert len(plan("escus", tmp_path, "quick").jobs) == 600
    assert len(plan("audioset-mini", tmp_path, "quick").jobs) == 3000


# --- building blocks ---------------------------------------------------------------------------------------------
def test_catalogues():
    assert len(ESC50) == 50 and len({c.name for c in ESC50}) == 50
    assert set(ESC10) <= {c.name for c in ESC50} and len(ESC10) == 10
    assert [c.name for c in US8K] == US8K_NAMES
    assert 60 <= len(SOUND_TYPES) and 10 <= len(FAMILIES) <= 20
    assert all(c.generator in GENERATORS for c in ESC50 + US8K)


def test_ranges_draw_within_bounds():
    rng = np.random.default_rng(0)
    log_values = [L(100, 400).draw(rng) for _ in range(500)]
    assert 100 <= min(log_values) and max(log_values) <= 400
    widened = [R(0.2, 0.9).draw(rng, widen=3.0) for _ in range(500)]
    assert min(widened) == 0.0 and max(widened) == 1.0, "widened fractions stay fractions"


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_events_unit_peak_and_length(name):
    cls = next(c for c in ESC50 + US8K if c.generator == name)
    params = cls.draw_source(np.random.default_rng(0))
    params["duration"] = 0.5
    x = GENERATORS[name](np.random.default_rng(1), 16000, **params)
    assert x.shape == (8000,) and np.isclose(np.abs(x).max(), 1.0)


def test_harmonics_stay_below_nyquist():
    sr = 8000
    x = harmonic(np.random.default_rng(0), sr, 1.0, f0=1500.0, n_harmonics=10, rolloff=0.0)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    assert spectrum[freqs > 3700].max() < 1e-3 * spectrum.max()


def test_active_rms_and_flat_channel():
    sr = 8000
    burst = np.zeros(sr)
    burst[:800] = 1.0
    assert np.isclose(active_rms(burst, sr), 1.0) and np.sqrt(np.mean(burst**2)) < 0.4
    x = np.random.default_rng(0).standard_normal(sr)
    y = apply_channel(np.random.default_rng(0), x, sr, Channel(highpass=1.0))
    assert np.allclose(x, y, atol=0.05)


def test_render_example():
    x = render_example("dog", 16000, 2.0, seed=3)
    assert x.shape == (32000,) and x.dtype == np.float32 and np.isclose(np.abs(x).max(), 10 ** (-1 / 20))
    assert np.array_equal(x, render_example("dog", 16000, 2.0, seed=3))
    assert not np.array_equal(x, render_example("dog", 16000, 2.0, seed=4))
    with pytest.raises(ValueError, match="unknown sound class"):
        render_example("unicorn")


def test_ogg_files_are_byte_reproducible(tmp_path):
    samples = np.random.default_rng(0).uniform(-0.5, 0.5, 22050).astype(np.float32)
    write_audio(tmp_path / "a" / "x.ogg", samples, 22050)
    write_audio(tmp_path / "b" / "x.ogg", samples, 22050)
    assert (tmp_path / "a" / "x.ogg").read_bytes() == (tmp_path / "b" / "x.ogg").read_bytes()
    decoded, sr = sf.read(tmp_path / "a" / "x.ogg")
    assert sr == 22050 and len(decoded) == len(samples)
    with pytest.raises(ValueError, match="suffix"):
        write_audio(tmp_path / "x.mp3", samples, 22050)


@pytest.mark.parametrize("name", ["esc50", "esc10", "us8k", "escus", "audioset-mini"])
def test_trees_pass_esc_data_verify(trees, name):
    verify = pytest.importorskip("esclib.data.verify")
    report = verify.verify_dataset(name, trees["esc50" if name == "esc10" else name], level="decode", progress=False)
    assert report.ok, report.format()


def test_calibrate_runs_on_a_tiny_tree(trees, monkeypatch, tmp_path):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path))
    from esclib.data.synth.calibrate import calibrate

    table = calibrate(trees["esc50"], size="tiny", folds=(1,), fractions=(1.0,), epochs=2, progress=False)
    assert list(table.columns) == ["fold", "fraction", "n_labelled", "accuracy"]
    per_fold = SIZES["esc50"]["tiny"]["clips_per_class"] // 5 * len(SIZES["esc50"]["tiny"]["classes"])
    assert table.n_labelled.tolist() == [3 * per_fold] and 0.0 <= table.accuracy[0] <= 1.0


def test_esc_data_synth_names_what_it_offers(tmp_path, capsys):
    from esclib.cli import main as esc

    assert esc(["data", "synth", "esc-50", "--root", str(tmp_path / "x"), "--size", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "'esc-50'" in err and "dcase2013" in err and "smoke" in err and not (tmp_path / "x").exists()
    assert esc(["data", "synth", "escus", "--root", str(tmp_path / "u"), "--size", "tiny"]) == 0
    assert len(list((tmp_path / "u").glob("*/*.ogg"))) == SIZES["escus"]["tiny"]["n_clips"]


def test_the_quick_profile_and_smoke_runs_load_the_synthetic_dcase2013(tmp_path, monkeypatch):
    from esclib.data.sources import load_dataset
    from esclib.smoke import SMOKE_ENV

    monkeypatch.setenv("ESCLIB_DATA", str(tmp_path))
    monkeypatch.setitem(SIZES["dcase2013"], "quick", SIZES["dcase2013"]["tiny"])
    monkeypatch.setitem(SIZES["dcase2013"], "smoke", SIZES["dcase2013"]["tiny"])
    quick = load_dataset("dcase2013", "quick")
    assert quick.name == "dcase2013" and quick.n_folds == 2 and set(quick.targets) == set(range(quick.num_classes))
    assert quick.root.parent.name.startswith("synth-quick-seed0-")
    monkeypatch.setenv(SMOKE_ENV, "1")
    smoke = load_dataset("dcase2013", "paper")
    assert smoke.root.parent.name.startswith("synth-smoke-seed0-") and len(smoke) == len(quick)
