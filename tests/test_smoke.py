"""Smoke runs (``esc run --smoke``): the paper path at full size but a couple of steps, never among real results."""

import torch

from esclib import smoke
from esclib.results import ResultsStore
from esclib.runner.spec import ChapterSpec, Param, integer, parse_folds, resolve
from esclib.train import fit

SPEC = ChapterSpec("demo", "Demo", "demo", {"folds": Param("folds", "1-2", "all", parse=parse_folds, scope="grid"),
                                            "epochs": Param("epochs", 2, 100, check=integer(1))},
                   smoke={"folds": "1"})


def test_a_smoke_run_takes_the_paper_recipe_one_fold_and_its_own_store(monkeypatch, tmp_path):
    monkeypatch.setenv("ESCLIB_RESULTS", str(tmp_path))
    monkeypatch.delenv(smoke.SMOKE_ENV, raising=False)
    assert resolve(SPEC, "paper")["folds"] == "all" and ResultsStore.for_profile("paper").root == tmp_path / "paper"
    monkeypatch.setenv(smoke.SMOKE_ENV, "1")
    paper = resolve(SPEC, "paper")
    assert paper["folds"] == (1,) and paper["epochs"] == 100  # the recipe stays the paper's
    assert resolve(SPEC, "paper", folds="3")["folds"] == (3,)  # what is given still wins
    assert resolve(SPEC, "quick")["folds"] == (1, 2)  # smoke overrides only the paper profile
    store = ResultsStore.for_profile("paper")
    assert store.root == tmp_path / "paper-smoke" and store.meta["smoke"] is True


def test_fit_reads_at_most_limit_batches_and_counts_its_steps():
    model = torch.nn.Linear(2, 2)
    batches = [(torch.randn(4, 2), torch.randint(0, 2, (4,))) for _ in range(10)]
    seen = []

    def loss(out, y):
        seen.append(1)
        return torch.nn.functional.cross_entropy(out, y)

    history = fit(model, batches, epochs=3, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), loss_fn=loss,
                  val_loader=batches, progress=False, limit_batches=2)
    assert len(seen) == 6 and history.steps == 6 and len(history.epochs) == 3
    full = fit(model, batches, epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), loss_fn=loss,
               progress=False, accumulate=3)
    assert full.steps == 4  # 10 batches, a step every 3 and one for the remainder


def test_a_smoke_checkpoint_is_the_released_format_with_the_released_name(monkeypatch, tmp_path):
    from esclib.models.panns import load_pann

    monkeypatch.setenv("ESCLIB_CACHE", str(tmp_path))
    path = smoke.smoke_checkpoint("Cnn6")
    assert path.name == "Cnn6_mAP=0.343.pth"
    saved = torch.load(path, weights_only=True)
    assert set(saved) == {"iteration", "model"}
    model = load_pann(path)
    assert type(model).__name__ == "Cnn6" and model.frontend.sample_rate == 32000
    assert smoke.smoke_checkpoint("Cnn6") == path and path.stat().st_size > 1_000_000


def test_every_chapter_resolves_its_smoke_overrides(monkeypatch):
    """A smoke override the chapter's parameter rejects fails here, not after minutes of a smoke run."""
    from pathlib import Path

    from esclib.runner.book import toc_chapters
    from esclib.runner.specs import get_spec

    monkeypatch.setenv(smoke.SMOKE_ENV, "1")
    stems = toc_chapters(Path(__file__).resolve().parents[1] / "_toc.yml")
    specs = [spec for spec in map(get_spec, stems) if spec is not None]
    assert len(specs) == len(stems)
    for spec in specs:
        resolved = resolve(spec, "paper")
        for name in spec.smoke:
            assert resolved[name] == spec.params[name].validate(name, spec.smoke[name]), (spec.notebook, name)
