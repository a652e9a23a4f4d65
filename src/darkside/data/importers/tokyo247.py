"""Tokyo 24/7 as ``247tokyo1k``: the 1,125 query images of ``247query_v3`` and ``gnd_247tokyo1k.pkl``.

Native layout (``data/raw/tokyo247/``)::

    247query_v3/**/00001.jpg, 00001.csv, ...   (247query_v3.zip; folder nesting varies by mirror)
    gnd_247tokyo1k.pkl    {imlist, qimlist, gnd: [{ok, junk, bbx}]}, names without extension

Each image has a one-row CSV whose 5th column is ``D``/``S``/``N`` (day / sunset / night). The
1,125 images are 125 places x 3 directions x 3 times of day; sorted by name, each consecutive
triple is one scene (a place seen in one direction) and each 9 a place. That ordering is
inferred from third-party code, so the importer checks it: every triple must hold exactly one
D, one S and one N, otherwise the scene ids (used by the Table 6 breakdown) would be wrong and
the import stops. Retrieval ground truth is the official pkl, with two rules enforced on it
(the published file cannot be checked offline): a query's own image is always junk for it and
never a positive (every image also sits in the database, so otherwise it ranks itself first), and
every positive must share the query's place (9 images per place in sorted order), which checks
the inferred ids against the ground truth; a mismatch stops the import naming the query. The
check is per place, not per scene, because whether the file's positives are the other two
images of the scene or every image of the place cannot be read offline (reference notes); the
metadata counts the positives from another direction of the place, so the first real import
says which definition the file uses.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from darkside.data.importers._common import (
    DatasetEntry,
    RemoteFile,
    as_int_list,
    index_images,
    load_gnd,
    probe_image,
    require,
    write_prepared,
)
from darkside.data.manifest import GroundTruth, ImageRecord, Query
from darkside.errors import DarksideError

LIGHTING: dict[str, str] = {"D": "day", "S": "sunset", "N": "night"}


def read_lighting(csv_path: str | Path) -> str:
    """Domain from an image's one-row CSV: the 5th column (index 4), ``D``/``S``/``N``.

    If column 5 is not a label, the 6th is tried (some descriptions count from a leading
    index column); anything else is a one-line error naming the file.
    """
    p = require(Path(csv_path), "Tokyo 24/7 per-image CSV")
    with p.open(newline="", encoding="utf-8", errors="replace") as fh:
        rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    if not rows:
        raise DarksideError(f"{p}: empty CSV")
    row = [c.strip() for c in rows[0]]
    for col in (4, 5):
        if len(row) > col and row[col].upper() in LIGHTING:
            return LIGHTING[row[col].upper()]
    raise DarksideError(f"{p}: column 5 is not one of D/S/N ({row[4] if len(row) > 4 else 'missing'!r})")


def check_scene_triples(names: list[str], labels: list[str], images: Path) -> None:
    """Each consecutive triple of the sorted names must be one day, one sunset and one night image (the scene rule
    of the module docstring); otherwise a one-line error naming the triple."""
    for start in range(0, len(labels), 3):
        if sorted(labels[start : start + 3]) != ["day", "night", "sunset"]:
            raise DarksideError(
                f"{images}: images {', '.join(names[start : start + 3])} are not one day, one "
                "sunset and one night image; scene ids cannot be derived from the order"
            )


def import_tokyo247(image_dir: str | Path, gnd_pkl: str | Path, out_dir: str | Path, name: str = "tokyo247") -> Path:
    """Rows of split ``test`` (every image is a query against all), protocol ``tokyo``."""
    images, gnd_path = Path(image_dir), Path(gnd_pkl)
    imlist, qimlist, gnd = load_gnd(gnd_path)
    files = index_images(images)
    names = sorted(set(imlist) | set(qimlist))
    records: list[ImageRecord] = []
    labels: list[str] = []
    for idx, stem in enumerate(names):
        img = files.get(stem)
        if img is None:
            raise DarksideError(f"{images}: image {stem}.jpg listed in {gnd_path.name} not found")
        domain = read_lighting(img.with_suffix(".csv"))
        labels.append(domain)
        w, h = probe_image(img)
        records.append(ImageRecord(img.relative_to(images).as_posix(), stem, "test", domain, f"scene{idx // 3:04d}",
                                   f"place{idx // 9:04d}", w, h))
    check_scene_triples(names, labels, images)
    scene_of = {r.image_id: r.cluster for r in records}
    place_of = {r.image_id: r.place for r in records}
    queries = []
    added = removed = other_direction = 0
    for i, (q, entry) in enumerate(zip(qimlist, gnd, strict=True)):
        where = f"{gnd_path}: gnd[{i}]"
        if not isinstance(entry, dict) or "ok" not in entry:
            raise DarksideError(f"{where}: expected a dict with 'ok' and 'junk'")
        ok = [imlist[j] for j in as_int_list(entry["ok"], f"{where}.ok")]
        junk = [imlist[j] for j in as_int_list(entry.get("junk", []), f"{where}.junk")]
        # Every image queries all 1,125, itself included: whatever the pickle says, the query's own
        # image is junk for it, never a positive (else each query ranks itself first and mAP is inflated).
        if q in ok:
            ok = [p for p in ok if p != q]
            removed += 1
        if q not in junk:
            junk = [q, *junk]
            added += 1
        for p in ok:
            if place_of[p] != place_of[q]:
                raise DarksideError(
                    f"{where}: query {q} ({place_of[q]}) has positive {p} from {place_of[p]}: the images are not "
                    "in the order the scene ids are derived from (3 consecutive names = 1 scene, 9 = 1 place)"
                )
            other_direction += scene_of[p] != scene_of[q]
        queries.append(Query(q, positives=ok, junk=junk))
    meta: dict[str, Any] = {
        "counts": {LIGHTING[k]: labels.count(LIGHTING[k]) for k in "DSN"},
        "scene_rule": "sorted name order: 3 consecutive images = 1 scene, 9 = 1 place; checked against the positives",
        "query_self_junk": {"added": added, "removed_from_positives": removed},
        "positives_from_another_direction": other_direction,
    }
    return write_prepared(out_dir, name, records, GroundTruth(protocol="tokyo", queries=queries), images,
                          source="Tokyo 24/7 247query_v3 + gnd_247tokyo1k.pkl", metadata=meta)


def prepare(raw_root: Path, out_dir: Path) -> Path:
    """Registry entry point for ``tokyo247``."""
    raw = Path(raw_root) / "tokyo247"
    images = require(raw / "247query_v3", "247query_v3.zip extracted")
    return import_tokyo247(images, raw / "gnd_247tokyo1k.pkl", out_dir)


#: the datasets this module imports (darkside.data.registry collects them)
DATASETS = (
    DatasetEntry(
        "tokyo247", prepare, "no explicit licence (research use); no registration",
        "1,125 phone JPEGs + CSVs (size unverified)", "247query_v3/**/NNNNN.jpg + NNNNN.csv, gnd_247tokyo1k.pkl",
        files=(
            RemoteFile("http://www.ok.ctrl.titech.ac.jp/~torii/project/247/download/247query_v3.zip",
                       None, "247query_v3"),
            RemoteFile("http://cmp.felk.cvut.cz/daynightretrieval/download/data/gnd_247tokyo1k.pkl"),
        ),
        notes="mirror of the images: https://data.ciirc.cvut.cz/public/projects/2015netVLAD/Tokyo247/queries/"
                "247query_v3.zip",
    ),
)
