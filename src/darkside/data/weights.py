"""Pretrained weight files fetched at run time (never committed): cirtorch's Caffe-converted ImageNet
backbones and the HED / RCF edge detectors gandtr publishes. cirtorch's file names end in the first
7 hex digits of the file's SHA-256, which we check, so a corrupted or substituted download is refused
even though no full digest is published; for the others the digest is recorded on first download and
enforced afterwards (``DIGESTS.json`` beside the files).
"""

from __future__ import annotations

import re
from pathlib import Path

from darkside.data.download import DownloadSettings, download, sha256_file
from darkside.errors import DarksideError

CIRTORCH_IMAGENET = "http://cmp.felk.cvut.cz/cnnimageretrieval/data/networks/imagenet/"
GANDTR = "http://ptak.felk.cvut.cz/personal/jenicto2/download/iccv23_gan/"
#: file name -> URL
WEIGHTS: dict[str, str] = {
    **{name: CIRTORCH_IMAGENET + name
       for name in ("imagenet-caffe-vgg16-features-d369c8e.pth", "imagenet-caffe-resnet50-features-ac468af.pth",
                    "imagenet-caffe-resnet101-features-10a101d.pth")},
    # HED (sniklaus' PyTorch port, BSDS) and RCF (BSDS + PASCAL), the teachers of the edge families
    **{name: GANDTR + name for name in ("hed_sniklaus_github.pth", "rcf_bsds500_pascal_model.pth")},
}
_PREFIX = re.compile(r"-([0-9a-f]{7})\.pth$")


def download_weights(name: str, dest_dir: str | Path, settings: DownloadSettings | None = None,
                     progress: bool = True) -> Path:
    """Download the weight file ``name`` into ``dest_dir`` and check its digest prefix; return its path."""
    if name not in WEIGHTS:
        raise DarksideError(f"weights: unknown file {name!r} (known: {', '.join(sorted(WEIGHTS))})")
    dest = Path(dest_dir) / name
    download(WEIGHTS[name], dest, None, digests_file=Path(dest_dir) / "DIGESTS.json", settings=settings,
             progress=progress)
    prefix = _PREFIX.search(name)
    if prefix is None:  # no digest in the name: the recorded one (first download) is enforced by `download`
        return dest
    expected = prefix.group(1)
    got = sha256_file(dest)
    if not got.startswith(expected):
        dest.unlink()
        raise DarksideError(f"{WEIGHTS[name]}: SHA-256 {got} does not start with {expected} (the file name's digest)")
    return dest
