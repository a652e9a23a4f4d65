"""Ranking and scoring stay linear in the database size with bounded memory (SPEC section 11).

Side by side for N = 10k ... 1M database descriptors: the chunked ranking of
``darkside.evaluate.ranking`` (exact ranks of the positives and junk, plus the top-k exported as
pairs) against the baseline that materialises the full similarity matrix and argsorts it (the
cirtorch way). Reports wall time and peak extra memory (tracemalloc) of each, and their ratios.

    uv run python benchmarks/bench_ranking.py --sizes 10000 100000 1000000 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from pathlib import Path

import numpy as np

from darkside.evaluate.ranking import ranks_of, topk


def _measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, wall, peak / 2**20


def full_baseline(Q: np.ndarray, X: np.ndarray, items: list[np.ndarray], k: int):
    scores = Q @ X.T  # (M, N): the whole similarity matrix
    order = np.argsort(-scores, axis=1, kind="stable")
    inv = np.empty_like(order)
    rows = np.arange(order.shape[0])[:, None]
    inv[rows, order] = np.arange(order.shape[1])[None, :]
    return [inv[i, it] for i, it in enumerate(items)], order[:, :k]


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=70)
    ap.add_argument("--items", type=int, default=50, help="positives + junk per query")
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--topk", type=int, default=20)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((args.queries, args.dim)).astype(np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    results = []
    for n in args.sizes:
        X = rng.standard_normal((n, args.dim)).astype(np.float32)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        items = [rng.choice(n, args.items, replace=False) for _ in range(args.queries)]
        def chunked(X=X, items=items):
            return ranks_of(Q, X, items, args.chunk), topk(Q, X, args.topk, args.chunk)

        def full(X=X, items=items):
            return full_baseline(Q, X, items, args.topk)

        (r_chunk, (top_c, _)), t_c, m_c = _measure(chunked)
        (r_full, top_f), t_f, m_f = _measure(full)
        same = all(np.array_equal(a, b) for a, b in zip(r_chunk, r_full, strict=True))
        row = {"database": n, "chunked_s": t_c, "full_s": t_f, "chunked_peak_mib": m_c, "full_peak_mib": m_f,
               "time_ratio_full_over_chunked": t_f / t_c, "memory_ratio_full_over_chunked": m_f / m_c,
               "identical_ranks": bool(same), "identical_topk": bool(np.array_equal(top_c, top_f))}
        results.append(row)
        print(json.dumps(row))
        del X
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ranking.json"
    path.write_text(json.dumps({"dim": args.dim, "queries": args.queries, "chunk": args.chunk,
                                "results": results}, indent=2) + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        ns = [r["database"] for r in results]
        for key, label in (("chunked", "chunked (darkside)"), ("full", "full matrix + argsort")):
            axes[0].loglog(ns, [r[f"{key}_s"] for r in results], "o-", label=label)
            axes[1].loglog(ns, [r[f"{key}_peak_mib"] for r in results], "o-", label=label)
        axes[0].set(xlabel="database size", ylabel="seconds", title="time")
        axes[1].set(xlabel="database size", ylabel="peak extra MiB", title="memory")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(out / "ranking.png", dpi=100)
    except ImportError:
        pass
    return path


if __name__ == "__main__":
    print(main())
