"""What reruns after a parameter change, by Snakemake's and DVC's own change detection: a job (stage) reruns
when a value it reads changes, and only then.

A built suite is stood in for by placeholder files for every input and output of the mini DAG, recorded as
up to date by ``snakemake --touch`` (which stores each job's params as a real run does) and ``dvc commit``
(which stores each stage's params in dvc.lock). Then the same change is made as a Snakemake overlay and in
params.yaml for DVC, and both are asked what changed.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def _run(*args: str, cwd: Path) -> str:
    proc = subprocess.run(list(args), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built(repo_root, tmp_path_factory):
    """A copy of the project whose every DAG file exists and is recorded as built by Snakemake and DVC."""
    from darkside.orchestration import snakemake_jobs

    work = tmp_path_factory.mktemp("built")
    for name in ("Snakefile", "params.yaml", "dvc.yaml"):
        shutil.copy(repo_root / name, work / name)
    shutil.copytree(repo_root / "workflow", work / "workflow", symlinks=True)
    shutil.copytree(repo_root / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    jobs = snakemake_jobs(work / "Snakefile", work)
    folders = {path for job in jobs for path, is_dir in job["output"] if is_dir}  # a job's folder, another's input
    for job in jobs:
        for path in job["input"]:
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).mkdir(exist_ok=True) if path in folders else (work / path).touch()
        for path, is_dir in job["output"]:
            (work / path).mkdir(parents=True, exist_ok=True) if is_dir else (work / path).parent.mkdir(
                parents=True, exist_ok=True)
            if not is_dir:
                (work / path).touch()
    _run(sys.executable, "-m", "snakemake", "--touch", "--cores", "1", "--quiet", cwd=work)
    _run("dvc", "init", "--no-scm", "-q", cwd=work)
    _run("dvc", "commit", "-f", "-q", cwd=work)
    return work


def _snakemake_changes(work: Path, overlay: dict) -> tuple[set[str], set[str]]:
    """(jobs whose params changed, every job that would run) of a dry run with ``overlay``."""
    (work / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    out = _run(sys.executable, "-m", "snakemake", "-n", "--configfile", "overlay.yaml", cwd=work)
    jobs: list[dict] = []
    for line in out.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line)
        if m:
            jobs.append({"rule": m.group(1), "wildcards": [], "params_changed": False})
        elif jobs and line.strip().startswith("wildcards:"):
            jobs[-1]["wildcards"] = [w.split("=", 1)[1] for w in line.split(":", 1)[1].strip().split(", ")]
        elif jobs and "Params have changed" in line:
            jobs[-1]["params_changed"] = True
    names = {"_".join([j["rule"], *j["wildcards"]]): j["params_changed"] for j in jobs if j["rule"] != "all"}
    changed, runs = {n for n, c in names.items() if c}, set(names)
    return changed, runs


def _dvc_changes(work: Path, change) -> set[str]:
    params = yaml.safe_load((work / "params.yaml").read_text())
    saved = (work / "params.yaml").read_text()
    change(params["presets"]["mini"])
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        status = json.loads(_run("dvc", "status", "--json", cwd=work).splitlines()[-1])
    finally:
        (work / "params.yaml").write_text(saved)
    return {stage for stage, entries in status.items()
            if any("params.yaml" in e.get("changed deps", {}) for e in entries if isinstance(e, dict))}


# The report's settings page shows (so reads) every setting: DVC reruns it on any change. In Snakemake it would
# too, but `snakemake --touch` records no params for a job without inputs (report_settings), so on the touched
# stand-in suite Snakemake cannot see it; each test takes it out of the DVC side and checks it is there.
SETTINGS_PAGE = "report_settings"


def _dvc_changes_but_the_settings_page(work: Path, change) -> set[str]:
    stages = _dvc_changes(work, change)
    assert SETTINGS_PAGE in stages
    return stages - {SETTINGS_PAGE}


def test_bootstrap_samples_reruns_only_the_tables(built):
    changed, runs = _snakemake_changes(built, {"presets": {"mini": {"evaluate": {"bootstrap_samples": 2000}}}})
    assert changed == {"tables"} and runs == {"tables", "report_tables"}  # the report's table pages follow
    assert _dvc_changes_but_the_settings_page(built, lambda m: m["evaluate"].update(bootstrap_samples=2000)) == {
        "tables"}


def test_hedngan_student_lr_reruns_hedngan_and_what_follows_not_cyclegan(built):
    changed, runs = _snakemake_changes(built, {"presets": {"mini": {"gan": {"families": {"hedngan": {
        "student_lr": 2e-5}}}}}})
    assert changed == {"train_gan_hedngan"}
    assert {"train_gan_hedngan", "finetune_vgg16_hedngan-cd", "finetune_resnet101_hedngan-cd",
            "edge_quality_hed", "figure_translations", "figure_edges", "tables"} <= runs
    assert not {"train_gan_cyclegan", "train_gan_hedgan", "pretrain_edges_hed", "pretrain_edges_rcf",
                "finetune_vgg16_cyclegan-cd", "finetune_vgg16_clahe-cd"} & runs
    assert _dvc_changes_but_the_settings_page(
        built, lambda m: m["gan"]["families"]["hedngan"].update(student_lr=2e-5)) == changed


def test_a_margin_concerns_only_its_backbones_fine_tunes(built):
    changed, _ = _snakemake_changes(built, {"presets": {"mini": {"finetune": {"margins": {"resnet101": 0.8}}}}})
    recipes = yaml.safe_load((built / "params.yaml").read_text())["presets"]["mini"]["recipes"]["resnet101"]
    assert {"gem", "hedngan-cd", "cyclegan-cd"} <= set(recipes)
    assert changed == {f"finetune_resnet101_{r}" for r in recipes if r != "offtheshelf"}
    assert _dvc_changes_but_the_settings_page(
        built, lambda m: m["finetune"]["margins"].update(resnet101=0.8)) == changed
