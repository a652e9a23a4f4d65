"""The localization jobs: local features of a dataset, its global map, and a model's queries localized by
paradigms 2a (local SfM from the top-k retrieved images) and 2b (the global map, through the top-k images).

A model enters only through its retrieval pairs file (``pairs-top{k}.csv`` of its score job), as in kapture's
``..._from_pairsfile`` pipeline, so any ranking (GeM, ASMK) localizes the same way. Each paradigm writes a metrics
JSON in the layout of the score job's ``localization`` body (rates per threshold, per-query errors; a query
without an estimate is a failure), next to the model's other metrics as ``<dataset>.<paradigm>.json``, and the
LTVL2020 poses file visuallocalization.net takes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darkside.atomic import atomic_write_json
from darkside.data.manifest import ImageRecord, Manifest, load_groundtruth, load_manifest
from darkside.errors import DarksideError
from darkside.evaluate.localization import pose_summary
from darkside.evaluate.ltvl import benchmark_names, write_ltvl_poses
from darkside.localize.features import LocalFeatureSettings, read_local_features, write_local_features
from darkside.localize.geometry import PoseSettings, TriangulationSettings
from darkside.localize.global_map import (
    GlobalMapSettings,
    build_global_map,
    read_global_map,
    settings_record,
    write_global_map,
)
from darkside.localize.matching import MatchSettings
from darkside.localize.sfm import Matcher, PointCloud, Registration, local_cloud, register, views
from darkside.settings import setting

log = logging.getLogger(__name__)

#: the paradigms a localize job computes: name in file names -> Table 3's column
PARADIGMS: dict[str, str] = {"local-sfm": "2a", "global-map": "2b"}


@dataclass(frozen=True)
class LocalizeSettings:
    """``localize``: local features, matching, triangulation, the global map and the query pose."""

    topk: int = setting("retrieved mapping images a query uses (paper: top 20)", ge=1)
    features: LocalFeatureSettings = setting()
    matching: MatchSettings = setting()
    triangulation: TriangulationSettings = setting()
    global_map: GlobalMapSettings = setting()
    pose: PoseSettings = setting()
    seed: int = setting("RANSAC sampling seed (each query adds its row number)", ge=0)


def _database(manifest: Manifest, dataset: Path) -> tuple[list[ImageRecord], list[ImageRecord]]:
    gt = load_groundtruth(dataset, manifest)
    return manifest.select(split=gt.database_split or "database"), manifest.select(split="query")


def run_local_features(dataset: Path, out: Path, s: LocalFeatureSettings) -> Path:
    """Keypoints and descriptors of the dataset's mapping and query images."""
    manifest = load_manifest(dataset)
    db, queries = _database(manifest, dataset)
    log.info("local features (%s) of %d images of %s", s.extractor, len(db) + len(queries), manifest.name)
    return write_local_features(manifest, out, s, db + queries, progress=_every("local features"))


@dataclass(frozen=True)
class MapSettings:
    """What the global-map job reads of ``localize``."""

    matching: MatchSettings
    triangulation: TriangulationSettings
    global_map: GlobalMapSettings


@dataclass(frozen=True)
class QuerySettings:
    """What a model's localize job reads of ``localize`` (the map and the features are its input files)."""

    topk: int
    matching: MatchSettings
    triangulation: TriangulationSettings
    pose: PoseSettings
    seed: int


def run_global_map(dataset: Path, features_path: Path, out: Path, s: MapSettings) -> Path:
    """Paradigm 2b's map of the dataset's mapping images (see :mod:`darkside.localize.global_map`)."""
    manifest = load_manifest(dataset)
    db, _ = _database(manifest, dataset)
    posed = [r for r in db if r.pose is not None]
    features = read_local_features(features_path)
    mapping = views(posed, features, str(dataset))
    matcher = Matcher(mapping, s.matching)
    cloud, pairs = build_global_map(mapping, [r.image_id for r in posed], matcher, s.triangulation, s.global_map,
                                    progress=_every("mapping pairs"))
    log.info("global map of %s: %d points, %d observations from %d pairs of %d images", manifest.name,
             len(cloud.points), cloud.n_observations, len(pairs), len(posed))
    record = settings_record(s.matching, s.triangulation, s.global_map)
    return write_global_map(out, cloud, pairs, matcher, features, manifest.name, record)


def read_pairs(path: Path, records: Sequence[ImageRecord]) -> dict[str, list[str]]:
    """query id -> mapping ids in rank order, from a kapture pairs CSV (``query, map, score``) whose names are
    image ids or manifest paths (one-line error for a name the dataset lacks)."""
    if not path.is_file():
        raise DarksideError(f"{path}: retrieval pairs file missing (the model's score job writes it)")
    by_name = {r.path: r.image_id for r in records} | {r.image_id: r.image_id for r in records}
    out: dict[str, list[str]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 2 or fields[0] not in by_name or fields[1] not in by_name:
            raise DarksideError(f"{path}:{n}: expected 'query, map, score' with names of the dataset's images")
        out.setdefault(by_name[fields[0]], []).append(by_name[fields[1]])
    return out


def run_localize(dataset: Path, features_path: Path, map_path: Path, pairs_path: Path, out_dir: Path,
                 poses_dir: Path, s: QuerySettings, thresholds: Sequence[tuple[float, float]]) -> list[Path]:
    """Both paradigms for one model on one dataset: ``out_dir/<dataset>.<paradigm>.json`` and
    ``poses_dir/poses-<paradigm>.txt``; returns the metric files."""
    manifest = load_manifest(dataset)
    db, queries = _database(manifest, dataset)
    features = read_local_features(features_path)
    mapping = views([r for r in db if r.pose is not None], features, str(dataset))
    qviews = views(queries, features, str(dataset))
    global_cloud, known = read_global_map(map_path, features)
    matcher = Matcher(mapping, s.matching, dict(known))  # the map's verified pairs are 2a's too
    ranked = read_pairs(pairs_path, db + queries)
    results: dict[str, list[Registration]] = {p: [] for p in PARADIGMS}
    tracks: dict = {}  # 2a's triangulated tracks, shared by queries whose retrieved images overlap
    for qi, q in enumerate(queries):
        top = [i for i in ranked.get(q.image_id, []) if i in mapping][: s.topk]
        clouds: dict[str, PointCloud] = {"local-sfm": local_cloud(top, matcher, s.triangulation, tracks),
                                         "global-map": global_cloud}
        qv = qviews[q.image_id]
        matches = {b: matcher.query(qv, b) for b in top}  # the same matches serve both paradigms
        for paradigm, cloud in clouds.items():
            results[paradigm].append(register(qv, matches, cloud, s.pose, s.seed + qi))
        if (qi + 1) % 10 == 0 or qi + 1 == len(queries):
            log.info("%s: %d/%d queries localized (2a %d, 2b %d with a pose)", manifest.name, qi + 1, len(queries),
                     sum(r.pose is not None for r in results["local-sfm"]),
                     sum(r.pose is not None for r in results["global-map"]))
    written = []
    for paradigm, regs in results.items():
        poses = np.array([r.pose if r.pose is not None else [np.nan] * 7 for r in regs], dtype=np.float64)
        # named as the benchmark scores them (RobotCar: rear/<timestamp>, rear camera only; Aachen: file name)
        poses_file = write_ltvl_poses(poses_dir / f"poses-{paradigm}.txt", benchmark_names(manifest, queries),
                                      poses.reshape(-1, 7))
        body = localization_body(queries, regs, thresholds)
        body.update(paradigm=PARADIGMS[paradigm], dataset=manifest.name, n_database=len(db),
                    files=[str(poses_file)], settings=dataclasses.asdict(s))
        written.append(atomic_write_json(out_dir / f"{manifest.name}.{paradigm}.json", body))
    return written


def localization_body(queries: Sequence[ImageRecord], regs: Sequence[Registration],
                      thresholds: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Rates per threshold over the queries with a ground-truth pose, and the per-query errors (null: failure),
    correspondences and inliers."""
    est = np.array([r.pose if r.pose is not None else [np.nan] * 7 for r in regs], dtype=np.float64).reshape(-1, 7)
    metrics, loc = pose_summary(queries, est, thresholds, {"correspondences": [r.correspondences for r in regs],
                                                           "inliers": [r.inliers for r in regs]})
    return {"n_queries": len(queries), "metrics": metrics, "per_query": {}, "localization": loc}


def _every(what: str, step: int = 100):
    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            log.info("%s: %d/%d", what, done, total)
    return progress
