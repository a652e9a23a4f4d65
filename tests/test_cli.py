import subprocess
import sys

import pytest

from darkside.cli import VERBS, build_parser, main


def test_every_verb_has_help(capsys):
    parser = build_parser()
    for name in VERBS:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([name, "--help"])
        assert exc.value.code == 0
        assert name in capsys.readouterr().out


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "darkside.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "extract" in out.stdout


def test_common_options_before_or_after_verb(repo_root, capsys):
    assert main(["--preset", "paper", "params", "--params", str(repo_root / "params.yaml")]) == 0
    assert '"preset": "paper"' in capsys.readouterr().out
    assert main(["params", "--preset", "mini", "--params", str(repo_root / "params.yaml")]) == 0
    assert '"preset": "mini"' in capsys.readouterr().out


def test_a_preempted_run_exits_with_143(monkeypatch, repo_root):
    """SIGTERM (SLURM preemption) stops a run with 143, bad input with 2: one policy for every verb."""
    import dataclasses

    from darkside import cli
    from darkside.errors import DarksideError, Preempted

    def preempted(args, job):
        raise Preempted()

    def bad(args, job):
        raise DarksideError("x.pt: bad input")

    for run, status in ((preempted, 143), (bad, 2)):
        monkeypatch.setitem(cli.VERBS, "params", dataclasses.replace(cli.VERBS["params"], run=run))
        assert main(["params", "--params", str(repo_root / "params.yaml")]) == status


def test_the_job_computes_with_the_settings_it_is_handed(tmp_path, repo_root):
    """`--settings` (what the DAG hands over, overlays included) is what the job computes with: the tables'
    intervals follow the handed-over bootstrap_samples, not params.yaml's."""
    import csv
    import json

    import numpy as np
    import yaml

    from darkside.cli import job_settings

    rng = np.random.default_rng(0)
    for ds, key in (("synth-tokyo", "mAP"), ("synth-roxford", "medium"), ("synth-rparis", "medium")):
        (tmp_path / "m" / "vgg16-offtheshelf").mkdir(parents=True, exist_ok=True)
        (tmp_path / "m" / "vgg16-offtheshelf" / f"{ds}.json").write_text(json.dumps(
            {"per_query": {key: {"ids": [], "ap": list(rng.uniform(0, 100, 40))}}}))
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    cis = []
    for samples in (20, 2000):
        params["presets"]["mini"]["evaluate"]["bootstrap_samples"] = samples
        handed = job_settings("tables", params, "mini").to_json()
        out = tmp_path / f"t{samples}"
        assert main(["--settings", handed, "tables", "--metrics", str(tmp_path / "m"), "--out", str(out),
                     "--backbone", "vgg16", "--table", "table1"]) == 0
        rows = [r for r in csv.DictReader((out / "table1.csv").open()) if r["ours"] and r["column"] == "Tokyo"]
        cis.append((rows[0]["ci_low"], rows[0]["ours"]))
    assert cis[0][1] == cis[1][1] and cis[0][0] != cis[1][0]
