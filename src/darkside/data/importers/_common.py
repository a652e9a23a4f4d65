"""Helpers shared by the importers: image probing, path rules, writing a prepared dataset."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darkside.data.images import image_size, load_rgb
from darkside.data.manifest import GroundTruth, ImageRecord, write_dataset
from darkside.data.safe_pickle import load_pickle
from darkside.errors import DarksideError, ImageError


@dataclass(frozen=True)
class RemoteFile:
    """One published file: saved as ``<raw>/<its name in the URL>``; archives extracted into ``<raw>/<extract_to>``."""

    url: str
    sha256: str | None = None
    extract_to: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset: its files, licence, size, native layout and importer."""

    name: str
    prepare: Callable[[Path, Path], Path]  # (raw_root, out_dir) -> out_dir: the importer
    licence: str
    size: str
    layout: str
    files: tuple[RemoteFile, ...] = ()
    requires: tuple[str, ...] = ()  # datasets whose raw files the importer also reads
    manual: str = ""  # what to place where, for registration-only / unpublished data
    manual_check: tuple[str, ...] = ()  # any of these paths (relative to <raw>) existing = placed
    notes: str = ""


# How many trailing bytes to search for the end-of-image marker: real JPEGs sometimes carry a
# few bytes of padding after EOI; a truncated one ends inside entropy-coded data, where 0xFFD9
# cannot occur (0xFF is byte-stuffed there).
_TAIL = 64


def probe_image(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header, plus a cheap truncation check; one-line error naming the file.

    Decoding 100k full images only to find the rare truncated one would cost an hour, so JPEG
    and PNG files are checked by their end marker (EOI / IEND); only when that is missing (or
    for other formats) is the image fully decoded, which raises :class:`ImageError` if it is
    really truncated.
    """
    p = Path(path)
    size = image_size(p)
    try:
        with p.open("rb") as fh:
            head = fh.read(8)
            fh.seek(max(0, p.stat().st_size - _TAIL))
            tail = fh.read()
    except OSError as exc:
        raise ImageError(f"{p}: unreadable image ({exc.strerror})") from None
    if head.startswith(b"\xff\xd8") and b"\xff\xd9" in tail:
        return size
    if head.startswith(b"\x89PNG") and b"IEND" in tail:
        return size
    if head.startswith((b"\xff\xd8", b"\x89PNG")):
        raise ImageError(f"{p}: truncated image (no end-of-image marker)")
    load_rgb(p)  # other formats: full decode, raises ImageError naming the file
    return size


def cid_to_path(cid: str) -> str:
    """cirtorch's image path of a Retrieval-SfM cid: ``<cid[-2:]>/<cid[-4:-2]>/<cid[-6:-4]>/<cid>``."""
    return f"{cid[-2:]}/{cid[-4:-2]}/{cid[-6:-4]}/{cid}"


def probe_cid(image_dir: Path, cid: str) -> tuple[str, int, int]:
    """(image path, width, height) of the Retrieval-SfM image ``cid`` below ``image_dir``."""
    rel = cid_to_path(cid)
    return (rel, *probe_image(image_dir / rel))


def require(path: Path, what: str) -> Path:
    """``path`` if it exists, else a one-line error saying what belongs there."""
    if not path.exists():
        raise DarksideError(f"{path}: missing ({what})")
    return path


def first_existing(candidates: Iterable[Path], what: str) -> Path:
    """The first existing path of ``candidates`` (layouts differ between mirrors); the error names them all."""
    cands = list(candidates)
    for c in cands:
        if c.exists():
            return c
    also = f"; also looked for {', '.join(str(c) for c in cands[1:])}" if len(cands) > 1 else ""
    raise DarksideError(f"{cands[0]}: missing ({what}){also}")


#: cirtorch's own data root keeps the SfM-120k pickles and images in ``train/retrieval-SfM-120k/``
#: (``cirtorch.utils.download.download_train``); a raw folder may be such a data root
CIRTORCH_SFM = Path("train") / "retrieval-SfM-120k"


def cirtorch_places(sfm_raw: Path, filename: str) -> list[Path]:
    """Where a cirtorch pickle (``retrieval-SfM-120k.pkl``, ``...-whiten.pkl``) may be, in the order searched.

    The registry's download puts it at the top of the raw folder; a copy of cirtorch's server tree
    (``.../cnnimageretrieval/data/train/``) has it in ``dbs/``; cirtorch's data root in
    ``train/retrieval-SfM-120k/``.
    """
    return [sfm_raw / filename, sfm_raw / "dbs" / filename, sfm_raw / CIRTORCH_SFM / filename]


def sfm_images(sfm_raw: Path, how: str = "darkside download --dataset sfm120k") -> Path:
    """The SfM-120k image folder: ``ims/ims`` or ``ims`` (depending on how ims.tar.gz was extracted), at
    the top of the raw folder or in cirtorch's data-root layout."""
    places = [p for base in (sfm_raw, sfm_raw / CIRTORCH_SFM) for p in (base / "ims" / "ims", base / "ims")]
    return first_existing(places, f"SfM-120k images ({how})")


def as_str_list(value: Any, where: str) -> list[str]:
    """A pickled list of names (str, bytes or numpy strings) as ``list[str]``."""
    try:
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in value]
    except TypeError:
        raise DarksideError(f"{where}: expected a list of names") from None


def as_int_list(value: Any, where: str) -> list[int]:
    """A pickled index list (list, tuple or numpy array) as ``list[int]``."""
    try:
        return [int(v) for v in value]
    except (TypeError, ValueError):
        raise DarksideError(f"{where}: expected a list of integer indices") from None


def load_gnd(gnd_path: Path) -> tuple[list[str], list[str], list[Any]]:
    """(imlist, qimlist, gnd) of a cirtorch / revisitop ground-truth pickle, read with the restricted
    unpickler and checked (one ``gnd`` entry per query)."""
    obj = load_pickle(gnd_path)
    if not isinstance(obj, dict) or not {"imlist", "qimlist", "gnd"} <= set(obj):
        raise DarksideError(f"{gnd_path}: expected a dict with imlist, qimlist, gnd")
    imlist = as_str_list(obj["imlist"], f"{gnd_path}: imlist")
    qimlist = as_str_list(obj["qimlist"], f"{gnd_path}: qimlist")
    gnd = obj["gnd"]
    if len(gnd) != len(qimlist):
        raise DarksideError(f"{gnd_path}: {len(gnd)} gnd entries for {len(qimlist)} queries")
    return imlist, qimlist, gnd


def write_prepared(out_dir: str | Path, name: str, records: list[ImageRecord], groundtruth: GroundTruth,
                   image_dir: str | Path, source: str, metadata: dict[str, Any] | None = None) -> Path:
    """Write the prepared dataset; ``image_root`` is stored relative to ``out_dir`` when possible.

    ``metadata`` (counts, caveats such as "query ground truth not public", the benchmark's image-name style) is
    added to ``dataset.json`` under ``"metadata"``; :func:`~darkside.data.manifest.load_manifest` reads it into
    ``Manifest.metadata`` and validates nothing in it.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    img = Path(image_dir).resolve()
    try:
        image_root = os.path.relpath(img, out.resolve())
    except ValueError:  # different drives (Windows): keep it absolute
        image_root = str(img)
    return write_dataset(out, name, records, groundtruth, image_root=image_root, source=source, metadata=metadata)


def index_images(root: Path) -> dict[str, Path]:
    """name (stem) -> jpg path, anywhere below ``root``."""
    found: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.is_file():
            found.setdefault(p.stem, p)
    return found


def has_daco_layout(root: Path) -> bool:
    """Whether ``root`` holds DaCo's pre-arranged folders (``original/`` or ``domain_a/`` directly)."""
    return (root / "original").is_dir() or (root / "domain_a").is_dir()


def daco_layout_pairs(root: Path) -> list[tuple[str, Path, Path]]:
    """(split, domain_a image, domain_b image) from DaCo's pre-arranged folders, paired by sorted index.

    DaCo's layout is ``<root>/original/{domain_a,domain_b}/{train,val}/*``; its Recall@K pairs
    the i-th image of each sorted half, so the same rule is applied here. Unequal halves are
    refused (the pairing would silently shift).
    """
    base = root / "original" if (root / "original").is_dir() else root
    out: list[tuple[str, Path, Path]] = []
    for split in ("train", "val"):
        a_dir, b_dir = base / "domain_a" / split, base / "domain_b" / split
        if not a_dir.is_dir() and not b_dir.is_dir():
            continue
        a = sorted(p for p in a_dir.iterdir() if p.is_file()) if a_dir.is_dir() else []
        b = sorted(p for p in b_dir.iterdir() if p.is_file()) if b_dir.is_dir() else []
        if len(a) != len(b):
            raise DarksideError(f"{base}: {split} has {len(a)} domain_a but {len(b)} domain_b images")
        out += [(split, x, y) for x, y in zip(a, b, strict=True)]
    if not out:
        raise DarksideError(f"{base}: no domain_a/domain_b train or val folders")
    return out


def paired_dataset(pairs: list[tuple[str, Path, Path, str]], domains: tuple[str, str], image_dir: Path, out_dir: Path,
                   name: str, source: str, metadata: dict[str, Any] | None = None) -> Path:
    """Prepared dataset of cross-domain pairs (DaCo's Recall@K data).

    ``pairs``: (split, image of domain A, image of domain B, place). Both images of pair ``k``
    share the cluster ``pair<k>``; ``pairs[split]`` lists (B, A) ids, the "hard" domain first
    like ``day_night_pairs`` (night, day). Protocol ``cross_domain``: the ``val`` pairs are scored (DaCo reports
    its validation split), the ``train`` pairs train.
    """
    records: list[ImageRecord] = []
    gt_pairs: dict[str, list[tuple[str, str]]] = {}
    for k, (split, a, b, place) in enumerate(pairs):
        ids = []
        for img, domain in ((a, domains[0]), (b, domains[1])):
            rel = img.relative_to(image_dir).as_posix()
            w, h = probe_image(img)
            records.append(ImageRecord(rel, rel, split, domain, f"pair{k:05d}", place, w, h))
            ids.append(rel)
        gt_pairs.setdefault(split, []).append((ids[1], ids[0]))
    counts = {s: len(v) for s, v in gt_pairs.items()}
    if "val" not in gt_pairs:
        raise DarksideError(f"{image_dir}: {name} has no val pairs (DaCo scores its val split)")
    gt = GroundTruth(protocol="cross_domain", database_split="val", pairs=gt_pairs)
    return write_prepared(out_dir, name, records, gt, image_dir,
                          source=source, metadata={"pairs": counts, **(metadata or {})})
