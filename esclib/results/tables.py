"""Results figures for the chapters: our runs beside the studies' numbers (tables: :mod:`esclib.results.summary`)."""

from __future__ import annotations

from typing import Iterable, Mapping

from esclib.results.studies import study_value
from esclib.results.summary import run_frame, study_setting


def results_figure(results: Iterable[Mapping], metric: str = "accuracy", ax=None, title: str = ""):
    """Bar chart of ``metric`` per arm (mean, error bars ± 1 std over runs, each run a dot) with the published
    numbers as black diamonds. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns

    results = list(results)
    runs = run_frame(results)
    if runs.empty or metric not in runs:
        raise ValueError(f"no finished run has the metric {metric!r}")
    published = {r["arm"]: getattr(study_value(r["experiment"], r["arm"], metric, study_setting(r)), "value", np.nan)
                 for r in results}
    order = list(dict.fromkeys(runs["arm"]))
    ax = ax or plt.subplots(figsize=(max(4.0, 1.3 * len(order)), 3.5), layout="constrained")[1]
    sns.barplot(data=runs, x="arm", y=metric, order=order, errorbar="sd", color="tab:blue", alpha=0.7, ax=ax)
    sns.stripplot(data=runs, x="arm", y=metric, order=order, color="k", size=3, ax=ax)
    values = [published.get(arm, np.nan) for arm in order]
    if not np.all(np.isnan(values)):
        ax.scatter(range(len(order)), values, marker="D", color="k", zorder=5, label="published")
        ax.legend(loc="lower right")
    ax.set(xlabel="", ylabel=metric, title=title)
    ax.tick_params(axis="x", labelrotation=20)
    return ax
