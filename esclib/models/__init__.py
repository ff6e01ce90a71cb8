"""The networks of the book.

- :mod:`esclib.models.panns` -- PANNs (study 003) loading the authors' released AudioSet checkpoints unchanged;
  checkpoint registry and loader.
- :mod:`esclib.models.transfer` -- transfer heads and strategies (scratch, fine-tune, Freeze_L1, Freeze_L3).
- :mod:`esclib.models.cae` -- the convolutional autoencoder of study 002.
- :mod:`esclib.models.esresnet` -- ESResNet(-Attention) of study 004.
- :mod:`esclib.models.backbones` -- torchvision backbones for the SSL comparison (study 001), Grad-CAM.
- :mod:`esclib.models.ssl` -- SimCLR, MoCo v2, BYOL, DINO, Barlow Twins and SwAV behind one interface (study 001).

Submodules are imported on use (``from esclib.models.panns import load_pann``).
"""
