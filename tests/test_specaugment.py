"""SpecAugment's stripes (study 000's weak and strong views, the PANN recipe): each kind runs along the axis it
names -- time stripes blank whole frames, frequency stripes whole mel bins -- with torchlibrosa's widths."""

import pytest
import torch

from esclib.augment.specaugment import SpecAugment, drop_stripes

FRAMES, BINS = 50, 16


def _zeroed(out):
    """Whole frames and whole bins of ``out[:, 0]`` (B, frames, bins) that are zero, and every zero element."""
    zero = out[:, 0] == 0
    return zero.all(dim=2), zero.all(dim=1), zero


def test_time_stripes_blank_whole_frames_only():
    torch.manual_seed(0)
    out = SpecAugment(time_drop_width=20, time_stripes_num=2, freq_drop_width=1, freq_stripes_num=2).train()(
        torch.ones(200, 1, FRAMES, BINS))
    frames, bins, zero = _zeroed(out)
    assert zero.any() and torch.equal(zero, frames[:, :, None].expand_as(zero))  # every zero is a whole frame
    assert not bins.any()


def test_frequency_stripes_blank_whole_bins_only():
    torch.manual_seed(0)
    out = SpecAugment(time_drop_width=1, time_stripes_num=2, freq_drop_width=8, freq_stripes_num=2).train()(
        torch.ones(200, 1, FRAMES, BINS))
    frames, bins, zero = _zeroed(out)
    assert zero.any() and torch.equal(zero, bins[:, None, :].expand_as(zero))  # every zero is a whole mel bin
    assert not frames.any()


@pytest.mark.parametrize("dim, size", [(-2, FRAMES), (-1, BINS)])
def test_stripe_widths_are_uniform_below_the_drop_width(dim, size):
    torch.manual_seed(0)
    out = drop_stripes(torch.ones(2000, 1, FRAMES, BINS), dim, 4, 1)
    frames, bins, _ = _zeroed(out)
    widths = (frames if dim == -2 else bins).sum(dim=1)
    assert set(widths.tolist()) == {0, 1, 2, 3}  # torchlibrosa: width ~ U{0, ..., drop_width - 1}
    counts = torch.bincount(widths, minlength=4).float() / len(widths)
    assert torch.allclose(counts, torch.full((4,), 0.25), atol=0.04)


def test_evaluation_mode_is_the_identity():
    x = torch.ones(3, 1, FRAMES, BINS)
    assert SpecAugment(20, 2, 8, 2).eval()(x) is x
