"""The mini-AudioSet's ontology, and how it covers the classes of the synthetic ESC-50 and UrbanSound8K.

AudioSet (Gemmeke et al. 2017) names nearly every ESC-50 and UrbanSound8K class among its 527 labels ("Dog",
"Rooster", "Rain", "Siren", "Jackhammer", ...), under parent categories ("Domestic animals, pets", "Vehicle",
"Tools", ...). That is the premise of transfer (study 003): a tagger pretrained on AudioSet has already learnt to
tell the downstream classes apart, from other recordings of the same kinds of sound. The synthetic worlds keep that
relation: every event model of the catalogue (:mod:`.classes`) has a sound-type label (its ``label``; the ESC-50 and
UrbanSound8K classes that share a model, as ``dog`` and ``dog_bark``, share it) under a parent category (its
``family``), and the mini-AudioSet (:func:`.worlds.plan_audioset`) is tagged with both: a clip mixing a dog and an
engine is labelled "Dog", "Domestic animals", "Engine", "Vehicle". Its recordings are its own (other sources,
rooms and seeds than any downstream clip), and it holds sound types that no downstream dataset has (:data:`.classes.
EXTRA`), as AudioSet holds far more than ESC-50.

Chapter 00 ("How the worlds relate") shows :func:`coverage`.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from esclib.data.synth.classes import CATALOGUE, ESC50, EXTRA, FAMILIES, SOUND_TYPES, US8K, SoundClass

#: the mini-AudioSet's label set, in ``class_labels_indices.csv`` order: the sound types, then their parents
LABELS: tuple[str, ...] = SOUND_TYPES + FAMILIES



def _first_of_each_type() -> tuple[SoundClass, ...]:
    firsts: dict[str, SoundClass] = {}
    for cls in CATALOGUE.values():
        firsts.setdefault(cls.label, cls)
    return tuple(firsts.values())


#: one event model per sound type (the first catalogue class of each label): what the mini-AudioSet draws from
SOURCE_TYPES: tuple[SoundClass, ...] = _first_of_each_type()


def labels_of(cls: SoundClass) -> tuple[str, str]:
    """The mini-AudioSet labels a source of ``cls`` gives its clip: its sound type and that type's parent."""
    return cls.label, cls.family


def coverage(classes: Sequence[SoundClass] | None = None) -> pd.DataFrame:
    """Each downstream class (default: the synthetic ESC-50's 50 and UrbanSound8K's 10, once each) with the datasets
    it belongs to, the mini-AudioSet label that covers it and that label's parent (Notebook: 00_data)."""
    classes = tuple({c.name: c for c in (ESC50 + US8K if classes is None else classes)}.values())
    members = {"ESC-50": {c.name for c in ESC50}, "UrbanSound8K": {c.name for c in US8K}}
    return pd.DataFrame([{"class": c.name,
                          "dataset": " + ".join(name for name, names in members.items() if c.name in names) or "-",
                          "mini-AudioSet label": c.label, "parent": c.family} for c in classes])


def pretraining_only() -> tuple[str, ...]:
    """The sound types of the mini-AudioSet that no downstream class has (AudioSet's breadth beyond ESC-50)."""
    downstream = {c.label for c in ESC50 + US8K}
    return tuple(c.label for c in EXTRA if c.label not in downstream)
