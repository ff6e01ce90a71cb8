"""One spec module per chapter: ``ch<notebook stem>`` defining ``SPEC`` (notebook ``00_data`` → ``ch00_data``)."""

from __future__ import annotations

import importlib

from esclib.runner.spec import ChapterSpec


def get_spec(notebook_stem: str) -> ChapterSpec | None:
    """The spec of notebook ``notebook_stem`` (e.g. ``"01_pann_transfer"``), or None if it has no spec module."""
    module_name = f"{__name__}.ch{notebook_stem}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            return None
        raise
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, ChapterSpec):
        raise TypeError(f"{module_name} must define SPEC = ChapterSpec(...), found {type(spec).__name__}")
    if spec.notebook != notebook_stem:
        raise ValueError(f"{module_name}.SPEC.notebook is {spec.notebook!r}, expected {notebook_stem!r}")
    return spec
