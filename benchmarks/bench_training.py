"""Training throughput at a preset's sizes: every generator family and a fine-tuning recipe, a fixed number of
steps each, images/s and peak memory (the basis for Table 8's time columns).

    uv run python benchmarks/bench_training.py --preset paper --device cuda --steps 20 --out benchmarks/results
    uv run python benchmarks/bench_training.py --preset paper --device cuda --precision bf16 --steps 20
    uv run python benchmarks/bench_training.py --preset paper --device cpu --steps 1 --families cyclegan

Generators train through ``train_gan`` itself (its crops, losses and optimiser steps) on generated images (speed
does not depend on the pictures or on the weights, so edge detectors start from their seeded initialisation):
one epoch of ``steps`` batches of the family's paper batch size, plus a warm-up epoch that is not timed.
Fine-tuning times its inner step (cirtorch's: one tuple of query, positive and ``negatives`` negatives at the
preset's training size through the full network, backward per tuple, an optimiser step per ``tuples_per_batch``
tuples); mining passes are extraction, which ``bench_extraction.py`` measures. Peak memory is the device's
(CUDA) or the process's resident set (CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from darkside.atomic import atomic_write_json
from darkside.config import BackboneSettings, BackboneSpec, load_params
from darkside.embed.losses import contrastive_loss
from darkside.embed.network import build_embedding_net, freeze_batchnorm
from darkside.gan.edges import DetectorSettings
from darkside.gan.family import GanTraining, family_class, setup_for
from darkside.gan.train import train_gan
from darkside.recipes import FinetuneSettings
from darkside.settings import parse
from darkside.training import autocast


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _peak_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _images(folder: Path, n: int, side: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        p = folder / f"{i:04d}.jpg"
        Image.fromarray(rng.integers(0, 256, (side * 3 // 4, side, 3), dtype=np.uint8)).save(p, quality=90)
        paths.append(p)
    return paths


def bench_family(name: str, preset: dict[str, Any], steps: int, device: str, precision: str, work: Path) -> dict:
    common = dataclasses.replace(parse(GanTraining, preset["gan"]["common"], "gan.common"), precision=precision,
                                 sample_images=1, cache_images=True)
    cls = family_class(name)
    entry = dict(preset["gan"]["families"][name])
    batch = int(entry["batch_size"])
    settings = parse(cls.Settings, entry, f"gan.families.{name}")
    detectors = {k: DetectorSettings(**{**v, "weights": None}) for k, v in preset["edges"]["detectors"].items()}
    side = max(2 * common.crop, 64)
    day = _images(work, 8, side, 0)
    night = _images(work, 8, side, 1)[:]
    results = {}
    for label, n_steps in (("warmup", 1), ("timed", steps)):
        s = dataclasses.replace(settings, pairs_per_epoch=n_steps * batch, epochs_constant=1, epochs_decay=0)
        setup = setup_for(name, common, s, detectors)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        _sync(device)
        t0 = time.perf_counter()
        train_gan(setup, day, night, work / f"{name}-{label}", device, seed=0)
        _sync(device)
        results[label] = time.perf_counter() - t0
    log = json.loads((work / f"{name}-timed" / "log.json").read_text())
    epoch_s = float(log["epochs"][-1]["wall_s"])  # the training epoch alone (no building, no saving)
    return {"family": name, "batch_size": batch, "crop": common.crop, "steps": steps, "epoch_seconds": epoch_s,
            "images_per_s": steps * batch / epoch_s, "seconds_per_10k_pairs": epoch_s / (steps * batch) * 10000,
            "peak_mb": _peak_mb(device), "precision": precision}


def bench_finetune(backbone: str, preset: dict[str, Any], steps: int, device: str, precision: str) -> dict:
    ft = parse(FinetuneSettings, preset["finetune"], "finetune")
    b = parse(BackboneSettings, preset["backbones"][backbone], f"backbones.{backbone}")
    spec = BackboneSpec.named(backbone, dataclasses.replace(b, init="random", weights=None))
    net = build_embedding_net(spec).to(device)
    net.train()
    freeze_batchnorm(net)
    opt = torch.optim.Adam(net.parameters(), lr=ft.lr)
    size = ft.image_size
    shape = (1 + 1 + ft.negatives, 3, size * 3 // 4, size)
    labels = torch.tensor([1] + [0] * ft.negatives, device=device)
    x = torch.randn(shape, device=device)

    def one_batch() -> None:
        opt.zero_grad(set_to_none=True)
        for _ in range(ft.tuples_per_batch):
            with autocast(precision, device):
                d = net(x).float()
            contrastive_loss(d[0], d[1:], labels, ft.margin(backbone)).backward()
        opt.step()

    one_batch()  # warm-up (cuDNN autotuning, allocator)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        one_batch()
    _sync(device)
    wall = time.perf_counter() - t0
    tuples = steps * ft.tuples_per_batch
    return {"finetune": backbone, "image_size": size, "tuple_images": shape[0], "steps": steps,
            "seconds": wall, "tuples_per_s": tuples / wall, "images_per_s": tuples * shape[0] / wall,
            "seconds_per_epoch": ft.anchors_per_epoch / (tuples / wall), "peak_mb": _peak_mb(device),
            "precision": precision}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--families", nargs="*", default=None, help="default: every family of the preset")
    ap.add_argument("--backbones", nargs="*", default=None, help="fine-tuning backbones (default: the preset's)")
    ap.add_argument("--out", type=Path, default=None, help="folder for training-<preset>-<device>-<precision>.json")
    args = ap.parse_args()
    preset = load_params()["presets"][args.preset]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.families if args.families is not None else list(preset["gan"]["families"]):
            row = bench_family(name, preset, args.steps, args.device, args.precision, Path(tmp))
            print(f"{name:10s} {row['images_per_s']:8.2f} pairs/s  {row['seconds_per_10k_pairs']:8.1f} s per 10k "
                  f"pairs  peak {row['peak_mb']:.0f} MB", flush=True)
            rows.append(row)
    for backbone in args.backbones if args.backbones is not None else list(preset["backbones"]):
        row = bench_finetune(backbone, preset, args.steps, args.device, args.precision)
        print(f"finetune {backbone:10s} {row['images_per_s']:8.2f} images/s  {row['seconds_per_epoch']:8.1f} s per "
              f"epoch of {preset['finetune']['anchors_per_epoch']} tuples  peak {row['peak_mb']:.0f} MB", flush=True)
        rows.append(row)
    if args.out is not None:
        out = args.out / f"training-{args.preset}-{args.device}-{args.precision}.json"
        atomic_write_json(out, {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
                                "torch": torch.__version__, "rows": rows})
        print(out)


if __name__ == "__main__":
    main()
