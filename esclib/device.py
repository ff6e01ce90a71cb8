"""Checking a requested torch device before any work starts (``esc pann tag --device``, ``load_pann(device=...)``).

A device string torch does not know, or a GPU this machine does not have, gets one sentence naming the parameter,
the value and what is available, instead of torch's driver message at the first tensor moved.
"""

from __future__ import annotations

import torch


#: what each accelerator type is, in words
_KINDS = {"cuda": "a CUDA GPU", "mps": "Apple's Metal (MPS) backend", "xpu": "an Intel GPU (XPU)"}


class DeviceError(ValueError):
    """A requested device is not a torch device or is not available here; the message names what is."""


def _available() -> str:
    """The devices this machine offers, in words."""
    devices = ["'cpu'"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        devices.append("'cuda'" + (f" ('cuda:0'..'cuda:{count - 1}')" if count > 1 else ""))
    if torch.backends.mps.is_available():
        devices.append("'mps'")
    return " or ".join(devices)


def resolve_device(device: str | torch.device, parameter: str = "device") -> torch.device:
    """``device`` as a :class:`torch.device`, checked to exist on this machine (CUDA GPU index, Apple MPS).

    Raises :class:`DeviceError` naming ``parameter`` otherwise. Used by :func:`esclib.models.panns.load_pann` and
    ``esc pann tag``.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"{parameter}={device!r} is not a torch device; expected a name such as 'cpu', 'cuda', "
                          f"'cuda:1' or 'mps' (available here: {_available()})") from None
    if resolved.type in ("cpu", "meta"):
        return resolved
    backend = torch.backends.mps if resolved.type == "mps" else getattr(torch, resolved.type, None)
    is_available = getattr(backend, "is_available", None)
    if is_available is not None and not is_available():
        raise DeviceError(f"{parameter}={device!r} needs {_KINDS.get(resolved.type, f'a {resolved.type} device')}, "
                          f"but torch {torch.__version__} finds none on this machine; use {_available()}")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise DeviceError(f"{parameter}={device!r} asks for GPU {resolved.index}, but this machine has "
                          f"{torch.cuda.device_count()} GPU(s); use {_available()}")
    return resolved
