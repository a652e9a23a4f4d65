"""Visual localization, paradigm 1 (pose of the top-1 retrieved image), scoring and exports.

Poses are world->camera ``(qw, qx, qy, qz, tx, ty, tz)`` as in kapture and visuallocalization.net (maths:
:mod:`darkside.geometry`). Position error: distance between camera centres (metres); rotation error: angle of the
relative rotation (degrees). A query counts for a threshold (T m, R deg) when both errors are within it (inclusive);
one without an estimate is a failure, so the percentage is over every query that has a ground-truth pose.

Scored (:func:`score`): queries = rows of split ``query``, database = the ground truth's ``database_split`` (default
``database``). ``metrics`` holds the percentage localised within each threshold, keyed ``"0.25m,2deg"`` etc., plus
``mAP`` when the ground truth lists positives. ``localization``: :func:`pose_summary`'s ``{"thresholds", "rates",
"n_scored", "localized", "median_position_error_m", "median_rotation_error_deg"}`` and ``"files"``; per query
``{"ids", "domains", "position_error_m", "rotation_error_deg"}`` (null = no estimate, a failure) and ``"top1"``.

Exports (with ``pairs_dir``; names: :mod:`.ltvl`):

* ``pairs-top{K}.txt`` / ``.csv`` (K = pairs_topk) and ``pairs-top1.txt`` / ``.csv``: every query that has a
  descriptor with its top-K database images, hloc ``query db`` and kapture ``query, db, score`` (see
  :mod:`.database`), the input of kapture's paradigms 2a/2b. Images are named by their manifest ``image_id``: for a
  kapture dataset the kapture image name (``query/night/nexus5x/IMG_20161227_173116.jpg``, ``db/1234.jpg``,
  ``night/rear/1418235223450115.jpg``), so kapture-localization finds them in the records; for the synthetic
  benchmark its ids. Every query is listed, RobotCar's left and right cameras too (the local-feature paradigms use
  them).
* ``poses-top1.txt``: the LTVL2020 file visuallocalization.net takes, ``name qw qx qy qz tx ty tz`` (world->camera)
  for each query with an estimate, named in the benchmark's style the dataset declares (:func:`.ltvl.benchmark_names`):
  Aachen v1.1 the file name (``IMG_20161227_173116.jpg``), RobotCar Seasons ``rear/<timestamp>.jpg`` and the rear
  camera only (the one the server scores), the synthetic benchmark its image ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darkside.config import ScoreSettings
from darkside.data.manifest import GroundTruth, ImageRecord, Manifest
from darkside.evaluate.ap import mean_average_precision
from darkside.evaluate.database import (
    body,
    build_database,
    ids_to_db,
    list_ranks,
    pct,
    pct_list,
    query_batch,
    query_vectors,
    row_lookup,
    write_pairs_hloc,
    write_pairs_kapture,
)
from darkside.evaluate.ltvl import benchmark_names, write_ltvl_poses
from darkside.evaluate.ranking import topk
from darkside.extract.hdf5 import DescriptorSet
from darkside.geometry import pose_errors

PROTOCOL = "localization"


def localization_rates(position_error: np.ndarray, rotation_error: np.ndarray,
                       thresholds: Sequence[tuple[float, float]]) -> list[float]:
    """Percentage of queries with both errors within each (metres, degrees) threshold, inclusive (NaN fails)."""
    t = np.asarray(position_error, dtype=np.float64)
    r = np.asarray(rotation_error, dtype=np.float64)
    if t.size == 0:
        return [float("nan")] * len(thresholds)
    return [float(100.0 * np.count_nonzero((t <= tm) & (r <= rd)) / t.size) for tm, rd in thresholds]


def threshold_key(metres: float, degrees: float) -> str:
    """JSON key of a threshold, e.g. ``0.25m,2deg``."""
    return f"{metres:g}m,{degrees:g}deg"


def approximate_poses(top1: np.ndarray, database_poses: np.ndarray) -> np.ndarray:
    """Paradigm 1: each query takes the pose of its top-1 database image (-1: no estimate, NaN row)."""
    top1 = np.asarray(top1, dtype=np.int64)
    db = np.asarray(database_poses, dtype=np.float64)
    out = np.full((top1.size, 7), np.nan)
    ok = top1 >= 0
    out[ok] = db[top1[ok]]
    return out


def pose_summary(queries: Sequence[ImageRecord], estimates: np.ndarray, thresholds: Sequence[tuple[float, float]],
                 per_query: Mapping[str, Sequence[Any]] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, localization block) of estimated poses ``estimates`` (one row (7,) per query, NaN: no estimate)
    scored over the queries with a ground-truth pose: the percentage within each threshold, the median errors of
    the estimates and the per-query errors (None: no estimate), with a paradigm's own ``per_query`` fields (one
    value per query, kept for the scored ones)."""
    scored = [i for i, q in enumerate(queries) if q.pose is not None]
    est = np.asarray(estimates, dtype=np.float64).reshape(-1, 7)[scored]
    gt = np.array([queries[i].pose for i in scored], dtype=np.float64).reshape(-1, 7)
    perr, rerr = pose_errors(est, gt) if scored else (np.zeros(0), np.zeros(0))
    thresholds = [(float(t), float(r)) for t, r in thresholds]
    rates = localization_rates(perr, rerr, thresholds)
    metrics: dict[str, Any] = {threshold_key(t, r): v for (t, r), v in zip(thresholds, rates, strict=True)}
    finite = ~np.isnan(perr)
    loc = {"thresholds": [list(t) for t in thresholds], "rates": dict(metrics), "n_scored": len(scored),
           "localized": int(finite.sum()),
           **{k: float(np.median(e[finite])) if finite.any() else None
              for k, e in (("median_position_error_m", perr), ("median_rotation_error_deg", rerr))},
           "per_query": {"ids": [queries[i].image_id for i in scored], "domains": [queries[i].domain for i in scored],
                         "position_error_m": [None if np.isnan(v) else float(v) for v in perr],
                         "rotation_error_deg": [None if np.isnan(v) else float(v) for v in rerr],
                         **{k: [v[i] for i in scored] for k, v in (per_query or {}).items()}}}
    return metrics, loc


def score(manifest: Manifest, gt: GroundTruth, ds: DescriptorSet, settings: ScoreSettings,
          gt_path: Path, h5: Path, pairs_dir: Path | None) -> dict[str, Any]:
    """The JSON body of a localization dataset (see the module docstring); with ``pairs_dir``, the exports."""
    db = build_database(manifest.select(split=gt.database_split or "database"), ds)
    queries = manifest.select(split="query")
    rows = row_lookup(ds)
    have = [r.image_id in rows for r in queries]
    Q = np.asarray([ds.descriptors[rows[r.image_id]] for r, h in zip(queries, have, strict=True) if h],
                   dtype=ds.descriptors.dtype).reshape(-1, ds.descriptors.shape[1])
    kmax = max(1, settings.pairs_topk)
    top = np.full((len(queries), kmax), -1, dtype=np.int64)
    top_s = np.full((len(queries), kmax), -np.inf)
    if len(Q) and len(db.X):
        present_db = np.nonzero(db.present >= 0)[0]  # X position -> db index
        qb = query_batch(settings, len(db.X))
        got = [topk(Q[s:s + qb], db.X, kmax, settings.chunk_size, similarity=db.similarity)
               for s in range(0, len(Q), qb)]
        idx, sc = (np.concatenate(g) for g in zip(*got, strict=True))
        sel = np.nonzero(have)[0]
        top[sel, : idx.shape[1]] = np.where(idx >= 0, present_db[np.maximum(idx, 0)], -1)
        top_s[sel, : idx.shape[1]] = sc
    db_poses = np.array([r.pose if r.pose is not None else (np.nan,) * 7 for r in db.records],
                        dtype=np.float64).reshape(-1, 7)
    est = approximate_poses(top[:, 0], db_poses)
    top1 = [db.records[t].image_id if t >= 0 else None for t in top[:, 0]]
    metrics, loc = pose_summary(queries, est, settings.localization_thresholds, {"top1": top1})
    files: list[str] = []
    if pairs_dir is not None:
        qnames = [r.image_id for r, h in zip(queries, have, strict=True) if h]
        dbnames = [r.image_id for r in db.records]
        hv = np.asarray(have, dtype=bool)
        for k in sorted({kmax, 1}):
            t, ts = top[hv, :k], top_s[hv, :k]
            files += [write_pairs_hloc(pairs_dir / f"pairs-top{k}.txt", qnames, dbnames, t).name,
                      write_pairs_kapture(pairs_dir / f"pairs-top{k}.csv", qnames, dbnames, t, ts).name]
        files.append(write_ltvl_poses(pairs_dir / "poses-top1.txt", benchmark_names(manifest, queries), est).name)
    loc["files"] = files
    out = body(db, len(queries), metrics, {}, localization=loc)
    gq = [q for q in gt.queries if q.positives]
    if gq:  # retrieval ground truth as well (e.g. the synthetic benchmark): mAP like tokyo
        qids = [q.query for q in gq]
        ok = [ids_to_db(q.positives, db, f"{gt_path}: query {q.query}") for q in gq]
        jk = [ids_to_db(q.junk, db, f"{gt_path}: query {q.query}") for q in gq]
        Q = query_vectors(qids, ds, cropped=False, where=str(gt_path))
        sub = list_ranks(Q, db, list(zip(ok, jk, strict=True)), settings)
        res = mean_average_precision([s[0] for s in sub], [s[1] for s in sub])
        metrics["mAP"] = pct(res.map)
        out["per_query"]["mAP"] = {"ids": qids, "ap": pct_list(res.ap)}
    return out
