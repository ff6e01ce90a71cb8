"""Features computed batch-wise in torch on any device (no torchaudio).

- :class:`LogMel` -- log-mel spectrogram equal to librosa's ``melspectrogram`` + ``power_to_db`` (the PANN frontend,
  study 003; the 16 kHz frontend of study 000), with :func:`power_to_db`.
- :class:`ThreeBandSpectrogram` -- the ESResNet 3-band log-power STFT (study 004).
- :class:`CAEInput` -- the 1 x 28 x 36 log-mel of the CAE study (002).
- :func:`fit_normaliser` / :class:`Normaliser` -- standardisation with training-fold statistics.
- :func:`power_spectrogram`, :func:`analysis_window` -- the shared STFT step.
"""

from esclib.features.cae import CAEInput
from esclib.features.logmel import REF_MAX, LogMel, power_to_db
from esclib.features.normalise import Normaliser, fit_normaliser
from esclib.features.stft import analysis_window, power_spectrogram
from esclib.features.threeband import ThreeBandSpectrogram

__all__ = [
    "CAEInput",
    "LogMel",
    "Normaliser",
    "REF_MAX",
    "ThreeBandSpectrogram",
    "analysis_window",
    "fit_normaliser",
    "power_spectrogram",
    "power_to_db",
]
