"""benchmarks/seed_spread.py: the DAG's seed model names, per-seed matrices aligned by query id, and its rows (per-
seed mAP, their spread, the first seeds' query interval and the seeds-and-queries interval)."""

import json

import numpy as np
import pytest
from conftest import load_benchmark

from darkside.evaluate.bootstrap import paired_seed_query_ci


@pytest.fixture(scope="module")
def spread():
    return load_benchmark("seed_spread")


def _write(root, model, ds, ids, ap, key="medium"):
    (root / model).mkdir(parents=True, exist_ok=True)
    (root / model / f"{ds}.json").write_text(json.dumps({"per_query": {key: {"ids": ids, "ap": ap}}}))


def test_model_names_follow_the_dag(spread):
    assert spread.model_name("vgg16", "clahe-cd", 0, 0) == "vgg16-clahe-cd"
    assert spread.model_name("vgg16", "clahe-cd", 2, 0) == "vgg16-clahe-cd.seed2"
    assert spread.model_name("vgg16", "clahe-cd", 0, 1) == "vgg16-clahe-cd.seed0"


def test_seed_matrix_aligns_queries_by_id(spread, tmp_path):
    _write(tmp_path, "m", "d", ["a", "b", "c"], [10.0, 20.0, 30.0])
    _write(tmp_path, "m.seed1", "d", ["c", "a", "b"], [3.0, 1.0, None])
    ids, mat = spread.seed_matrix(tmp_path, ["m", "m.seed1"], "d")
    assert ids == ["a", "b", "c"]
    np.testing.assert_array_equal(mat, [[10.0, 20.0, 30.0], [1.0, np.nan, 3.0]])
    _write(tmp_path, "m.seed2", "d", ["a", "b"], [1.0, 2.0])
    with pytest.raises(SystemExit, match="'c' is missing"):
        spread.seed_matrix(tmp_path, ["m", "m.seed2"], "d")
    with pytest.raises(SystemExit, match="not scored"):
        spread.seed_matrix(tmp_path, ["m", "m.seed9"], "d")


def test_rows_carry_per_seed_values_and_both_intervals(spread, tmp_path):
    ids = [f"q{i}" for i in range(5)]
    ref = [[50.0, 40.0, 30.0, 20.0, 10.0], [52.0, 42.0, 32.0, 22.0, 12.0]]
    cur = [[45.0, 35.0, 25.0, 15.0, 5.0], [41.0, 31.0, 21.0, 11.0, 1.0]]
    for s in (0, 1):
        _write(tmp_path, spread.model_name("vgg16", "ref", s, 0), "d", ids, ref[s], key="mAP")
        _write(tmp_path, spread.model_name("vgg16", "new", s, 0), "d", ids, cur[s], key="mAP")
    rows = spread.spread(tmp_path, "vgg16", "ref", ["new"], [0, 1], 0, ["d"], 200)
    base, new = rows
    assert base["per_seed"] == [30.0, 32.0] and base["mean"] == 31.0 and "all_seeds" not in base
    assert new["per_seed"] == [25.0, 21.0] and new["sd"] == pytest.approx(2.83, abs=0.01)
    assert new["first_seed"] == [-5.0, -5.0, -5.0]  # the first seeds differ by 5 on every query
    expected = paired_seed_query_ci(np.array(cur), np.array(ref), 200, 0)
    assert new["all_seeds"] == [round(v, 2) for v in expected]
    lo, hi = new["all_seeds"][1:]
    assert new["all_seeds"][0] == -8.0 and -11.0 <= lo < -8.0 < hi <= -5.0  # seed pairs differ by 5, 7, 9 or 11
    assert "ref" in spread.report(rows, "ref").splitlines()[0]
