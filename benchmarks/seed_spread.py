"""How far a table cell moves with the fine-tuning seed, and which recipe differences outlast it.

The findings' paired intervals resample queries: they say how sure a difference is for the two models the suite
trained, not for the two recipes. This benchmark trains further seeds of a few recipes through the suite's own
DAG (models ``<backbone>-<recipe>.seed<N>``, the preset's first seed being ``<backbone>-<recipe>``), then prints,
for each recipe against a reference recipe and each dataset, the difference of the first seeds with its
query-only interval beside the difference of the seed means with an interval that resamples seeds and queries
(``darkside.evaluate.bootstrap.paired_seed_query_ci``), and each recipe's per-seed mAP with their spread. Run it
in a work tree where the suite has run (it reuses the generators and the prepared data):

    uv run python benchmarks/seed_spread.py --against clahe-cd --recipes hedngan-cd cyclegan-cd oracle-cd \\
        --seeds 0 1 2 3 --cores 2

Each further seed of a mini VGG16 recipe costs about 50 s of job time (fine-tuning, whitening, extraction,
scoring). Writes ``benchmarks/results/seed-spread-<preset>.json`` and a plot of the per-seed values beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from darkside.evaluate.bootstrap import bootstrap_ci, paired_seed_query_ci

DATASETS = ("synth-roxford", "synth-rparis", "synth-tokyo")


def model_name(backbone: str, recipe: str, seed: int, first_seed: int) -> str:
    """The DAG's model of ``recipe`` at fine-tuning ``seed``: the preset's first seed carries no suffix."""
    return f"{backbone}-{recipe}" + ("" if seed == first_seed else f".seed{seed}")


def per_query_key(metrics: dict[str, Any]) -> str:
    """The per-query values a table cell averages: the revisited protocols' medium AP, otherwise the AP."""
    return "medium" if "medium" in metrics["per_query"] else "mAP"


def seed_matrix(root: Path, models: list[str], dataset: str) -> tuple[list[str], np.ndarray]:
    """(query ids, (seeds, queries) APs) of ``models`` on ``dataset``, queries in the first model's order."""
    ids: list[str] = []
    rows = []
    for m in models:
        path = root / m / f"{dataset}.json"
        if not path.is_file():
            raise SystemExit(f"{path}: not scored (run without --no-run, or check the model name)")
        metrics = json.loads(path.read_text(encoding="utf-8"))
        entry = metrics["per_query"][per_query_key(metrics)]
        values = np.array([np.nan if v is None else float(v) for v in entry["ap"]], dtype=np.float64)
        if not ids:
            ids = list(entry["ids"])
            rows.append(values)
            continue
        index = {q: i for i, q in enumerate(entry["ids"])}
        if missing := [q for q in ids if q not in index]:
            raise SystemExit(f"{path}: scored different queries ({missing[0]!r} is missing)")
        rows.append(values[[index[q] for q in ids]])
    return ids, np.stack(rows)


def spread(root: Path, backbone: str, against: str, recipes: list[str], seeds: list[int], first_seed: int,
           datasets: list[str], samples: int) -> list[dict[str, Any]]:
    """One row per (recipe, dataset): per-seed mAPs, their SD, and the two paired intervals against ``against``."""
    rows = []
    for ds in datasets:
        ref = seed_matrix(root, [model_name(backbone, against, s, first_seed) for s in seeds], ds)[1]
        for recipe in [against, *recipes]:
            cur = seed_matrix(root, [model_name(backbone, recipe, s, first_seed) for s in seeds], ds)[1]
            per_seed = np.nanmean(cur, axis=1)
            row = {"recipe": recipe, "dataset": ds, "seeds": seeds, "per_seed": per_seed.round(2).tolist(),
                   "mean": round(float(per_seed.mean()), 2),
                   "sd": round(float(per_seed.std(ddof=1)), 2) if len(seeds) > 1 else None}
            if recipe != against:
                first = bootstrap_ci(cur[0] - ref[0], samples, 0)
                both = paired_seed_query_ci(cur, ref, samples, 0)
                row["first_seed"] = [round(v, 2) for v in first]
                row["all_seeds"] = [round(v, 2) for v in both]
            rows.append(row)
    return rows


def _fmt(ci: list[float]) -> str:
    return f"{ci[0]:+.1f} [{ci[1]:+.1f}, {ci[2]:+.1f}]"


def report(rows: list[dict[str, Any]], against: str) -> str:
    """The table the benchmark prints: per-seed values, SD, and each difference with both intervals."""
    lines = [f"{'dataset':<14} {'recipe':<16} {'per-seed mAP':<30} {'mean':>6} {'sd':>5}  "
             f"{'- ' + against + ', first seed (queries)':<32} all seeds (seeds x queries)"]
    for r in rows:
        sd = "" if r["sd"] is None else f"{r['sd']:.1f}"
        seeds = " ".join(f"{v:.1f}" for v in r["per_seed"])
        diff = (f"{_fmt(r['first_seed']):<32} {_fmt(r['all_seeds'])}" if "all_seeds" in r else "")
        lines.append(f"{r['dataset']:<14} {r['recipe']:<16} {seeds:<30} {r['mean']:>6.1f} {sd:>5}  {diff}")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], out: Path) -> Path:
    """Per-seed mAP of each recipe, one panel per dataset: the spread the findings' intervals leave out."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 3.2), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=True):
        sub = [r for r in rows if r["dataset"] == ds]
        for x, r in enumerate(sub):
            ax.plot([x] * len(r["per_seed"]), r["per_seed"], "o", alpha=0.7)
            ax.hlines(r["mean"], x - 0.3, x + 0.3, colors="k")
        ax.set_xticks(range(len(sub)), [r["recipe"] for r in sub], rotation=30, ha="right", fontsize=8)
        ax.set(title=ds, ylabel="mAP (per seed; bar: mean)")
    fig.tight_layout()
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("."), help="a work tree where the suite has run")
    ap.add_argument("--backbone", default="vgg16")
    ap.add_argument("--against", default="clahe-cd", help="the reference recipe of the differences")
    ap.add_argument("--recipes", nargs="+", default=["hedngan-cd", "cyclegan-cd", "oracle-cd"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--samples", type=int, default=1000, help="bootstrap replicates")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--no-run", action="store_true", help="only read metrics already scored")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/seed-spread-<preset>.json")
    args = ap.parse_args(argv)
    work = args.work.resolve()
    params = yaml.safe_load((work / "params.yaml").read_text(encoding="utf-8"))
    preset = params["preset"]
    first_seed = int(params["presets"][preset]["seeds"][0])
    names = [model_name(args.backbone, r, s, first_seed) for r in [args.against, *args.recipes] for s in args.seeds]
    if not args.no_run:
        targets = [f"results/metrics/{m}/{ds}.json" for m in names for ds in args.datasets]
        cmd = [str(Path(sys.executable).parent / "snakemake"), "--cores", str(args.cores), *targets]
        print("$", " ".join(cmd[:3]), f"... ({len(targets)} targets)", flush=True)
        # the rules call `darkside`, as under `uv run snakemake`: this interpreter's scripts come first
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        if subprocess.run(cmd, cwd=work, env=env).returncode:
            raise SystemExit("snakemake failed (its log says which job)")
    rows = spread(work / "results/metrics", args.backbone, args.against, args.recipes, args.seeds, first_seed,
                  args.datasets, args.samples)
    print(report(rows, args.against))
    out = args.out or Path(__file__).resolve().parent / "results" / f"seed-spread-{preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps({"preset": preset, "backbone": args.backbone, "against": args.against,
                               "rows": rows}, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out} and {plot(rows, out.with_suffix('.png')).name}")
    return out


if __name__ == "__main__":
    main()
