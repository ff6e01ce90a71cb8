"""Lab of chapter 3 (the convolutional autoencoder): unpooling with switches, and the reconstruction error.

Sample solutions and checks against :class:`esclib.models.cae.Unpool2d` and the mean squared error the chapter's
autoencoders minimise (``torch.nn.functional.mse_loss``, as in :mod:`esclib.experiments.cae`). Notebook: 03_cae.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from esclib.labs.cells import Exercise
from esclib.labs.check import FunctionCheck, Mistake, compare_tuples, generator
from esclib.models.cae import Switches, Unpool2d, Upsample2d

STEM = "03_cae"


# --- sample solutions -------------------------------------------------------------------------------------------

def unpool(pooled: torch.Tensor, indices: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Write every pooled value back where its maximum was (``indices`` from ``MaxPool2d(2, return_indices=True)``
    count positions row by row in the pre-pool map of ``size = (H, W)``), zeros everywhere else."""
    batch, channels = pooled.shape[:2]
    height, width = size
    out = pooled.new_zeros(batch, channels, height * width)
    out.scatter_(2, indices.flatten(2), pooled.flatten(2))
    return out.reshape(batch, channels, height, width)


def reconstruction_errors(x: torch.Tensor, x_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The squared reconstruction error of a batch ``(B, C, H, W)``: per clip the mean over its bins (the MSE the
    training curves show), and the study's E_rec = 1/(2n) Σ_i ||x̂_i − x_i||² over the n clips."""
    squared = (x_hat - x) ** 2
    per_clip = squared.flatten(1).mean(dim=1)
    e_rec = squared.flatten(1).sum(dim=1).mean() / 2
    return per_clip, e_rec


# --- check of unpooling -----------------------------------------------------------------------------------------

def _unpool_cases() -> list[dict[str, Any]]:
    g = generator(4)
    cases = []
    for shape in ((2, 3, 7, 9), (1, 1, 4, 6)):
        before = torch.randn(shape, generator=g)
        pooled, indices = torch.nn.MaxPool2d(2, return_indices=True)(before)
        cases.append({"pooled": pooled, "indices": indices, "size": tuple(shape[-2:])})
    return cases


def _library_unpool(pooled, indices, size):
    return Unpool2d()(pooled, Switches(indices, torch.Size(size)))


def _upsampled(pooled, indices, size):
    return Upsample2d()(pooled, Switches(indices, torch.Size(size)))


def _pooled_width(pooled, indices, size):
    """Indices read as if the pre-pool map were twice the pooled width (the last, odd column forgotten)."""
    width = 2 * pooled.shape[-1]
    rows, cols = indices // size[1], indices % size[1]
    out = pooled.new_zeros(*pooled.shape[:2], size[0] * width)
    out.scatter_(2, (rows * width + cols).flatten(2), pooled.flatten(2))
    return out.reshape(*pooled.shape[:2], size[0], width)


def _reshaped_wrong(pooled, indices, size):
    """The right flat positions, reshaped column by column."""
    flat = unpool(pooled, indices, size).flatten(2)
    return flat.reshape(*pooled.shape[:2], size[1], size[0]).transpose(-1, -2)


check_unpool = FunctionCheck(
    "unpooling with switches", _unpool_cases, _library_unpool,
    mistakes=[
        Mistake(_upsampled, "every value was repeated over its 2×2 window: that is upsampling, the study's other "
                            "decoder; unpooling writes it only where the maximum was and leaves zeros"),
        Mistake(_pooled_width, "the output is as wide as twice the pooled map: pooling floors odd sizes, so restore "
                               "the recorded pre-pool size (`size`), whose width counts the positions of `indices`"),
        Mistake(_reshaped_wrong, "values land at the wrong positions: a flat index counts row by row, "
                                 "`index = row * W + column`, so the flat map reshapes to (H, W)"),
    ])
check_unpool.__doc__ = "Check an ``unpool(pooled, indices, size)`` against ``esclib.models.cae.Unpool2d``."


# --- check of the reconstruction errors -------------------------------------------------------------------------

def _error_cases() -> list[dict[str, Any]]:
    g = generator(5)
    return [{"x": torch.randn(shape, generator=g), "x_hat": torch.randn(shape, generator=g)}
            for shape in ((4, 1, 28, 36), (3, 2, 8, 8))]


def _library_errors(x, x_hat):
    per_clip = F.mse_loss(x_hat, x, reduction="none").flatten(1).mean(dim=1)
    return per_clip, F.mse_loss(x_hat, x, reduction="sum") / (2 * len(x))


def _error_variant(x, x_hat, *, axis_zero=False, root=False, half=True, bins_mean=False, clips_sum=False):
    squared = (x_hat - x) ** 2
    per_clip = squared.mean(dim=0) if axis_zero else squared.flatten(1).mean(dim=1)
    per_clip = per_clip.sqrt() if root else per_clip
    per = squared.flatten(1).mean(dim=1) if bins_mean else squared.flatten(1).sum(dim=1)
    e_rec = per.sum() if clips_sum else per.mean()
    return per_clip, e_rec / 2 if half else e_rec


check_reconstruction_errors = FunctionCheck(
    "reconstruction errors", _error_cases, _library_errors,
    mistakes=[
        Mistake(lambda **c: _error_variant(**c, axis_zero=True),
                "the per-clip error was averaged over the batch axis: average each clip over its own bins "
                "(every axis but the first)"),
        Mistake(lambda **c: _error_variant(**c, root=True),
                "the per-clip error is a root mean square: the training curves show the mean *squared* error"),
        Mistake(lambda **c: _error_variant(**c, half=False),
                "E_rec lacks its factor 1/2"),
        Mistake(lambda **c: _error_variant(**c, bins_mean=True),
                "E_rec averages over the bins: the study's ||x̂ − x||² sums the squared errors of all bins"),
        Mistake(lambda **c: _error_variant(**c, clips_sum=True),
                "E_rec sums over the clips: it divides by the number of clips n"),
    ],
    compare=compare_tuples(("the per-clip error", "E_rec")))
check_reconstruction_errors.__doc__ = ("Check a ``reconstruction_errors(x, x_hat)`` against "
                                       "``torch.nn.functional.mse_loss``.")


# --- the lab ----------------------------------------------------------------------------------------------------

EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "lab-03-unpool", "Unpooling with switches",
        prompt="""
Write `unpool(pooled, indices, size)`: `pooled` and `indices` are what `torch.nn.MaxPool2d(2,
return_indices=True)` returns for a map `(B, C, H, W)`, and `size = (H, W)` is that map's size. Return a
`(B, C, H, W)` map holding every pooled value at the position its maximum came from and zeros elsewhere -- without
calling `max_unpool2d`. The indices count positions row by row in each `H × W` plane.
""",
        solution="""
Flatten each plane, scatter the pooled values to their indices in a zero tensor of `H * W` positions, and reshape
to the recorded size. Using the recorded size (not twice the pooled size) brings back the row or column that floor
pooling dropped from odd sizes (7 -> 3 -> 7); repeating each value over its window instead is the upsampling
decoder the study compares against.
""",
        template='''
import torch

from esclib.labs import ch03


def unpool(pooled, indices, size):
    """Each pooled value back at its argmax position (indices as MaxPool2d returns them), zeros elsewhere."""
    raise NotImplementedError


ch03.check_unpool(unpool)
''',
        sample="unpool", check="check_unpool"),
    Exercise(
        "lab-03-reconstruction-error", "Two ways of writing the reconstruction error",
        prompt="""
Write `reconstruction_errors(x, x_hat)` for a batch `(B, C, H, W)` and its reconstruction. Return the per-clip
error (the mean of the squared error over each clip's bins, shape `(B,)`, what the chapter's training curves
average) and the study's $E_{\\mathrm{rec}} = \\frac{1}{2n}\\sum_i \\|\\tilde{\\mathbf{x}}^{(i)} -
\\mathbf{x}^{(i)}\\|^2$ over the n clips of the batch. By which factor do the two differ, and does it matter for
training?
""",
        solution="""
Per clip, average the squared error over every axis but the first; for $E_{\\mathrm{rec}}$ sum each clip's
squared errors, average over the clips and halve. $E_{\\mathrm{rec}}$ is the mean per-clip error times the number
of bins over two: a constant factor, which rescales the gradient (an optimiser like Adam, which normalises its
steps, hardly notices) but leaves the minimiser unchanged.
""",
        template='''
import torch

from esclib.labs import ch03


def reconstruction_errors(x, x_hat):
    """(per-clip mean squared error over the bins, shape (B,), the study's E_rec = 1/(2n) sum_i ||x_hat_i - x_i||^2)."""
    raise NotImplementedError


ch03.check_reconstruction_errors(reconstruction_errors)
''',
        sample="reconstruction_errors", check="check_reconstruction_errors"),
    Exercise(
        "lab-03-label-curve", "Predict, then test: where does pre-training pay?",
        prompt="""
Predict at which end of the labelled-data curve (few or many labelled clips) the autoencoder's pre-training helps
most, and whether the upsampling decoder's encoder helps at all. Then extend the curve with
`esc run 03_cae -p labelled_fractions 0.05,0.1,0.25,0.5` and read the worth table.
""",
        solution="""
Pre-training should matter most where labels are scarce: the encoder's weights then come mostly from the
unlabelled clips, while with all labels the supervised network learns comparable filters itself. An encoder whose
decoder could not place values back (upsampling) has less reason to keep where things are in the spectrogram; the
study's upsampling autoencoder did not produce a useful classifier at all. The worth table turns the two curves
into labelled clips saved, which is the question a practitioner asks.
"""),
    Exercise(
        "lab-03-random-split", "A single random split",
        prompt="""
Study 002 reports one run on a random split of ESC-50 (seed 1337) and no repetition. Give two reasons why its
difference between the pre-trained and the supervised classifier may not hold on the official folds, and say which
of this chapter's tables answers the question.
""",
        solution="""
A random split ignores ESC-50's recordings, so takes of one recording can sit on both sides and the test accuracy
partly measures recognising recordings; and a single run has no spread, so a difference of a point or two cannot be
told from the noise of the split and the initialisation. The official-fold table gives a mean and standard
deviation over test folds; a difference smaller than the spread is not evidence.
"""),
)
