"""Results: the store of every run (atomic JSON per run), aggregation over folds, the studies' published numbers.

- :class:`ResultsStore` / :class:`Run` -- write per-epoch curves and final metrics; finished runs are reused.
- :mod:`esclib.results.studies` -- the numbers the five studies (and the reference implementations) published.
- :func:`results_table`, :func:`results_figure` -- ours beside theirs, for the chapters and ``esc results``.
"""

from esclib.results.store import AGGREGATE_COLUMNS, REPEAT_KEYS, ResultsStore, Run, setting_slug, write_json_atomic
from esclib.results.tables import results_figure, results_table, run_values

__all__ = [
    "AGGREGATE_COLUMNS", "REPEAT_KEYS", "ResultsStore", "Run", "results_figure", "results_table", "run_values",
    "setting_slug", "write_json_atomic",
]
