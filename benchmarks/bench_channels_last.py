"""Channels-last against contiguous (NCHW) memory format for the embedding networks, side by side in
one run: inference at the test image size (what `extract` and `whiten` compute) and a training step
at the fine-tuning size (forward + backward of one 7-image tuple, what `finetune` computes).

    uv run python benchmarks/bench_channels_last.py --preset mini --out benchmarks/results

Reports, per backbone, milliseconds per batch in both layouts, their ratio (NCHW / channels-last,
> 1 means channels-last is faster) and the largest descriptor difference (float rounding only).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from darkside.atomic import atomic_write_json
from darkside.config import BackboneSettings, BackboneSpec, JobSettings, load_params
from darkside.embed.network import build_embedding_net


def _ms(fn, repeats: int) -> float:
    for _ in range(3):  # warm-up: allocator, oneDNN primitive caches
        fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1e3


def _layout_times(backbone, fmt: torch.memory_format, x_test: torch.Tensor, x_train: torch.Tensor,
                  repeats: int) -> tuple[float, float, torch.Tensor]:
    """(inference ms, training step ms, descriptors) with the network and its inputs in layout ``fmt``."""
    # seeded random weights: speed does not depend on them, and no pre-trained file is needed
    net = build_embedding_net(replace(backbone, init="random", weights=None), seed=0).to(memory_format=fmt)
    xt, xs = x_test.contiguous(memory_format=fmt), x_train.contiguous(memory_format=fmt)

    def embed(x: torch.Tensor) -> torch.Tensor:
        # the trunk sees the layout under test (the network's own forward would convert to channels-last)
        return net.norm(net.pool(net.backbone(x)))

    net.eval()
    with torch.no_grad():
        inference = _ms(lambda: embed(xt), repeats)
        desc = embed(xt)
    net.train()
    train = _ms(lambda: embed(xs).sum().backward(), repeats)
    return inference, train, desc


def compare(backbone, test_side: int, train_side: int, repeats: int) -> dict:
    """ms per call of each layout for one backbone spec; the network is the same (same seed)."""
    g = torch.Generator().manual_seed(0)
    x_test = torch.randn(8, 3, round(test_side * 0.75), test_side, generator=g)
    x_train = torch.randn(7, 3, round(train_side * 0.75), train_side, generator=g)
    ni, nt, nd = _layout_times(backbone, torch.contiguous_format, x_test, x_train, repeats)
    ci, ct, cd = _layout_times(backbone, torch.channels_last, x_test, x_train, repeats)
    return {"backbone": backbone.name, "nchw_inference_ms": ni, "channels_last_inference_ms": ci,
            "nchw_train_step_ms": nt, "channels_last_train_step_ms": ct,
            "inference_speedup": ni / ci, "train_step_speedup": nt / ct, "max_abs_diff": float((nd - cd).abs().max())}


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    job = JobSettings.select(load_params(args.params), ["backbones", "extract.image_size", "finetune.image_size"],
                             args.preset)
    rows = [compare(BackboneSpec.named(name, job.section(f"backbones.{name}", BackboneSettings)),
                    job.get("extract.image_size"), job.get("finetune.image_size"), args.repeats)
            for name in job.get("backbones")]
    result = {"preset": job.preset, "torch_threads": torch.get_num_threads(), "device": "cpu", "rows": rows}
    print(json.dumps(result, indent=2))
    return atomic_write_json(Path(args.out) / f"channels-last-{job.preset}-cpu.json", result)


if __name__ == "__main__":
    print(main())
