"""Batched, bucketed extraction (channels-last + mixed precision on GPU) against the per-image fp32
loop of the same model on the same images (the cirtorch way), side by side in one run (SPEC 11).

    uv run python benchmarks/bench_extraction.py --dataset data/prepared/synth-roxford \
        --backbone vgg16 --preset mini --out benchmarks/results
    # at the paper's sizes (1024 px, three scales, full-width networks; random weights: speed does not
    # depend on them) on generated large images, on the CPU or a GPU:
    uv run python benchmarks/bench_extraction.py --generated 8 --preset paper --backbone vgg16
    uv run python benchmarks/bench_extraction.py --generated 8 --preset paper --backbone vgg16 --precision bf16
    uv run python benchmarks/bench_extraction.py --generated 64 --preset paper --backbone resnet101 --device cuda

Reports images/s of both, their ratio, and the largest descriptor difference (fp32 on CPU must be
identical up to float rounding; mixed precision, on a GPU or with --precision bf16 on the CPU, within ~1e-2).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from darkside.atomic import atomic_write_json
from darkside.config import BackboneSettings, BackboneSpec, ExtractSettings, JobSettings, load_params
from darkside.data.manifest import load_manifest
from darkside.data.photometric import ClaheSettings
from darkside.embed.network import build_embedding_net
from darkside.extract.global_descriptors import extract_descriptors, extract_descriptors_reference


def _timed(fn, device: str):
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def generated_images(folder: Path, count: int, max_side: int, seed: int = 0) -> list[Path]:
    """``count`` JPEGs at the test size (landscape 4:3 and portrait 3:4 in turn, so extraction meets two
    shapes as on Oxford/Paris), smooth random content: what the paper preset extracts, without its data."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        w, h = (max_side, max_side * 3 // 4) if i % 2 == 0 else (max_side * 3 // 4, max_side)
        coarse = rng.integers(0, 256, (h // 32 + 1, w // 32 + 1, 3), dtype=np.uint8)
        img = Image.fromarray(coarse).resize((w, h), Image.BICUBIC)
        paths.append(folder / f"generated_{i:03d}.jpg")
        img.save(paths[-1], quality=90)
    return paths


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=None, help="a prepared dataset's images (or --generated)")
    ap.add_argument("--generated", type=int, default=0, help="extract this many generated images at the test size")
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--backbone", default="vgg16")
    ap.add_argument("--image-size", type=int, default=None, help="override the preset's test image size")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", help="the batched side's: auto (mixed on GPU), fp32 or bf16")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    job = JobSettings.select(load_params(args.params), ["backbones", "extract"], args.preset)
    settings = job.section("extract", ExtractSettings)
    if args.image_size:
        settings = replace(settings, image_size=args.image_size)
    if args.batch_size:
        settings = replace(settings, batch_size=args.batch_size)
    if args.generated:
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="bench-extraction-"))
        images, name = generated_images(tmp, args.generated, settings.image_size), f"generated-{settings.image_size}px"
    elif args.dataset:
        manifest = load_manifest(args.dataset)
        images, name = [manifest.image_path(r) for r in manifest.records[: args.limit]], manifest.name
    else:
        ap.error("give --dataset or --generated")
    # random weights (speed does not depend on them; the paper's ImageNet files are not needed)
    backbone = replace(job.section(f"backbones.{args.backbone}", BackboneSettings), init="random", weights=None)
    spec = BackboneSpec.named(args.backbone, backbone)
    net = build_embedding_net(spec, seed=0).eval()
    clahe = ClaheSettings(enabled=False)
    # warm-up (allocator, cudnn autotuning) so neither side pays it
    extract_descriptors(net, images[:2], settings, clahe, args.device, progress=False)
    ref, t_ref = _timed(lambda: extract_descriptors_reference(net, images, settings, clahe, args.device), args.device)
    fast, t_fast = _timed(lambda: extract_descriptors(net, images, settings, clahe, args.device, progress=False,
                                                      precision=args.precision), args.device)
    row = {
        "dataset": name, "images": len(images), "scales": list(settings.scales), "backbone": args.backbone,
        "preset": job.preset,
        "image_size": settings.image_size, "batch_size": settings.batch_size, "device": args.device,
        "precision": args.precision,
        "torch_threads": torch.get_num_threads(),
        "reference_images_per_s": len(images) / t_ref, "batched_images_per_s": len(images) / t_fast,
        "speedup": t_ref / t_fast, "max_abs_diff": float(np.abs(ref - fast).max()),
    }
    print(json.dumps(row, indent=2))
    tag = "" if args.precision == "auto" else f"-{args.precision}"
    return atomic_write_json(Path(args.out) / f"extraction-{args.backbone}-{job.preset}-{args.device}{tag}.json", row)


if __name__ == "__main__":
    print(main())
