"""esclib.labs: every check passes on its sample solution, names the mistake of every known wrong variant, reports
templates as not attempted; the labs' cells are well formed and insertable."""

import ast
import re
from functools import partial

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from esclib import labs
from esclib.labs import MODULES, cells, ch00, ch01, ch02, ch03, ch04, ch05, ch06, chapter_module, exercises
from esclib.labs.cells import LAB_TAG, insert_cells
from esclib.labs.check import FunctionCheck, Report, compare_arrays
from esclib.runner.narrative import hand_typed_numbers

CODING = [(module, e) for module in MODULES for e in chapter_module(module).EXERCISES if e.coding]
FUNCTION_CHECKS = [(name, getattr(chapter_module(name), attr)) for name in MODULES
                   for attr in dir(chapter_module(name)) if isinstance(getattr(chapter_module(name), attr),
                                                                       FunctionCheck)]


@pytest.mark.parametrize("module, exercise", CODING, ids=[e.label for _, e in CODING])
def test_every_check_passes_on_its_sample_solution(module, exercise):
    mod = chapter_module(module)
    report = getattr(mod, exercise.check)(getattr(mod, exercise.sample))
    assert report.passed and report.attempted, str(report)
    assert bool(report) is True


@pytest.mark.parametrize("module, check", FUNCTION_CHECKS, ids=[f"{m}.{c.title}" for m, c in FUNCTION_CHECKS])
def test_every_known_mistake_fails_with_its_own_message(module, check):
    assert check.mistakes, f"{check.title} has no known mistake to diagnose"
    names = list(check.cases()[0])
    for mistake in check.mistakes:
        student = lambda *args, f=mistake.function, **kw: f(**dict(zip(names, args)), **kw)  # noqa: E731
        report = check(student)
        assert not report.passed and report.attempted
        assert report.messages[0] == mistake.message, f"{mistake.message!r} diagnosed as {report.messages}"
        others = {m.message for m in check.mistakes} - {mistake.message}
        assert not others & set(report.messages), f"{mistake.message!r} also matched {others & set(report.messages)}"


@pytest.mark.parametrize("module, exercise", CODING, ids=[e.label for _, e in CODING])
def test_templates_run_and_report_not_attempted(module, exercise):
    tree = ast.parse(exercise.template)
    *body, last = tree.body
    assert isinstance(last, ast.Expr), "a template ends with the call of its check"
    call = last.value
    assert isinstance(call, ast.Call) and ast.unparse(call.func) == f"{module}.{exercise.check}"
    namespace = {}
    exec(compile(ast.Module(body, []), exercise.label, "exec"), namespace)
    report = eval(compile(ast.Expression(call), exercise.label, "eval"), namespace)
    assert isinstance(report, Report) and not report.attempted and not report.passed
    assert "not attempted" in str(report) and "NotImplementedError" in report.messages[0]
    assert exercise.sample in namespace, "the template defines the function the exercise asks for"


# --- wrong variants of the checks that are not a plain FunctionCheck -------------------------------------------

def _by_pool(clips, test_fold, per_class, seed):
    """Drawn from every fold, per class."""
    rng = np.random.default_rng(seed)
    return [c for _, g in clips.table.groupby("target") for c in rng.choice(g["clip_id"], per_class, replace=False)]


def _without_validation_fold(clips, test_fold, per_class, seed):
    table = clips.table[clips.table["fold"] != test_fold]
    rng = np.random.default_rng(seed)
    return [c for _, g in table.groupby("target") for c in rng.choice(g["clip_id"], per_class, replace=False)]


def _from_whole_pool(clips, test_fold, per_class, seed):
    held = clips.table["fold"].isin([test_fold, test_fold % clips.n_folds + 1])
    train = clips.table[~held & ~clips.table["source"].isin(clips.table.loc[held, "source"])]
    return list(train.sample(per_class * clips.num_classes, random_state=seed)["clip_id"])


def _ignoring_recordings(clips, test_fold, per_class, seed):
    """Every training-fold clip of class 0 and 1 from the straddling recording first."""
    held = clips.table["fold"].isin([test_fold, test_fold % clips.n_folds + 1])
    train = clips.table[~held].sort_values("source", key=lambda s: s != "rec-cross")
    return [c for _, g in train.groupby("target") for c in g["clip_id"][:per_class]]


def _unseeded(clips, test_fold, per_class, seed):
    return ch00.labelled_clips(clips, test_fold, per_class, int(np.random.default_rng().integers(1 << 30)))


def _seed_ignored(clips, test_fold, per_class, seed):
    return ch00.labelled_clips(clips, test_fold, per_class, 0)


@pytest.mark.parametrize("wrong, message", [
    (_by_pool, "come from fold 2: the test fold"),
    (_without_validation_fold, "come from fold 3: the validation fold"),
    (_from_whole_pool, "draw per class, not from the whole pool"),
    (_ignoring_recordings, "share a source recording with a held-out clip"),
    (_unseeded, "same seed gave different subsets"),
    (_seed_ignored, "the seed is ignored"),
    (lambda clips, test_fold, per_class, seed: "dog-1", "expected a list of clip ids"),
    (lambda clips, test_fold, per_class, seed: ["nope"] * 2, "chosen more than once"),
])
def test_labelled_subset_check_says_what_is_wrong(wrong, message):
    report = ch00.check_labelled_clips(wrong)
    assert not report.passed and any(message in m for m in report.messages), str(report)


def _step(base_mode="eval", no_grad=True, loss="ce"):
    def step(base, head, waveforms, targets, optimizer):
        base.train(base_mode == "train")
        with torch.set_grad_enabled(not no_grad):
            embedding = base(waveforms)["embedding"]
        logits = head(embedding)
        value = F.cross_entropy(logits, targets) if loss == "ce" else F.mse_loss(
            torch.softmax(logits, 1), F.one_hot(targets, logits.shape[1]).float())
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        return value.item()
    return step


@pytest.mark.parametrize("wrong, message", [
    (_step(base_mode="train"), "batch-norm running statistics changed"),
    (_step(no_grad=False), "the base's weights changed"),
    (_step(loss="mse"), "the head's weight after the step"),
    (ch01._double_softmax, "computed on probabilities"),
    (ch01._no_zero_grad, "optimizer.zero_grad()"),
    (lambda base, head, waveforms, targets, optimizer: _step()(base, head, waveforms, targets, optimizer) + 1,
     "the returned loss"),
])
def test_freeze_l1_check_says_what_is_wrong(wrong, message):
    report = ch01.check_freeze_l1_step(wrong)
    assert not report.passed and message in report.messages[0], str(report)


def _requires_grad_only(base, head, waveforms, targets, optimizer):
    """The PANN authors' freezing: no gradient for the base, but the base left in training mode."""
    for parameter in base.parameters():
        parameter.requires_grad_(False)
    return _step(base_mode="train", no_grad=False)(base, head, waveforms, targets, optimizer)


def test_freezing_by_requires_grad_alone_is_caught_by_its_batch_norm_statistics():
    report = ch01.check_freeze_l1_step(_requires_grad_only)
    assert "batch-norm running statistics changed" in report.messages[0]


def _ema(student, teacher, momentum, *, target="teacher"):
    with torch.no_grad():
        pairs = zip(student.parameters(), teacher.parameters())
        for s, t in pairs:
            (t if target == "teacher" else s).copy_(momentum * (t if target == "teacher" else s)
                                                    + (1 - momentum) * (s if target == "teacher" else t))


def _rebinding(student, teacher, momentum):
    teacher = student  # noqa: F841  (the mistake: a local name, the caller's teacher untouched)


@pytest.mark.parametrize("wrong, message", [
    (ch05._swapped, "the momentum weighs the student"),
    (ch05._copied, "became a copy of the student"),
    (partial(_ema, target="student"), "the student's parameters changed"),
    (_rebinding, "did not change: update them in place"),
])
def test_ema_check_says_what_is_wrong(wrong, message):
    report = ch05.check_ema_update(wrong)
    assert not report.passed and message in report.messages[0], str(report)
    assert ch05.check_ema_update(partial(_ema, target="teacher")).passed


def _independent_draws(clips, test_fold, budgets, seed):
    return {b: ch00.labelled_clips(clips, test_fold, b, seed + b) for b in budgets}


def _nested_from_every_fold(clips, test_fold, budgets, seed):
    rng = np.random.default_rng(seed)
    ranked = [rng.permutation(g["clip_id"].to_numpy()) for _, g in clips.table.groupby("target")]
    return {b: [c for r in ranked for c in r[:b]] for b in budgets}


@pytest.mark.parametrize("wrong, message", [
    (_independent_draws, "are not in the"),
    (_nested_from_every_fold, "budget 1: "),
    (lambda clips, test_fold, budgets, seed: {1: []}, "one entry per budget"),
    (lambda clips, test_fold, budgets, seed: ch06.nested_budgets(clips, test_fold, budgets, 0), "seed is ignored"),
])
def test_nested_budget_check_says_what_is_wrong(wrong, message):
    report = ch06.check_nested_budgets(wrong)
    assert not report.passed and message in report.messages[0], str(report)


def test_the_library_itself_passes_the_property_checks():
    from esclib.data.splits import fold_split, labelled_subset

    def library(clips, test_fold, budgets, seed):
        train = fold_split(clips, test_fold).train
        return {b: list(labelled_subset(train, per_class=b, seed=seed)[0].table["clip_id"]) for b in budgets}

    assert ch06.check_nested_budgets(library).passed
    assert ch00.check_labelled_clips(lambda clips, test_fold, per_class, seed: library(
        clips, test_fold, [per_class], seed)[per_class]).passed


def test_the_paired_bootstrap_check_accepts_other_seeds_and_resample_counts():
    for other in range(5):
        report = ch06.check_paired_bootstrap(lambda acc_a, acc_b, n_resamples, confidence, seed, k=other:
                                             ch06.paired_bootstrap(acc_a, acc_b, 2 * n_resamples, confidence, k + 11))
        assert report.passed, str(report)


# --- the machinery ----------------------------------------------------------------------------------------------

def test_a_failing_function_is_reported_not_raised():
    def crashes(weak_logits, strong_logits, threshold):
        raise TypeError("bad operand")

    report = ch02.check_unlabelled_loss(crashes)
    assert not report.passed and report.attempted
    assert "raised TypeError: bad operand" in report.messages[0] and "weak_logits of shape (16, 5)" in report.messages[0]
    assert "expected your function" in ch02.check_unlabelled_loss(3).messages[0]
    with pytest.raises(AssertionError, match="FixMatch unlabelled loss: failed"):
        report.raise_if_failed()
    assert ch02.check_unlabelled_loss(ch02.unlabelled_loss).raise_if_failed().passed


def test_the_weak_view_gradient_is_caught():
    def leaky(weak_logits, strong_logits, threshold):
        """Right value, but the loss is weighted by the weak view's confidence / itself, which is not detached."""
        confidence, labels = torch.softmax(weak_logits, 1).max(1)
        mask = (confidence >= threshold).float() * confidence / confidence.detach()
        return (F.cross_entropy(strong_logits, labels, reduction="none") * mask).mean()

    def stuck(weak_logits, strong_logits, threshold):
        return ch02.unlabelled_loss(weak_logits, strong_logits.detach(), threshold).requires_grad_()

    assert "a gradient flows into the weak view" in ch02.check_unlabelled_loss(leaky).messages[0]
    assert "no gradient reaches the strong view" in ch02.check_unlabelled_loss(stuck).messages[0]


def test_compare_arrays_names_shape_axis_and_values():
    expected = torch.zeros(4, 3)
    assert "a different number of examples" in compare_arrays(torch.zeros(8, 3), expected)
    assert "reduction over the wrong axis" in compare_arrays(torch.zeros(3), expected)
    assert "wrong layout" in compare_arrays(torch.zeros(3, 4), expected)
    values = expected.clone()
    values[2, 1] = 1.5
    assert "1 of 12 value(s) at index (2, 1): 1.5 instead of 0" in compare_arrays(values, expected)
    assert "is a str" in compare_arrays("x", expected)
    assert compare_arrays(expected + 1e-7, expected) is None


def test_report_renders_escaped_html():
    report = Report("a <check>", False, ["x < y in `f(x)`"])
    assert "a &lt;check&gt;" in report._repr_html_() and "x &lt; y in <code>f(x)</code>" in report._repr_html_()
    assert str(report).splitlines() == ["a <check>: failed", "  - x < y in `f(x)`"]


# --- the cells --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("module", MODULES)
def test_every_chapter_has_four_exercises_two_of_them_checked(module):
    found = exercises(module)
    assert len(found) >= 4 and sum(e.coding for e in found) >= 2
    mod = chapter_module(module)
    for e in found:
        if e.coding:
            assert callable(getattr(mod, e.check)) and callable(getattr(mod, e.sample))
            assert f"def {e.sample}(" in e.template and e.check in e.template


def test_labels_are_unique_and_chapters_resolve():
    all_labels = [e.label for m in MODULES for e in exercises(m)]
    assert len(all_labels) == len(set(all_labels))
    assert chapter_module("02") is chapter_module("ch02") is chapter_module("02_fixmatch") is ch02
    with pytest.raises(ValueError, match="no lab for chapter '09'"):
        chapter_module("09")
    with pytest.raises(ValueError, match="belongs to notebook 02_fixmatch"):
        chapter_module("02_cae")


@pytest.mark.parametrize("module", MODULES)
def test_cells_are_plain_exercise_and_solution_blocks_without_hand_typed_numbers(module):
    lab = cells(module)
    nb = nbformat.v4.new_notebook(cells=lab)
    nbformat.validate(nb)
    assert all(LAB_TAG in c.metadata["tags"] for c in lab)
    markdown = "\n".join(c.source for c in lab if c.cell_type == "markdown")
    n = len(exercises(module))
    assert markdown.count("```{exercise}") == n and markdown.count("````{solution}") == n
    assert "solution-start" not in markdown  # TOOLCHAIN pitfall 8
    for e in exercises(module):
        if e.coding:
            assert f":pyobject: {e.sample}" in markdown and f"/esclib/labs/{module}.py" in markdown
    assert hand_typed_numbers(nb) == []


@pytest.mark.parametrize("module", MODULES)
def test_parameters_named_in_the_labs_exist(module):
    from esclib.runner.specs import get_spec

    stem = chapter_module(module).STEM
    spec = get_spec(stem)
    if spec is None:
        pytest.skip(f"chapter {stem} has no spec yet")
    text = " ".join(e.prompt + e.solution for e in exercises(module))
    named = set(re.findall(rf"esc run {stem} (?:-p|--sweep) (\w+)", text))
    assert named <= set(spec.params), f"{sorted(named - set(spec.params))} are not parameters of {stem}"


def test_insert_replaces_the_lab_or_places_it_before_an_anchor(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"),
                                         nbformat.v4.new_markdown_cell("## What we learned\n- a")])
    insert_cells(nb, cells("03_cae"), before="## What we learned")
    assert nb.cells[1].source.startswith("## Lab") and nb.cells[-1].source.startswith("## What we learned")
    size = len(nb.cells)
    insert_cells(nb, cells("03_cae")[:3])  # re-insertion replaces the tagged cells, in place
    assert len(nb.cells) == size - len(cells("03_cae")) + 3 and nb.cells[1].source.startswith("## Lab")
    with pytest.raises(ValueError, match="no markdown cell starts with '## Nowhere'"):
        insert_cells(nbformat.v4.new_notebook(), cells("03_cae"), before="## Nowhere")
    path = tmp_path / "03_cae.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T")]), path)
    labs.insert_lab(path)
    assert sum(LAB_TAG in c.metadata.get("tags", []) for c in nbformat.read(path, 4).cells) == len(cells("03_cae"))
    written = path.read_bytes()
    labs.insert_lab(path)
    assert path.read_bytes() == written  # inserting the same lab again changes nothing (stable cell ids)


def test_module_cli_inserts_and_summarises(tmp_path, capsys):
    from esclib.labs.__main__ import main

    path = tmp_path / "04_npid.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), path)
    assert main(["insert", str(path)]) == 0
    assert main(["insert", str(path), "--chapter", "07"]) == 2
    assert main(["summary"]) == 0
    out = capsys.readouterr()
    assert "no lab for chapter '07'" in out.err and "06_overview" in out.out


def test_summary_counts_match_the_exercises():
    table = labs.summary().set_index("chapter")
    assert table.loc["02_fixmatch", "exercises"] == 4 and table.loc["02_fixmatch", "coding exercises"] == 2
    assert "`ch02.check_unlabelled_loss`" in table.loc["02_fixmatch", "checks"]
