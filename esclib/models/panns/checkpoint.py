"""Loading and saving PANN checkpoints in the authors' released format ``{"iteration", "model"}``.

Kong et al. 2020 (study 003): ``torch.load(f)["model"]`` is the state dict and loads strictly into the model. A
checkpoint written by :func:`save_pann_checkpoint` may carry an extra key ``"labels"`` (the class names, e.g. of
the ``quick`` profile's mini model pretrained on a synthetic corpus); :func:`load_pann` prefers them, and falls
back to the AudioSet labels for 527-class files (the released ones have no ``labels``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from esclib import paths
from esclib.models.panns.base import PannModel
from esclib.models.panns.frontend import FrontendMismatchError
from esclib.models.panns.labels import AUDIOSET_CLASSES, audioset_labels
from esclib.models.panns.registry import (
    ARCHITECTURES,
    CHECKPOINTS,
    ReleasedCheckpoint,
    find_checkpoint,
    infer_architecture,
)
from esclib.train.checkpoint import atomic_save


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or does not fit the architecture; the message names the file."""


def panns_cache_dir() -> Path:
    """Where released checkpoints are downloaded: ``<esclib.paths.cache_dir()>/panns``."""
    folder = paths.cache_dir() / "panns"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fetch_released(checkpoint: ReleasedCheckpoint, *, progress: bool = True) -> Path:
    """The local copy of a released checkpoint, downloaded (resumable, md5-checked) into :func:`panns_cache_dir`.

    Offline, the error says where to place the file by hand.
    """
    from esclib.data.download import DownloadError, fetch
    from esclib.data.registry import Remote

    remote = Remote(checkpoint.url, checkpoint.file_name, checkpoint.md5, checkpoint.size, unpack=False)
    try:
        return fetch(remote, panns_cache_dir(), progress=progress)
    except DownloadError as err:
        raise DownloadError(f"PANN checkpoint {checkpoint.name} ({checkpoint.file_name}): {err}") from err


def resolve_checkpoint(checkpoint: str | Path, *, progress: bool = True) -> tuple[Path, ReleasedCheckpoint | None]:
    """A checkpoint file path, and its registry entry if it is a released file.

    ``checkpoint`` is an existing file, or a registered name / released file name (then fetched).
    """
    path = Path(checkpoint).expanduser()
    if path.is_file():
        return path, find_checkpoint(path.name)
    released = find_checkpoint(str(checkpoint))
    if released is None:
        raise FileNotFoundError(f"PANN checkpoint {str(checkpoint)!r} is neither an existing file nor a registered "
                                f"name; registered: {', '.join(CHECKPOINTS)} (see `esc pann list`)")
    return fetch_released(released, progress=progress), released


def _is_released_file(path: Path, released: ReleasedCheckpoint | None) -> bool:
    from esclib.data.download import md5sum

    return released is not None and released.md5 is not None and md5sum(path) == released.md5


def read_checkpoint(path: str | Path, released: ReleasedCheckpoint | None = None) -> dict:
    """The checkpoint dict of a file (``{"model": state_dict, ...}``; a bare state dict is wrapped).

    Files are read with ``weights_only=True``; a released file whose md5 matches the published one may hold other
    Python objects (the authors' sampler state) and is then read in full.
    """
    path = Path(path)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not _is_released_file(path, released):
            raise CheckpointError(f"{path}: holds Python objects besides tensors and is not a released PANN file "
                                  f"with a known checksum; if you trust it, re-save its state dict with "
                                  f"save_pann_checkpoint ({err})") from err
        content = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(content, dict) and isinstance(content.get("model"), dict):
        return content
    if isinstance(content, dict) and "fc_audioset.weight" in content:
        return {"model": content}
    keys = sorted(content)[:8] if isinstance(content, dict) else type(content).__name__
    raise CheckpointError(f"{path}: not a PANN checkpoint (expected a dict with the state dict under 'model'; "
                          f"found {keys})")


def load_pann(checkpoint: str | Path, arch: str | None = None, *, classes_num: int | None = None,
              device: torch.device | str = "cpu", progress: bool = True) -> PannModel:
    """A PANN with a checkpoint's weights, in eval mode on ``device``.

    ``checkpoint``: a file, or a registered name (``"Cnn14"``) / released file name (``"Cnn14_mAP=0.431.pth"``),
    downloaded into :func:`panns_cache_dir` on first use. The architecture is ``arch`` if given, else the
    registry's for a released file name, else inferred from the state dict's keys and shapes. ``classes_num``, if
    given, must equal the file's (replace the head with :mod:`esclib.models.transfer`). ``model.labels`` are the
    file's ``"labels"``, else the AudioSet names for 527 classes, else None.
    """
    path, released = resolve_checkpoint(checkpoint, progress=progress)
    content = read_checkpoint(path, released)
    state = content["model"]
    arch = arch or (released.arch if released else None) or infer_architecture(state)
    if arch is None:
        raise CheckpointError(f"{path}: its keys and shapes match none of the architectures "
                              f"{', '.join(ARCHITECTURES)}; pass arch=... (see `esc pann list`)")
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"unknown PANN architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    if "fc_audioset.weight" not in state:
        raise CheckpointError(f"{path}: the state dict has no 'fc_audioset.weight'; not a PANN checkpoint")
    file_classes = state["fc_audioset.weight"].shape[0]
    if classes_num is not None and classes_num != file_classes:
        raise CheckpointError(f"{path} has {file_classes} output classes, not classes_num={classes_num}; load it "
                              "as it is and replace the head (esclib.models.transfer) for another class set")
    model = ARCHITECTURES[arch](classes_num=file_classes)
    try:
        model.load_state_dict(state, strict=True)
    except FrontendMismatchError as err:
        raise FrontendMismatchError(f"{path}: {err}") from None
    except RuntimeError as err:
        raise CheckpointError(f"{path} does not fit the {arch} architecture: {err}") from None
    labels = content.get("labels")
    model.labels = list(labels) if labels is not None else (
        audioset_labels() if file_classes == AUDIOSET_CLASSES else None)
    return model.to(device).eval()


def save_pann_checkpoint(model: PannModel, path: str | Path, iteration: int, *,
                         labels: list[str] | None = None) -> Path:
    """Write ``{"iteration", "model"}`` (+ ``"labels"`` if given) atomically, in the released format."""
    path = Path(path)
    if labels is not None and len(labels) != model.classes_num:
        raise ValueError(f"save_pann_checkpoint: {len(labels)} labels for a model with {model.classes_num} classes")
    content: dict = {"iteration": int(iteration),
                     "model": {key: value.detach().cpu() for key, value in model.state_dict().items()}}
    if labels is not None:
        content["labels"] = list(labels)
    atomic_save(content, path)
    return path
