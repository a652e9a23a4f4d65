"""Retrieval-SfM N/D: SfM-120k's training data plus day-night positive pairs from a user file.

The pairs of Jenicek & Chum (ICCV 2019) are not published as a file. Place a pair list at
``data/raw/sfm120k-nd/pairs.csv`` (or ``pairs.txt``): one pair per line, ``night_cid,day_cid``
(comma, tab or spaces), ``#`` comments and an optional header line ``night,day``. Both cids must
be SfM-120k images (``data/raw/sfm120k/ims``).

What it holds: everything ``sfm120k`` holds (its ``train``/``val`` images, query-positive pairs and
gandtr's day/night labels, read from the same raw files) and ``GroundTruth.day_night_pairs`` =
(night, day). The N/D recipes (``day_night_pairs`` in a recipe: GeM N/D, CLAHE N/D, CycleGAN CD +
N/D) mine day tuples and N/D tuples from one dataset, so it must hold both; the ``train_day_night``
role names it (``sfm120k-nd`` in the paper preset; the synthetic ``synth-sfm`` holds both already).
A pair image labels its record night or day (the pair list wins over the lists); one that is not in
the pickle's splits is added to ``train`` (a pair belongs to the split of its night anchor) with
cluster ``-1`` (no 3D model).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from darkside.data.importers._common import (
    DatasetEntry,
    first_existing,
    probe_cid,
    require,
    write_prepared,
)
from darkside.data.importers.sfm120k import raw_files, read_sfm120k
from darkside.data.manifest import GroundTruth, ImageRecord
from darkside.errors import DarksideError

_SPLIT = re.compile(r"[,\t ]+")


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """(night cid, day cid) pairs of a user pair list; a malformed line is a one-line error."""
    p = require(Path(path), "night/day pair list (night_cid,day_cid per line)")
    pairs = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f for f in _SPLIT.split(line) if f]
        if len(fields) != 2:
            raise DarksideError(f"{p}:{n}: expected 'night_cid,day_cid'")
        if [f.lower() for f in fields] == ["night", "day"]:
            continue
        night, day = (f.replace("\\", "/").rsplit("/", 1)[-1] for f in fields)
        if night == day:
            raise DarksideError(f"{p}:{n}: night and day image are the same ({night})")
        pairs.append((night, day))
    if not pairs:
        raise DarksideError(f"{p}: no pairs")
    return pairs


def import_sfm_nd(pairs_file: str | Path, db_pkl: str | Path, image_dir: str | Path, out_dir: str | Path,
                  day_list: str | Path | None = None, night_list: str | Path | None = None,
                  name: str = "sfm120k-nd") -> Path:
    """SfM-120k's training data plus the N/D pairs (see the module docstring)."""
    images = Path(image_dir)
    pairs = read_pairs(pairs_file)
    roles: dict[str, str] = {}
    for night, day in pairs:
        for cid, role in ((night, "night"), (day, "day")):
            if roles.setdefault(cid, role) != role:
                raise DarksideError(f"{pairs_file}: image {cid} is listed both as night and as day")
    records, day_pairs, meta = read_sfm120k(db_pkl, images, day_list, night_list)
    index = {r.image_id: i for i, r in enumerate(records)}  # every cid the pickle lists, both splits
    added = 0
    for cid, role in roles.items():
        if cid in index:
            records[index[cid]] = replace(records[index[cid]], domain=role)
            continue
        rel, w, h = probe_cid(images, cid)
        records.append(ImageRecord(rel, cid, "train", role, "-1", "-1", w, h))  # in no 3D model of the pickle
        added += 1
    night = sum(r == "night" for r in roles.values())
    meta["counts"]["day_night"] = {"pairs": len(pairs), "night": night, "day": len(roles) - night,
                                   "images_not_in_the_pickle": added}
    gt = GroundTruth(protocol="training", pairs=day_pairs, day_night_pairs=pairs)
    return write_prepared(out_dir, name, records, gt, images,
                          source=f"cirtorch {Path(db_pkl).name} + user pair list {Path(pairs_file).name}",
                          metadata=meta)


def prepare(raw_root: Path, out_dir: Path) -> Path:
    """Registry entry point for ``sfm120k-nd``: the pair list and ``sfm120k``'s raw files."""
    raw = Path(raw_root) / "sfm120k-nd"
    pairs = first_existing([raw / "pairs.csv", raw / "pairs.txt"], "night/day pair list: place pairs.csv here")
    db, images, day, night = raw_files(raw_root)
    return import_sfm_nd(pairs, db, images, out_dir, day, night)


#: the datasets this module imports (darkside.data.registry collects them)
DATASETS = (
    DatasetEntry(
        "sfm120k-nd", prepare, "as sfm120k; the pair list is yours", "small (text)",
        "pairs.csv: night_cid,day_cid per line (images from ../sfm120k/ims)", requires=("sfm120k",),
        manual="Retrieval-SfM N/D is not published as a file: place a pair list at data/raw/sfm120k-nd/pairs.csv "
                "(one 'night_cid,day_cid' per line; '#' comments and a 'night,day' header allowed)",
        manual_check=("pairs.csv", "pairs.txt"),
    ),
)
