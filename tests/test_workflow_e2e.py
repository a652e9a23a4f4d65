"""The README's main command, end to end: the whole mini DAG in a scratch folder, then a second run
that finds nothing to do. Slow (a few minutes on 2 cores); it is the suite's acceptance test."""

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


# A safety net, not a performance test: the one-seed mini suite takes about 20 min on 2 CPU cores,
# so a slower CI machine must not time out before the suite's own checks run.
SUITE_TIMEOUT_S = 3600


def _run(repo_root: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(repo_root / "Snakefile"), "-d", str(workdir),
                           "--cores", "2", *args], env=env, capture_output=True, text=True,
                          timeout=SUITE_TIMEOUT_S)


@pytest.fixture(scope="module")
def suite(repo_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("suite")
    shutil.copy(repo_root / "params.yaml", work / "params.yaml")
    t0 = time.perf_counter()
    proc = _run(repo_root, work)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-5000:]
    return work, wall


def test_tables_and_figures_written(suite):
    work, wall = suite
    for n in (1, 3, 4, 5, 6, 7, 8):
        for ext in ("csv", "md", "tex"):
            assert (work / "results" / "tables" / f"table{n}.{ext}").stat().st_size > 0
    assert (work / "results" / "figures" / "synthetic-contact-sheet.png").stat().st_size > 0
    rows = list(csv.DictReader((work / "results" / "tables" / "table1.csv").open()))
    ours = [r for r in rows if r["recipe"] == "offtheshelf" and r["ours"]]
    assert {r["block"] for r in ours} == {"vgg16", "resnet101"}
    for r in ours:
        assert float(r["ci_low"]) <= float(r["ours"]) <= float(r["ci_high"])
    print(f"mini suite wall time: {wall:.0f} s")


def test_generators_edges_and_table8(suite):
    work, _ = suite
    for name in ("translations", "edges"):
        assert (work / "results" / "figures" / f"{name}.png").stat().st_size > 0
    for kind in ("hed", "rcf"):
        report = json.loads((work / "results" / "metrics" / "edges" / f"{kind}.json").read_text())
        assert set(report["scores"]["night"]) == {kind.upper(), kind.upper() + "^N"}
    rows = list(csv.DictReader((work / "results" / "tables" / "table8.csv").open()))
    measured = {r["recipe"] for r in rows if r["ours"]}
    assert measured == {"cyclegan", "hedgan", "hedngan", "rcfngan"}


def test_metrics_have_per_query_values(suite):
    work, _ = suite
    m = json.loads((work / "results/metrics/vgg16-offtheshelf/synth-tokyo.json").read_text())
    assert m["protocol"] == "tokyo" and len(m["per_query"]["mAP"]["ap"]) == m["n_queries"]
    assert set(m["breakdown"]) >= {"day->night", "night->day", "day->sunset"}


def test_second_run_does_nothing(repo_root, suite):
    work, _ = suite
    t0 = time.perf_counter()
    proc = _run(repo_root, work)
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert time.perf_counter() - t0 < 60


def _overlay(work: Path, name: str, overlay: dict) -> Path:
    import yaml

    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return path


def _planned(out: str) -> list[str]:
    import re

    return [m.group(1) for m in re.finditer(r"^(?:local)?rule (\w+):", out, re.M) if m.group(1) != "all"]


def test_an_overlay_reruns_what_reads_it_and_the_job_computes_with_it(repo_root, suite):
    """On the built suite: a student_lr overlay plans HED^N GAN's training and what follows it, not
    CycleGAN's; a bootstrap_samples overlay plans the tables only, and running it changes the tables'
    intervals (the job computes with the overlay's value) but no mean."""
    work, _ = suite
    lr = _overlay(work, "lr", {"presets": {"mini": {"gan": {"families": {"hedngan": {"student_lr": 2e-5}}}}}})
    proc = _run(repo_root, work, "-n", "--configfile", str(lr))
    planned = _planned(proc.stdout)
    assert proc.returncode == 0 and planned.count("train_gan") == 1 and "family=hedngan" in proc.stdout
    assert "family=cyclegan" not in proc.stdout and "pretrain_edges" not in planned

    before = list(csv.DictReader((work / "results" / "tables" / "table1.csv").open()))
    boot = _overlay(work, "boot", {"presets": {"mini": {"evaluate": {"bootstrap_samples": 2000}}}})
    proc = _run(repo_root, work, "-n", "--configfile", str(boot))
    assert _planned(proc.stdout) == ["tables"]
    assert _run(repo_root, work, "--configfile", str(boot)).returncode == 0
    after = list(csv.DictReader((work / "results" / "tables" / "table1.csv").open()))
    assert [r["ours"] for r in after] == [r["ours"] for r in before]
    assert [r["ci_low"] for r in after if r["ours"]] != [r["ci_low"] for r in before if r["ours"]]
    assert _planned(_run(repo_root, work, "-n", "--configfile", str(boot)).stdout) == []  # done: nothing left
