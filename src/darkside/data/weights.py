"""Pretrained weight files fetched at run time (never committed): cirtorch's Caffe-converted ImageNet
backbones and the HED / RCF edge detectors gandtr publishes (their URLs come from the backbone and
detector registries; this layer knows no models). cirtorch's file names end in the first
7 hex digits of the file's SHA-256, which we check, so a corrupted or substituted download is refused
even though no full digest is published; for the others the digest is recorded on first download and
enforced afterwards (``DIGESTS.json`` beside the files).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from darkside.data.download import DownloadSettings, download_verified
from darkside.errors import DarksideError

_PREFIX = re.compile(r"-([0-9a-f]{7})\.pth$")


def download_weights(name: str, dest_dir: str | Path, urls: Mapping[str, str],
                     settings: DownloadSettings | None = None, progress: bool = True) -> Path:
    """Download the weight file ``name`` (a key of ``urls``: file name -> URL, which the backbone and
    detector registries publish) into ``dest_dir`` and check its digest; return its path."""
    if name not in urls:
        raise DarksideError(f"weights: unknown file {name!r} (known: {', '.join(sorted(urls))})")
    dest = Path(dest_dir) / name
    # the digest comes with the file (hashed while it was transferred or checked): no second read
    _, got = download_verified(urls[name], dest, None, digests_file=Path(dest_dir) / "DIGESTS.json",
                               settings=settings, progress=progress)
    prefix = _PREFIX.search(name)
    if prefix is None:  # no digest in the name: the recorded one (first download) is enforced by `download`
        return dest
    expected = prefix.group(1)
    if not got.startswith(expected):
        dest.unlink()
        raise DarksideError(f"{urls[name]}: SHA-256 {got} does not start with {expected} (the file name's digest)")
    return dest
