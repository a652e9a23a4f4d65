"""Points from posed images (tracks of matches, triangulated with known poses) and queries registered to them.

Paradigm 2a (local SfM) triangulates, per query, the matches among its top-k retrieved mapping images; paradigm
2b (global map) triangulates the whole mapping set once (:mod:`darkside.localize.global_map`) and uses the
points its top-k images observe. Both then register the query the same way, :func:`register`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from darkside.data.cameras import Intrinsics, parse_camera
from darkside.data.manifest import ImageRecord
from darkside.errors import DarksideError
from darkside.geometry import camera_centers
from darkside.localize.features import KeypointSet
from darkside.localize.geometry import (
    PoseSettings,
    TriangulationSettings,
    all_within,
    estimate_pose,
    projection_matrix,
    triangulate_many,
    triangulate_track,
    undistort,
)
from darkside.localize.matching import MatchSettings, mutual_nearest, verified_matches

Pair = tuple[str, str]


@dataclass
class View:
    """An image as the geometry sees it: intrinsics, pose (mapping images), undistorted keypoints, descriptors."""

    image_id: str
    camera: Intrinsics
    pose: np.ndarray | None
    keypoints: np.ndarray
    descriptors: np.ndarray

    @functools.cached_property
    def projection(self) -> np.ndarray:
        if self.pose is None:
            raise DarksideError(f"{self.image_id}: no pose to project with")
        return projection_matrix(self.camera.K, self.pose)

    @functools.cached_property
    def center(self) -> np.ndarray:
        return camera_centers(self.pose)


def views(records: Iterable[ImageRecord], features: KeypointSet, where: str) -> dict[str, View]:
    """The views of ``records``; an image without intrinsics is an error naming it (2a/2b compute with them)."""
    out = {}
    for r in records:
        if r.camera is None:
            raise DarksideError(f"{where}: image {r.image_id!r} has no camera intrinsics (manifest column 'camera'): "
                                "paradigms 2a/2b cannot use it")
        cam = parse_camera(r.camera, r.width, r.height)
        kp, desc = features.of(r.image_id)
        out[r.image_id] = View(r.image_id, cam, None if r.pose is None else np.asarray(r.pose, dtype=np.float64),
                               undistort(kp, cam), desc)
    return out


@dataclass
class Matcher:
    """Matches between views, computed once per pair: mapping pairs verified with their poses, query pairs raw."""

    views: Mapping[str, View]
    settings: MatchSettings
    cache: dict[Pair, np.ndarray] = field(default_factory=dict)

    def mapping(self, a: str, b: str) -> np.ndarray:
        """Verified matches (m, 2) of keypoints of ``a`` to keypoints of ``b`` (both posed)."""
        if (b, a) in self.cache:
            return self.cache[(b, a)][:, ::-1]
        if (a, b) not in self.cache:
            va, vb = self.views[a], self.views[b]
            raw = mutual_nearest(va.descriptors, vb.descriptors, self.settings.ratio)
            self.cache[(a, b)] = verified_matches(va.keypoints, vb.keypoints, raw, va.camera.K, va.pose,
                                                  vb.camera.K, vb.pose, self.settings)
        return self.cache[(a, b)]

    def query(self, q: View, b: str) -> np.ndarray:
        """Matches (m, 2) of the query's keypoints to those of mapping image ``b`` (not cached: one use each)."""
        return mutual_nearest(q.descriptors, self.views[b].descriptors, self.settings.ratio)


def build_tracks(order: Sequence[str], pair_matches: Mapping[Pair, np.ndarray]) -> list[list[tuple[str, int]]]:
    """Connected components of matched keypoints (union-find), each a track of (image, keypoint), sorted.

    A track holding two keypoints of one image is inconsistent (a match chain went wrong) and is dropped, as
    COLMAP's track builder would split it. Tracks are ordered by their first observation in ``order``.
    """
    rank = {iid: i for i, iid in enumerate(order)}
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(n: tuple[int, int]) -> tuple[int, int]:
        root = parent.setdefault(n, n)
        while parent[root] != root:
            root = parent[root]
        while parent[n] != root:  # path compression
            parent[n], n = root, parent[n]
        return root

    for (a, b), m in pair_matches.items():
        ra, rb = rank[a], rank[b]
        for i, j in m:
            x, y = find((ra, int(i))), find((rb, int(j)))
            if x != y:
                parent[max(x, y)] = min(x, y)
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for n in list(parent):
        groups.setdefault(find(n), []).append(n)
    tracks = []
    for nodes in groups.values():
        nodes = sorted(set(nodes))
        images = [n[0] for n in nodes]
        if len(set(images)) == len(images) and len(nodes) >= 2:
            tracks.append([(order[i], k) for i, k in nodes])
    return sorted(tracks, key=lambda t: (rank[t[0][0]], t[0][1]))


@dataclass(frozen=True)
class PointCloud:
    """Triangulated points (M, 3) and which keypoint of which image observes which point."""

    points: np.ndarray
    observations: dict[str, dict[int, int]]  # image id -> keypoint -> point index

    @property
    def n_observations(self) -> int:
        return sum(len(v) for v in self.observations.values())


def triangulate_tracks(tracks: Sequence[Sequence[tuple[str, int]]], views_by_id: Mapping[str, View],
                       s: TriangulationSettings,
                       cache: dict[tuple, tuple[np.ndarray, np.ndarray] | None] | None = None) -> PointCloud:
    """Every track that triangulates within the settings' limits, with the observations it keeps.

    Tracks of one length are triangulated together (a stacked DLT); a track whose every observation then
    reprojects within the limit, in front of its cameras and under the minimum angle, is kept as is, the others
    go through :func:`~darkside.localize.geometry.triangulate_track` one by one (the same rule, dropping their worst
    observation): the same rule, vectorised. ``cache`` (track -> result) spares the queries of one job the tracks
    their retrieved images share: a track's point depends on nothing else.
    """
    cache = {} if cache is None else cache
    todo = [n for n, t in enumerate(tracks) if tuple(t) not in cache]
    used = {i for n in todo for i, _ in tracks[n]}
    proj = {iid: views_by_id[iid].projection for iid in used}
    centers = {iid: views_by_id[iid].center for iid in used}
    by_length: dict[int, list[int]] = {}
    for n in todo:
        by_length.setdefault(len(tracks[n]), []).append(n)
    for length, idx in by_length.items():
        P = np.stack([np.stack([proj[i] for i, _ in tracks[n]]) for n in idx])  # (T, L, 3, 4)
        x = np.stack([np.stack([views_by_id[i].keypoints[k] for i, k in tracks[n]]) for n in idx])  # (T, L, 2)
        C = np.stack([np.stack([centers[i] for i, _ in tracks[n]]) for n in idx])  # (T, L, 3)
        X = triangulate_many(P, x)
        ok = all_within(P, X, x, C, s)
        for row, n in enumerate(idx):
            if ok[row]:
                cache[tuple(tracks[n])] = (X[row], np.ones(length, dtype=bool))
            else:
                point, keep = triangulate_track(P[row], x[row], C[row], s)
                cache[tuple(tracks[n])] = None if point is None else (point, keep)
    result = [cache[tuple(t)] for t in tracks]
    points: list[np.ndarray] = []
    obs: dict[str, dict[int, int]] = {}
    for track, res in zip(tracks, result, strict=True):
        if res is None:
            continue
        for (iid, k), kept in zip(track, res[1], strict=True):
            if kept:
                obs.setdefault(iid, {})[k] = len(points)
        points.append(res[0])
    return PointCloud(np.array(points, dtype=np.float64).reshape(-1, 3), obs)


def local_cloud(retrieved: Sequence[str], matcher: Matcher, s: TriangulationSettings,
                cache: dict[tuple, tuple[np.ndarray, np.ndarray] | None] | None = None) -> PointCloud:
    """Paradigm 2a's points: the tracks among the retrieved mapping images alone, triangulated (``cache``: see
    :func:`triangulate_tracks`)."""
    pairs = {(a, b): matcher.mapping(a, b) for i, a in enumerate(retrieved) for b in retrieved[i + 1:]}
    return triangulate_tracks(build_tracks(retrieved, pairs), matcher.views, s, cache)


@dataclass(frozen=True)
class Registration:
    """One query's result: pose (None: not localized), correspondences tried and RANSAC inliers."""

    pose: np.ndarray | None
    correspondences: int
    inliers: int


def register(query: View, matches: Mapping[str, np.ndarray], cloud: PointCloud, s: PoseSettings,
             seed: int = 0) -> Registration:
    """The query's pose from its matches (retrieved image -> (m, 2), :meth:`Matcher.query`, computed once for
    both paradigms) to the retrieved images' observed points (2D-3D, PnP-RANSAC)."""
    pairs: set[tuple[int, int]] = set()
    for b, m in matches.items():
        seen = cloud.observations.get(b)
        if not seen:
            continue
        for i, j in m:
            p = seen.get(int(j))
            if p is not None:
                pairs.add((int(i), p))
    if not pairs:
        return Registration(None, 0, 0)
    corr = np.array(sorted(pairs), dtype=np.int64)
    pose, inliers = estimate_pose(query.keypoints[corr[:, 0]], cloud.points[corr[:, 1]], query.camera.K, s, seed)
    return Registration(pose, len(corr), int(inliers.sum()))
