"""Resumable, checksummed downloads of the real datasets from their official sources.

A file downloads to ``<name>.part``; an interrupted download resumes from there with an HTTP ``Range`` request (a
server that ignores it sends the whole file again). The finished file's size and md5 are checked before it takes
its final name; a file that fails the check (a downloaded one, or one placed by hand) is kept, renamed to
``<name>.md5-mismatch-<its md5>``, never deleted. Archives are then unpacked into the dataset folder and a
``.<archive>.done`` marker records it.
Without a network the error says which file to fetch by hand and where to put it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import quote

from tqdm.auto import tqdm

from esclib.data import registry
from esclib.data.registry import Remote

DATAVERSE_SERVER = "https://dataverse.harvard.edu"
_CHUNK = 1 << 20
_ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


class DownloadError(RuntimeError):
    """A download failed (no network, interrupted, wrong checksum); the message says what to do."""


def md5sum(path: str | Path) -> str:
    """Hex md5 digest of a file."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": "esclib", **({"Range": f"bytes={offset}-"} if offset else {})}
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _unreachable(url: str, dest: Path, md5: str | None, reason: object) -> DownloadError:
    checksum = f" (md5 {md5})" if md5 else ""
    return DownloadError(f"could not download {url}: {reason}. Without internet access, fetch it by hand on a "
                         f"connected machine{checksum}, put it at {dest}, and run the same command again: it checks "
                         f"and unpacks a file it finds there.")


def fetch(remote: Remote, folder: str | Path, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``remote`` into ``folder`` (resuming a ``.part`` file) and check its size and md5."""
    dest = Path(folder) / remote.filename
    if dest.is_file():
        _check(remote, dest, dest)
        return dest
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    try:
        response = _open(remote.url, offset, timeout)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not offset:
            raise _unreachable(remote.url, dest, remote.md5, f"HTTP {err.code} {err.reason}") from err
        response = None  # 416: nothing after the offset, the part file is complete
    except (urllib.error.URLError, OSError) as err:
        raise _unreachable(remote.url, dest, remote.md5, getattr(err, "reason", err)) from err
    if response is not None:
        with response:
            if offset and response.status != 206:
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length else remote.size
            with open(part, "ab" if offset else "wb") as out, tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=remote.filename,
                    disable=not progress) as bar:
                try:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
                    if total is not None and out.tell() < total:
                        raise http.client.IncompleteRead(b"", total - out.tell())
                except (OSError, http.client.HTTPException) as err:
                    raise DownloadError(f"download of {remote.url} interrupted after {out.tell()} bytes ({err!r}); "
                                        f"run the command again to resume it from {part}") from err
    _check(remote, part, dest)
    os.replace(part, dest)
    return dest


def _check(remote: Remote, path: Path, dest: Path) -> None:
    """Raise if the size or md5 of ``path`` differs from the remote's, after moving the file aside (never deleted)
    to ``<dest>.md5-mismatch-<its md5>`` (or ``.size-mismatch-``) so that the next run downloads afresh."""
    size = path.stat().st_size
    wrong_size = remote.size is not None and size != remote.size
    if not wrong_size and remote.md5 is None:
        return
    digest = md5sum(path)
    if wrong_size:
        kind, problem = "size", f"holds {size:,} bytes, expected {remote.size:,}"
    elif digest != remote.md5.lower():
        kind, problem = "md5", f"has md5 {digest}, expected {remote.md5}"
    else:
        return
    aside = dest.with_name(f"{dest.name}.{kind}-mismatch-{digest}")
    os.replace(path, aside)
    raise DownloadError(f"{path} {problem} (source {remote.url}); it was kept as {aside} (delete it if it is a bad "
                        f"copy): run the command again to download {dest.name} afresh")


def unpack(archive: str | Path, folder: str | Path, strip: str | None = None) -> None:
    """Unpack a zip or tar archive into ``folder``, moving the contents of its top folder ``strip`` up one level."""
    archive, folder = Path(archive), Path(folder).resolve()
    prefix = f"{strip}/" if strip else ""

    def target(name: str) -> Path | None:
        name = name[len(prefix):] if prefix and name.startswith(prefix) else name
        path = (folder / name).resolve()
        if path != folder and folder not in path.parents:
            raise DownloadError(f"{archive}: member {name!r} would unpack outside {folder}")
        return None if path == folder else path

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                path = target(info.filename)
                if path is None or info.is_dir():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(info) as source, open(path, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as bundle:
            members = []
            for member in bundle.getmembers():
                path = target(member.name)
                if path is not None:
                    member.name = path.relative_to(folder).as_posix()
                    members.append(member)
            bundle.extractall(folder, members=members, filter="data")
    else:
        raise DownloadError(f"{archive}: neither a zip nor a tar archive")


def dataverse_remotes(doi: str, server: str = DATAVERSE_SERVER, timeout: float = 60.0) -> list[Remote]:
    """The files of a Dataverse dataset's latest published version, with their md5s (Dataverse native API).

    Tabular files are fetched in their original upload format; archives are marked for unpacking.
    """
    url = f"{server}/api/datasets/:persistentId/versions/:latest-published/files?persistentId={quote(doi)}"
    try:
        with _open(url, 0, timeout) as response:
            listing = json.load(response)["data"]
    except (urllib.error.URLError, OSError, KeyError, ValueError) as err:
        raise DownloadError(f"could not list the files of {doi} at {server}: {getattr(err, 'reason', err)}") from err
    remotes = []
    for entry in listing:
        data = entry["dataFile"]
        original = "originalFileFormat" in data
        name = data.get("originalFileName", data["filename"]) if original else data["filename"]
        checksum = data.get("checksum", {})
        md5 = data.get("md5") or (checksum.get("value") if checksum.get("type") == "MD5" else None)
        remotes.append(Remote(f"{server}/api/access/datafile/{data['id']}" + ("?format=original" if original else ""),
                              name, md5, data.get("originalFileSize" if original else "filesize"),
                              unpack=name.lower().endswith(_ARCHIVES)))
    return remotes


def download_dataset(name: str, root: str | Path | None = None, *, progress: bool = True,
                     keep_archives: bool = False) -> Path:
    """Download, check and unpack dataset ``name`` into ``root`` (default ``registry.default_root(name)``).

    Safe to re-run: finished files are skipped, partial ones resume. Archives are deleted once unpacked unless
    ``keep_archives``. Returns the dataset folder.
    """
    spec = registry.spec(name)
    root = Path(root).expanduser() if root is not None else registry.default_root(name)
    manual = spec.manual.format(root=root)
    if spec.remotes is None:
        raise DownloadError(f"{name} has no official download: {manual}")
    root.mkdir(parents=True, exist_ok=True)
    try:
        remotes = spec.remotes()
        for remote in remotes:
            marker = root / f".{remote.filename}.done"
            if marker.exists():
                continue
            path = fetch(remote, root, progress=progress)
            if remote.unpack:
                unpack(path, root / remote.into, remote.strip)
                if not keep_archives:
                    path.unlink()
            marker.touch()
    except DownloadError as err:
        raise DownloadError(f"{name}: {err}\nTo get {spec.title} by hand: {manual}.") from err
    return root
