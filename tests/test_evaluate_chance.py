"""Chance levels: random unit descriptors through the dataset's own scorer, against the closed form."""

import json

import numpy as np
import pytest

from darkside.config import ScoreSettings
from darkside.data.manifest import GroundTruth, ImageRecord, Query, write_dataset
from darkside.errors import DarksideError
from darkside.evaluate.chance import chance_levels, random_descriptors, write_chance_levels

SETTINGS = ScoreSettings(chunk_size=16, recall_ks=(1,), pairs_topk=2,
                         localization_thresholds=((0.25, 2.0), (0.5, 5.0), (5.0, 10.0)))


def _tokyo(tmp_path, scenes=40):
    recs, queries = [], []
    for s in range(scenes):
        ids = [f"{s}-{c}" for c in ("day", "sunset", "night")]
        for iid, c in zip(ids, ("day", "sunset", "night"), strict=True):
            recs.append(ImageRecord(f"{iid}.png", iid, "test", c, f"c{s}", f"c{s}", 8, 8, None))
        queries += [Query(i, positives=[o for o in ids if o != i], junk=[i]) for i in ids]
    return write_dataset(tmp_path / "tokyo", "toy-tokyo", recs, GroundTruth("tokyo", queries))


def test_random_descriptors_are_unit_rows():
    x = random_descriptors(["a", "b", "c"], 7, np.random.default_rng(0))
    assert x.shape == (3, 7) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)


def test_one_positive_among_n_has_the_harmonic_chance_ap(tmp_path):
    root = _tokyo(tmp_path)
    res = chance_levels(root, SETTINGS, draws=200, dim=16, seed=0)
    # a Table 6 cell: one positive among n = 120 - 2 candidates (the query and its third image are junk),
    # at a uniformly random rank r; cirtorch's trapezoidal AP is 1 at r = 1 and 1 / (2 r) after, so its
    # mean is (1 + H_n) / (2 n)
    n = 118
    expected = 100 * (1 + sum(1 / k for k in range(1, n + 1))) / (2 * n)
    for cell in ("day->night", "night->day", "sunset->night"):
        assert res["breakdown"][cell] == pytest.approx(expected, abs=0.5)
    # two positives among 119: the headline mAP sits above a cell's chance but far below 10
    assert expected < res["metrics"]["mAP"] < 10
    assert res["draws"] == 200 and res["dim"] == 16 and res["spread"]["breakdown.day->night"] > 0
    # deterministic for a seed
    assert chance_levels(root, SETTINGS, draws=3, seed=1) == chance_levels(root, SETTINGS, draws=3, seed=1)


def test_written_file_and_bad_arguments(tmp_path):
    root = _tokyo(tmp_path, scenes=4)
    out = write_chance_levels(root, SETTINGS, tmp_path / "chance" / "toy.json", draws=2)
    assert json.loads(out.read_text())["protocol"] == "tokyo"
    with pytest.raises(DarksideError, match="draws and dim must be >= 1"):
        chance_levels(root, SETTINGS, draws=0)
