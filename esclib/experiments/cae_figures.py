"""Figures of chapter 03 (study 002, CAE pre-training): what each cell of the notebook plots, drawn here.

Notebook: 03_cae. Every function returns the matplotlib figure (seaborn styling, labelled axes, sized for the page).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from esclib.experiments.cae import CONFIGURATION, comparison_frame
from esclib.models.cae import Switches, Unpool2d, Upsample2d
from esclib.results.summary import Results

#: colours of the arms, the same in every figure
ARM_COLOURS = {"supervised": "#4c72b0", "cae-unpool": "#dd8452", "cae-upsample": "#55a868"}


def _plt():
    import matplotlib.pyplot as plt

    return plt


def plot_pooling_example(x: torch.Tensor):
    """A 2-D map ``x`` (``(H, W)``), its 2x2 max-pooling, and the pooled map unpooled with the switches and
    upsampled (zero-padded to the pre-pool size), as annotated heat maps side by side."""
    import seaborn as sns

    x = x[None, None]
    pooled, indices = torch.nn.MaxPool2d(2, return_indices=True)(x)
    switches = Switches(indices, x.shape[-2:])
    panels = {f"input x ({x.shape[-2]} × {x.shape[-1]})": x,
              f"max-pooled y ({pooled.shape[-2]} × {pooled.shape[-1]})": pooled,
              "unpooled (switches)": Unpool2d()(pooled, switches), "upsampled + zero-pad": Upsample2d()(pooled, switches)}
    fig, axes = _plt().subplots(1, 4, figsize=(11, 2.8), layout="constrained")
    for ax, (title, values) in zip(axes, panels.items()):
        sns.heatmap(values[0, 0].numpy(), annot=True, fmt=".0f", cbar=False, cmap="Blues", ax=ax, square=True)
        ax.set(title=title, xlabel="column", ylabel="row")
    return fig


def plot_inputs(inputs: np.ndarray, titles: Sequence[str]):
    """The CAE inputs ``(N, 1, mels, frames)`` side by side, one panel per clip titled by ``titles``."""
    n = len(inputs)
    fig, axes = _plt().subplots(1, n, figsize=(2.9 * n + 0.8, 2.7), layout="constrained", sharey=True, squeeze=False)
    for ax, image, title in zip(axes[0], inputs, titles):
        shown = ax.imshow(image[0], origin="lower", aspect="auto", cmap="magma")
        ax.set(title=title, xlabel="frame")
        ax.grid(False)
    axes[0, 0].set_ylabel("mel band")
    fig.colorbar(shown, ax=axes, label="dB re the clip's maximum")
    fig.suptitle(f"The CAE input of one clip per class ({inputs.shape[2]} mel bands × {inputs.shape[3]} frames)")
    return fig


def plot_reconstructions(inputs: np.ndarray, reconstructions: Mapping[str, np.ndarray],
                         titles: Sequence[str] | None = None):
    """Study 002's Fig. 1: the inputs (top row) and each decoder's reconstructions below, one clip per column, on
    the inputs' colour scale."""
    rows = {"input": inputs, **{f"{name}\nreconstruction": r for name, r in reconstructions.items()}}
    n = len(inputs)
    fig, axes = _plt().subplots(len(rows), n, figsize=(1.9 * n + 1.4, 1.7 * len(rows) + 0.4), squeeze=False,
                                sharex=True, sharey=True, layout="constrained")
    lo, hi = float(np.min(inputs)), float(np.max(inputs))
    for r, (name, images) in enumerate(rows.items()):
        for c in range(n):
            image = axes[r, c].imshow(images[c, 0], origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi)
            axes[r, c].grid(False)
        axes[r, 0].set_ylabel(f"{name}\nmel band")
    for c in range(n):
        axes[-1, c].set_xlabel("frame")
        if titles is not None:
            axes[0, c].set_title(titles[c], fontsize="small")
    fig.colorbar(image, ax=axes, label="dB re the clip's maximum")
    fig.suptitle("CAE inputs and their reconstructions (held-out ESC-US clips)")
    return fig


def plot_pretraining_curves(histories: Mapping[str, pd.DataFrame], baseline: float | None = None):
    """Training and validation reconstruction error per epoch of each autoencoder (log scale), with the error of
    the mean image (``baseline``, :func:`esclib.experiments.cae.mean_image_mse`) as a dashed line."""
    import seaborn as sns

    long = pd.concat([h.melt(id_vars="epoch", value_vars=["loss", "val_loss"], var_name="set", value_name="mse")
                      .assign(decoder=name) for name, h in histories.items()], ignore_index=True)
    long["set"] = long["set"].map({"loss": "training", "val_loss": "validation"})
    fig, ax = _plt().subplots(figsize=(6.4, 3.6), layout="constrained")
    sns.lineplot(long, x="epoch", y="mse", hue="decoder", style="set", markers=True, ax=ax)
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", linewidth=1)
        ax.annotate("mean image", (long["epoch"].max(), baseline), textcoords="offset points", xytext=(0, 4),
                    ha="right", fontsize="small", color="grey")
    ax.set(yscale="log", xlabel="epoch", ylabel="reconstruction MSE (dB²)",
           title="CAE pre-training on ESC-US: reconstruction error")
    return fig


def plot_accuracy(results: Results):
    """Test accuracy per arm and batch size: our runs on the official folds (mean ± sd) and on the study's random
    split, beside the study's Table 1 (its one random split), one panel per source."""
    import seaborn as sns

    frame = comparison_frame(results)
    if frame.empty:
        return None
    grid = sns.catplot(frame, x="batch_size", y="accuracy", hue="arm", col="source", kind="point", errorbar="sd",
                       dodge=0.3, linestyle="none", height=3.2, aspect=0.9, palette=ARM_COLOURS,
                       col_order=[c for c in ("this run: official folds", "this run: random split",
                                              "study 002: random split (Table 1)") if c in set(frame["source"])])
    grid.set_axis_labels("batch size", "test accuracy").set_titles("{col_name}", size="small")
    grid.figure.suptitle("ESC-50 test accuracy per arm and batch size (folds: mean ± sd)", y=1.03)
    return grid.figure


def paired_frame(results: Results, a: str = "supervised", b: str = "cae-unpool",
                 by: Sequence[str] = CONFIGURATION) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per configuration (``by``, labelled readably), the per-fold differences ``b - a`` on the official folds and
    their mean with its bootstrap interval: ``(per_fold, intervals)``."""
    folds = results.select(split="folds")
    frame = folds.frame()
    per_fold, intervals = [], []
    if frame.empty or not {a, b} <= set(frame["arm"]):
        return pd.DataFrame(columns=["configuration", "fold", "difference"]), pd.DataFrame()
    varying = [k for k in by if frame[k].nunique() > 1] or list(by[-1:])
    for values, group in frame.groupby(list(by), sort=True):
        keys = dict(zip(by, values if isinstance(values, tuple) else (values,)))
        if not {a, b} <= set(group["arm"]):
            continue
        label = "\n".join(f"{k.replace('_', ' ')} {keys[k]:g}" if isinstance(keys[k], float) else
                          f"{k.replace('_', ' ')} {keys[k]}" for k in varying)
        diff = folds.select(**keys).paired(a, b)
        per_fold.append(diff.per_fold.assign(configuration=label))
        intervals.append({"configuration": label, "mean": diff.mean, "low": diff.low, "high": diff.high})
    return pd.concat(per_fold, ignore_index=True), pd.DataFrame(intervals)


def plot_paired(results: Results, a: str = "supervised", b: str = "cae-unpool",
                by: Sequence[str] = CONFIGURATION, title: str | None = None):
    """``b - a`` test accuracy fold by fold (dots) with the mean and its 95 % bootstrap interval (bar), one column
    per configuration; the dashed line is no difference."""
    import seaborn as sns

    per_fold, intervals = paired_frame(results, a, b, by)
    if intervals.empty:
        return None
    fig, ax = _plt().subplots(figsize=(max(4.0, 1.5 * len(intervals) + 1.5), 3.6), layout="constrained")
    sns.stripplot(per_fold, x="configuration", y="difference", order=intervals["configuration"], color="0.45",
                  size=5, jitter=0.08, ax=ax, label="one fold")
    x = np.arange(len(intervals))
    ax.errorbar(x, intervals["mean"], yerr=[intervals["mean"] - intervals["low"], intervals["high"] - intervals["mean"]],
                fmt="D", color=ARM_COLOURS.get(b, "C1"), capsize=6, markersize=7, label="mean, 95 % interval")
    ax.axhline(0, color="black", linestyle="--", linewidth=1)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize="small", loc="best")
    ax.set(xlabel="", ylabel=f"accuracy: {b} − {a}", title=title or f"{b} − {a} on the official folds")
    return fig


def plot_label_curve(curve: Results):
    """Test accuracy against the number of labelled training clips, one line per arm (mean ± sd over the official
    folds)."""
    import seaborn as sns

    frame = curve.select(split="folds").frame()
    if frame.empty:
        return None
    fig, ax = _plt().subplots(figsize=(6.0, 3.6), layout="constrained")
    sns.lineplot(frame, x="n_labelled", y="accuracy", hue="arm", markers=True, style="arm", errorbar="sd", ax=ax,
                 palette=ARM_COLOURS)
    ax.set(xlabel="labelled training clips (class-balanced)", ylabel="test accuracy",
           title="CAE pre-training vs random initialisation, official folds (mean ± sd)")
    return fig


def plot_finetune_curves(results: Results, metric: str = "val_acc"):
    """Validation accuracy per fine-tuning epoch, one thin line per run (coloured by arm) ending where the run
    stopped, to see whether a pre-trained encoder gives a head start and when early stopping gave up."""
    import seaborn as sns

    curves = results.curves()
    if curves.empty or metric not in curves:
        return None
    curves = curves.assign(run=curves["arm"] + " fold " + curves["fold"].astype(str))
    fig, ax = _plt().subplots(figsize=(6.4, 3.6), layout="constrained")
    sns.lineplot(curves, x="epoch", y=metric, hue="arm", units="run", estimator=None, ax=ax, palette=ARM_COLOURS,
                 linewidth=1.2, alpha=0.8)
    ends = curves.groupby("run").tail(1)
    ax.scatter(ends["epoch"], ends[metric], c=[ARM_COLOURS.get(a, "grey") for a in ends["arm"]], marker="x", s=30,
               zorder=3, label="run stopped")
    ax.legend(fontsize="small")
    ax.set(xlabel="fine-tuning epoch", ylabel="validation accuracy",
           title="Fine-tuning on ESC-50: validation accuracy per epoch (one line per run)")
    return fig


def plot_probe(probe: pd.DataFrame):
    """Linear-probe test accuracy of each encoder's frozen code (and of the input) on the official folds: one bar
    per features (mean ± sd over the folds), one colour per labelled fraction."""
    import seaborn as sns

    folds = probe[probe["split"] == "folds"]
    if folds.empty:
        return None
    folds = folds.assign(features=folds["features"].str.replace(" encoder", "\nencoder"))
    fig, ax = _plt().subplots(figsize=(6.4, 3.6), layout="constrained")
    sns.barplot(folds, x="features", y="accuracy", hue="labelled_fraction", errorbar="sd", ax=ax,
                palette="crest", legend=folds["labelled_fraction"].nunique() > 1)
    ax.set(xlabel="", ylabel="linear-probe test accuracy",
           title="What the frozen encoders know before fine-tuning\n(official folds, mean ± sd)")
    return fig
