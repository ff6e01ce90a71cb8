"""Figures of chapter 04 (study 004, NPID / DLS): what each cell of the notebook plots, drawn here.

Notebook: 04_npid. Every function returns the matplotlib figure (seaborn styling, labelled axes, sized for the page);
an empty table gives a figure that says what is missing instead of failing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

#: colours of the fine-tuning arms, the same in every figure
ARM_COLOURS = {"npid": "#dd8452", "npid-pooled": "#c44e52", "npid-leak-free": "#8172b3", "imagenet": "#55a868",
               "scratch": "#4c72b0"}


def _figure(width: float = 8.0, height: float = 3.4, ncols: int = 1):
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width, height), layout="constrained", squeeze=False)


def _empty(message: str) -> Figure:
    fig, axes = _figure(6, 1.2)
    axes[0, 0].axis("off")
    axes[0, 0].text(0.5, 0.5, message, ha="center", va="center")
    return fig


def plot_three_bands(spectrograms: np.ndarray, titles: list[str]) -> Figure:
    """The 3-band input of a few clips (``(N, 3, bins, frames)`` in dB): one row per clip, its three bands as the
    three channels the ResNet sees, lowest band first."""
    import matplotlib.pyplot as plt

    n = len(spectrograms)
    fig, axes = plt.subplots(n, 3, figsize=(10, 1.9 * n + 0.6), layout="constrained", sharex=True, sharey=True,
                             squeeze=False)
    low, high = np.percentile(spectrograms, [5, 99.9])
    for row, (spec, title) in enumerate(zip(spectrograms, titles)):
        for band in range(3):
            ax = axes[row, band]
            shown = ax.imshow(spec[band], origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=high)
            ax.grid(False)
            ax.set_title(f"{title}: band {band + 1}" + (" (lowest)" if band == 0 else ""), fontsize="small")
        axes[row, 0].set_ylabel("bin in band")
    for ax in axes[-1]:
        ax.set_xlabel("frame")
    fig.colorbar(shown, ax=axes, label="power (dB)")
    return fig


def plot_knn_curves(curves: pd.DataFrame) -> Figure:
    """kNN accuracy on the test fold per NPID epoch (epoch 0: the network's random weights), one panel per K, mean
    over folds with the spread (sd) shaded and the random network's level dashed."""
    if curves.empty:
        return _empty("no NPID pre-training with a test fold in this run")
    ks = sorted(curves["K"].unique())
    fig, axes = _figure(4.2 * len(ks), 3.4, len(ks))
    for ax, k in zip(axes[0], ks):
        part = curves[curves["K"] == k]
        sns.lineplot(part, x="epoch", y="kNN accuracy", hue="pre-training", errorbar="sd", marker="o", ax=ax,
                     legend=ax is axes[0, 0])
        ax.axhline(part[part["epoch"] == 0]["kNN accuracy"].mean(), ls="--", color="grey", label="random weights")
        ax.set(title=f"weighted kNN, K = {k}", xlabel="NPID epoch (0 = random weights)", ylabel="test accuracy")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].legend(loc="lower right", fontsize="small")
    return fig


def plot_finetune_curves(curves: pd.DataFrame) -> Figure:
    """Test accuracy after every fine-tuning epoch per arm (mean over folds, sd shaded), one panel per dataset:
    the study's Fig. 4."""
    if curves.empty:
        return _empty("no fine-tuning runs in this run")
    datasets = sorted(curves["dataset"].unique())
    fig, axes = _figure(4.4 * len(datasets) + 1.5, 3.4, len(datasets))
    for ax, dataset in zip(axes[0], datasets):
        part = curves[curves["dataset"] == dataset]
        sns.lineplot(part, x="epoch", y="test accuracy", hue="arm", palette=ARM_COLOURS, errorbar="sd", marker="o",
                     ax=ax, legend=ax is axes[0, -1])
        ax.set(title=f"{dataset}: fine-tuning all layers", xlabel="fine-tuning epoch", ylabel="test accuracy")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.02, 1), title="initialisation")
    return fig


def plot_paired(per_fold: pd.DataFrame, title: str) -> Figure:
    """One point per fold of a paired difference (columns ``comparison``, ``fold``, ``difference``) and the mean,
    with zero marked: a difference inside the fold noise straddles it."""
    if per_fold.empty:
        return _empty("no pair of arms ran on the same folds")
    fig, axes = _figure(7, 0.9 + 0.6 * per_fold["comparison"].nunique())
    ax = axes[0, 0]
    sns.stripplot(per_fold, x="difference", y="comparison", hue="fold", palette="colorblind", size=8, ax=ax,
                  jitter=False)
    means = per_fold.groupby("comparison", sort=False)["difference"].mean()
    ax.scatter(means.values, means.index, marker="|", s=600, color="black", label="mean", zorder=3)
    ax.axvline(0, color="grey", ls="--")
    ax.set(title=title, xlabel="test-accuracy difference (b − a), per fold", ylabel="")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.02, 1), title="fold")
    return fig


def plot_embedding_maps(maps: dict[str, np.ndarray], labels: pd.Series, title: str) -> Figure:
    """2-D maps of embeddings (each ``(N, 2)``, one panel per name) coloured by class ``labels``."""
    fig, axes = _figure(5.2 * len(maps) + 1.6, 4.4, len(maps))
    for ax, (name, points) in zip(axes[0], maps.items()):
        frame = pd.DataFrame({"x": points[:, 0], "y": points[:, 1], "class": labels.to_numpy()})
        sns.scatterplot(frame, x="x", y="y", hue="class", palette="tab10", s=22, ax=ax, legend=ax is axes[0, -1])
        ax.set(title=name, xlabel="t-SNE 1", ylabel="t-SNE 2", xticks=[], yticks=[])
    sns.move_legend(axes[0, -1], "upper left", bbox_to_anchor=(1.02, 1), title="class", fontsize="small")
    fig.suptitle(title)
    return fig
