"""The fine-tuning step's two backward modes side by side (``finetune.backward``): gandtr's backward per tuple
against one backward of the fake batch's summed loss, on each backbone of a preset at its fine-tuning size.

    uv run python benchmarks/bench_finetune_backward.py --preset mini --out benchmarks/results

One thread (as the DAG's jobs run), random weights of the preset's trunks, tuples of an anchor, a positive and
``finetune.negatives`` negatives, a fifth of the images portrait (as the synthetic benchmark), ``tuples_per_batch``
tuples per optimiser step. The optimiser's learning rate is 0, so both modes see the same weights; the rounds
alternate the modes. Reports milliseconds per fake batch in each mode, their ratio (> 1: the batch backward is
faster) and the largest gradient difference relative to the largest gradient (float summation order only).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import torch

from darkside.atomic import atomic_write_json
from darkside.config import BackboneSettings, BackboneSpec, JobSettings, load_params
from darkside.embed.finetune import train_epoch
from darkside.embed.network import build_embedding_net
from darkside.embed.tuples import TrainingTuple


def _tuples(side: int, negatives: int, per_batch: int, batches: int) -> tuple[SimpleNamespace, list[TrainingTuple]]:
    g = torch.Generator().manual_seed(0)
    n = per_batch * batches * (2 + negatives)
    shapes = [(3, side, round(side * 0.75)) if k % 5 == 0 else (3, round(side * 0.75), side) for k in range(n)]
    images = {f"i{k}": torch.randn(s, generator=g) for k, s in enumerate(shapes)}
    ids = list(images)
    step = 2 + negatives
    tuples = [TrainingTuple(ids[k], ids[k + 1], tuple(ids[k + 2:k + step])) for k in range(0, n, step)]
    pipeline = SimpleNamespace(tuple_tensors=lambda t: [images[i] for i in (t.anchor, t.positive, *t.negatives)])
    return pipeline, tuples


def compare(backbone: BackboneSpec, side: int, margin: float, negatives: int, per_batch: int, batches: int,
            rounds: int) -> dict:
    net = build_embedding_net(replace(backbone, init="random", weights=None), seed=0)
    pipeline, tuples = _tuples(side, negatives, per_batch, batches)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    cpu = torch.device("cpu")
    times: dict[str, list[float]] = {"tuple": [], "batch": []}
    grads: dict[str, list[torch.Tensor]] = {}
    for r in range(rounds + 1):  # round 0 warms the allocator and oneDNN's primitive caches
        for mode in ("tuple", "batch"):
            t0 = time.perf_counter()
            train_epoch(net, pipeline, tuples, opt, margin, per_batch, cpu, backward=mode)
            if r:
                times[mode].append((time.perf_counter() - t0) / batches * 1e3)
            grads[mode] = [p.grad.clone() for p in net.parameters() if p.grad is not None]
    scale = max(float(g.abs().max()) for g in grads["tuple"])
    diff = max(float((a - b).abs().max()) for a, b in zip(grads["tuple"], grads["batch"], strict=True))
    ms = {m: sorted(v)[len(v) // 2] for m, v in times.items()}  # medians
    return {"backbone": backbone.name, "image_size": side, "tuple_ms_per_batch": ms["tuple"],
            "batch_ms_per_batch": ms["batch"], "speedup": ms["tuple"] / ms["batch"],
            "max_grad_diff_relative": diff / scale}


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--batches", type=int, default=4, help="fake batches per timed pass")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    job = JobSettings.select(load_params(args.params), ["backbones", "finetune"], args.preset)
    ft = job.get("finetune")
    rows = [compare(BackboneSpec.named(name, job.section(f"backbones.{name}", BackboneSettings)), ft["image_size"],
                    ft["margins"].get(name, 0.75), ft["negatives"], ft["tuples_per_batch"], args.batches, args.rounds)
            for name in job.get("backbones")]
    result = {"preset": job.preset, "torch_threads": torch.get_num_threads(), "device": "cpu", "rows": rows}
    print(json.dumps(result, indent=2))
    return atomic_write_json(Path(args.out) / f"finetune-backward-{job.preset}-cpu.json", result)


if __name__ == "__main__":
    print(main())
