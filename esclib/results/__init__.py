"""Results: the store of finished runs, the one summary every chapter and ``esc results`` use, the studies' numbers.

- :class:`ResultsStore` / :class:`Run` -- runs keyed by their full identity, written atomically, reused only on an
  exact match (:mod:`esclib.results.store`).
- :func:`summarise`, :func:`summary_table`, :func:`paired_differences` -- mean ± std over true repeats beside the
  published numbers; paired differences with bootstrap intervals (:mod:`esclib.results.summary`).
- :mod:`esclib.results.studies` -- the studies' published numbers with their protocols.
"""

from esclib.results.store import ResultsStore, Run, setting_slug, write_json_atomic
from esclib.results.summary import (
    REPEAT_KEYS,
    SUMMARY_COLUMNS,
    PairedDifference,
    Results,
    paired_differences,
    run_frame,
    summarise,
    summary_table,
)
from esclib.results.tables import results_figure

__all__ = [
    "REPEAT_KEYS", "SUMMARY_COLUMNS", "PairedDifference", "Results", "ResultsStore", "Run", "paired_differences",
    "results_figure", "run_frame", "setting_slug", "summarise", "summary_table", "write_json_atomic",
]
