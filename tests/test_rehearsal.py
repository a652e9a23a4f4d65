"""The paper preset's rehearsal (benchmarks/rehearse_paper.py): its independent Tokyo check on hand-computed cases
(an AP interval per query that a tie between a positive and a negative widens, and nothing else does), and, in
every CI run, the whole rehearsal: every dataset and weight file downloaded from the loopback mirror in its native
format, verified, extracted and imported, every generator family trained, every recipe fine-tuned (the N/D ones on
the N/D pairs), whitened, extracted and scored, every table written, and each global-descriptor model's per-query
Tokyo APs checked independently."""

import json
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml
from conftest import load_benchmark


@pytest.fixture(scope="module")
def rehearsal():
    return load_benchmark("rehearse_paper")


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


def test_two_runs_compare_on_everything_but_the_measured_times(rehearsal, tmp_path):
    head = "table,column,ours,note,wall_clock"
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(f"{head}\ntable8,Train (h),0.0386,\"measured on cpu, 0.1 images/s\",True\ntable8,Epochs,2.0,,False\n")
    b.write_text(f"{head}\ntable8,Train (h),0.0348,\"measured on cpu, 0.2 images/s\",True\ntable8,Epochs,2.0,,False\n")
    assert rehearsal.reproducible_lines(a) == rehearsal.reproducible_lines(b) == [head, "table8,Epochs,2.0,,False"]
    b.write_text(f"{head}\ntable8,Train (h),0.0348,m,True\ntable8,Epochs,3.0,,False\n")
    assert rehearsal.reproducible_lines(a) != rehearsal.reproducible_lines(b)


def test_every_rehearsal_builds_the_same_edge_detector_weights():
    """Two rehearsals are compared table for table (the kill test), so their fixtures must be the same files."""
    import native_fixtures as nf
    import torch

    for make in (nf.hed_sniklaus_state, nf.rcf_published_state):
        first, again = make(width=0.0625), make(width=0.0625)
        assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)


#: the default target's tables: Dark Side's, MDUIT's and DaCo's, and the suite's own two
TABLES = {"table1", "table3", "table4", "table5", "table6", "table7", "table8", "mduit-table1", "findings",
          "instrument", *(f"daco-table{i}" for i in range(1, 7))}


def _inner_product_models(repo) -> set[str]:
    """The models scored on Tokyo from global descriptors (those with local features rank by ASMK; the chance
    row has no descriptor file)."""
    found = set()
    for metrics in (repo / "results/metrics").glob("*/tokyo247.json"):
        h5 = repo / "results/descriptors" / metrics.parent.name / "tokyo247.h5"
        if h5.is_file():
            with h5py.File(h5, "r") as f:
                if "local" not in f:
                    found.add(metrics.parent.name)
    return found


@pytest.mark.slow
def test_the_paper_preset_rehearsed_whole(repo_root, tmp_path):
    work = tmp_path / "rehearsal"
    proc = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "rehearse_paper.py"), "--work", str(work),
                           "--cores", "2"], capture_output=True, text=True, timeout=3600)
    log = work / "snakemake.log"
    assert proc.returncode == 0, (proc.stdout[-3000:], log.read_text()[-3000:] if log.is_file() else "")
    repo = work / "repo"
    checked = re.search(r"independent numpy computation: (\d+) models, (\d+) queries outside", proc.stdout)
    assert checked and checked[2] == "0", proc.stdout[-3000:]
    # every global-descriptor model scored on Tokyo was checked, the N/D recipes among them
    scored = _inner_product_models(repo)
    assert int(checked[1]) == len(scored) and {"vgg16-gem-nd", "vgg16-clahe-nd-cd", "vgg16-cyclegan-cd-nd"} <= scored
    # the N/D recipe's anchors include night images of the N/D pairs (sfm120k-nd, the paper's role for them)
    epochs = json.loads((repo / "results/models/vgg16-gem-nd/training_log.json").read_text())["epochs"]
    assert re.search(r"\b[1-9]\d* N/D night anchors", epochs[0]["anchors"]), epochs[0]["anchors"]
    assert {p.stem for p in (repo / "results/tables").glob("*.csv")} == TABLES
    # every family of the paper preset trained; a finished job keeps no checkpoint
    gan = yaml.safe_load((repo / "params.yaml").read_text())["presets"]["paper"]["gan"]
    assert {p.parent.name for p in (repo / "results/gans").glob("*/log.json")} == {*gan["families"], *gan["variants"]}
    assert not list((repo / "results").rglob("checkpoint*.pt"))
