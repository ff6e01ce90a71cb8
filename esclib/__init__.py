"""esclib: the library behind the esc-book.

Environmental sound classification with little labelled data. The modules mirror the book:

- :mod:`esclib.data` -- the datasets (ESC-50, ESC-10, UrbanSound8K, ESC-US, DCASE 2013 SCD), their official folds,
  labelled subsets, audio I/O and the waveform cache; :mod:`esclib.data.synth` -- the synthetic sound worlds.
- :mod:`esclib.features` -- log-mel (librosa- and PANN-exact), the ESResNet 3-band spectrogram, the CAE input.
- :mod:`esclib.augment` -- SpecAugment, mixup, waveform augmentations and named policies.
- :mod:`esclib.models` -- PANNs (released-checkpoint compatible), transfer heads, the CAE, torchvision backbones.
- :mod:`esclib.losses`, :mod:`esclib.train` -- losses and training loops (supervised, FixMatch, CAE, ...).
- :mod:`esclib.metrics`, :mod:`esclib.results` -- metrics, the results store and the studies' published numbers.
- :mod:`esclib.runner` -- papermill runs, profiles, sweeps and the book build (the ``esc`` command).
"""

__version__ = "0.1.0"
