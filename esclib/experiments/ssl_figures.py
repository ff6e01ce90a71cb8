"""Figures of chapter 05 (study 001, the self-supervised comparison): what each cell of the notebook plots.

Notebook: 05_ssl. Every function returns the matplotlib figure (seaborn styling, labelled axes, sized for the page).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import MaxNLocator

from esclib.experiments.ssl import ARMS, CamExample, budget_table
from esclib.results.summary import Results

#: colours of the arms, the same in every figure
ARM_COLOURS = dict(zip(ARMS, ("#8c8c8c", "#4c72b0", "#64b5cd", "#dd8452", "#c44e52", "#55a868", "#8172b3",
                              "#222222")))


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _order(arms: Sequence[str]) -> list[str]:
    return [a for a in ARMS if a in set(arms)]


def plot_views(originals: torch.Tensor, view0: torch.Tensor, view1: torch.Tensor, titles: Sequence[str]):
    """Clips' backbone inputs without augmentation (top row) and their two views (rows 2-3), ``(N, 1, H, W)``."""
    n = len(originals)
    fig, axes = _plt().subplots(3, n, figsize=(2.3 * n + 0.6, 6.3), layout="constrained", squeeze=False)
    for row, (name, images) in enumerate((("input", originals), ("view 1", view0), ("view 2", view1))):
        for col in range(n):
            ax = axes[row, col]
            ax.imshow(images[col, 0].T.numpy(), origin="lower", aspect="auto", cmap="magma")
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
            if row == 0:
                ax.set_title(titles[col])
            if col == 0:
                ax.set_ylabel(f"{name}\nmel (resized)")
        axes[2, col].set_xlabel("time (resized)")
    fig.suptitle("Two views of each clip, made on the standardised log-mel (the backbone's input)")
    return fig


def plot_pretraining_curves(curves: pd.DataFrame):
    """Pre-training loss per epoch, one panel per method (the losses are on different scales)."""
    import seaborn as sns

    methods = _order(curves["arm"].unique())
    fig, axes = _plt().subplots(1, len(methods), figsize=(3.0 * len(methods) + 0.5, 2.8), layout="constrained",
                                squeeze=False)
    for ax, method in zip(axes[0], methods):
        mine = curves[curves["arm"] == method]
        sns.lineplot(data=mine, x="epoch", y="loss", color=ARM_COLOURS[method], marker="o", ax=ax)
        ax.set(title=method, xlabel="epoch", ylabel="loss" if ax is axes[0, 0] else "")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle("Pre-training loss (no labels), the same recipe for every method")
    return fig


def plot_comparison(results: Results):
    """Test accuracy of every arm by the linear probe and the kNN: one dot per fold, the mean as a bar."""
    import seaborn as sns

    frame = results.frame()
    long = frame.melt(id_vars=["arm", "fold"], value_vars=["accuracy", "knn_accuracy"], var_name="evaluation",
                      value_name="test accuracy")
    long["evaluation"] = long["evaluation"].map({"accuracy": "linear probe", "knn_accuracy": "kNN"})
    long = long.dropna()
    order = _order(long["arm"].unique())
    fig, ax = _plt().subplots(figsize=(8.5, 3.6), layout="constrained")
    sns.barplot(data=long, x="arm", y="test accuracy", hue="evaluation", order=order, errorbar=None, alpha=0.55,
                ax=ax)
    sns.stripplot(data=long, x="arm", y="test accuracy", hue="evaluation", order=order, dodge=True, legend=False,
                  size=5, ax=ax, palette="dark")
    ax.set(xlabel="", ylim=(0, 1), title="Frozen embeddings on the official folds (dots: folds; bars: mean)")
    ax.tick_params(axis="x", rotation=20)
    return fig


def plot_paired(results: Results, arms: Sequence[str], baseline: str = "random"):
    """``arm − baseline`` per method: each fold's difference (dots) and the mean with its 95 % bootstrap interval,
    for the probe and the kNN."""
    rows = []
    for arm in _order(arms):
        if arm == baseline:
            continue
        for metric, label in (("accuracy", "linear probe"), ("knn_accuracy", "kNN")):
            d = results.paired(baseline, arm, metric)
            rows += [{"arm": arm, "evaluation": label, "difference": v, "kind": "fold"}
                     for v in d.per_fold["difference"]]
            rows.append({"arm": arm, "evaluation": label, "difference": d.mean, "low": d.low, "high": d.high,
                         "kind": "mean"})
    frame = pd.DataFrame(rows)
    fig, axes = _plt().subplots(1, 2, figsize=(9, 0.55 * max(1, frame["arm"].nunique()) + 1.6), sharey=True,
                                layout="constrained")
    for ax, label in zip(axes, ("linear probe", "kNN")):
        mine = frame[frame["evaluation"] == label]
        order = _order(mine["arm"].unique())
        y = {arm: i for i, arm in enumerate(order)}
        folds, means = mine[mine["kind"] == "fold"], mine[mine["kind"] == "mean"]
        ax.scatter(folds["difference"], folds["arm"].map(y), color="0.6", s=18, label="folds", zorder=2)
        ax.errorbar(means["difference"], means["arm"].map(y), xerr=[means["difference"] - means["low"],
                                                                    means["high"] - means["difference"]],
                    fmt="o", color="black", capsize=3, label="mean, 95 % interval", zorder=3)
        ax.axvline(0, color="0.3", lw=1, ls="--")
        ax.set(yticks=range(len(order)), yticklabels=order, xlabel=f"test accuracy − {baseline}", title=label,
               ylim=(len(order) - 0.5, -0.5))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize="small")
    fig.suptitle(f"Each arm against the {baseline}-weight backbone, fold by fold")
    return fig


def plot_budget_curves(results: Results):
    """The linear probe's test accuracy against labels per class (log scale; ``all`` at the right), mean and
    spread over folds, one line per arm."""
    import seaborn as sns

    table = budget_table(results)
    fig, ax = _plt().subplots(figsize=(6.5, 3.6), layout="constrained")
    if table.empty:
        return fig
    budgets = sorted(b for b in table["labels per class"].unique() if b != "all")
    position = {b: i for i, b in enumerate([*budgets, "all"])}
    table = table.assign(position=table["labels per class"].map(position))
    order = _order(table["arm"].unique())
    sns.lineplot(data=table, x="position", y="accuracy", hue="arm", hue_order=order, marker="o",
                 palette=ARM_COLOURS, errorbar=("pi", 100), ax=ax)
    ax.set(xticks=list(position.values()), xticklabels=[str(b) for b in position], xlabel="labels per class",
           ylabel="probe test accuracy", title="Label efficiency of the frozen embeddings (band: range over folds)")
    ax.legend(fontsize="small", ncols=2)
    return fig


def plot_confusions(results: Results, arms: Sequence[str], classes: Sequence[str]):
    """The linear probe's test confusion matrix, summed over folds, row-normalised, for each of ``arms``."""
    import seaborn as sns

    arms = [a for a in _order(arms) if results.select(arm=a)]
    if not arms:
        raise ValueError("plot_confusions: none of the arms has a run")
    fig, axes = _plt().subplots(1, len(arms), figsize=(3.9 * len(arms) + 1.2, 4.4), layout="constrained",
                                squeeze=False)
    for ax, arm in zip(axes[0], arms):
        total = sum(np.asarray(r["metrics"]["confusion"], dtype=float) for r in results.select(arm=arm))
        share = total / np.maximum(total.sum(1, keepdims=True), 1)
        sns.heatmap(share, vmin=0, vmax=1, cmap="Blues", cbar=ax is axes[0, -1], square=True, ax=ax,
                    xticklabels=list(classes), yticklabels=list(classes) if ax is axes[0, 0] else False)
        ax.set(title=arm, xlabel="predicted", ylabel="true" if ax is axes[0, 0] else "")
        ax.tick_params(axis="x", rotation=90, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle("Linear probe, test folds together (rows: share of each true class)")
    return fig


def plot_collapse(table: pd.DataFrame):
    """Effective rank (RankMe) of each method's embeddings of its pre-training clips against the random
    initialisation's (dashed), and DINO's teacher entropy as a share of its maximum ``log k``."""
    import seaborn as sns

    fig, axes = _plt().subplots(1, 2, figsize=(9.5, 3.2), layout="constrained", width_ratios=(3, 1.3))
    order = _order(table["method"].unique())
    sns.barplot(data=table, x="method", y="RankMe", order=order, hue="method", palette=ARM_COLOURS, legend=False,
                ax=axes[0])
    axes[0].axhline(float(table["RankMe at init"].mean()), color="0.3", ls="--", lw=1, label="random initialisation")
    axes[0].set(xlabel="", ylabel="effective rank (RankMe)", title=f"Dimensions used (of {int(table['dim'].max())})")
    axes[0].legend(fontsize="small")
    dino = table.dropna(subset=["teacher entropy / log k"])
    if len(dino):
        sns.barplot(data=dino, x="method", y="teacher entropy / log k", color=ARM_COLOURS["dino"], ax=axes[1])
        axes[1].set(ylim=(0, 1.05), xlabel="", title="DINO teacher entropy")
        axes[1].axhline(1.0, color="0.3", ls=":", lw=1)
    else:
        axes[1].set_axis_off()
    return fig


def plot_grad_cam(examples: Sequence[CamExample], arm: str):
    """Each explained clip's backbone input (top) and its Grad-CAM map over the same input (bottom): where the
    frozen backbone of ``arm`` saw the evidence for the class the probe predicted
    (:func:`esclib.experiments.ssl.grad_cam_examples`)."""
    n = len(examples)
    fig, axes = _plt().subplots(2, n, figsize=(2.6 * n + 0.6, 4.6), layout="constrained", squeeze=False)
    for col, example in enumerate(examples):
        top, bottom = axes[0, col], axes[1, col]
        top.imshow(example.image, origin="lower", aspect="auto", cmap="magma")
        top.set_title(f"{example.true}\n(probe: {example.predicted})", fontsize=9)
        bottom.imshow(example.image, origin="lower", aspect="auto", cmap="gray")
        shown = bottom.imshow(example.cam, origin="lower", aspect="auto", cmap="jet", alpha=0.5, vmin=0, vmax=1)
        for ax in (top, bottom):
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
        top.set_ylabel("mel bands" if col == 0 else "")
        bottom.set_ylabel("Grad-CAM" if col == 0 else "")
        bottom.set_xlabel("time")
    fig.colorbar(shown, ax=axes[1, :].tolist(), shrink=0.8, label="relevance (max 1)")
    fig.suptitle(f"Grad-CAM of the frozen {arm} backbone, read out by its linear probe")
    return fig
