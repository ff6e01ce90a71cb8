"""Downloads against a local HTTP server on 127.0.0.1: md5 check, resume of a partial file with a Range request,
unpacking into the official layout, the Dataverse file listing, and the offline error."""

import hashlib
import io
import json
import socket
import tarfile
import threading
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from esclib.data import download, registry
from esclib.data.download import DownloadError, fetch
from esclib.data.registry import Remote

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-``; ``server.cut`` truncates the next response."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append((self.path, self.headers.get("Range")))
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = int(self.headers["Range"][6:-1]) if self.headers.get("Range") and self.server.ranges else 0
        if start >= len(body) and start:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut, self.server.cut = self.server.cut, None
        self.wfile.write(body[start:cut])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.cut, httpd.ranges = {}, [], None, True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _remote(server, name="data.bin", body=PAYLOAD, **kw) -> Remote:
    server.files[f"/{name}"] = body
    return Remote(f"{server.url}/{name}", name, hashlib.md5(body).hexdigest(), len(body), **kw)


def test_fetch_checks_the_md5_and_names_the_final_file(server, tmp_path):
    path = fetch(_remote(server), tmp_path, progress=False)
    assert path == tmp_path / "data.bin" and path.read_bytes() == PAYLOAD
    assert not (tmp_path / "data.bin.part").exists()
    assert fetch(_remote(server), tmp_path, progress=False) == path and len(server.requests) == 1


def test_an_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    remote = _remote(server)
    server.cut = 300_000
    with pytest.raises(DownloadError, match="run the command again to resume"):
        fetch(remote, tmp_path, progress=False)
    assert (tmp_path / "data.bin.part").stat().st_size == 300_000
    path = fetch(remote, tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/data.bin", "bytes=300000-")


def test_a_server_ignoring_range_restarts_the_file(server, tmp_path):
    remote = _remote(server)
    (tmp_path / "data.bin.part").write_bytes(b"stale bytes")
    server.ranges = False
    assert fetch(remote, tmp_path, progress=False).read_bytes() == PAYLOAD


def test_a_complete_part_file_is_finished_after_a_416(server, tmp_path):
    remote = _remote(server)
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    assert fetch(remote, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests[-1][1] == f"bytes={len(PAYLOAD)}-"


def test_a_downloaded_file_with_the_wrong_md5_is_kept_aside(server, tmp_path):
    server.files["/data.bin"] = PAYLOAD
    remote = Remote(f"{server.url}/data.bin", "data.bin", "0" * 32)
    with pytest.raises(DownloadError) as err:
        fetch(remote, tmp_path, progress=False)
    aside = tmp_path / f"data.bin.md5-mismatch-{hashlib.md5(PAYLOAD).hexdigest()}"
    assert aside.read_bytes() == PAYLOAD
    assert not (tmp_path / "data.bin").exists() and not (tmp_path / "data.bin.part").exists()
    message = str(err.value)
    assert f"has md5 {hashlib.md5(PAYLOAD).hexdigest()}, expected {'0' * 32}" in message
    assert f"it was kept as {aside}" in message


@pytest.mark.parametrize("kind", ["md5", "size"])
def test_a_hand_placed_archive_that_fails_the_check_is_renamed_aside_not_deleted(server, tmp_path, kind):
    remote = _remote(server)
    placed = b"a copy from somewhere else" if kind == "md5" else PAYLOAD[:-1]
    (tmp_path / "data.bin").write_bytes(placed)
    if kind == "md5":
        remote = replace(remote, size=None)
    with pytest.raises(DownloadError) as err:
        fetch(remote, tmp_path, progress=False)
    digest = hashlib.md5(placed).hexdigest()
    aside = tmp_path / f"data.bin.{kind}-mismatch-{digest}"
    assert aside.read_bytes() == placed and not (tmp_path / "data.bin").exists()
    assert server.requests == []  # the placed file is checked before anything is downloaded
    message = str(err.value)
    expected = f"has md5 {digest}, expected {remote.md5}" if kind == "md5" else \
        f"holds {len(placed):,} bytes, expected {len(PAYLOAD):,}"
    assert message.startswith(f"{tmp_path / 'data.bin'} {expected}") and f"it was kept as {aside}" in message
    assert fetch(remote, tmp_path, progress=False).read_bytes() == PAYLOAD  # the next run downloads afresh
    assert aside.read_bytes() == placed


def test_a_resumed_partial_download_still_works_beside_a_file_kept_aside(server, tmp_path):
    remote = _remote(server)
    (tmp_path / "data.bin").write_bytes(b"wrong")
    with pytest.raises(DownloadError, match="kept as"):
        fetch(remote, tmp_path, progress=False)
    server.cut = 400_000
    with pytest.raises(DownloadError, match="run the command again to resume"):
        fetch(remote, tmp_path, progress=False)
    assert fetch(remote, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/data.bin", "bytes=400000-")
    assert (tmp_path / f"data.bin.size-mismatch-{hashlib.md5(b'wrong').hexdigest()}").read_bytes() == b"wrong"


def test_offline_error_says_what_to_download_and_where(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    remote = Remote(f"http://127.0.0.1:{port}/ESC-50-master.zip", "ESC-50-master.zip", "a" * 32)
    with pytest.raises(DownloadError) as err:
        fetch(remote, tmp_path, progress=False)
    message = str(err.value)
    assert remote.url in message and str(tmp_path / "ESC-50-master.zip") in message and "a" * 32 in message


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_download_dataset_unpacks_into_the_official_layout_and_is_rerunnable(server, tmp_path, monkeypatch):
    archive = _zip({"ESC-50-master/meta/esc50.csv": b"filename\n", "ESC-50-master/audio/1-1-A-0.wav": b"RIFF"})
    remote = _remote(server, "ESC-50-master.zip", archive, strip="ESC-50-master")
    monkeypatch.setitem(registry.SPECS, "esc50", replace(registry.SPECS["esc50"], remotes=lambda: [remote]))
    root = download.download_dataset("esc50", tmp_path / "ESC-50", progress=False)
    assert (root / "meta" / "esc50.csv").read_bytes() == b"filename\n" and (root / "audio" / "1-1-A-0.wav").exists()
    assert not (root / "ESC-50-master.zip").exists() and (root / ".ESC-50-master.zip.done").exists()
    download.download_dataset("esc50", root, progress=False)
    assert len(server.requests) == 1


def test_tar_archives_unpack_with_their_top_folder_stripped(tmp_path):
    (tmp_path / "u.tar.gz").write_bytes(_tar({"UrbanSound8K/metadata/UrbanSound8K.csv": b"x",
                                              "UrbanSound8K/audio/fold1/a.wav": b"y"}))
    download.unpack(tmp_path / "u.tar.gz", tmp_path / "root", strip="UrbanSound8K")
    assert (tmp_path / "root" / "metadata" / "UrbanSound8K.csv").read_bytes() == b"x"
    assert (tmp_path / "root" / "audio" / "fold1" / "a.wav").read_bytes() == b"y"
    (tmp_path / "evil.zip").write_bytes(_zip({"../outside.txt": b"!"}))
    with pytest.raises(DownloadError, match="outside"):
        download.unpack(tmp_path / "evil.zip", tmp_path / "root")


@pytest.mark.parametrize("top", ["scenes_stereo_testset/", ""])
def test_dcase_zips_land_in_their_set_folder_with_or_without_a_top_folder(tmp_path, top):
    (tmp_path / "t.zip").write_bytes(_zip({f"{top}bus01.wav": b"w"}))
    remote = registry.spec("dcase2013").remotes()[1]
    download.unpack(tmp_path / "t.zip", tmp_path / "root" / remote.into, remote.strip)
    assert (tmp_path / "root" / "scenes_stereo_testset" / "bus01.wav").read_bytes() == b"w"


def test_dataverse_listing_gives_urls_md5s_and_unpack_flags(server):
    listing = {"status": "OK", "data": [
        {"label": "ESC-US-01.tar.gz", "dataFile": {"id": 101, "filename": "ESC-US-01.tar.gz", "filesize": 10,
                                                   "md5": "b" * 32}},
        {"label": "ESC-US.tab", "dataFile": {"id": 102, "filename": "ESC-US.tab", "filesize": 5,
                                             "originalFileFormat": "text/csv", "originalFileName": "ESC-US.csv",
                                             "originalFileSize": 7, "checksum": {"type": "MD5", "value": "c" * 32}}},
    ]}
    server.files["/api/datasets/:persistentId/versions/:latest-published/files?persistentId=doi%3A10.7910/DVN/YDEPUT"] \
        = json.dumps(listing).encode()
    remotes = download.dataverse_remotes(registry.ESCUS_DOI, server=server.url)
    assert remotes == [
        Remote(f"{server.url}/api/access/datafile/101", "ESC-US-01.tar.gz", "b" * 32, 10, unpack=True),
        Remote(f"{server.url}/api/access/datafile/102?format=original", "ESC-US.csv", "c" * 32, 7, unpack=False),
    ]


def test_datasets_without_a_download_say_how_to_get_them(tmp_path):
    with pytest.raises(DownloadError, match="esc data synth audioset-mini"):
        download.download_dataset("audioset-mini", tmp_path)


def test_soundata_supplies_the_esc50_and_us8k_remotes():
    esc = registry.spec("esc50").remotes()[0]
    urban = registry.spec("us8k").remotes()[0]
    assert esc.filename == "ESC-50-master.zip" and len(esc.md5) == 32 and esc.strip == "ESC-50-master"
    assert urban.filename == "UrbanSound8K.tar.gz" and urban.md5 == "9aa69802bbf37fb986f71ec1483a196e"
    assert "zenodo.org/record/1203745" in urban.url
