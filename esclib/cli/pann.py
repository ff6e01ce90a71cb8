"""``esc pann``: tag a sound with a PANN, list the released checkpoints.

    esc pann tag AUDIO_FILE [--checkpoint NAME_OR_PATH] [--top K] [--device DEVICE]
    esc pann list

``tag`` prints the top K classes with their probabilities (sigmoid outputs, Kong et al. 2020). Class names come
from the checkpoint's ``"labels"`` entry when it has one (checkpoints written by ``save_pann_checkpoint(...,
labels=...)``, e.g. the ``quick`` mini model), else the AudioSet names for the released 527-class files.

Exit status 2 for bad input (a missing or unreadable sound, a truncated, corrupt or mismatched checkpoint, a device
this machine does not have), 1 when a released checkpoint cannot be downloaded.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_CHECKPOINT = "Cnn14"


def _tag(args: argparse.Namespace) -> int:
    import torch

    from esclib.data.audio import AudioError, load_audio, probe
    from esclib.data.download import DownloadError
    from esclib.device import DeviceError, resolve_device
    from esclib.models.panns import CheckpointError, FrontendMismatchError, load_pann

    if args.top < 1:
        print(f"error: --top must be at least 1, got {args.top}", file=sys.stderr)
        return 2
    try:
        device = resolve_device(args.device, "--device")
        probe(args.audio)  # a missing or unreadable sound is named before the checkpoint is loaded
        model = load_pann(args.checkpoint, device=device)
        wave = load_audio(args.audio, model.frontend.sample_rate)
    except DownloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (AudioError, CheckpointError, DeviceError, FileNotFoundError, FrontendMismatchError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with torch.no_grad():
        scores = model(torch.from_numpy(wave)[None].to(device))["clipwise_output"][0].cpu()
    labels = model.labels or [f"class {i}" for i in range(model.classes_num)]
    top = torch.argsort(scores, descending=True)[: args.top]
    print(f"{args.audio} ({type(model).__name__}, {args.checkpoint}):")
    for index in top.tolist():
        print(f"  {scores[index]:.3f}  {labels[index]}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from esclib.models.panns import CHECKPOINTS, panns_cache_dir

    cache = panns_cache_dir()
    print(f"released PANN checkpoints (Zenodo record 3987831); cache: {cache}")
    for c in CHECKPOINTS.values():
        state = "cached" if (cache / c.file_name).is_file() else "not downloaded"
        size = f"{c.size / 1e6:.1f} MB" if c.size else "size ?"
        print(f"  {c.name:<22} {c.file_name:<38} mAP {c.audioset_map:.3f}  {c.frontend}  {size}  "
              f"md5 {c.md5 or '?'}  [{state}]")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pann`` command group to the ``esc`` parser."""
    parser = subparsers.add_parser("pann", help="PANNs: tag a sound, list the released checkpoints")
    commands = parser.add_subparsers(dest="pann_command", required=True)

    tag = commands.add_parser("tag", help="print a sound's top classes with a PANN")
    tag.add_argument("audio", help="audio file (any rate and channels; resampled to the model's rate, mono)")
    tag.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                     help=f"registered name, released file name or checkpoint path (default {DEFAULT_CHECKPOINT})")
    tag.add_argument("--top", type=int, default=10, help="how many classes to print (default 10)")
    tag.add_argument("--device", default="cpu", help="torch device (default cpu)")
    tag.set_defaults(func=_tag)

    listing = commands.add_parser("list", help="the released checkpoints, their frontends and checksums")
    listing.set_defaults(func=_list)
