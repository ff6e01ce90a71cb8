"""Results tables and figures for the chapters: our runs (mean ± std over folds) beside the studies' numbers."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from esclib.results.store import REPEAT_KEYS, ResultsStore
from esclib.results.studies import study_value


def _format(mean: float, std: float, digits: int) -> str:
    return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def results_table(
    experiment: str,
    store: ResultsStore | None = None,
    *,
    metrics: Sequence[str] | None = None,
    digits: int = 3,
) -> pd.DataFrame:
    """Our results of ``experiment`` beside the published ones, one row per arm, setting and metric.

    Columns ``arm, setting, metric, ours`` ("mean ± std" over folds / seeds), ``n_runs``, ``published`` (the
    study's number in the same unit, blank when none) and ``source`` (its table). The ``setting`` column is dropped
    when every run shares one setting. ``metrics`` limits and orders the metrics shown.
    """
    table = (store or ResultsStore()).aggregate(experiment)
    if metrics is not None:
        table = table[table["metric"].isin(metrics)]
        table = table.assign(_order=table["metric"].map(list(metrics).index)).sort_values(["_order", "arm"])
    out = pd.DataFrame({
        "arm": table["arm"], "setting": table["setting"], "metric": table["metric"],
        "ours": [_format(m, s, digits) for m, s in zip(table["mean"], table["std"])],
        "n_runs": table["n_runs"],
        "published": ["" if pd.isna(v) else f"{v:.{digits}f}" for v in table["study_value"]],
        "source": table["study_source"],
    }).reset_index(drop=True)
    return out.drop(columns="setting") if out["setting"].nunique() <= 1 else out


def run_values(experiment: str, store: ResultsStore | None = None, metric: str = "accuracy") -> pd.DataFrame:
    """One row per finished run of ``experiment``: ``arm, setting`` (without folds / seeds), ``value`` of ``metric``
    and the published number for that arm and setting (``published``, NaN when none)."""
    rows = []
    for result in (store or ResultsStore()).results(experiment):
        setting = {k: v for k, v in result["setting"].items() if k not in REPEAT_KEYS}
        if isinstance(result["metrics"].get(metric), (int, float)):
            study = study_value(experiment, result["arm"], metric, setting)
            rows.append({"arm": result["arm"], "setting": ", ".join(f"{k}={v}" for k, v in sorted(setting.items())),
                         "value": result["metrics"][metric], "published": study.value if study else float("nan")})
    return pd.DataFrame(rows, columns=["arm", "setting", "value", "published"])


def results_figure(experiment: str, store: ResultsStore | None = None, metric: str = "accuracy", ax=None):
    """Bar chart of ``metric`` per arm and setting (mean, error bars ± 1 std over runs) with the published numbers
    as black diamonds. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    runs = run_values(experiment, store, metric)
    if runs.empty:
        raise ValueError(f"no finished run of experiment {experiment!r} has the metric {metric!r}")
    runs["group"] = [arm if not setting else f"{arm}\n{setting}" for arm, setting in zip(runs["arm"], runs["setting"])]
    order = list(dict.fromkeys(runs["group"]))
    ax = ax or plt.subplots(figsize=(max(4.0, 1.4 * len(order)), 3.5))[1]
    sns.barplot(data=runs, x="group", y="value", order=order, errorbar="sd", color="tab:blue", alpha=0.7, ax=ax)
    sns.stripplot(data=runs, x="group", y="value", order=order, color="k", size=3, ax=ax)
    published = runs.groupby("group", sort=False)["published"].first().reindex(order)
    if published.notna().any():
        ax.scatter(range(len(order)), published.to_numpy(), marker="D", color="k", zorder=5, label="published")
        ax.legend(loc="lower right")
    ax.set(xlabel="", ylabel=metric, title=experiment)
    return ax
