"""The paper preset's rehearsal (benchmarks/rehearse_paper.py): its independent Tokyo check on hand-computed cases
(an AP interval per query that a tie between a positive and a negative widens, and nothing else does), and, in
every CI run, the rehearsal itself to one N/D recipe's Tokyo metrics: every dataset and weight file downloaded
from the loopback mirror in its native format, verified, extracted and imported, the paper's `gem-nd` fine-tuned on
the N/D pairs, whitened, extracted and scored, and its per-query Tokyo APs checked independently. The whole DAG
(every family and recipe, the tables) is the script's default target, too long for CI (its time is in the README)."""

import importlib.util
import json
import re
import subprocess
import sys

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


@pytest.mark.slow
def test_the_paper_preset_rehearsed_to_an_nd_recipes_tokyo_metrics(repo_root, tmp_path):
    target = "results/metrics/vgg16-gem-nd/tokyo247.json"
    proc = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "rehearse_paper.py"), "--work",
                           str(tmp_path / "rehearsal"), "--cores", "1", "--targets", target],
                          capture_output=True, text=True, timeout=1800)
    log = tmp_path / "rehearsal" / "snakemake.log"
    assert proc.returncode == 0, (proc.stdout[-3000:], log.read_text()[-3000:] if log.is_file() else "")
    repo = tmp_path / "rehearsal" / "repo"
    assert "vgg16-gem-nd" in proc.stdout and "queries outside their interval: 0/" in proc.stdout, proc.stdout[-3000:]
    # the N/D recipe's anchors include night images of the N/D pairs (sfm120k-nd, the paper's role for them)
    epochs = json.loads((repo / "results/models/vgg16-gem-nd/training_log.json").read_text())["epochs"]
    assert re.search(r"\b[1-9]\d* N/D night anchors", epochs[0]["anchors"]), epochs[0]["anchors"]
    body = json.loads((repo / target).read_text())
    assert 0.0 < body["metrics"]["mAP"] <= 100.0
