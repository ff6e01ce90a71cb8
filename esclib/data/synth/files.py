"""Writing the synthetic worlds' files: audio (WAV, or Ogg Vorbis as ESC-US) and tables, each atomically (a
temporary file renamed into place), byte-identical for identical content.

libsndfile stamps two things from the clock into its files, so that two encodings of the same samples differ in
bytes: every Ogg stream's serial number, which :func:`ogg_with_serial` rewrites (with each page's checksum) to a
value derived from the file name, and the ``PEAK`` chunk of a floating-point WAV (peak values and the time of
writing), which :func:`without_riff_chunk` removes (it is optional, and readers ignore it). That makes the trees
reproducible to the byte from their seed.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _ogg_crc(page: bytes) -> int:
    """Ogg's page checksum (CRC-32, polynomial 0x04C11DB7, not reflected, initial value and final XOR 0), computed
    with zlib's reflected CRC-32 on bit-reversed bytes."""
    reflected = zlib.crc32(page.translate(_BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def ogg_with_serial(data: bytes, serial: int) -> bytes:
    """The Ogg stream ``data`` with every page's stream serial number set to ``serial`` and its checksum updated."""
    out = bytearray(data)
    pos = 0
    while pos < len(out):
        if out[pos : pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}: expected the capture pattern b'OggS'")
        n_segments = out[pos + 26]
        end = pos + 27 + n_segments + sum(out[pos + 27 : pos + 27 + n_segments])
        struct.pack_into("<I", out, pos + 14, serial & 0xFFFFFFFF)
        struct.pack_into("<I", out, pos + 22, 0)
        struct.pack_into("<I", out, pos + 22, _ogg_crc(bytes(out[pos:end])))
        pos = end
    return bytes(out)


def without_riff_chunk(data: bytes, chunk_id: bytes) -> bytes:
    """The RIFF/WAVE file ``data`` without its chunks named ``chunk_id`` (e.g. ``b"PEAK"``), the RIFF size updated."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file: expected b'RIFF' at byte 0 and b'WAVE' at byte 8")
    out, pos = bytearray(data[:12]), 12
    while pos + 8 <= len(data):
        size = struct.unpack_from("<I", data, pos + 4)[0]
        end = min(pos + 8 + size + (size & 1), len(data))
        if data[pos : pos + 4] != chunk_id:
            out += data[pos:end]
        pos = end
    struct.pack_into("<I", out, 4, len(out) - 8)
    return bytes(out)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_audio(path: str | Path, samples: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """Write ``samples`` ((n,) or (n, channels), float in [-1, 1]) atomically as the format the suffix names
    (``.wav`` with ``subtype`` and no ``PEAK`` chunk, or ``.ogg`` as Vorbis with a serial number derived from the file
    name): the same samples give the same bytes."""
    path = Path(path)
    buffer = io.BytesIO()
    if path.suffix == ".ogg":
        sf.write(buffer, samples, sr, format="OGG", subtype="VORBIS")
        data = ogg_with_serial(buffer.getvalue(), zlib.crc32(path.name.encode()))
    elif path.suffix == ".wav":
        sf.write(buffer, samples, sr, format="WAV", subtype=subtype)
        data = without_riff_chunk(buffer.getvalue(), b"PEAK")
    else:
        raise ValueError(f"cannot write audio file {path}: expected a .wav or .ogg suffix")
    _atomic_write_bytes(path, data)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8, newlines as given)."""
    _atomic_write_bytes(Path(path), text.encode("utf-8"))


def write_csv(path: str | Path, table: pd.DataFrame) -> None:
    """Write ``table`` to ``path`` as CSV without its index, atomically."""
    write_text(path, table.to_csv(index=False, lineterminator="\n"))
