"""Tokyo 24/7 protocol: every image queries all, plus the Table 6 lighting breakdown.

The standard protocol uses the ground truth's ``ok``/``junk`` lists as given. The breakdown
(Dark Side Table 6) asks, for an ordered pair of lighting classes A->B, how well a class-A query
finds the class-B image of its own scene: that image is the only positive, and the rest of the
scene (the query itself and the image of the unused class C) is junk, i.e. removed from the
ranking, so a cell measures exactly one cross-illumination match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from darkside.evaluate.ap import MapResult, mean_average_precision

LIGHTING: tuple[str, ...] = ("day", "sunset", "night")
#: Table 6's column order: {day, sunset}, {sunset, night}, {day, night}, both directions each.
PAIRS: tuple[tuple[str, str], ...] = (
    ("day", "sunset"), ("sunset", "day"), ("sunset", "night"), ("night", "sunset"),
    ("day", "night"), ("night", "day"),
)


def pair_name(a: str, b: str) -> str:
    """Key of a breakdown cell, e.g. ``day->night``."""
    return f"{a}->{b}"


@dataclass(frozen=True)
class BreakdownCell:
    """Ground truth of one A->B cell: query db indices and per-query ok / junk db indices."""

    queries: np.ndarray
    ok: list[np.ndarray]
    junk: list[np.ndarray]


def breakdown_groundtruth(domains: Sequence[str], scenes: Sequence[str]) -> dict[str, BreakdownCell]:
    """The six A->B cells for a database where every image is also a query.

    Queries: images of class A. Positive: the scene's class-B image(s). Junk: every other image
    of the scene (the query itself, the unused class, and any further class-A image, which is
    neither a positive nor a negative). A query whose scene has no class-B image has no
    positive and is skipped (NaN), as cirtorch does.
    """
    if len(domains) != len(scenes):
        raise ValueError("domains and scenes must have one entry per image")
    members: dict[str, list[int]] = {}
    for i, s in enumerate(scenes):
        members.setdefault(s, []).append(i)
    cells: dict[str, BreakdownCell] = {}
    for a, b in PAIRS:
        qs = [i for i, d in enumerate(domains) if d == a]
        oks, junks = [], []
        for q in qs:
            scene = members[scenes[q]]
            oks.append(np.array([j for j in scene if domains[j] == b], dtype=np.int64))
            junks.append(np.array([j for j in scene if domains[j] != b], dtype=np.int64))
        cells[pair_name(a, b)] = BreakdownCell(np.array(qs, dtype=np.int64), oks, junks)
    return cells


def evaluate_tokyo(ok_ranks: Sequence[np.ndarray], junk_ranks: Sequence[np.ndarray]) -> MapResult:
    """mAP and per-query AP from per-query ranks of the ground truth's ok and junk items."""
    return mean_average_precision(ok_ranks, junk_ranks)
