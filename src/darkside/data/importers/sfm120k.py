"""Retrieval-SfM-120k (cirtorch): ``retrieval-SfM-120k.pkl`` and the whitening pickle.

Native layout (``data/raw/sfm120k/``)::

    ims/<cid[-2:]>/<cid[-4:-2]>/<cid[-6:-4]>/<cid>     images, no extension (ims.tar.gz)
    retrieval-SfM-120k.pkl          {'train': {cids, cluster, qidxs, pidxs}, 'val': {...}}
    retrieval-SfM-120k-whiten.pkl   {cids, qidxs, pidxs}  (cluster where present)
    train_day.txt, train_night.txt  gandtr's day/night lists (optional: domain labels)

cirtorch's layouts are accepted as well, searched in this order after the top level: its server
tree (``dbs/retrieval-SfM-120k.pkl`` beside ``ims/``, as under ``.../data/train/``) and its data
root (``train/retrieval-SfM-120k/`` holding the pickles and ``ims/``); the whitening pickle is
looked for the same way below ``sfm120k-whiten/``, then beside the main one.

The pickles index images by position, so pairs are translated to image ids (the cid) here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from darkside.data.importers._common import (
    DatasetEntry,
    RemoteFile,
    as_int_list,
    as_str_list,
    cirtorch_places,
    first_existing,
    probe_cid,
    sfm_images,
    write_prepared,
)
from darkside.data.importers.gandtr_lists import read_cid_list
from darkside.data.manifest import GroundTruth, ImageRecord
from darkside.data.safe_pickle import load_pickle
from darkside.errors import DarksideError

DB = "retrieval-SfM-120k.pkl"
WHITEN = "retrieval-SfM-120k-whiten.pkl"


def _split_records(
    db: dict[str, Any], split: str, where: str, image_dir: Path, domains: dict[str, str], taken: set[str]
) -> tuple[list[ImageRecord], list[str]]:
    """Records of one split and the image id of each pickle position (pairs refer to positions).

    A cid repeated inside a split is the same image (one row); a cid already used by another
    split gets the id ``<split>:<cid>`` so that ids stay unique without dropping rows.
    """
    for key in ("cids", "qidxs", "pidxs"):
        if key not in db:
            raise DarksideError(f"{where}: missing key {key!r}")
    cids = as_str_list(db["cids"], f"{where}.cids")
    clusters = as_int_list(db["cluster"], f"{where}.cluster") if "cluster" in db else [-1] * len(cids)
    if len(clusters) != len(cids):
        raise DarksideError(f"{where}.cluster: {len(clusters)} entries for {len(cids)} cids")
    records: list[ImageRecord] = []
    ids: list[str] = []
    local: dict[str, str] = {}
    for cid, cluster in zip(cids, clusters, strict=True):
        if cid in local:
            ids.append(local[cid])
            continue
        image_id = cid if cid not in taken else f"{split}:{cid}"
        rel, w, h = probe_cid(image_dir, cid)
        records.append(ImageRecord(rel, image_id, split, domains.get(cid, "other"), str(cluster), str(cluster), w, h))
        local[cid] = image_id
        taken.add(image_id)
        ids.append(image_id)
    return records, ids


def _pairs(db: dict[str, Any], ids: list[str], where: str) -> list[tuple[str, str]]:
    q = as_int_list(db["qidxs"], f"{where}.qidxs")
    p = as_int_list(db["pidxs"], f"{where}.pidxs")
    if len(q) != len(p):
        raise DarksideError(f"{where}: {len(q)} qidxs but {len(p)} pidxs")
    for k, i in enumerate(q + p):
        if not 0 <= i < len(ids):
            raise DarksideError(f"{where}: pair index {i} (entry {k % len(q)}) is outside the {len(ids)} cids")
    return [(ids[a], ids[b]) for a, b in zip(q, p, strict=True)]


def daynight_domains(day_list: Path | None, night_list: Path | None) -> dict[str, str]:
    """cid -> 'day'/'night' from gandtr's lists (absent lists: no labels)."""
    domains: dict[str, str] = {}
    if day_list is not None:
        domains.update(dict.fromkeys(read_cid_list(day_list), "day"))
    if night_list is not None:
        domains.update(dict.fromkeys(read_cid_list(night_list), "night"))
    return domains


def read_sfm120k(db_pkl: str | Path, image_dir: str | Path, day_list: str | Path | None = None,
                 night_list: str | Path | None = None
                 ) -> tuple[list[ImageRecord], dict[str, list[tuple[str, str]]], dict[str, Any]]:
    """The records, query-positive pairs per split and counts of ``retrieval-SfM-120k.pkl``'s ``train``/``val``
    splits (domain from the gandtr lists); what ``sfm120k`` writes and ``sfm120k-nd`` builds on."""
    db_path, images = Path(db_pkl), Path(image_dir)
    db = load_pickle(db_path)
    if not isinstance(db, dict):
        raise DarksideError(f"{db_path}: expected a dict of splits")
    splits = [s for s in ("train", "val") if s in db]
    if not splits:
        raise DarksideError(f"{db_path}: no 'train' or 'val' split")
    domains = daynight_domains(Path(day_list) if day_list else None, Path(night_list) if night_list else None)
    records: list[ImageRecord] = []
    pairs: dict[str, list[tuple[str, str]]] = {}
    taken: set[str] = set()
    counts: dict[str, Any] = {}
    for split in splits:
        where = f"{db_path}: {split}"
        if not isinstance(db[split], dict):
            raise DarksideError(f"{where}: expected a dict with cids, cluster, qidxs, pidxs")
        recs, ids = _split_records(db[split], split, where, images, domains, taken)
        records += recs
        pairs[split] = _pairs(db[split], ids, where)
        counts[split] = {"images": len(recs), "pairs": len(pairs[split]), "day": sum(r.domain == "day" for r in recs),
                         "night": sum(r.domain == "night" for r in recs)}
    return records, pairs, {"counts": counts, "daynight_lists": bool(domains)}


def import_sfm120k(db_pkl: str | Path, image_dir: str | Path, out_dir: str | Path, day_list: str | Path | None = None,
                   night_list: str | Path | None = None, name: str = "sfm120k") -> Path:
    """Splits ``train``/``val`` with their query-positive pairs; domain from the gandtr lists."""
    records, pairs, meta = read_sfm120k(db_pkl, image_dir, day_list, night_list)
    return write_prepared(out_dir, name, records, GroundTruth(protocol="training", pairs=pairs), Path(image_dir),
                          source=f"cirtorch {Path(db_pkl).name}", metadata=meta)


def import_sfm120k_whiten(whiten_pkl: str | Path, image_dir: str | Path, out_dir: str | Path,
                          name: str = "sfm120k-whiten") -> Path:
    """The whitening set: split ``whiten``, pairs ``pairs['whiten']``."""
    path = Path(whiten_pkl)
    db = load_pickle(path)
    if isinstance(db, dict) and "cids" not in db and isinstance(db.get("whiten"), dict):
        db = db["whiten"]
    if not isinstance(db, dict):
        raise DarksideError(f"{path}: expected a dict with cids, qidxs, pidxs")
    recs, ids = _split_records(db, "whiten", str(path), Path(image_dir), {}, set())
    gt = GroundTruth(protocol="training", pairs={"whiten": _pairs(db, ids, str(path))})
    return write_prepared(out_dir, name, recs, gt, image_dir, source=f"cirtorch {path.name}",
                          metadata={"counts": {"images": len(recs), "pairs": len(gt.pairs["whiten"])}})


def raw_files(raw_root: Path) -> tuple[Path, Path, Path | None, Path | None]:
    """``sfm120k``'s raw files: the pickle (top of the raw folder or a cirtorch layout), the image folder and
    gandtr's day and night lists where present."""
    raw = Path(raw_root) / "sfm120k"
    db = first_existing(cirtorch_places(raw, DB), f"cirtorch's {DB}: darkside download --dataset sfm120k")
    day, night = raw / "train_day.txt", raw / "train_night.txt"
    return db, sfm_images(raw, "ims.tar.gz"), day if day.is_file() else None, night if night.is_file() else None


def prepare(raw_root: Path, out_dir: Path) -> Path:
    """Registry entry point for ``sfm120k``."""
    db, images, day, night = raw_files(raw_root)
    return import_sfm120k(db, images, out_dir, day, night)


def prepare_whiten(raw_root: Path, out_dir: Path) -> Path:
    """Registry entry point for ``sfm120k-whiten`` (images shared with ``sfm120k``).

    The pickle: in ``sfm120k-whiten/`` (top, then the cirtorch layouts), else beside the main pickle
    in a cirtorch layout of ``sfm120k/`` (cirtorch keeps both pickles together).
    """
    raw, sfm = Path(raw_root) / "sfm120k-whiten", Path(raw_root) / "sfm120k"
    pkl = first_existing([*cirtorch_places(raw, WHITEN), *cirtorch_places(sfm, WHITEN)[1:]],
                         f"cirtorch's {WHITEN}: darkside download --dataset sfm120k-whiten")
    return import_sfm120k_whiten(pkl, sfm_images(sfm, "ims.tar.gz"), out_dir)


_CMP = "http://cmp.felk.cvut.cz/cnnimageretrieval/data"
_GANDTR = "http://ptak.felk.cvut.cz/personal/jenicto2/download/iccv23_gan"
#: the datasets this module imports (darkside.data.registry collects them)
DATASETS = (
    DatasetEntry(
        "sfm120k", prepare, "no explicit licence (Flickr images, research use); no registration",
        "tens of GB (ims.tar.gz; cirtorch issue #52 says >50 GB)",
        "ims/<cid[-2:]>/<cid[-4:-2]>/<cid[-6:-4]>/<cid>, retrieval-SfM-120k.pkl, train_day.txt, train_night.txt",
        files=(
            RemoteFile(f"{_CMP}/train/ims/ims.tar.gz", None, "ims"),
            RemoteFile(f"{_CMP}/train/dbs/retrieval-SfM-120k.pkl"),
            RemoteFile(f"{_GANDTR}/train_day.txt"),
            RemoteFile(f"{_GANDTR}/train_night.txt"),
        ),
        notes="91,642 train and 6,403 val images; day/night labels from gandtr's lists",
    ),
    DatasetEntry(
        "sfm120k-whiten", prepare_whiten, "as sfm120k", "small (pickle); images shared with sfm120k",
        "retrieval-SfM-120k-whiten.pkl (images from ../sfm120k/ims)",
        files=(RemoteFile(f"{_CMP}/train/dbs/retrieval-SfM-120k-whiten.pkl"),), requires=("sfm120k",),
    ),
)
