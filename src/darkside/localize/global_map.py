"""Paradigm 2b's global map: every mapping image matched with its pose neighbours, tracks triangulated once.

kapture's benchmark builds the map from a published list of mapping pairs; this suite pairs each mapping image with
its ``neighbours`` nearest mapping images by camera centre (poses are known, so no retrieval is needed to find
overlapping views; the choice is recorded here because the list kapture used is not derived in its paper). The map
does not depend on the retrieval model: one per dataset, shared by every model's paradigm-2b job.

File layout (plain h5py)::

    /points        float64 (M, 3)   triangulated world points
    /observations  int64 (O, 3)     (image row in the local-feature file, keypoint, point)
    /pairs         int64 (P, 2)     mapping pairs matched (image rows, first < second)
    /match_offsets int64 (P + 1,)   pair p owns rows match_offsets[p]:match_offsets[p+1] of /matches
    /matches       int64 (sum, 2)   verified keypoint matches of each pair (they seed the 2a jobs' caches)
    attrs: dataset, settings (JSON), darkside_version
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from darkside import __version__
from darkside.atomic import atomic_path
from darkside.errors import DarksideError
from darkside.localize.features import KeypointSet
from darkside.localize.geometry import TriangulationSettings
from darkside.localize.sfm import Matcher, Pair, PointCloud, View, build_tracks, triangulate_tracks
from darkside.settings import setting


@dataclass(frozen=True)
class GlobalMapSettings:
    """``localize.global_map``: which mapping pairs are matched for the global map."""

    neighbours: int = setting("each mapping image is matched with this many nearest mapping images by camera "
                              "centre (kapture: a published mapping pairs list)", ge=1)


def neighbour_pairs(views_by_id: Mapping[str, View], order: list[str], k: int) -> list[Pair]:
    """Each image with its ``k`` nearest by camera centre (ties: manifest order), as sorted unique pairs."""
    centers = np.stack([views_by_id[i].center for i in order])
    d = np.linalg.norm(centers[:, None] - centers[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    pairs: set[tuple[int, int]] = set()
    for a in range(len(order)):
        for b in np.argsort(d[a], kind="stable")[: min(k, len(order) - 1)]:
            pairs.add((min(a, int(b)), max(a, int(b))))
    return [(order[a], order[b]) for a, b in sorted(pairs)]


def build_global_map(mapping: Mapping[str, View], order: list[str], matcher: Matcher, tri: TriangulationSettings,
                     s: GlobalMapSettings, progress: Callable | None = None) -> tuple[PointCloud, list[Pair]]:
    """The map's points and the pairs it matched (``matcher`` keeps their matches)."""
    pairs = neighbour_pairs(mapping, order, s.neighbours)
    matches = {}
    for n, (a, b) in enumerate(pairs):
        matches[(a, b)] = matcher.mapping(a, b)
        if progress is not None:
            progress(n + 1, len(pairs))
    return triangulate_tracks(build_tracks(order, matches), mapping, tri), pairs


def write_global_map(path: str | Path, cloud: PointCloud, pairs: list[Pair], matcher: Matcher,
                     features: KeypointSet, dataset: str, settings: dict) -> Path:
    """The map file (layout in the module docstring); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    obs = [(features.index(iid), k, p) for iid, kp in cloud.observations.items() for k, p in kp.items()]
    obs.sort()
    blocks = [matcher.mapping(a, b) for a, b in pairs]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["points"] = cloud.points
        f["observations"] = np.array(obs, dtype=np.int64).reshape(-1, 3)
        f["pairs"] = np.array([(features.index(a), features.index(b)) for a, b in pairs], dtype=np.int64).reshape(-1, 2)
        f["match_offsets"] = np.concatenate([[0], np.cumsum([len(m) for m in blocks])]).astype(np.int64)
        f["matches"] = (np.concatenate(blocks) if blocks else np.zeros((0, 2))).astype(np.int64).reshape(-1, 2)
        f.attrs.update({"dataset": dataset, "settings": json.dumps(settings, sort_keys=True),
                        "darkside_version": __version__})
    return path


def read_global_map(path: str | Path, features: KeypointSet) -> tuple[PointCloud, dict[Pair, np.ndarray]]:
    """The map's points and observations, and its pairs' matches by image id (one-line errors naming the file)."""
    p = Path(path)
    if not p.is_file():
        raise DarksideError(f"{p}: global map missing (run `darkside global-map`)")
    try:
        with h5py.File(p, "r") as f:
            points, obs = f["points"][()], f["observations"][()]
            pairs, offsets, matches = f["pairs"][()], f["match_offsets"][()], f["matches"][()]
    except (OSError, KeyError) as exc:
        raise DarksideError(f"{p}: not a global-map file ({exc})") from None
    n = len(features.image_ids)
    if (len(obs) and (obs[:, 0].max() >= n or obs[:, 2].max() >= len(points))) or len(offsets) != len(pairs) + 1:
        raise DarksideError(f"{p}: does not belong to these local features (indices out of range)")
    observations: dict[str, dict[int, int]] = {}
    for i, k, pt in obs:
        observations.setdefault(features.image_ids[i], {})[int(k)] = int(pt)
    known = {(features.image_ids[a], features.image_ids[b]): matches[offsets[j]:offsets[j + 1]]
             for j, (a, b) in enumerate(pairs)}
    return PointCloud(points, observations), known


def settings_record(*sections: object) -> dict:
    """The settings a map was built with, for its attributes."""
    return {type(s).__name__: dataclasses.asdict(s) for s in sections}
