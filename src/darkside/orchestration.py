"""Keep DVC's pipeline and Snakemake's DAG one and the same.

``dvc.yaml`` is generated from the Snakemake DAG of the current ``params.yaml``: one DVC stage per
Snakemake job with the job's command, its inputs as deps, its outputs as outs (prepared datasets
and raw downloads as whole folders, so DVC caches the images too; metric JSON files, tables, figures and
report pages as files), the tables' headline cells (``results/metrics/headline.json``) as its one ``metrics``
file, and the training curves as data (fine-tuning's ``training_curve.csv``, a generator's ``losses.csv``: one
row per epoch) as outs that the top-level ``plots`` draw (``dvc plots show``), one plot per model and per
generator. Every out is cached, the small ones too: ``dvc push`` / ``dvc pull`` then carry a run's tables,
metrics and curves to another clone with its models, and ``dvc status`` there is clean.
Two things differ from the Snakemake job, on purpose:

- the command takes its settings from params.yaml (which ``dvc exp run -S`` rewrites) instead of
  the ``--settings`` that Snakemake hands over, and the stage's ``params`` are exactly the leaf
  keys of those settings, so DVC reruns a stage when, and only when, a value it reads changes;
- the stage depends on the code its command runs: the subpackages and modules of ``darkside``
  that its verb imports (found by reading the source), not on all of ``src/``.

A test regenerates the file and fails when the committed one has drifted from the Snakefile.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from darkside.atomic import atomic_write_text
from darkside.config import JobSettings

PACKAGE = Path(__file__).resolve().parent
# the one file `dvc metrics show` lists (the tables rule writes it, darkside.tables.headline); every other metric
# JSON is a plain out, so `dvc metrics show` / `dvc exp show` compare the tables' main cells, not ~90 files
# full of hashes and per-query lists
HEADLINE_METRICS = "results/metrics/headline.json"
_FOLDER_RULES = (re.compile(r"^(data/prepared/[^/]+)/"), re.compile(r"^(data/raw/[^/]+)/"))


def grow(base: int, step: float = 1.0) -> Callable[[Any, int], int]:
    """A rule resource that grows with Snakemake's ``attempt``: ``base * (1 + step * (attempt - 1))``.

    A job that hit its time or memory limit is retried (the SLURM profile's ``retries``) with more; a training
    job resumes from its last checkpoint, so a longer second attempt finishes what the first began.
    """
    def resource(wildcards: Any, attempt: int) -> int:
        return round(base * (1 + step * (max(int(attempt), 1) - 1)))
    return resource


def _folder(path: str) -> str:
    """Files of a prepared / raw dataset are tracked as their dataset folder."""
    for rx in _FOLDER_RULES:
        m = rx.match(path)
        if m:
            return m.group(1)
    return path


def snakemake_jobs(snakefile: Path = Path("Snakefile"), workdir: Path = Path(".")) -> list[dict[str, Any]]:
    """The jobs of the full DAG (as with ``--forceall``): rule, wildcards, inputs, outputs, the settings
    the job is handed, shell command."""
    from snakemake.api import SnakemakeApi
    from snakemake.io import is_flagged
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
        for job in workflow.dag.jobs:
            if job.rule.name == "all":
                continue
            jobs.append({
                "rule": job.rule.name,
                "wildcards": dict(job.wildcards_dict),
                "input": [str(f) for f in job.input],
                "output": [(str(f), bool(f.is_directory)) for f in job.output],
                "report": [str(f) for f in job.output if is_flagged(f, "report")],  # shown by `snakemake --report`
                "settings": job.params.get("settings"),
                "cmd": str(job.shellcmd).strip(),
                "preset": workflow.config["preset"],
            })
    return sorted(jobs, key=lambda j: (j["rule"], list(j["wildcards"].values())))


# file name -> the fields one of its plots draws against `epoch`: fine-tuning's training and validation loss
# (embed.finetune.CURVE_DATA; validation only where computed), a generator's total and adversarial generator
# losses, which every family reports (gan.train.LOSSES; the file has each family's other losses too)
PLOT_FIELDS = {"training_curve.csv": ["loss", "val_loss"], "losses.csv": ["G", "G_adv"]}
PLOT_TITLES = {"training_curve.csv": ("fine-tuning", "contrastive loss / tuple"),
               "losses.csv": ("generator training", "mean loss per step")}


def _plot_file(path: str) -> str | None:
    name = Path(path).name
    return name if name in PLOT_FIELDS and path.startswith(("results/models/", "results/gans/")) else None


def dvc_plots(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The top-level ``plots`` of dvc.yaml: one per training curve file the jobs write, x = epoch."""
    plots = []
    for job in jobs:
        for path, _is_dir in job["output"]:
            if (name := _plot_file(path)) is not None:
                what, y_label = PLOT_TITLES[name]
                run = Path(path).parent.name
                plots.append({f"{what} {run}": {"x": "epoch", "y": {path: list(PLOT_FIELDS[name])},
                                                "title": f"{what}: {run}", "x_label": "epoch", "y_label": y_label}})
    return plots


def _stage_name(job: dict[str, Any]) -> str:
    return "_".join([job["rule"], *(str(v) for v in job["wildcards"].values())])


# --- the code a verb runs -----------------------------------------------------------------------------

def _imports(nodes: list[ast.stmt] | ast.AST, module: str) -> set[str]:
    """darkside modules imported by ``nodes`` (statements, or everything under a node)."""
    out = set()
    for node in (nodes if isinstance(nodes, list) else ast.walk(nodes)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("darkside")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(module.split(".")[: -node.level] + ([base] if base else []))
            if base.startswith("darkside"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import module`
    return {m for m in out if _source(m) is not None}


def _source(module: str) -> Path | None:
    path = PACKAGE.parent.joinpath(*module.split("."))
    for p in (path.with_suffix(".py"), path / "__init__.py"):
        if p.is_file():
            return p
    return None


@cache
def _closure(module: str) -> frozenset[str]:
    """``module`` and what it imports at module level, transitively. Imports inside a library's functions
    are lazy on purpose (a registry's choices, what only some callers need) and mostly stay inside its
    own subpackage, which is tracked whole."""
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        src = _source(m)
        text = src.read_text(encoding="utf-8")
        body = ast.parse(text).body
        todo += _imports([n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))], m)
        if src.name == "__init__.py" and "pkgutil.iter_modules" in text:  # a registry importing its modules
            todo += [f"{m}.{p.stem}" for p in src.parent.glob("*.py") if p.stem != "__init__"]
        todo += [m.rsplit(".", 1)[0]] if "." in m else []
    return frozenset(seen)


@cache
def verb_code(verb: str) -> list[str]:
    """The paths (relative to the repository root) of the darkside code that ``darkside <verb>`` runs:
    the subpackages and top-level modules its function and the CLI helpers it calls import, with
    everything they import in turn; the schema file where the config is read."""
    import darkside.cli as cli

    tree = ast.parse(Path(cli.__file__).read_text(encoding="utf-8"))
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    todo, seen = [cli.VERBS[verb].run.__name__, "main", "_job"], set()  # the verb, and how every verb starts
    modules = _imports([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], "darkside.cli")
    while todo:  # the verb's function, then every module-level helper it names
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        modules |= _imports(functions[name], "darkside.cli")
        todo += [n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name)]
    code = {PACKAGE / "cli.py"} | {_tracked(dep) for m in modules for dep in _closure(m)}
    if PACKAGE / "config.py" in code:  # it reads the committed schema
        code.add(PACKAGE / "schemas")
    return sorted(str(p.relative_to(PACKAGE.parent.parent)) for p in code)


def _tracked(module: str) -> Path:
    """What DVC tracks for a module: its subpackage's folder, or a top-level module's file."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return PACKAGE / parts[1]
    return _source(module)


# --- stages -------------------------------------------------------------------------------------------

def _verb(cmd: str) -> str:
    words = shlex.split(cmd)
    return next(w for w in words[1:] if not w.startswith("-"))


def dvc_stages(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    stages: dict[str, Any] = {}
    for job in jobs:
        cmd, params = job["cmd"], []
        if job["settings"] is not None:
            # DVC runs the command as it stands in params.yaml: the job reads it there
            cmd = cmd.replace(f"--settings {shlex.quote(job['settings'])} ", "")
            params = JobSettings.from_json(job["settings"]).param_keys()
        deps = sorted({_folder(f) for f in job["input"]} | set(verb_code(_verb(cmd))))
        outs: list[Any] = []
        metrics: list[Any] = []
        for path, _is_dir in job["output"]:
            if path == HEADLINE_METRICS:
                metrics.append(path)
            elif path.startswith(("results/tables/", "results/figures/", "results/report/")) or _plot_file(path) or (
                    path.startswith("results/metrics/") and path.endswith(".json")):
                outs.append(path)  # a file of its own, not its folder: other stages write beside it
            else:
                folder = _folder(path)
                if folder not in outs:
                    outs.append(folder)
        stage: dict[str, Any] = {"cmd": cmd, "deps": deps}
        if params:
            stage["params"] = sorted(params)
        if outs:
            stage["outs"] = outs
        if metrics:
            stage["metrics"] = metrics
        stages[_stage_name(job)] = stage
    plots = dvc_plots(jobs)
    return {"stages": stages, **({"plots": plots} if plots else {})}


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
