"""`darkside profile`: the rules' benchmark files summed per rule (known values, bad input)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from darkside.cli import main
from darkside.errors import DarksideError
from darkside.profiling import format_profile, per_rule, read_benchmarks, wall_span

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _bench(root: Path, rule: str, job: str, seconds: float, cpu: str, rss: str, end: float) -> None:
    path = root / rule / f"{job}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")
    os.utime(path, (end, end))


@pytest.fixture
def bench_root(tmp_path: Path) -> Path:
    root = tmp_path / "benchmarks"
    _bench(root, "finetune", "vgg16-gem", 60.0, "58.5", "900.0", end=1000.0)
    _bench(root, "finetune", "vgg16-clahe-c", 40.0, "39.5", "850.0", end=1050.0)
    _bench(root, "score", "vgg16-gem", 20.0, "NA", "NA", end=1060.0)  # too short for psutil: NA
    return root


def test_per_rule_sums_jobs_and_shares(bench_root):
    jobs = read_benchmarks(bench_root)
    assert [(j.rule, j.job) for j in jobs] == [("finetune", "vgg16-clahe-c"), ("finetune", "vgg16-gem"),
                                               ("score", "vgg16-gem")]
    rows = per_rule(jobs)
    assert [r.rule for r in rows] == ["finetune", "score"]
    assert rows[0].jobs == 2 and rows[0].seconds == 100.0 and rows[0].cpu_seconds == 98.0
    assert rows[0].share == pytest.approx(100 * 100 / 120) and rows[1].share == pytest.approx(100 * 20 / 120)
    assert rows[0].max_rss_mb == 900.0 and rows[1].cpu_seconds == 0.0
    # first start: 1000 - 60 = 940; last end 1060
    assert wall_span(jobs) == pytest.approx(120.0)
    text = format_profile(jobs)
    assert text.splitlines()[1].split()[:4] == ["finetune", "2", "100.0", "83.3%"]
    assert "wall span (first start to last end): 120.0 s" in text


def test_nested_benchmark_files_are_read(bench_root):
    # a rule with two wildcards writes <rule>/<learner>/<dataset>.tsv: rule = first folder, job = the rest
    _bench(bench_root, "train_daco", "resnet50-daco/synth-daco-night", 30.0, "29.0", "700.0", end=1100.0)
    _bench(bench_root, "train_daco", "resnet50-simclr/synth-daco-night", 20.0, "19.0", "650.0", end=1120.0)
    jobs = read_benchmarks(bench_root)
    daco = [j for j in jobs if j.rule == "train_daco"]
    assert [j.job for j in daco] == ["resnet50-daco/synth-daco-night", "resnet50-simclr/synth-daco-night"]
    row = next(r for r in per_rule(jobs) if r.rule == "train_daco")
    assert row.jobs == 2 and row.seconds == 50.0


def test_profile_verb_prints_and_writes_json(bench_root, tmp_path, capsys):
    import json

    out = tmp_path / "profile.json"
    assert main(["profile", "--root", str(bench_root), "--out", str(out)]) == 0
    assert "finetune" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["wall_span_s"] == pytest.approx(120.0) and data["rules"][0]["rule"] == "finetune"


def test_bad_benchmark_files_are_one_line_errors(tmp_path):
    with pytest.raises(DarksideError, match="no benchmark folder"):
        read_benchmarks(tmp_path / "absent")
    bad = tmp_path / "b" / "finetune" / "x.tsv"
    bad.parent.mkdir(parents=True)
    bad.write_text("seconds\n1\n")
    with pytest.raises(DarksideError, match=r"x\.tsv: not a Snakemake benchmark file"):
        read_benchmarks(tmp_path / "b")
    bad.write_text(HEADER + "soon\t0\t1\t1\t1\t1\t0\t0\t0\t1\n")
    with pytest.raises(DarksideError, match="unreadable duration 'soon'"):
        read_benchmarks(tmp_path / "b")
