"""Where a chapter reads its data from, by profile: the real dataset (``paper``) or esclib's synthetic world (``quick``).

Every chapter calls :func:`load_dataset` with its ``profile`` and optional ``data_root`` parameter, so that the same
notebook runs on the real data (downloaded with ``esc data download``) or, on a machine without it, on the synthetic
world in the same layout (generated once with :func:`esclib.data.synth.generate` and kept under
:func:`esclib.paths.data_dir`).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from esclib import paths
from esclib.data import registry
from esclib.data.clips import ClipSet

#: the synthetic world that stands in for each dataset in the quick profile
_SYNTH = {"esc50": "esc50", "esc10": "esc50", "us8k": "us8k", "escus": "escus", "audioset-mini": "audioset-mini",
          "dcase2013": "dcase2013"}
PROFILES = ("quick", "paper")


@cache
def _synth_version() -> str:
    """A digest of the synthetic worlds' source code: a changed generator never reads a stale world."""
    from esclib.data import synth

    digest = hashlib.sha256()
    for source in sorted(Path(synth.__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:10]


def dataset_root(name: str, profile: str, data_root: str | Path | None = None, seed: int = 0) -> Path:
    """The folder holding dataset ``name`` for a chapter run.

    ``data_root`` when given; else, in the ``paper`` profile, the real dataset under ``data_dir()`` (in a smoke run,
    :mod:`esclib.smoke`, its synthetic stand-in in the real layout at the real rate and length: size ``smoke``);
    else, in the ``quick`` profile, the synthetic world for ``name`` (generated on first use, deterministically from
    ``seed``, in a folder keyed by the seed and by a digest of the generator's code). Generating a world holds a
    lock: a second process asking for it waits.
    """
    if name not in registry.names():
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(registry.names())}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    if data_root is not None:
        root = Path(data_root).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"data_root {root} does not exist (dataset {name!r})")
        return root
    from esclib import smoke

    size = "smoke" if profile == "paper" and smoke.active() else "quick"
    if profile == "paper" and size != "smoke":
        root = registry.default_root(name)
        if not root.exists():
            raise FileNotFoundError(
                f"the real {name!r} dataset is not at {root}. Download it with `esc data download {name} --root "
                f"{root}` (see the README, 'Real data'), pass data_root=..., or run with profile='quick' to use "
                f"the synthetic world instead."
            )
        return root
    if name not in _SYNTH:
        raise ValueError(f"no synthetic world stands in for {name!r}; run it with profile='paper' on the real data")
    from esclib.data import synth

    synth_name = _SYNTH[name]
    root = paths.data_dir() / f"synth-{size}-seed{seed}-{_synth_version()}" / synth_name
    if not (root / ".complete").exists():
        synth.generate(synth_name, root, size=size, seed=seed)
        (root / ".complete").touch()
    return root


def load_dataset(name: str, profile: str, data_root: str | Path | None = None, seed: int = 0) -> ClipSet:
    """The :class:`ClipSet` of dataset ``name`` for a chapter run (see :func:`dataset_root`)."""
    return registry.load(name, dataset_root(name, profile, data_root, seed))
