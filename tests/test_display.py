"""The book's display helpers (esclib.display): a log-mel with its masked cells outlined stays on the picture's axes,
and the audio player embeds what it is given."""

import base64
import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from esclib.display import player, show_logmel  # noqa: E402

SR, HOP, FMIN, FMAX = 16000, 160, 50.0, 8000.0


def _masked_logmel(frames=501, bins=64):
    rng = np.random.default_rng(0)
    db = rng.normal(-40, 5, size=(frames, bins))
    masked = np.zeros((frames, bins), dtype=bool)
    masked[100:164, :] = True  # a time stripe
    masked[:, 20:28] = True  # a mel stripe
    return db, masked


def test_the_mask_outline_is_drawn_in_the_pictures_coordinates():
    db, masked = _masked_logmel()
    fig, (plain, outlined) = plt.subplots(1, 2)
    show_logmel(plain, db, sr=SR, hop_length=HOP, fmin=FMIN, fmax=FMAX)
    show_logmel(outlined, db, sr=SR, hop_length=HOP, fmin=FMIN, fmax=FMAX, masked=masked)
    # the outline lies inside the 5-s, 50 Hz - 8 kHz picture: it does not stretch the axes to 501 "seconds"
    assert outlined.get_xlim() == plain.get_xlim() and outlined.get_ylim() == plain.get_ylim()
    assert plain.get_xlim()[1] < 5.1
    vertices = np.concatenate([p.vertices for p in outlined.collections[-1].get_paths()])
    assert vertices[:, 0].min() >= 0 and vertices[:, 0].max() <= 5.01  # seconds
    assert vertices[:, 1].min() >= FMIN and vertices[:, 1].max() <= FMAX  # Hz
    assert np.isclose(vertices[:, 0], 1.0, atol=0.02).any()  # the time stripe's edge: frame 100 = 1.0 s
    bare = plt.subplots()[1]
    show_logmel(bare, db, sr=SR, hop_length=HOP, fmin=FMIN, fmax=FMAX, axes=False, masked=masked)
    assert bare.get_xlim()[1] <= len(db)  # without axes: array coordinates, as the image
    plt.close("all")


def test_the_player_embeds_the_clip_at_its_rate():
    wave = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    html = player(wave, "a <tone>", sr=SR)
    assert "a &lt;tone&gt;" in html and 'preload="none"' in html
    data = base64.b64decode(re.search(r'base64,([^"]+)"', html).group(1))
    decoded, rate = sf.read(io.BytesIO(data))
    assert rate == SR and abs(len(decoded) - SR) < 2000 and np.abs(decoded).max() > 0.8  # peak-normalised to 0.9
