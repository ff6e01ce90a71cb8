"""The PANN architectures esclib provides and the authors' released AudioSet checkpoints that load into them.

Checkpoints: Kong et al. 2020 (study 003), Zenodo record 3987831, each ``{"iteration", "model"}`` with the state
dict under ``"model"``. Checksums are those published for the files where known (``None`` = not verified).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import torch

from esclib.models.panns.base import PannModel
from esclib.models.panns.cnn import Cnn6, Cnn10, Cnn14, Cnn14_16k, CnnMini16k
from esclib.models.panns.frontend import FrontendConfig, identify_frontend
from esclib.models.panns.mobilenet import MobileNetV1, MobileNetV2
from esclib.models.panns.resnet import ResNet38
from esclib.models.panns.wavegram import Wavegram_Logmel_Cnn14

#: architecture name (the authors' class name) -> class
ARCHITECTURES: dict[str, type[PannModel]] = {
    cls.__name__: cls
    for cls in (Cnn6, Cnn10, Cnn14, Cnn14_16k, MobileNetV1, MobileNetV2, ResNet38, Wavegram_Logmel_Cnn14, CnnMini16k)
}

ZENODO_RECORD = "https://zenodo.org/record/3987831/files"


@dataclass(frozen=True)
class ReleasedCheckpoint:
    """One released file: registry name, file name, architecture, AudioSet mAP, md5 and size (None if unknown)."""

    name: str
    file_name: str
    arch: str
    audioset_map: float
    md5: str | None = None
    size: int | None = None

    @property
    def url(self) -> str:
        """Download address on Zenodo (record 3987831)."""
        return f"{ZENODO_RECORD}/{quote(self.file_name)}?download=1"

    @property
    def frontend(self) -> FrontendConfig:
        """The frontend the file was trained with."""
        return ARCHITECTURES[self.arch].default_frontend


#: the released checkpoints of the architectures above, by registry name
CHECKPOINTS: dict[str, ReleasedCheckpoint] = {
    c.name: c
    for c in (
        ReleasedCheckpoint("Cnn6", "Cnn6_mAP=0.343.pth", "Cnn6", 0.343, "e25e26b84585b14c7754c91e48efc9be"),
        ReleasedCheckpoint("Cnn10", "Cnn10_mAP=0.380.pth", "Cnn10", 0.380, "bfb1f1f9968938fa8ef4012b8471f5f6",
                           25_237_595),
        ReleasedCheckpoint("Cnn14", "Cnn14_mAP=0.431.pth", "Cnn14", 0.431, "541141fa2ee191a88f24a3219fff024e",
                           327_428_481),
        ReleasedCheckpoint("Cnn14_16k", "Cnn14_16k_mAP=0.438.pth", "Cnn14_16k", 0.438,
                           "362fc5ff18f1d6ad2f6d464b45893f2c"),
        ReleasedCheckpoint("MobileNetV1", "MobileNetV1_mAP=0.389.pth", "MobileNetV1", 0.389,
                           "a419303e1c88aa1b9d2ac3811563d371", 23_639_473),
        ReleasedCheckpoint("MobileNetV2", "MobileNetV2_mAP=0.383.pth", "MobileNetV2", 0.383),
        ReleasedCheckpoint("ResNet38", "ResNet38_mAP=0.434.pth", "ResNet38", 0.434,
                           "bf12f36aaabac4e0855e22d3c3239c1b"),
        ReleasedCheckpoint("Wavegram_Logmel_Cnn14", "Wavegram_Logmel_Cnn14_mAP=0.439.pth", "Wavegram_Logmel_Cnn14",
                           0.439, "17fa9ab65af3c0eb5ffbc5f65552c4e1"),
    )
}


def find_checkpoint(name: str) -> ReleasedCheckpoint | None:
    """The released checkpoint with this registry name or file name, or None."""
    return CHECKPOINTS.get(name) or next((c for c in CHECKPOINTS.values() if c.file_name == name), None)


def build_pann(arch: str, *, classes_num: int = 527, frontend: FrontendConfig | None = None,
               spec_augment: bool = True) -> PannModel:
    """A freshly initialised PANN of architecture ``arch`` (one of :data:`ARCHITECTURES`)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown PANN architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](classes_num=classes_num, frontend=frontend, spec_augment=spec_augment)


def state_shapes(state_dict: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of a state dict."""
    return {key: tuple(value.shape) for key, value in state_dict.items()}


def infer_architecture(state_dict: dict[str, torch.Tensor]) -> str | None:
    """The registered architecture (with its default frontend) whose keys and shapes ``state_dict`` has exactly."""
    if "fc_audioset.weight" not in state_dict:
        return None
    shapes = state_shapes(state_dict)
    classes_num = shapes["fc_audioset.weight"][0]
    for name, cls in ARCHITECTURES.items():
        with torch.device("meta"):
            candidate = cls(classes_num=classes_num)
        if state_shapes(candidate.state_dict()) == shapes:
            return name
    return None


def suggest_architecture(model_name: str, state_dict: dict[str, torch.Tensor]) -> str:
    """What to use instead when the frontend of the checkpoint ``state_dict`` does not fit ``model_name``."""
    fits = infer_architecture(state_dict)
    if fits is not None:
        return f"Load it with arch={fits!r} (load_pann(path, arch={fits!r}), or {fits}())."
    config = identify_frontend(state_dict)
    if config is None:
        return ("It is not a released PANN frontend: build the model with a matching "
                "frontend=FrontendConfig(sample_rate, window_size, hop_size, mel_bins, fmin, fmax).")
    return (f"Build {model_name}(frontend=FrontendConfig({config.sample_rate}, {config.window_size}, "
            f"{config.hop_size}, {config.mel_bins}, {config.fmin:g}, {config.fmax:g})) to load it.")
