"""Procedural sound worlds in the exact layouts of the real datasets: the ``quick`` profile's data.

No dataset can be downloaded on the project's machines, yet every chapter must run; :func:`generate` writes a
synthetic stand-in for a dataset that the real loaders (:mod:`esclib.data`) read unchanged, so every code path a
real run takes is exercised. Sound classes are parametric event models (:mod:`.events`: voiced calls, impacts,
modulated noise, crackle) with parameter ranges (:mod:`.classes`), mixed over backgrounds at varied SNR with
unlabelled distractors, room reverberation and equalisation (:mod:`.scene`), and planned per layout
(:mod:`.worlds`); :mod:`.calibrate` measures how hard the ESC-50 stand-in is. Everything is deterministic from the
seed, to the byte.

Layouts (``<root>`` is the dataset folder passed to :func:`generate` and to the loader)::

    esc50          <root>/audio/{fold}-{src_file}-{take}-{target}.wav      5 s, 44.1 kHz, mono, PCM 16-bit
                   <root>/meta/esc50.csv   filename,fold,target,category,esc10,src_file,take
                   5 folds; the takes (A, B, ...) of one src_file share a source, a room and a fold; targets are
                   0..C-1 over the classes present (quick: ESC-10's ten classes, all esc10=True; full: the 50
                   classes in ESC-50's target order, ESC-10's ten marked esc10=True)
    us8k           <root>/audio/fold{1..10}/{fsID}-{classID}-{occurrence}-{slice}.wav
                   <root>/metadata/UrbanSound8K.csv  slice_file_name,fsID,start,end,salience,fold,classID,class
                   slices of at most 4 s of longer source recordings (slice k of an occurrence starts 0.5 k s after
                   it); one fold per fsID; salience 1 (foreground) or 2 (background); each source keeps its own
                   sample rate (8-96 kHz), channel count (1-2) and subtype (PCM_16, PCM_24, FLOAT, PCM_U8)
    escus          <root>/{01..05}/{ID}-{freesound_id}-{start}-{end}.ogg    e.g. 01/000042-123456-15.0-20.0.ogg
                   <root>/ESC-US.csv       freesound_id,n_clips,tags (source recordings; tags are noisy families)
                   <root>/README.txt
                   ID = 6-digit running number; start/end = the 5-s window in the source recording (seconds, one
                   decimal); 5 s, 44.1 kHz, mono, Ogg Vorbis; no labels. This mirrors the real ESC-US
                   (doi:10.7910/DVN/YDEPUT): parts ESC-US-NN.tar.gz extract to numbered folders 01..25 of 10,000
                   clips named ``ID-Freesound_file_ID-slice_start_time-slice_end_time.ogg`` (its README), with
                   ESC-US.csv beside them; the synthetic pool spreads its clips over 5 folders (study 002 used 01-05)
    audioset-mini  <root>/audios/balanced_train_segments/Y{YTID}.wav      2 s, 16 kHz, mono, PCM 16-bit
                   <root>/metadata/balanced_train_segments.csv  3 '#' lines, then
                                  YTID, start_seconds, end_seconds, "mid,mid,..."
                   <root>/metadata/class_labels_indices.csv     index,mid,display_name (mid = /m/synNN)
                   multi-label: 1-3 sources of distinct sound types per clip, each labelled with its sound type and
                   that type's parent (:mod:`.ontology`: 63 sound types covering every ESC-50 and UrbanSound8K class,
                   under 17 parents). Deviation from AudioSet: the quick world's clips last 2 s, not 10 s, so that
                   the quick profile's mini-PANN pre-training trains on whole clips (no crop misses a labelled
                   sound) in minutes on 2 CPU cores (``full`` and ``smoke``: 10 s; ``smoke`` at 32 kHz, as the PANN
                   authors' resampled AudioSet).
    dcase2013      <root>/scenes_stereo/{scene}{NN}.wav, <root>/scenes_stereo_testset/{scene}{NN}.wav
                   30 s, 44.1 kHz, stereo, PCM 16-bit; ten scenes (bus ... tubestation), each a continuous bed with
                   scene-typical events; the two sets are the loader's two folds; no metadata file.

Each tree also holds ``<root>/.esclib-synth.json`` (dataset, size, seed, generator version, completeness).
Sizes (:data:`SIZES`): ``quick`` -- ESC-50 10 classes x 40 clips, UrbanSound8K ~60 slices per class, ESC-US 600
clips, mini-AudioSet 3,000 clips of 2 s, DCASE 2013 5 per scene and set; ``full`` -- ESC-50 50 x 40 (2,000 clips),
UrbanSound8K a few thousand slices, ESC-US 10,000, mini-AudioSet 20,000, DCASE 2013 10 per scene and set (as
released); ``smoke`` -- the real dataset's classes, folds, sample rates, clip lengths and channels with a clip or two
per class and fold (the paper profile's smoke runs: ``esc data synth NAME --size smoke``); ``tiny`` -- a few dozen
files each, for tests. One process at a time writes a world (a lock file beside it); the others wait.
"""

from esclib.data.synth.build import DATASETS, DIFFICULTY, SIZES, WORLD_VERSION, generate, plan
from esclib.data.synth.classes import CATALOGUE, ESC10, ESC50, US8K
from esclib.data.synth.ontology import LABELS, coverage
from esclib.data.synth.scene import render_example

__all__ = ["CATALOGUE", "DATASETS", "DIFFICULTY", "ESC10", "ESC50", "LABELS", "SIZES", "US8K", "WORLD_VERSION",
           "coverage", "generate", "plan", "render_example"]
