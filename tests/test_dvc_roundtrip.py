"""The README's round trip between two members of a group, with a local folder as the DVC remote: one clone runs
`dvc repro` and `dvc push`, a fresh clone of the same commit runs `dvc pull` and `snakemake --touch`, and then
`dvc status` is clean and `snakemake -n` has nothing to do. On the mini DAG's first stages (the synthetic
benchmark and its chance levels: a prepared folder of images and the metric files), so that CI can afford it;
the whole suite's round trip is measured in the README."""

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import native_fixtures
import pytest

pytestmark = pytest.mark.slow

STAGE = "chance"
TARGETS = [f"results/metrics/chance/{d}.json" for d in ("synth-tokyo", "synth-roxford", "synth-rparis", "synth-aachen")]


def _sh(cwd: Path, *cmd: str) -> str:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(cwd / "src"),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, (cmd, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc.stdout + proc.stderr


def _committed_copy(root: Path, dest: Path) -> None:
    """What a clone of the working tree holds, committed in a repository of its own."""
    native_fixtures.working_tree(root, dest)
    _sh(dest, "git", "init", "-q")
    _sh(dest, "git", "add", "-A")
    _sh(dest, "git", "commit", "-qm", "the suite")


def test_dvc_push_then_pull_into_a_fresh_clone_leaves_both_tools_with_nothing_to_do(repo_root, tmp_path):
    first, second, remote = tmp_path / "first", tmp_path / "second", tmp_path / "remote"
    _committed_copy(repo_root, first)
    dvc = str(Path(sys.executable).parent / "dvc")
    snakemake = str(Path(sys.executable).parent / "snakemake")

    _sh(first, dvc, "repro", STAGE)
    _sh(first, dvc, "remote", "add", "-d", "--local", "store", str(remote))  # a site's path: never committed
    _sh(first, dvc, "push", "--with-deps", STAGE)
    _sh(first, "git", "add", "dvc.lock")
    _sh(first, "git", "commit", "-qm", "dvc.lock of the run")
    assert str(remote) not in (first / ".dvc" / "config").read_text()

    _sh(tmp_path, "git", "clone", "-q", str(first), str(second))
    assert not any((second / t).exists() for t in TARGETS)
    _sh(second, dvc, "remote", "add", "-d", "--local", "store", str(remote))
    _sh(second, dvc, "pull", "--with-deps", STAGE)
    for t in TARGETS:
        assert filecmp.cmp(first / t, second / t, shallow=False), t
    assert filecmp.cmp(first / "data/prepared/synth-tokyo/groundtruth.json",
                       second / "data/prepared/synth-tokyo/groundtruth.json", shallow=False)

    _sh(second, snakemake, "--touch", "--cores", "1", *TARGETS)
    status = _sh(second, dvc, "status", "--with-deps", STAGE)
    assert "up to date" in status, status
    plan = _sh(second, snakemake, "-n", *TARGETS)
    assert "Nothing to be done" in plan, plan[-2000:]
