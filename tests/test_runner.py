"""esclib.runner and ``esc run`` / ``esc book``: parameter checks, real papermill runs, failures, resumable sweeps."""

import argparse
import shutil
import sys
import types
from pathlib import Path

import nbformat
import pytest

from esclib.cli import run as run_cli
from esclib.runner import ChapterSpec, Param, expand_folds, in_range, integer, parse_folds, resolve
from esclib.runner.spec import parse_counts, parse_names
from esclib.runner.assets import remote_assets
from esclib.runner.book import parameters_markdown, toc_chapters
from esclib.runner.execute import KERNEL_TUNABLES, RUN_INFO_TAG, literal, notebook_parameters
from esclib.runner.specs import get_spec

NOTEBOOKS = Path(__file__).parent / "notebooks"
REPO = Path(__file__).parent.parent

SPEC = ChapterSpec("demo", "Demo", "demo", {
    "x": Param("the swept value", 1, 2, check=integer(1, 9)),
    "rate": Param("a fraction", 0.5, 1.0, check=in_range(0, 1, closed="right")),
    "kind": Param("a choice", "a", "b", choices=("a", "b")),
    "folds": Param("folds to run", "all", "all", parse=parse_folds),
    "arms": Param("arms to run", "a,b", "a,b,c", parse=parse_names(("a", "b", "c"))),
    "shots": Param("clips per class", "1,2", "1,2,5", parse=parse_counts),
})


def esc(*argv: str) -> int:
    """``esc`` with only this module's command group (the others are tested by their owners)."""
    parser = argparse.ArgumentParser(prog="esc")
    run_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder as the working directory, with its own results store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ESCLIB_RESULTS", str(tmp_path / "results"))
    return tmp_path


def test_resolve_fills_profile_defaults_and_parses():
    assert resolve(SPEC, "quick") == {"profile": "quick", "seed": 0, "device": None, "x": 1, "rate": 0.5,
                                      "kind": "a", "folds": "all", "arms": ("a", "b"), "shots": (1, 2)}
    paper = resolve(SPEC, "paper", x=None, rate=0.25, folds="1-3,5", arms=["c", "a", "c"], shots="10, 2")
    assert (paper["x"], paper["rate"], paper["folds"]) == (2, 0.25, (1, 2, 3, 5))
    assert paper["arms"] == ("c", "a") and paper["shots"] == (2, 10)


@pytest.mark.parametrize("given, message", [
    ({"bogus": 1, "x": 2}, r"unknown parameter\(s\) 'bogus' for notebook demo; valid parameters: profile, seed, "
                           r"device, x, rate, kind, folds, arms, shots"),
    ({"arms": "a,d"}, r"parameter 'arms': expected names from \['a', 'b', 'c'\], got \['d'\]"),
    ({"shots": "0"}, "parameter 'shots': expected positive integers"),
    ({"x": 0}, r"invalid value 0 for parameter 'x': expected an integer in \[1, 9\]"),
    ({"x": 2.5}, "parameter 'x': expected an integer"),
    ({"rate": 0}, r"parameter 'rate': expected a number in \(0, 1\]"),
    ({"kind": "c"}, r"parameter 'kind': expected one of \['a', 'b'\]"),
    ({"folds": "2-1"}, "parameter 'folds': fold range '2-1' must be ascending"),
    ({"device": "gpu"}, "parameter 'device': expected 'cpu', 'cuda'"),
])
def test_resolve_names_unknown_and_invalid_parameters(given, message):
    with pytest.raises(ValueError, match=message):
        resolve(SPEC, "quick", **given)


def test_folds_and_literals():
    assert parse_folds(3) == (3,) and parse_folds([4, 1]) == (1, 4) and parse_folds(" ALL ") == "all"
    assert expand_folds("all", 5) == (1, 2, 3, 4, 5)
    with pytest.raises(ValueError, match=r"fold\(s\) \[6\] outside 1..5"):
        expand_folds((1, 6), 5)
    assert [literal(t) for t in ("1e-4", "[1, 2]", "None", "true", "1-3", "/data/ESC-50", "esc50")] == \
        [1e-4, [1, 2], None, True, "1-3", "/data/ESC-50", "esc50"]
    assert literal("64,128") == "64,128" and literal("1,3,5") == "1,3,5"  # a list for the parameter's parser
    assert resolve(SPEC, "quick", folds=literal("1,2"))["folds"] == (1, 2)


def test_an_empty_value_means_an_empty_list_not_the_default():
    assert literal("") == "" and literal("  ") == ""
    resolved = resolve(SPEC, "quick", arms=literal(""), shots=literal(""), folds=literal(""))
    assert resolved["arms"] == () and resolved["shots"] == () and resolved["folds"] == ()
    assert resolve(SPEC, "quick", arms="none")["arms"] == ()


def test_the_none_word_asks_for_none_where_a_given_none_takes_the_default():
    spec = ChapterSpec("demo", "Demo", "demo", {
        "crop": Param("seconds per crop ('whole': whole clips)", 1.0, None, check=in_range(0.25, 60), none="whole")})
    assert resolve(spec, "quick")["crop"] == 1.0 and resolve(spec, "quick", crop=None)["crop"] == 1.0
    assert resolve(spec, "quick", crop="whole")["crop"] is None
    assert resolve(spec, "paper", crop="whole")["crop"] is None and resolve(spec, "paper", crop=2)["crop"] == 2
    with pytest.raises(ValueError, match=r"invalid value 'Whole' for parameter 'crop': expected a number in "
                                         r"\[0.25, 60\] or 'whole'"):
        resolve(spec, "quick", crop="Whole")
    page = parameters_markdown([("demo", spec)])
    assert "| `crop` | recipe | `1.0` | `'whole'` | a number in [0.25, 60] or `whole` |" in page
    with pytest.raises(ValueError, match="its help must say what the word 'all'"):
        Param("clips in the pool", None, 5, none="all")
    chapter = get_spec("02_fixmatch")
    assert resolve(chapter, "quick", crop_seconds=literal("whole"), steps_per_epoch=literal("pass"))[
        "crop_seconds"] is None


def test_data_chapter_spec_and_parameters_page():
    spec = get_spec("00_data")
    assert spec.experiment is None and "dataset" in spec.params and get_spec("99_missing") is None
    page = parameters_markdown([("00_data", spec), ("99_missing", None)])
    assert "| `dataset` | input | `'esc50'` | `'esc50'` | `esc50`, `esc10`" in page
    assert "| `examples` | view | `2` | `4` | an integer in [1, 20] | clips shown" in page
    assert "| `seed` | run | `0` | `0` | an integer in [0, inf) |" in page
    assert "| `device` | run | `None` | `None` | `cpu`, `cuda`, `cuda:N` or `mps` |" in page
    assert "No spec yet (`esclib/runner/specs/ch99_missing.py`)" in page


def test_the_committed_parameters_page_is_what_the_specs_generate():
    stems = toc_chapters(REPO / "_toc.yml")
    generated = parameters_markdown([(stem, get_spec(stem)) for stem in stems])
    assert (REPO / "book/parameters.md").read_text() == generated, (
        "book/parameters.md drifted from the specs: regenerate it with `esc book --skip-run` (or "
        "esclib.runner.book.write_parameters_page) and commit it")


@pytest.mark.parametrize("argv, message", [
    (("-p", "folds", "9"), "parameter 'folds': fold(s) [9] do not exist ('esc50' has folds 1..5)"),
    (("-p", "few_shot_folds", "1,7"), "parameter 'few_shot_folds': fold(s) [7] do not exist"),
    (("-p", "dataset", "esc10", "-p", "folds", "6-7"), "fold(s) [6, 7] do not exist ('esc10' has folds 1..5)"),
    (("-p", "sample_rate", "32000"), "'sample_rate': the checkpoint 'mini' has a 16000 Hz frontend"),
    (("--profile", "paper", "-p", "checkpoint", "Cnn14_16k"), "the checkpoint 'Cnn14_16k' has a 16000 Hz"),
])
def test_chapter_requests_the_data_cannot_serve_are_refused_before_papermill(project, capsys, argv, message):
    assert esc("run", REPO / "notebooks/01_pann_transfer.ipynb", "--root", project, *argv) == 2
    assert message in capsys.readouterr().err
    assert not (project / "book").exists()


def test_a_device_this_machine_lacks_is_refused_before_papermill(project, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert esc("run", REPO / "notebooks/03_cae.ipynb", "--root", project, "-p", "device", "cuda") == 2
    assert "parameter 'device': device='cuda' needs a CUDA GPU" in capsys.readouterr().err


def test_run_help_lists_the_chapter_parameters(capsys):
    with pytest.raises(SystemExit) as exit_:
        esc("run", "03_cae", "--help")
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "parameters of 03_cae" in out and "pretrain_epochs  [recipe]  quick: 15  paper: 50" in out
    assert "examples  [view]" in out and "arms  [grid]" in out


def test_a_second_run_of_the_same_copy_is_refused_while_the_first_holds_it(project):
    from esclib.locks import file_lock
    from esclib.runner.execute import execute

    output = project / "book/chapters/demo.ipynb"
    with file_lock(output.parent / ".locks" / "demo.ipynb.lock", what="test"):
        execution = execute(NOTEBOOKS / "demo.ipynb", output, {"x": 1}, root=project, progress=False)
    assert not execution.ok and "is locked by process" in execution.error
    assert not output.exists() and not (output.parent / "failed").exists()


def test_toc_lists_the_chapters_in_order():
    assert toc_chapters(REPO / "_toc.yml") == ["00_data", "01_pann_transfer", "02_fixmatch", "03_cae", "04_npid",
                                               "05_ssl", "06_overview"]


def test_every_chapter_runs_after_the_earlier_chapters_whose_work_it_reuses():
    stems = toc_chapters(REPO / "_toc.yml")
    for at, stem in enumerate(stems):
        spec = get_spec(stem)
        assert set(spec.after if spec else ()) <= set(stems[:at]), stem
    assert set(get_spec("06_overview").after) == set(stems[1:-1])
    with pytest.raises(ValueError, match="cannot run after itself"):
        ChapterSpec("demo", "Demo", None, after=("demo",))
    with pytest.raises(ValueError, match=r"prepare steps \['pretrain'\] are not 'module:function'"):
        ChapterSpec("demo", "Demo", None, prepare=("pretrain",))


def test_chapters_01_and_02_wait_for_the_mini_pann_s_pretraining_not_for_each_other():
    from esclib.runner.book import book_tasks
    from esclib.runner.specs.ch01_pann_transfer import PREPARE_MINI_PANN

    needs = book_tasks(toc_chapters(REPO / "_toc.yml"))
    assert list(needs)[0] == PREPARE_MINI_PANN and needs[PREPARE_MINI_PANN] == []
    assert needs["01_pann_transfer"] == needs["02_fixmatch"] == [PREPARE_MINI_PANN]
    assert needs["00_data"] == needs["03_cae"] == []
    assert needs["06_overview"] == ["01_pann_transfer", "02_fixmatch", "03_cae", "04_npid", "05_ssl"]


def test_critical_paths_add_each_job_s_time_to_the_longest_path_through_those_waiting_for_it(tmp_path):
    from esclib.runner.book import CHAPTER_TIMES, critical_paths, expected_seconds, start_order

    needs = {"step": [], "a": ["step"], "b": ["step"], "c": [], "z": ["a", "b", "c"]}
    paths = critical_paths(needs, {"a": 10, "b": 40, "c": 45, "z": 5})
    assert paths == {"step": 45, "a": 15, "b": 45, "c": 50, "z": 5}  # step: 0 (unknown) + b 40 + z 5
    with pytest.raises(ValueError, match="wait on each other"):
        critical_paths({"a": ["b"], "b": ["a"]}, {})
    assert start_order({"step": [], "a": ["step"], "b": [], "c": []}, {"a": 100, "b": 50, "c": 200}) == [
        "c", "step", "a", "b"]  # paths 200, 100 (the step before a, its user), 100, 50
    times = tmp_path / CHAPTER_TIMES
    times.parent.mkdir(parents=True)
    times.write_text("chapter,profile,wall time (min),measured on\n00_data,quick,0.5,x\n01_x,quick,not measured,"
                     "y\n02_y,paper,90.0,z\n")
    assert expected_seconds(tmp_path, "quick") == {"00_data": 30.0}
    assert expected_seconds(tmp_path, "paper") == {"02_y": 5400.0}
    assert expected_seconds(tmp_path / "none", "quick") == {}


def _timed_notebook(path: Path, seconds: float) -> None:
    """A chapter that logs its start and end (with the thread count it was given) to times.log, sleeping between."""
    log = ("import json, os, time\n"
           "def log(event):\n"
           "    with open('times.log', 'a') as out:\n"
           f"        out.write(json.dumps([{path.stem!r}, event, time.time(), os.environ.get('OMP_NUM_THREADS')]) + '\\n')\n")
    cells = [nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell(log + f"log('start')\ntime.sleep({seconds})\nlog('end')")]
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=kernel), path)


#: a shared step (ChapterSpec.prepare) that logs like _timed_notebook, with the chapter and parameters it was given
_STEP_MODULE = """import json, os, time
def step(params, notebook):
    for event in ("start", "end"):
        with open("times.log", "a") as out:
            out.write(json.dumps(["step", event, time.time(), os.environ.get("OMP_NUM_THREADS")]) + "\\n")
        time.sleep(1.5 if event == "start" else 0)
    with open("step.json", "w") as out:
        json.dump([notebook, params["profile"], params["seed"], os.environ.get("ESC_FORCE_RESULTS")], out)
"""


def test_chapters_run_two_at_once_each_on_its_share_of_the_cores_and_after_those_they_reuse(project, monkeypatch):
    import json

    from esclib.runner import book

    (project / "notebooks").mkdir()
    for stem, seconds in (("a", 6), ("b", 0.5), ("c", 0.5), ("d", 0.5)):
        _timed_notebook(project / "notebooks" / f"{stem}.ipynb", seconds)
    (project / "shared_step.py").write_text(_STEP_MODULE)
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.setattr(book, "get_spec", lambda stem: ChapterSpec(
        stem, stem, None, after=("a",) if stem == "c" else (), prepare=("shared_step:step",) if stem == "d" else ()))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    executions = book.run_chapters(project, ["a", "b", "c", "d"], "quick", jobs=2)
    assert [(e.source.stem, e.ok) for e in executions] == [("a", True), ("b", True), ("c", True), ("d", True)]
    times = {(name, event): (at, threads) for name, event, at, threads in
             map(json.loads, (project / "times.log").read_text().splitlines())}
    assert times["b", "start"][0] < times["a", "end"][0]  # b ran beside a ...
    assert times["c", "start"][0] > times["a", "end"][0]  # ... but c, which reuses a's work, only after a
    assert times["step", "start"][0] < times["a", "end"][0] < times["c", "start"][0]  # the step beside a, first ...
    assert times["d", "start"][0] > times["step", "end"][0]  # ... and d, which reuses its work, after it
    assert json.loads((project / "step.json").read_text()) == ["d", "quick", 0, "0"]
    assert {threads for _, threads in times.values()} == {str(max(1, book.available_cores() // 2))}
    (project / "step.json").unlink()
    assert esc("smoke", "b", "d", "--root", str(project), "--jobs", "2", "--no-progress") == 0
    smoke = [nbformat.read(project / "book" / "chapters" / "smoke" / f"{s}.ipynb", as_version=4) for s in "bd"]
    assert all("smoke" in nb.cells[0].source.lower() for nb in smoke) and not (project / "step.json").exists()
    monkeypatch.setattr(book, "get_spec", lambda stem: ChapterSpec(stem, stem, None, after=({"a": "b", "b": "a"}[stem],)))
    with pytest.raises(ValueError, match="wait on each other"):
        book.run_chapters(project, ["a", "b"], "quick", jobs=2)
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        book.run_chapters(project, ["a"], "quick", jobs=0)
    assert book.default_jobs("paper") == 1 and book.default_jobs("quick") == min(2, book.available_cores())
    assert book.smoke_jobs() == min(2, book.available_cores())


@pytest.mark.parametrize("source", sorted((REPO / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_chapter_parameters_cell_matches_its_spec(source):
    spec = get_spec(source.stem)
    assert spec is not None, f"{source.name} has no spec esclib/runner/specs/ch{source.stem}.py"
    assert set(notebook_parameters(source)) == set(spec.names)


def test_unknown_parameter_and_invalid_value_fail_before_papermill(project, monkeypatch, capsys):
    assert esc("run", NOTEBOOKS / "demo.ipynb", "--root", project, "-p", "bogus", "1") == 2
    assert "unknown parameter(s) 'bogus'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "esclib.runner.specs.chdemo", types.SimpleNamespace(SPEC=ChapterSpec(
        "demo", "Demo", None, {"x": Param("the value", 1, 1, check=integer(1, 9)), "log": Param("", None, None),
                               "fail_when": Param("", None, None)})))
    assert esc("run", NOTEBOOKS / "demo.ipynb", "--root", project, "--sweep", "x", "1,0") == 2
    assert "invalid value 0 for parameter 'x'" in capsys.readouterr().err
    assert esc("run", NOTEBOOKS / "demo.ipynb", "--root", project, "--folds", "3-1") == 2
    assert not (project / "book").exists()


def test_run_writes_a_post_processed_copy_and_its_results(project, monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert esc("run", NOTEBOOKS / "demo.ipynb", "--root", project, "-p", "x", "3", "--no-progress") == 0
    nb = nbformat.read(project / "book/chapters/demo.ipynb", as_version=4)
    assert RUN_INFO_TAG in nb.cells[1].metadata.tags and "wall time" in nb.cells[1].source
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.tags)
    assert "hide-input" in injected.metadata.tags and "x = 3" in injected.source
    [written] = nb.metadata.esc["results"]
    assert written.startswith("results/quick/demo/arm/x=3-") and written.endswith("/result.json")
    shown = "".join(str(o.get("data", {})) for c in nb.cells for o in c.get("outputs", []))
    assert "Parameters (resolved for this profile)" in shown and "esc50" in shown
    assert repr(sys.executable) in shown  # the kernel is the Python running esc
    assert repr(KERNEL_TUNABLES) in shown  # ... under the allocator settings that spare CPU steps page faults


def test_the_kernel_keeps_allocator_settings_the_user_gave(project, monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=1")
    assert esc("run", NOTEBOOKS / "demo.ipynb", "--root", project, "--no-progress") == 0
    nb = nbformat.read(project / "book/chapters/demo.ipynb", as_version=4)
    shown = "".join(str(o.get("data", {})) for c in nb.cells for o in c.get("outputs", []))
    assert "'glibc.malloc.arena_max=1'" in shown and KERNEL_TUNABLES not in shown


def test_failing_run_is_kept_out_of_the_book(project, capsys):
    assert esc("run", NOTEBOOKS / "raises.ipynb", "--root", project, "--no-progress") == 1
    err = capsys.readouterr().err
    assert 'raise ValueError("this chapter fails on purpose")' in err and "ValueError" in err
    failed = nbformat.read(project / "book/chapters/failed/raises.ipynb", as_version=4)
    assert failed.metadata.papermill.exception
    assert not (project / "book/chapters/raises.ipynb").exists()


def test_interrupted_sweep_resumes_without_redoing_finished_settings(project):
    log, flag = project / "executed.log", project / "fail.flag"
    flag.touch()
    sweep = ("run", NOTEBOOKS / "demo.ipynb", "--root", project, "--sweep", "x", "1,2", "-p", "log", log,
             "-p", "fail_when", flag, "--no-progress")
    assert esc(*sweep) == 1
    assert log.read_text().split() == ["1", "2"]
    assert (project / "book/chapters/sweeps/demo/x=1.ipynb").is_file()
    assert (project / "book/chapters/sweeps/demo/failed/x=2.ipynb").is_file()
    flag.unlink()
    assert esc(*sweep) == 0
    assert log.read_text().split() == ["1", "2", "2"]
    assert not (project / "book/chapters/sweeps/demo/failed/x=2.ipynb").exists()
    assert sorted(p.name.split("-")[0] for p in (project / "results/quick/demo/arm").iterdir()) == ["x=1", "x=2"]


def test_book_refuses_to_build_when_a_chapter_fails(project):
    (project / "notebooks").mkdir()
    shutil.copy(NOTEBOOKS / "raises.ipynb", project / "notebooks/raises.ipynb")
    (project / "_config.yml").write_text("title: test\n")
    (project / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n- file: book/chapters/raises\n")
    assert esc("book", "--root", project, "--no-progress") == 1
    assert (project / "book/chapters/failed/raises.ipynb").is_file()
    assert not (project / "book/chapters/raises.ipynb").exists() and not (project / "_build").exists()
    assert "`raises`" in (project / "book/parameters.md").read_text()


def test_remote_assets_are_found(tmp_path):
    (tmp_path / "page.html").write_text(
        '<script src="https://cdn.example.org/x.js"></script><script src="_static/y.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/f.css"><a href="https://example.org">link</a>'
        '<link rel="canonical" href="https://example.org/page.html">')
    assert remote_assets(tmp_path) == {"page.html": ["//fonts.example.org/f.css", "https://cdn.example.org/x.js"]}


def test_a_cell_past_its_time_limit_fails_the_run_instead_of_hanging(project, monkeypatch):
    from esclib.runner.execute import CELL_TIMEOUT_ENV, cell_timeout, execute

    assert cell_timeout("paper") is None and cell_timeout("quick") > cell_timeout("paper", smoke=True) > 0
    monkeypatch.setenv(CELL_TIMEOUT_ENV, "2")
    assert cell_timeout("paper") == 2
    execution = execute(NOTEBOOKS / "sleeps.ipynb", project / "book/chapters/sleeps.ipynb", {}, root=project,
                        progress=False)
    assert not execution.ok and execution.seconds < 30
    assert "time.sleep(seconds)" in execution.error and CELL_TIMEOUT_ENV in execution.error
    monkeypatch.setenv(CELL_TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match=CELL_TIMEOUT_ENV):
        cell_timeout("quick")


def test_quick_chapters_train_torch_on_one_thread_whatever_the_machine(tmp_path, monkeypatch):
    import torch

    from esclib.runner.chapter import QUICK_THREADS, start_chapter, torch_threads

    monkeypatch.setenv("ESCLIB_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    before = torch.get_num_threads()
    try:
        start_chapter("00_data", profile="quick")
        assert torch.get_num_threads() == QUICK_THREADS == 1  # not the 2 that OMP_NUM_THREADS offers
        start_chapter("00_data", profile="paper")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert torch_threads("paper") == torch_threads() >= 1 and torch_threads("quick") == 1
