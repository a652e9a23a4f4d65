"""Points from posed images (tracks of matches, triangulated with known poses) and queries registered to them.

Paradigm 2a (local SfM) triangulates, per query, the matches among its top-k retrieved mapping images; paradigm
2b (global map) triangulates the whole mapping set once (:mod:`darkside.localize.global_map`) and uses the
points its top-k images observe. Both then register the query the same way, :func:`register`.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from darkside.data.cameras import Intrinsics, parse_camera
from darkside.data.manifest import ImageRecord
from darkside.errors import DarksideError
from darkside.geometry import camera_centers
from darkside.localize.features import KeypointSet
from darkside.localize.geometry import (
    PoseSettings,
    TriangulationSettings,
    estimate_pose,
    projection_matrix,
    triangulate_batch,
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
    """Connected components of matched keypoints, each a track of (image, keypoint), sorted.

    A track holding two keypoints of one image is inconsistent (a match chain went wrong) and is dropped, as
    COLMAP's track builder would split it. Tracks are ordered by their first observation in ``order``.
    """
    rank = {iid: i for i, iid in enumerate(order)}
    ends = [(rank[a], rank[b], np.asarray(m, dtype=np.int64).reshape(-1, 2)) for (a, b), m in pair_matches.items()]
    ends = [e for e in ends if len(e[2])]
    if not ends:
        return []
    stride = 1 + max(int(m.max()) for _, _, m in ends)
    # a node is (image rank, keypoint) coded as rank * stride + keypoint, so codes sort as the nodes do
    src = np.concatenate([ra * stride + m[:, 0] for ra, _, m in ends])
    dst = np.concatenate([rb * stride + m[:, 1] for _, rb, m in ends])
    codes, inverse = np.unique(np.concatenate([src, dst]), return_inverse=True)
    edges = inverse.reshape(2, -1)
    graph = coo_matrix((np.ones(edges.shape[1], dtype=np.int8), (edges[0], edges[1])), shape=(len(codes),) * 2)
    _, label = connected_components(graph, directed=False)
    by_track = np.argsort(label, kind="stable")  # within a track, nodes stay sorted
    label, codes = label[by_track], codes[by_track]
    image, keypoint = np.divmod(codes, stride)
    same = label[1:] == label[:-1]
    inconsistent_set = set(label[1:][same & (image[1:] == image[:-1])].tolist())
    starts = np.flatnonzero(np.r_[True, ~same])
    tracks = [[(order[i], int(k)) for i, k in zip(image[s:e].tolist(), keypoint[s:e].tolist(), strict=True)]
              for s, e in itertools.pairwise([*starts.tolist(), len(label)])
              if label[s] not in inconsistent_set]
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

    Tracks of one length are triangulated together (:func:`~darkside.localize.geometry.triangulate_batch`: each
    drops its worst observation while one is off). ``cache`` (track -> result) spares the queries of one job the tracks
    their retrieved images share: a track's point depends on nothing else.
    """
    cache = {} if cache is None else cache
    todo = [n for n, t in enumerate(tracks) if tuple(t) not in cache]
    ids = sorted({i for n in todo for i, _ in tracks[n]})
    if ids:
        slot = {iid: v for v, iid in enumerate(ids)}
        proj = np.stack([views_by_id[i].projection for i in ids])  # (V, 3, 4)
        centers = np.stack([views_by_id[i].center for i in ids])  # (V, 3)
        keypoints = np.concatenate([views_by_id[i].keypoints for i in ids])
        first = np.cumsum([0] + [len(views_by_id[i].keypoints) for i in ids[:-1]])
    by_length: dict[int, list[int]] = {}
    for n in todo:
        by_length.setdefault(len(tracks[n]), []).append(n)
    for idx in by_length.values():
        view = np.array([[slot[i] for i, _ in tracks[n]] for n in idx], dtype=np.int64)  # (T, L)
        kp = np.array([[k for _, k in tracks[n]] for n in idx], dtype=np.int64)
        X, keep, ok = triangulate_batch(proj[view], keypoints[first[view] + kp], centers[view], s)
        for row, n in enumerate(idx):
            cache[tuple(tracks[n])] = (X[row], keep[row]) if ok[row] else None
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
