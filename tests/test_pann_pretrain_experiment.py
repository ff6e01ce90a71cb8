"""The mini PANN's pre-training as a recorded experiment (esclib.experiments.pann_pretrain): one run of the results
store (experiment ``pann_pretrain``, metric ``map``), reused by every chapter that transfers from it."""

from dataclasses import replace

import pytest

from esclib.experiments import pann_pretrain as pp
from esclib.models.panns import CnnMini16k, load_pann
from esclib.results import ResultsStore
from esclib.train.pann_pretrain import pretrain_report
from test_pann_pretrain import TINY, _corpus


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path / "cache"))
    return _corpus(tmp_path / "corpus")


def test_the_pretraining_is_a_recorded_run_with_its_map_and_a_loadable_checkpoint(tmp_path, corpus):
    store = ResultsStore(tmp_path / "results")
    path, result = pp.mini_pann(store, data_root=corpus, config=TINY, progress=False)
    assert result["experiment"] == "pann_pretrain" and result["arm"] == "CnnMini16k"
    assert result["metrics"]["map"] == pretrain_report(path)["held_out_metrics"]["mAP"]
    assert 0 < result["metrics"]["map"] <= 1 and result["metrics"]["n_test"] == 6
    assert len(result["curves"]) == TINY.epochs and "loss" in result["curves"][0]
    assert result["identity"]["recipe"]["config"]["epochs"] == TINY.epochs
    assert isinstance(load_pann(path), CnnMini16k)
    assert [r["id"] for r in store.results("pann_pretrain")] == [result["id"]]


def test_a_second_chapter_reuses_the_run_and_its_one_checkpoint(tmp_path, corpus):
    first, result = pp.mini_pann(ResultsStore(tmp_path / "results", meta={"notebook": "01"}), data_root=corpus,
                                 config=TINY, progress=False)
    stamp = first.stat().st_mtime_ns
    second, again = pp.mini_pann(ResultsStore(tmp_path / "results", meta={"notebook": "02"}), data_root=corpus,
                                 config=TINY, progress=False)
    assert second == first and again["id"] == result["id"] and first.stat().st_mtime_ns == stamp
    other, changed = pp.mini_pann(ResultsStore(tmp_path / "results"), data_root=corpus,
                                  config=replace(TINY, epochs=3), progress=False)
    assert other != first and changed["id"] != result["id"] and len(changed["curves"]) == 3


def test_a_run_whose_checkpoint_was_deleted_is_trained_again(tmp_path, corpus):
    store = ResultsStore(tmp_path / "results")
    path, result = pp.mini_pann(store, data_root=corpus, config=TINY, progress=False)
    path.unlink()
    again, rerun = pp.mini_pann(store, data_root=corpus, config=TINY, progress=False)
    assert again == path and path.is_file() and rerun["id"] == result["id"]


def test_the_transfer_chapter_resolves_mini_to_the_recorded_checkpoint(tmp_path, corpus, monkeypatch):
    import esclib.data.sources as sources

    monkeypatch.setattr(sources, "dataset_root", lambda name, profile, data_root=None, seed=0: corpus)
    monkeypatch.setattr(pp, "MINI_CONFIG", TINY)
    store = ResultsStore(tmp_path / "results")
    path = pp.resolve_checkpoint(pp.MINI, store=store, progress=False)
    assert path == str(pp.mini_pann(store, data_root=corpus, config=TINY, progress=False)[0])
    assert pp.resolve_checkpoint("Cnn14", store=store) == "Cnn14"


def test_a_single_label_corpus_is_refused(tmp_path):
    from esclib.data.registry import load
    from esclib.data.synth import generate

    clips = load("esc50", generate("esc50", tmp_path / "ESC-50", size="tiny", workers=1, progress=False))
    with pytest.raises(ValueError, match="single-label"):
        pp.PannPretraining(clips, store=ResultsStore(tmp_path / "results"))


def test_the_book_s_shared_step_records_the_run_both_chapters_then_reuse(tmp_path, corpus, monkeypatch):
    import torch

    import esclib.data.sources as sources
    from esclib.runner.chapter import QUICK_THREADS
    from esclib.runner.spec import resolve
    from esclib.runner.specs import get_spec

    monkeypatch.setattr(sources, "dataset_root", lambda name, profile, data_root=None, seed=0: corpus)
    monkeypatch.setattr(pp, "MINI_CONFIG", TINY)
    monkeypatch.setenv("ESCLIB_RESULTS", str(tmp_path / "results"))
    threads = torch.get_num_threads()
    chapter = ResultsStore.for_profile("quick", notebook="01_pann_transfer", device="cpu", seed=3)
    try:
        pp.prepare_mini_pann(resolve(get_spec("02_fixmatch"), "quick", checkpoint="Cnn14"), notebook="02_fixmatch")
        assert not list(chapter.results())  # another checkpoint: nothing to prepare
        torch.set_num_threads(QUICK_THREADS + 1)
        pp.prepare_mini_pann(resolve(get_spec("02_fixmatch"), "quick", seed=3), notebook="02_fixmatch")
        assert torch.get_num_threads() == QUICK_THREADS  # as in the chapter (start_chapter), whose call follows
        [prepared] = chapter.results("pann_pretrain")
        path = pp.resolve_checkpoint(pp.MINI, store=chapter, seed=3, progress=False)
        assert [r["id"] for r in chapter.results("pann_pretrain")] == [prepared["id"]]  # reused, not trained again
        assert pp.resolve_checkpoint(pp.MINI, store=chapter, seed=0, progress=False) != path  # another seed: its own
    finally:
        torch.set_num_threads(threads)
    assert prepared["identity"]["recipe"]["config"]["seed"] == 3 and prepared["environment"]["notebook"] == "02_fixmatch"
