"""Showing and playing sounds in the book: log-mel pictures, thumbnails, embedded audio players, card grids.

Used by every chapter (the data tour's galleries, the tagging demonstration of chapter 1, ...). Audio is embedded
as MP3 where libsndfile can write it (a tenth of the size of WAV) and thumbnails as JPEG, so executed pages stay
light; everything renders in the static HTML book.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Iterable

import librosa.display
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import soundfile as sf
from IPython.display import HTML, display
from matplotlib.axes import Axes
from matplotlib.image import AxesImage
from PIL import Image

#: dynamic range of every log-mel picture (dB below the top of the colour scale)
RANGE_DB = 80.0


def use_book_style() -> None:
    """The book's figure style: seaborn's white theme, figures embedded as JPEG."""
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    sns.set_theme(style="white", context="notebook")
    set_matplotlib_formats("jpeg", pil_kwargs={"quality": 90})


def show_logmel(ax: Axes, db: np.ndarray, title: str = "", *, sr: int, hop_length: int, fmin: float, fmax: float,
                axes: bool = True, top: float | None = None, masked: np.ndarray | None = None) -> AxesImage:
    """Draw a ``(frames, mel bins)`` log-mel on ``ax``, :data:`RANGE_DB` below ``top`` (default: its maximum), with
    time and mel-frequency axes (or none, ``axes=False``) and the ``masked`` cells outlined."""
    top = float(np.nanmax(db)) if top is None else top
    limits = dict(cmap="magma", vmin=top - RANGE_DB, vmax=top)
    ax.set_title(title, fontsize=None if axes else 9)
    frames, bins = db.shape
    if axes:
        image = librosa.display.specshow(db.T, sr=sr, hop_length=hop_length, x_axis="time", y_axis="mel",
                                         fmin=fmin, fmax=fmax, ax=ax, **limits)
        # the mask in the same coordinates as the picture: frame times (s) and band centres (Hz)
        where = (librosa.frames_to_time(np.arange(frames), sr=sr, hop_length=hop_length),
                 librosa.mel_frequencies(bins + 2, fmin=fmin, fmax=fmax)[1:-1])
    else:
        ax.set(xticks=[], yticks=[])
        image = ax.imshow(db.T, origin="lower", aspect="auto", **limits)
        where = (np.arange(frames), np.arange(bins))
    if masked is not None and masked.any():
        ax.contour(*where, masked.T, levels=[0.5], colors="cyan", linewidths=0.8)
    return image


def player(wave: np.ndarray, label: str = "", *, sr: int, normalise: bool = True) -> str:
    """HTML for an audio player embedding ``wave`` (peak-normalised, or with ``normalise=False`` clipped to ±1)."""
    wave = np.asarray(wave, dtype=np.float32)
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    wave = wave / peak * 0.9 if normalise and peak > 0 else np.clip(wave, -1.0, 1.0)
    mp3 = "MP3" in sf.available_formats()
    buffer = io.BytesIO()
    sf.write(buffer, wave, sr, **(dict(format="MP3", compression_level=0.9) if mp3 else dict(format="WAV")))
    source = f"data:{'audio/mpeg' if mp3 else 'audio/wav'};base64,{base64.b64encode(buffer.getvalue()).decode()}"
    caption = f'<div style="font-size:75%">{html.escape(label)}</div>' if label else ""
    return f'{caption}<audio controls preload="none" style="width:100%" src="{source}"></audio>'


def thumbnail(db: np.ndarray, *, top: float | None = None, masked: np.ndarray | None = None,
              size: tuple[int, int] = (440, 128)) -> str:
    """HTML for a ``(frames, mel bins)`` log-mel as a small JPEG (time right, frequency up), ``masked`` tinted cyan."""
    top = float(np.nanmax(db)) if top is None else top
    rgb = plt.get_cmap("magma")(np.clip((db - top + RANGE_DB) / RANGE_DB, 0.0, 1.0))[..., :3]
    if masked is not None:
        rgb[masked] = 0.55 * rgb[masked] + 0.45 * np.array([0.0, 1.0, 1.0])
    image = Image.fromarray((rgb.transpose(1, 0, 2)[::-1] * 255).astype(np.uint8)).resize(size)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return f'<img style="width:100%" src="data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def cards(items: Iterable[tuple[str, list[str]]], width: int = 220) -> None:
    """Display a grid of cards, one per ``(title, [HTML parts])`` (a class or an augmentation: pictures, players)."""
    display(HTML('<div style="display:flex;flex-wrap:wrap;gap:8px">' + "".join(
        f'<div style="width:{width}px"><b style="font-size:85%">{html.escape(title)}</b>{"".join(parts)}</div>'
        for title, parts in items) + "</div>"))
