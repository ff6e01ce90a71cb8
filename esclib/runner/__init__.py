"""Running the book: chapter parameters and profiles, the start of every chapter, papermill runs, sweeps, the build.

- :mod:`esclib.runner.spec` / :mod:`esclib.runner.specs` -- each chapter's parameters, defaults and checks.
- :func:`start_chapter` -- the first call of every chapter notebook (validate, seed, device, run metadata).
- :mod:`esclib.runner.execute` -- one papermill run of a notebook into its executed copy (``esc run``).
- :mod:`esclib.runner.sweep` -- one run per fold or parameter value, resumable (``esc run --folds/--sweep``).
- :mod:`esclib.runner.book` / :mod:`esclib.runner.assets` -- every chapter, then the strict offline HTML build
  (``esc book``).
"""

from esclib.runner.chapter import ChapterContext, start_chapter
from esclib.runner.spec import ChapterSpec, Param, expand_folds, in_range, integer, parse_folds, resolve

__all__ = [
    "ChapterContext", "ChapterSpec", "Param", "expand_folds", "in_range", "integer", "parse_folds", "resolve",
    "start_chapter",
]
