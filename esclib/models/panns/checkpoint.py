"""Loading and saving PANN checkpoints in the authors' released format ``{"iteration", "model"}``.

Kong et al. 2020 (study 003): ``torch.load(f)["model"]`` is the state dict and loads strictly into the model. A
checkpoint written by :func:`save_pann_checkpoint` may carry an extra key ``"labels"`` (the class names, e.g. of
the ``quick`` profile's mini model pretrained on a synthetic corpus); :func:`load_pann` prefers them, and falls
back to the AudioSet labels for 527-class files (the released ones have no ``labels``).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch

from esclib import paths
from esclib.device import resolve_device
from esclib.models.panns.base import FRONTEND_KEYS, PannModel
from esclib.models.panns.frontend import FrontendMismatchError, describe_frontend
from esclib.models.panns.labels import AUDIOSET_CLASSES, audioset_labels
from esclib.models.panns.registry import (
    ARCHITECTURES,
    CHECKPOINTS,
    ReleasedCheckpoint,
    find_checkpoint,
    infer_architecture,
    state_shapes,
    suggest_architecture,
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


#: the first bytes of a ``torch.save`` file: a zip archive (PyTorch >= 1.6) or a pickle (protocol 2-5, older files)
_ZIP_HEADER = b"PK\x03\x04"
_PICKLE_HEADERS = tuple(bytes([0x80, protocol]) for protocol in range(2, 6))
#: how torch's weights-only unpickler names a Python object it refuses
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _size_note(path: Path, released: ReleasedCheckpoint | None) -> str:
    """``N bytes`` of a file, with the released file's size when known."""
    size = path.stat().st_size
    return f"{size:,} bytes" + (f", the released file {released.size:,}" if released and released.size else "")


def _zip_fault(path: Path, head: bytes, released: ReleasedCheckpoint | None) -> CheckpointError | None:
    """Why a file that starts like a ``torch.save`` file (``head``) cannot be trusted: a zip without its directory
    (truncated) or with a member failing its CRC (corrupt); None when no such fault is found (a pickle file has no
    checksums)."""
    if head != _ZIP_HEADER:
        return None
    if not zipfile.is_zipfile(path):
        return CheckpointError(f"{path} is truncated ({_size_note(path, released)}): it lacks the zip directory "
                               f"that torch.save writes at the end of a checkpoint; copy or download it again")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError):
        return _corrupt(path, released, "its zip directory cannot be read")
    if damaged is not None:
        return _corrupt(path, released, f"its part {damaged} fails the checksum torch.save recorded")
    return None


def _corrupt(path: Path, released: ReleasedCheckpoint | None,
             why: str = "it starts like a torch.save checkpoint but torch cannot read its contents") -> CheckpointError:
    return CheckpointError(f"{path} is corrupt ({_size_note(path, released)}): {why}; copy or download it again")


def read_checkpoint(path: str | Path, released: ReleasedCheckpoint | None = None) -> dict:
    """The checkpoint dict of a file (``{"model": state_dict, ...}``; a bare state dict is wrapped).

    Files are read with ``weights_only=True``; a released file whose md5 matches the published one may hold other
    Python objects (the authors' sampler state) and is then read in full. An empty, truncated, corrupt (a zip
    member failing its CRC) or foreign file raises :class:`CheckpointError` in one sentence naming the file and
    what was expected.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(4)
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes); expected a PANN checkpoint written by torch.save")
    if head != _ZIP_HEADER and head[:2] not in _PICKLE_HEADERS:
        raise CheckpointError(f"{path} is not a PyTorch checkpoint: it starts with the bytes {head.hex(' ')}, where "
                              f"a torch.save file starts with a zip or pickle header")
    fault = _zip_fault(path, head, released)
    if fault is not None:
        raise fault
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _REFUSED_GLOBAL.search(str(err))
        if refused is None:
            raise _corrupt(path, released) from err
        if not _is_released_file(path, released):
            raise CheckpointError(f"{path} holds a Python object besides tensors ({refused[1]}) and is not a "
                                  f"released PANN file with a known checksum; if you trust it, load its state "
                                  f"dict and re-save it with save_pann_checkpoint") from None
        content = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as err:
        raise _corrupt(path, released) from err
    if isinstance(content, dict) and isinstance(content.get("model"), dict):
        return content
    if isinstance(content, dict) and "fc_audioset.weight" in content:
        return {"model": content}
    keys = sorted(map(str, content))[:8] if isinstance(content, dict) else type(content).__name__
    raise CheckpointError(f"{path}: not a PANN checkpoint (expected a dict with the state dict under 'model'; "
                          f"found {keys})")


def _natural(key: str) -> list[int | str]:
    """A sort key that puts ``conv_block2`` before ``conv_block10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _shape(shape: tuple[int, ...] | None) -> str:
    return "absent" if shape is None else "[" + ",".join(map(str, shape)) + "]"


def architecture_mismatch(path: Path, state: dict[str, torch.Tensor], model: PannModel, arch: str) -> ValueError | None:
    """The error for a state dict whose keys or shapes differ from ``model``'s, or None when they agree.

    One sentence: how many keys are missing, unexpected or of another shape, the first such key with both shapes,
    and the architecture the file fits. A file whose frontend differs gets :class:`FrontendMismatchError` naming
    both frontends (the sample rate first: it decides how the audio is read).
    """
    ours, theirs = state_shapes(model.state_dict()), state_shapes(state)
    if ours == theirs:
        return None
    differing = [key for key in {**ours, **theirs} if ours.get(key) != theirs.get(key)]
    body = [key for key in differing if key not in FRONTEND_KEYS]
    missing = sum(key not in theirs for key in body)
    unexpected = sum(key not in ours for key in body)
    example = min(body, key=lambda key: (key not in ours or key not in theirs, -len(ours.get(key, ())),
                                         _natural(key)), default=None)
    counts = (f"{missing} missing and {unexpected} unexpected keys, {len(body) - missing - unexpected} of another "
              f"shape" + (f"; {example} is {_shape(theirs.get(example))} in the file but {_shape(ours.get(example))} "
                          f"in {arch}" if example else ""))
    fits = infer_architecture(state)
    if len(body) < len(differing):
        advice = f"pass arch={fits!r}" if fits is not None else suggest_architecture(arch, state)
        return FrontendMismatchError(
            f"{path} has {describe_frontend(state)}, but {arch} expects the {model.frontend.sample_rate // 1000} kHz "
            f"one ({model.frontend})" + (f", and {counts}" if body else "") + f": {advice}")
    advice = (f"the file looks like {fits} — pass arch={fits!r}" if fits is not None else
              f"its keys and shapes match none of {', '.join(ARCHITECTURES)}")
    return CheckpointError(f"{path} does not fit {arch} ({counts}): {advice}")


def load_pann(checkpoint: str | Path, arch: str | None = None, *, classes_num: int | None = None,
              device: torch.device | str = "cpu", progress: bool = True) -> PannModel:
    """A PANN with a checkpoint's weights, in eval mode on ``device``.

    ``checkpoint``: a file, or a registered name (``"Cnn14"``) / released file name (``"Cnn14_mAP=0.431.pth"``),
    downloaded into :func:`panns_cache_dir` on first use. The architecture is ``arch`` if given, else the
    registry's for a released file name, else inferred from the state dict's keys and shapes. ``classes_num``, if
    given, must equal the file's (replace the head with :mod:`esclib.models.transfer`). ``model.labels`` are the
    file's ``"labels"``, else the AudioSet names for 527 classes, else None.
    """
    if arch is not None and arch not in ARCHITECTURES:
        raise CheckpointError(f"unknown PANN architecture arch={arch!r}; known: {', '.join(ARCHITECTURES)}")
    device = resolve_device(device)
    path, released = resolve_checkpoint(checkpoint, progress=progress)
    content = read_checkpoint(path, released)
    state = content["model"]
    arch = arch or (released.arch if released else None) or infer_architecture(state)
    if arch is None:
        raise CheckpointError(f"{path}: its keys and shapes match none of the architectures "
                              f"{', '.join(ARCHITECTURES)}; pass arch=... (see `esc pann list`)")
    if "fc_audioset.weight" not in state:
        raise CheckpointError(f"{path}: the state dict has no 'fc_audioset.weight'; not a PANN checkpoint")
    file_classes = state["fc_audioset.weight"].shape[0]
    if classes_num is not None and classes_num != file_classes:
        raise CheckpointError(f"{path} has {file_classes} output classes, not classes_num={classes_num}; load it "
                              "as it is and replace the head (esclib.models.transfer) for another class set")
    with torch.device("meta"):  # compared before the real model is built
        blueprint = ARCHITECTURES[arch](classes_num=file_classes)
    mismatch = architecture_mismatch(path, state, blueprint, arch)
    if mismatch is not None:
        raise mismatch
    model = ARCHITECTURES[arch](classes_num=file_classes)
    try:
        model.load_state_dict(state, strict=True)
    except FrontendMismatchError as err:
        raise FrontendMismatchError(f"{path}: {err}") from None
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
