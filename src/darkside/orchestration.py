"""Keep DVC's pipeline and Snakemake's DAG one and the same.

``dvc.yaml`` is generated from the Snakemake DAG of the current ``params.yaml``: one DVC stage per
Snakemake job, with the job's exact command, its inputs as deps, its outputs as outs (prepared
datasets and raw downloads as whole folders, so DVC caches the images too), metric JSON files as
uncached ``metrics`` and the preset sections the rule reads (its ``params:``) as DVC params.
A test regenerates it and fails when the committed file has drifted from the Snakefile.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from darkside.atomic import atomic_write_text
from darkside.errors import WorkflowError

# rule `params:` name -> key path inside the active preset (None: not a params.yaml value)
PARAM_KEYS: dict[str, str | None] = {
    "synthetic": "data.synthetic",
    "roles": "data.roles",
    "day_night": "day_night",
    "backbone": "backbones.{backbone}",
    "extract": "extract",
    "whitening": "whitening",
    "evaluate": "evaluate",
    "finetune": "finetune",
    "gan": "gan",
    "edges": "edges",
    "backbone_pretrain": "backbone_pretrain",
    "clahe": None,
    "generator": None,
    "models": None,
    "datasets": None,
    "run_dir": None,
    "item_args": None,
    "base_recipe": None,   # the recipe of a seeded model name, and its seed: both in the command
    "seed": None,
}

_FOLDER_RULES = (re.compile(r"^(data/prepared/[^/]+)/"), re.compile(r"^(data/raw/[^/]+)/"))


def _folder(path: str) -> str:
    """Files of a prepared / raw dataset are tracked as their dataset folder."""
    for rx in _FOLDER_RULES:
        m = rx.match(path)
        if m:
            return m.group(1)
    return path


def snakemake_jobs(snakefile: Path = Path("Snakefile"), workdir: Path = Path(".")) -> list[dict[str, Any]]:
    """The jobs of the full DAG (as with ``--forceall``): rule, wildcards, inputs, outputs, params,
    shell command."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
        StorageSettings,
    )

    jobs = []
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        wf = api.workflow(resource_settings=ResourceSettings(cores=1), config_settings=ConfigSettings(),
                          storage_settings=StorageSettings(), snakefile=snakefile, workdir=workdir)
        workflow = wf.dag(DAGSettings(forceall=True)).workflow_api._workflow
        # Snakemake has no public API for the job list; these two calls are what `--rulegraph` does
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        preset = workflow.config["preset"]
        for job in workflow.dag.jobs:
            if job.rule.name == "all":
                continue
            jobs.append({
                "rule": job.rule.name,
                "wildcards": dict(job.wildcards_dict),
                "input": [str(f) for f in job.input],
                "output": [(str(f), bool(f.is_directory)) for f in job.output],
                "params": list(job.params.keys()),
                "cmd": str(job.shellcmd).strip(),
                "preset": preset,
            })
    return sorted(jobs, key=lambda j: (j["rule"], list(j["wildcards"].values())))


def _stage_name(job: dict[str, Any]) -> str:
    parts = [job["rule"], *(str(v) for v in job["wildcards"].values())]
    return "_".join(parts)


def dvc_stages(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    stages: dict[str, Any] = {}
    for job in jobs:
        deps = sorted({_folder(f) for f in job["input"]} | {"src/darkside"})
        outs: list[Any] = []
        metrics: list[Any] = []
        for path, _is_dir in job["output"]:
            if path.startswith("results/metrics/") and path.endswith(".json"):
                metrics.append({path: {"cache": False}})
            elif path.startswith(("results/tables/", "results/figures/")):
                outs.append({path: {"cache": False}})
            else:
                folder = _folder(path)
                if folder not in outs:
                    outs.append(folder)
        params = []
        for name in job["params"]:
            if name not in PARAM_KEYS:  # a new rule param must say whether DVC tracks it, not vanish
                raise WorkflowError(f"rule {job['rule']}: params.{name} has no PARAM_KEYS entry in "
                                 "darkside/orchestration.py (a params.yaml key path, or None)")
            key = PARAM_KEYS[name]
            if key is None:
                continue
            params.append(f"presets.{job['preset']}." + key.format(**job["wildcards"]))
        stage: dict[str, Any] = {"cmd": job["cmd"], "deps": deps}
        if params:
            stage["params"] = sorted(set(params))
        if outs:
            stage["outs"] = outs
        if metrics:
            stage["metrics"] = metrics
        stages[_stage_name(job)] = stage
    return {"stages": stages}


HEADER = """\
# GENERATED from the Snakemake DAG by `darkside dvc-yaml` (preset: {preset}). Do not edit by hand:
# change the Snakefile / workflow/rules and regenerate; tests/test_orchestration.py fails on drift.
"""


def render_dvc_yaml(jobs: list[dict[str, Any]]) -> str:
    preset = jobs[0]["preset"] if jobs else "?"
    body = yaml.safe_dump(dvc_stages(jobs), sort_keys=False, width=200, default_flow_style=False)
    return HEADER.format(preset=preset) + body


def write_dvc_yaml(out: Path = Path("dvc.yaml"), params: Path = Path("params.yaml")) -> Path:
    """Regenerate ``dvc.yaml`` from the Snakefile next to ``params``; return the path."""
    root = params.resolve().parent
    return atomic_write_text(out, render_dvc_yaml(snakemake_jobs(root / "Snakefile", root)))
