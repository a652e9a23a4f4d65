"""Downloads against an HTTP server on loopback: resume, retries, digests; registry download."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import native_fixtures
import numpy as np
import pytest

import darkside.data.download as download_module
from darkside.data import registry
from darkside.data.download import DownloadError, DownloadSettings, download, read_digests
from darkside.errors import DarksideError

DATA = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
SHA = hashlib.sha256(DATA).hexdigest()
FAST = DownloadSettings(retries=3, backoff_s=0.5, timeout_s=5)
_REAL_SHA256 = hashlib.sha256  # the tests that count hashing replace hashlib.sha256


def _sha(data: bytes) -> str:
    return _REAL_SHA256(data).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        if srv.fail_first > 0:
            srv.fail_first -= 1
            self.send_error(503)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.honour_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if srv.cut_after is not None:
            # announce the full length, send part of it, drop the connection
            self.wfile.write(chunk[: srv.cut_after])
            self.wfile.flush()
            srv.cut_after = None
            self.close_connection = True
            return
        self.wfile.write(chunk)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests = {"/data.bin": DATA}, []
    srv.fail_first, srv.cut_after, srv.honour_range = 0, None, True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def test_cut_transfer_resumes_with_range_to_the_right_bytes(server, tmp_path):
    server.cut_after = 120_000
    sleeps: list[float] = []
    out = download(
        server.url + "/data.bin", tmp_path / "d.bin", SHA, settings=FAST, progress=False, sleep=sleeps.append
    )
    assert out.read_bytes() == DATA
    assert server.requests == [("/data.bin", None), ("/data.bin", "bytes=120000-")]
    assert sleeps == [0.5]
    assert not (tmp_path / "d.bin.part").exists()


def test_server_ignoring_range_restarts_instead_of_appending(server, tmp_path):
    (tmp_path / "d.bin.part").write_bytes(DATA[:5000])
    server.honour_range = False
    out = download(server.url + "/data.bin", tmp_path / "d.bin", SHA, settings=FAST, progress=False)
    assert out.read_bytes() == DATA  # not DATA[:5000] + DATA
    assert server.requests == [("/data.bin", "bytes=5000-")]


def test_complete_part_file_answered_416_is_verified_and_renamed(server, tmp_path):
    (tmp_path / "d.bin.part").write_bytes(DATA)
    out = download(server.url + "/data.bin", tmp_path / "d.bin", SHA, settings=FAST, progress=False)
    assert out.read_bytes() == DATA


def test_server_failing_twice_then_succeeding(server, tmp_path):
    server.fail_first = 2
    sleeps: list[float] = []
    out = download(
        server.url + "/data.bin", tmp_path / "d.bin", SHA, settings=FAST, progress=False, sleep=sleeps.append
    )
    assert out.read_bytes() == DATA
    assert sleeps == [0.5, 1.0]  # exponential backoff
    assert len(server.requests) == 3


def test_giving_up_after_retries_keeps_the_part_for_later(server, tmp_path):
    server.fail_first = 10
    with pytest.raises(DownloadError, match=r"giving up after 4 attempts \(HTTP 503\)"):
        download(server.url + "/data.bin", tmp_path / "d.bin", SHA, settings=FAST, progress=False, sleep=lambda s: None)
    assert not (tmp_path / "d.bin").exists()


def test_corrupted_file_is_rejected_and_removed_with_one_line(server, tmp_path):
    server.files["/data.bin"] = DATA[:-1] + b"\x00"
    bad = hashlib.sha256(server.files["/data.bin"]).hexdigest()
    url = server.url + "/data.bin"
    with pytest.raises(DownloadError) as err:
        download(url, tmp_path / "d.bin", SHA, settings=FAST, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and url in msg and f"expected {SHA}" in msg and f"got {bad}" in msg
    assert list(tmp_path.iterdir()) == []


def test_404_fails_at_once(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(
            server.url + "/nope",
            tmp_path / "x",
            None,
            settings=FAST,
            progress=False,
            sleep=lambda s: pytest.fail("must not retry a 404"),
        )


def test_digest_recorded_on_first_download_then_enforced(server, tmp_path):
    digests = tmp_path / "DIGESTS.json"
    url = server.url + "/data.bin"
    download(url, tmp_path / "a.bin", None, digests_file=digests, settings=FAST, progress=False)
    assert read_digests(digests) == {url: SHA}
    server.files["/data.bin"] = b"changed upstream"
    with pytest.raises(DownloadError, match=f"expected {SHA}"):
        download(url, tmp_path / "b.bin", None, digests_file=digests, settings=FAST, progress=False)
    assert not (tmp_path / "b.bin").exists()


def test_existing_verified_file_is_not_downloaded_again(server, tmp_path):
    (tmp_path / "d.bin").write_bytes(DATA)
    download(server.url + "/data.bin", tmp_path / "d.bin", SHA, settings=FAST, progress=False)
    assert server.requests == []


def test_mirror_serves_the_published_url_and_its_digest_stays_enforced(server, tmp_path):
    published = "http://data.example.org/sets/v1/data.bin"
    assert download_module.mirrored(published, None) == published
    served = "/m/data.example.org/sets/v1/data.bin"
    assert download_module.mirrored(published, server.url + "/m/") == server.url + served
    server.files["/m/data.example.org/sets/v1/data.bin"] = DATA
    mirror = DownloadSettings(retries=0, backoff_s=0, timeout_s=5, mirror=server.url + "/m")
    digests = tmp_path / "DIGESTS.json"
    download(published, tmp_path / "a.bin", None, digests_file=digests, settings=mirror, progress=False)
    assert server.requests == [("/m/data.example.org/sets/v1/data.bin", None)]
    assert read_digests(digests) == {published: SHA}  # recorded under the published URL, not the mirror's
    server.files["/m/data.example.org/sets/v1/data.bin"] = b"other bytes"
    with pytest.raises(DownloadError, match=f"/m/data.example.org/sets/v1/data.bin: SHA-256 mismatch: expected {SHA}"):
        download(published, tmp_path / "b.bin", None, digests_file=digests, settings=mirror, progress=False)
    with pytest.raises(DownloadError, match=r"expected 0+, got"):  # a pinned digest is checked as well
        download(published, tmp_path / "c.bin", "0" * 64, settings=mirror, progress=False)


def test_mirror_setting_is_validated():
    from darkside.errors import ConfigError
    from darkside.settings import parse

    assert parse(DownloadSettings, {"mirror": "http://127.0.0.1:8000/x"}, "data.download").mirror.endswith("/x")
    with pytest.raises(ConfigError, match="mirror"):
        parse(DownloadSettings, {"mirror": "ftp.example.org"}, "data.download")


_tar_gz = native_fixtures.tar_gz_bytes


def _toy_dataset(server, monkeypatch, archive: bytes) -> None:
    """Registers dataset ``toy``: ``archive`` (a .tar.gz with a published digest, extracted into ``ex``) and
    ``list.txt`` (no published digest), both served by ``server``."""
    server.files["/t.tar.gz"] = archive
    server.files["/list.txt"] = b"one\n"
    entry = registry.DatasetEntry(
        "toy",
        lambda raw, out: out,
        "test",
        "tiny",
        "x",
        files=(
            registry.RemoteFile(server.url + "/t.tar.gz", _sha(archive), "ex"),  # not counted by `hashing`
            registry.RemoteFile(server.url + "/list.txt"),
        ),
    )
    monkeypatch.setitem(registry.DATASETS, "toy", entry)


def test_registry_download_extracts_and_writes_sentinel(server, tmp_path, monkeypatch):
    _toy_dataset(server, monkeypatch, _tar_gz({"a/x.txt": b"hello", "b.txt": b"world"}))
    sentinel = registry.download_dataset("toy", tmp_path, settings=FAST, progress=False)
    assert sentinel == tmp_path / "toy" / ".downloaded"
    assert (tmp_path / "toy" / "ex" / "a" / "x.txt").read_bytes() == b"hello"
    recorded = json.loads((tmp_path / "DIGESTS.json").read_text())
    assert recorded == {server.url + "/list.txt": hashlib.sha256(b"one\n").hexdigest()}
    assert json.loads(sentinel.read_text())["files"]["list.txt"] == hashlib.sha256(b"one\n").hexdigest()
    n = len(server.requests)
    registry.download_dataset("toy", tmp_path, settings=FAST, progress=False)  # idempotent, no traffic
    assert len(server.requests) == n


def test_registry_manual_dataset_says_what_to_place(tmp_path):
    with pytest.raises(DarksideError) as err:
        registry.download_dataset("foggy-cityscapes", tmp_path, progress=False)
    assert "leftImg8bit_trainvaltest_foggyDBF.zip" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DarksideError, match="darkside download --dataset sfm120k"):
        registry.download_dataset("sfm120k-nd", tmp_path, progress=False)


def test_registry_entries_are_consistent():
    roles = {
        "sfm120k",
        "sfm120k-whiten",
        "tokyo247",
        "roxford5k",
        "rparis6k",
        "aachen-v11",
        "robotcar-seasons",
        "foggy-cityscapes",
        "synthia-seqs",
        "sfm120k-nd",
    }
    assert roles <= set(registry.DATASETS)
    for e in registry.DATASETS.values():
        assert callable(e.prepare) and e.prepare.__module__.startswith("darkside.data.importers.")
        assert all(d in registry.DATASETS for d in e.requires)
        for f in e.files:
            assert f.sha256 is None or (len(f.sha256) == 64 and int(f.sha256, 16) >= 0)
    aachen = {f.filename: f.sha256 for f in registry.DATASETS["aachen-v11"].files}
    # first 8 hex digits as recorded in the reference notes (anchors-eval.md section 4)
    assert aachen["Aachen-Day-Night-v1.1_mapping.tar.gz"].startswith("f33b706b")
    assert aachen["Aachen-Day-Night-v1.1_query_night.tar.gz"].startswith("443a9157")


@pytest.fixture
def hashing(monkeypatch):
    """What SHA-256 sees during a test: ``bytes`` fed to any sha256 object, ``files`` read back by sha256_file."""
    real_sha256, real_file = hashlib.sha256, download_module.sha256_file
    seen = SimpleNamespace(bytes=0, files=[])

    class Counting:
        def __init__(self, data: bytes = b"", **kwargs):
            self._h = real_sha256(data, **kwargs)
            seen.bytes += len(data)

        def update(self, data: bytes) -> None:
            seen.bytes += len(data)
            self._h.update(data)

        def hexdigest(self) -> str:
            return self._h.hexdigest()

    def recording(path):
        seen.files.append(Path(path))
        return real_file(path)

    monkeypatch.setattr(hashlib, "sha256", Counting)
    monkeypatch.setattr(download_module, "sha256_file", recording)
    return seen


@pytest.mark.parametrize("case", ["fresh", "cut_and_resumed", "leftover_part", "complete_part", "present",
                                  "present_corrupt"])
def test_each_file_is_hashed_once_per_download(server, tmp_path, hashing, case):
    dest, part = tmp_path / "d.bin", tmp_path / "d.bin.part"
    if case == "cut_and_resumed":
        server.cut_after = 120_000
    elif case == "leftover_part":
        part.write_bytes(DATA[:5000])
    elif case == "complete_part":
        part.write_bytes(DATA)  # answered 416: only verified
    elif case == "present":
        dest.write_bytes(DATA)
    elif case == "present_corrupt":
        dest.write_bytes(DATA[::-1])
    out = download(server.url + "/data.bin", dest, SHA, settings=FAST, progress=False, sleep=lambda s: None)
    assert out.read_bytes() == DATA
    # a file already under its final name is read once to be checked; a transfer is hashed as it is
    # written (a leftover .part only for the bytes it already holds), never read back afterwards
    assert hashing.files == ([dest] if case.startswith("present") else [])
    assert hashing.bytes == len(DATA) * (2 if case == "present_corrupt" else 1)


def test_registry_download_hashes_each_file_once(server, tmp_path, monkeypatch, hashing):
    archive = _tar_gz({"a/x.txt": b"hello" * 1000, "b.txt": b"world"})
    _toy_dataset(server, monkeypatch, archive)
    total = len(archive) + len(b"one\n")
    sentinel = registry.download_dataset("toy", tmp_path, settings=FAST, progress=False)
    assert hashing.bytes == total  # hashed while transferred; the sentinel's digests reuse those
    assert json.loads(sentinel.read_text())["files"] == {"t.tar.gz": _sha(archive), "list.txt": _sha(b"one\n")}
    hashing.bytes = 0
    registry.download_dataset("toy", tmp_path, settings=FAST, progress=False)  # present: each checked once
    assert hashing.bytes == total
