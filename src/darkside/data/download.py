"""Resumable, checksummed HTTP(S) downloads (stdlib ``urllib`` only).

- A transfer goes to ``<dest>.part``; only a complete, verified file is renamed to ``dest``, so a
  killed job never leaves something that looks finished.
- A retry resumes with a ``Range`` request. A server that ignores the range answers 200 with the
  whole body: we then restart the ``.part`` from zero rather than append a second copy (a 206
  whose ``Content-Range`` does not start where we asked is treated the same way).
- Transient failures (connection errors, timeouts, 5xx, 408, 429, short bodies) are retried with
  exponential backoff; other 4xx fail at once (retrying a 404 only wastes a cluster slot).
- SHA-256: the expected digest comes from the caller (the registry) or, where the publisher
  gives none, from a digests file (``data/raw/DIGESTS.json``) in which the first download records
  it; later downloads of the same URL must match it. On a mismatch the bad file is removed and
  ONE line names the URL, the expected and the actual digest.
- A mirror (``data.download.mirror``, a base URL) serves every published URL
  ``scheme://host/path`` as ``<mirror>/host/path``: a site's own copy of the datasets, or the
  loopback server of the paper preset's rehearsal. The digests stay keyed by the published URL
  and are enforced exactly as without a mirror, so a mirror cannot substitute other bytes.
- Each file is hashed once: a transfer while its bytes are written (a resumed one only for what
  the ``.part`` already holds and what it adds), an existing file when it is checked. Nothing is
  read back after a transfer, and :func:`download_verified` hands the digest to callers that
  record it (the registry's sentinel, the weights' name check) so that they need not hash again.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from darkside.atomic import atomic_write_json
from darkside.errors import DarksideError
from darkside.hashing import sha256_file
from darkside.settings import setting

_CHUNK = 1 << 20
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class DownloadError(DarksideError):
    """A download failed for good (after retries) or its digest did not match."""


class _Retry(Exception):
    """A transient failure: try again (keeping the ``.part`` for a resume)."""


@dataclass(frozen=True)
class DownloadSettings:
    """``data.download``: how hard to try. ``backoff_s`` doubles after each failed attempt."""

    retries: int = setting(ge=0, default=5)
    backoff_s: float = setting(ge=0, default=2.0)
    timeout_s: float = setting(gt=0, default=60.0)
    mirror: str | None = setting("base URL serving every published URL as <mirror>/<host>/<path> (null: the "
                                 "publishers' own servers)", pattern=r"^(https?|file)://\S+$", default=None)


def mirrored(url: str, mirror: str | None) -> str:
    """Where ``url`` is fetched from: itself, or ``<mirror>/<host>/<path>`` (query and scheme dropped)."""
    if not mirror:
        return url
    parts = urllib.parse.urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}"


def read_digests(path: str | Path) -> dict[str, str]:
    """The recorded ``{url: sha256}`` map; empty when the file does not exist yet."""
    p = Path(path)
    if not p.is_file():
        return {}
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DarksideError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in obj.items()):
        raise DarksideError(f"{p}: expected an object mapping URL -> sha256 hex digest")
    return obj


def record_digest(path: str | Path, url: str, digest: str) -> Path:
    """Add ``url -> digest`` to the digests file (atomically) and return its path."""
    digests = read_digests(path)
    digests[url] = digest
    return atomic_write_json(path, digests)


class _PartDigest:
    """SHA-256 of the ``.part`` file's first ``size`` bytes, fed with each block as it is written.

    It lives across attempts, so a resumed transfer hashes only the bytes it adds and the finished
    file is never read back. Its ``size`` is compared with the file's at each attempt: anything
    else (a ``.part`` left by an earlier run, a block that failed half-written) is caught up from
    the file once, so the digest always covers exactly what is on disk.
    """

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def restart(self) -> None:
        self.hash, self.size = hashlib.sha256(), 0

    def catch_up(self, part: Path, size: int) -> None:
        """Make the digest cover the first ``size`` bytes of ``part``."""
        if self.size == size:
            return
        self.restart()
        if not size:
            return
        with part.open("rb") as fh:
            while self.size < size:
                block = fh.read(min(_CHUNK, size - self.size))
                if not block:
                    break
                self.update(block)

    def update(self, block: bytes) -> None:
        self.hash.update(block)
        self.size += len(block)


def _transfer(url: str, part: Path, timeout: float, progress: bool, digest: _PartDigest) -> None:
    """One attempt: fetch (the rest of) ``url`` into ``part``, hashing it into ``digest``; raise
    :class:`_Retry` if transient."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "darkside-downloader"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # The .part already holds the whole body (we died before renaming it): verify it.
            digest.catch_up(part, offset)
            return
        if exc.code in _RETRYABLE_STATUS:
            raise _Retry(f"HTTP {exc.code}") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise _Retry(str(getattr(exc, "reason", exc))) from None
    with response:
        status = response.status
        mode = "ab"
        if offset and status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != offset:
                part.unlink(missing_ok=True)  # a range we did not ask for: start over cleanly
                raise _Retry("server answered a different byte range")
            digest.catch_up(part, offset)
        else:
            mode, offset = "wb", 0  # 200: the server ignored the range and sends everything
            digest.restart()
        length = response.headers.get("Content-Length")
        expected_total = offset + int(length) if length is not None else None
        written = offset
        with part.open(mode) as fh, tqdm(total=expected_total, initial=offset, unit="B", unit_scale=True,
                                         desc=part.name[:-5], disable=not progress, leave=False) as bar:
            try:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    fh.write(block)
                    digest.update(block)
                    written += len(block)
                    bar.update(len(block))
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
                raise _Retry(f"connection lost after {written} bytes ({exc})") from None
        if expected_total is not None and written < expected_total:
            raise _Retry(f"short body: {written} of {expected_total} bytes")


def download(url: str, dest: str | Path, sha256: str | None = None, *, digests_file: str | Path | None = None,
             settings: DownloadSettings | None = None, progress: bool = True,
             sleep: Callable[[float], None] = time.sleep) -> Path:
    """Download ``url`` to ``dest`` with resume, retries and SHA-256 verification; return ``dest``.

    ``sha256`` is the expected digest (hex); with ``None`` the digest recorded for ``url`` in
    ``digests_file`` is enforced, or, on the first download, recorded there. An existing ``dest``
    that verifies is not downloaded again; one that does not is removed and fetched anew.
    """
    return download_verified(url, dest, sha256, digests_file=digests_file, settings=settings, progress=progress,
                             sleep=sleep)[0]


def download_verified(url: str, dest: str | Path, sha256: str | None = None, *,
                      digests_file: str | Path | None = None, settings: DownloadSettings | None = None,
                      progress: bool = True, sleep: Callable[[float], None] = time.sleep) -> tuple[Path, str]:
    """:func:`download`, returning ``(dest, its SHA-256)`` as well.

    Each file is hashed once per call: a fresh transfer while it is written, an existing ``dest``
    when it is checked. Callers that need the digest (the registry's sentinel, the weights' name
    check) take it from here instead of reading a file of tens of GB again.
    """
    settings = settings or DownloadSettings()
    final = Path(dest)
    final.parent.mkdir(parents=True, exist_ok=True)
    expected = sha256.lower() if sha256 else None
    if expected is None and digests_file is not None:
        expected = read_digests(digests_file).get(url)
    if final.exists():
        have = sha256_file(final)
        if expected is None or have == expected:
            if expected is None and digests_file is not None:
                record_digest(digests_file, url, have)
            return final, have
        final.unlink()  # stale or corrupt copy under the final name: fetch again

    part = final.with_name(final.name + ".part")
    digest = _PartDigest()
    source = mirrored(url, settings.mirror)  # the digest stays the published URL's
    for attempt in range(settings.retries + 1):
        try:
            _transfer(source, part, settings.timeout_s, progress, digest)
            break
        except _Retry as exc:
            if attempt == settings.retries:
                raise DownloadError(f"{source}: giving up after {settings.retries + 1} attempts ({exc}); "
                                    f"partial data kept in {part} for a later resume") from None
            sleep(settings.backoff_s * 2**attempt)

    digest.catch_up(part, part.stat().st_size)  # a no-op unless the file and the digest disagree
    got = digest.hash.hexdigest()
    if expected is not None and got != expected:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{source}: SHA-256 mismatch: expected {expected}, got {got} (file removed)")
    part.replace(final)
    if expected is None and digests_file is not None:
        record_digest(digests_file, url, got)
    return final, got
