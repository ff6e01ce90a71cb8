"""Chapter 01's figures (Notebook: 01_pann_transfer): each takes the chapter's results or tables and returns a
matplotlib figure sized for the book's page width, drawn with seaborn, every axis labelled. A figure whose data are
empty (e.g. a run with ``-p strategies freeze_l1``) says so instead of failing.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from esclib.display import show_logmel
from esclib.models.transfer import STRATEGIES
from esclib.results.studies import study_table
from esclib.results.summary import Results

#: page width of the book's figures (inches)
WIDTH = 9.0


def _empty(message: str) -> Figure:
    fig, ax = plt.subplots(figsize=(WIDTH, 1.0))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center")
    return fig


def plot_tagging(logmel: np.ndarray, tags: pd.DataFrame, title: str, *, sr: int, hop_length: int, fmin: float,
                 fmax: float, model_name: str) -> Figure:
    """A clip's frontend log-mel (``(frames, mel bins)``, dB) beside the pretrained model's top tags."""
    fig, (ax_mel, ax_tags) = plt.subplots(1, 2, figsize=(WIDTH, 3.2), gridspec_kw={"width_ratios": [1.6, 1]},
                                          layout="constrained")
    image = show_logmel(ax_mel, logmel, title, sr=sr, hop_length=hop_length, fmin=fmin, fmax=fmax)
    fig.colorbar(image, ax=ax_mel, format="%+.0f dB")
    sns.barplot(data=tags, x="probability", y="label", color="tab:blue", ax=ax_tags)
    ax_tags.set(xlim=(0, 1), xlabel="probability (sigmoid output)", ylabel="", title=f"top tags of {model_name}")
    return fig


def plot_embedding_map(points: pd.DataFrame, title: str) -> Figure:
    """The 2-D map of the frozen embeddings (``x, y, category``), one colour per class (legend up to 12 classes)."""
    n_classes = points["category"].nunique()
    fig, ax = plt.subplots(figsize=(WIDTH, 5.5), layout="constrained")
    sns.scatterplot(data=points, x="x", y="y", hue="category", s=18, ax=ax, legend=n_classes <= 12)
    ax.set(title=title, xlabel="dimension 1", ylabel="dimension 2")
    if n_classes <= 12:
        ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize="small", title="class")
    return fig


def plot_strategies(results: Results, title: str) -> Figure:
    """Test accuracy per strategy: bars the mean over the test folds (± std), dots single folds, diamonds the
    study's Table IX."""
    frame = results.frame()
    if frame.empty:
        return _empty("no run to show")
    order = [s for s in STRATEGIES if s in set(frame["arm"])]
    theirs = study_table("pann_transfer").query("metric == 'accuracy'").set_index("arm")["value"].reindex(order)
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8), layout="constrained")
    sns.barplot(data=frame, x="arm", y="accuracy", order=order, errorbar="sd", color="tab:blue", alpha=0.6, ax=ax,
                label="this run: mean ± std over folds")
    sns.stripplot(data=frame, x="arm", y="accuracy", order=order, color="k", size=4, ax=ax, label="one test fold")
    ax.scatter(range(len(order)), theirs, marker="D", color="tab:red", zorder=5,
               label="Kong et al. 2020, Table IX (real ESC-50, CNN14)")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), loc="lower right", fontsize="small")
    ax.set(ylim=(0, 1), xlabel="strategy", ylabel="test accuracy", title=title)
    return fig


def plot_paired(results: Results, pairs: Sequence[tuple[str, str]], title: str) -> Figure:
    """Each comparison ``b − a`` of accuracy: its difference on every test fold (dots) and its mean with the 95 %
    bootstrap interval over folds (bar); the dashed line is no difference."""
    ran = {r.get("label", r["arm"]) for r in results}
    shown = [(a, b) for a, b in pairs if a in ran and b in ran]
    if not shown:
        return _empty("no pair of strategies ran on common folds")
    fig, ax = plt.subplots(figsize=(WIDTH, 0.7 * len(shown) + 1.2), layout="constrained")
    for y, (a, b) in enumerate(shown):
        paired = results.paired(a, b)
        ax.scatter(paired.per_fold["difference"], np.full(len(paired.per_fold), y), color="k", s=14, zorder=3,
                   label="one test fold" if y == 0 else None)
        ax.errorbar(paired.mean, y, xerr=[[paired.mean - paired.low], [paired.high - paired.mean]], fmt="D",
                    color="tab:blue", capsize=4, zorder=2, label="mean, 95% bootstrap interval" if y == 0 else None)
    ax.axvline(0, color="grey", linestyle="--")
    ax.set_yticks(range(len(shown)), labels=[f"{b} − {a}" for a, b in shown])
    ax.invert_yaxis()
    ax.set(xlabel="difference in test accuracy", title=title)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_curves(results: Results, title: str) -> Figure:
    """Training loss (mixed clips) per epoch and, where the runs selected on a validation set, its accuracy: mean
    and std over the test folds, one line per strategy."""
    curves = results.curves()
    if curves.empty:
        return _empty("no training curve to show")
    panels = [c for c in ("loss", "val_acc") if c in curves.columns and curves[c].notna().any()]
    names = {"loss": "training loss (mixup targets)", "val_acc": "validation accuracy"}
    fig, axes = plt.subplots(1, len(panels), figsize=(WIDTH, 3.4), layout="constrained", squeeze=False)
    order = [s for s in STRATEGIES if s in set(curves["arm"])]
    for ax, panel in zip(axes[0], panels):
        sns.lineplot(data=curves, x="epoch", y=panel, hue="arm", hue_order=order, errorbar="sd", ax=ax,
                     legend=ax is axes[0][-1])
        ax.set(xlabel="epoch", ylabel=names[panel], title=names[panel])
    if len(order) > 1:
        sns.move_legend(axes[0][-1], "center left", bbox_to_anchor=(1, 0.5), title="strategy")
    fig.suptitle(title)
    return fig


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], title: str) -> Figure:
    """A confusion matrix (rows true class, columns predicted), counts in the cells."""
    size = min(WIDTH, max(5.0, 0.3 * len(classes) + 2))
    fig, ax = plt.subplots(figsize=(size + 1, size), layout="constrained")
    sns.heatmap(matrix, xticklabels=classes, yticklabels=classes, cmap="Blues", square=True, ax=ax,
                annot=len(classes) <= 12, fmt="d", cbar_kws={"label": "test clips"})
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    ax.tick_params(axis="x", labelrotation=60)
    return fig


def plot_few_shot(curve: pd.DataFrame, title: str) -> Figure:
    """Test accuracy against labelled clips per class (log scale), mean ± std over folds, one line per strategy;
    the right-most points are the runs on every label."""
    if curve.empty:
        return _empty("no few-shot run to show")
    order = [s for s in STRATEGIES if s in set(curve["strategy"])]
    fig, ax = plt.subplots(figsize=(WIDTH, 4.0), layout="constrained")
    sns.lineplot(data=curve, x="per_class", y="accuracy", hue="strategy", hue_order=order, marker="o",
                 errorbar="sd", ax=ax)
    ticks = sorted(curve["per_class"].unique())
    ax.set(xscale="log", xlabel="labelled training clips per class (log scale)", ylabel="test accuracy",
           ylim=(0, 1), title=title)
    ax.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
    ax.minorticks_off()
    sns.move_legend(ax, "center left", bbox_to_anchor=(1, 0.5), title="strategy")
    return fig
