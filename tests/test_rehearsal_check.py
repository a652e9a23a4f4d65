"""The rehearsal's independent Tokyo check (benchmarks/rehearse_paper.py) on hand-computed cases: an AP interval
per query that a tie between a positive and a negative widens, and nothing else does."""

import importlib.util
import json

import h5py
import numpy as np
import pytest


@pytest.fixture(scope="module")
def rehearsal(repo_root):
    spec = importlib.util.spec_from_file_location("rehearse_paper", repo_root / "benchmarks" / "rehearse_paper.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _files(tmp_path, negative):
    h5 = tmp_path / "d.h5"
    with h5py.File(h5, "w") as f:
        f["image_ids"] = np.array([b"q", b"p", b"n"])
        f["descriptors"] = np.array([[1.0, 0.0], [0.6, 0.8], negative])
    gt = tmp_path / "groundtruth.json"
    gt.write_text(json.dumps({"queries": [{"query": "q", "positives": ["p"], "junk": ["q"]}]}))
    return h5, gt


def test_a_negative_tied_with_the_positive_spans_both_orders(rehearsal, tmp_path):
    # q . p = 0.6 = q . n: p first gives AP 1; p second gives (0 / 1 + 1 / 2) / 2 = 0.25
    assert rehearsal.tokyo_ap_bounds(*_files(tmp_path, [0.6, 0.8])) == {"q": (25.0, 100.0)}


def test_a_negative_ranked_above_the_positive_is_one_value(rehearsal, tmp_path):
    assert rehearsal.tokyo_ap_bounds(*_files(tmp_path, [0.8, 0.6])) == {"q": (25.0, 25.0)}
