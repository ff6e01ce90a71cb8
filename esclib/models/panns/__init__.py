"""PANNs (Kong et al. 2020, study 003) that load the authors' released AudioSet checkpoints unchanged.

- Architectures (the authors' class names and state-dict keys): :class:`Cnn6`, :class:`Cnn10`, :class:`Cnn14`,
  :class:`Cnn14_16k`, :class:`MobileNetV1`, :class:`MobileNetV2`, :class:`ResNet38`,
  :class:`Wavegram_Logmel_Cnn14`, and :class:`CnnMini16k` (the ``quick`` profile's small model). Each is
  ``Model(*, classes_num=527, frontend=None, spec_augment=True)``; ``model(waveform, mixup_lambda=None) ->
  {"clipwise_output", "embedding"}``, with the halves ``model.logmel`` / ``model.forward_logmel`` and
  ``model.embed``.
- :func:`load_pann` / :func:`save_pann_checkpoint` -- checkpoints by file or registered name
  (:data:`CHECKPOINTS`, downloaded from Zenodo record 3987831 with md5 checks).
- :func:`audioset_labels` -- the 527 class names.
"""

from esclib.models.panns.base import PannModel
from esclib.models.panns.checkpoint import (
    CheckpointError,
    load_pann,
    panns_cache_dir,
    read_checkpoint,
    save_pann_checkpoint,
)
from esclib.models.panns.cnn import Cnn6, Cnn10, Cnn14, Cnn14_16k, CnnMini16k
from esclib.models.panns.frontend import FRONTEND_16K, FRONTEND_32K, FrontendConfig, FrontendMismatchError
from esclib.models.panns.labels import audioset_labels
from esclib.models.panns.mobilenet import MobileNetV1, MobileNetV2
from esclib.models.panns.registry import ARCHITECTURES, CHECKPOINTS, ReleasedCheckpoint, build_pann
from esclib.models.panns.resnet import ResNet38
from esclib.models.panns.wavegram import Wavegram_Logmel_Cnn14

__all__ = [
    "ARCHITECTURES",
    "CHECKPOINTS",
    "CheckpointError",
    "Cnn6",
    "Cnn10",
    "Cnn14",
    "Cnn14_16k",
    "CnnMini16k",
    "FRONTEND_16K",
    "FRONTEND_32K",
    "FrontendConfig",
    "FrontendMismatchError",
    "MobileNetV1",
    "MobileNetV2",
    "PannModel",
    "ReleasedCheckpoint",
    "ResNet38",
    "Wavegram_Logmel_Cnn14",
    "audioset_labels",
    "build_pann",
    "load_pann",
    "panns_cache_dir",
    "read_checkpoint",
    "save_pann_checkpoint",
]
