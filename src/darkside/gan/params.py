"""Parameter counts of a generator family: plain per-block counts and the paper's Table 8 convention.

Table 8 (CycleGAN 51.0, HEDGAN 25.5, HED^N GAN 40.2, RCF^N GAN 40.3 M) is reproduced by one rule
(reference notes §4.2, an empirical fit the paper does not state): every *generator* is counted
twice, discriminators, CUT's MLP heads and trainable student detectors once, and frozen detectors not
at all (CUT 26.0 = 2 G + D + F). The families the paper trained with their authors' code (DRIT++ 75.5,
CyEDA 39.6 = 2 G + 2 D) are plain counts. The plain count (every network once, frozen ones included) is
reported beside it. Networks are built on the 'meta' device, so counting the paper widths costs no memory
and no time.
"""

from __future__ import annotations

from typing import Any

import torch

from darkside.gan.family import GanSetup, family_class
from darkside.gan.networks import count_params

# how many times the paper counts a block of each role
PAPER_MULTIPLICITY = {"generator": 2, "discriminator": 1, "head": 1, "student": 1, "frozen": 0}


def count_parameters(setup: GanSetup) -> dict[str, Any]:
    """{'blocks': {name: {'role', 'params'}}, 'plain_total', 'paper_total', 'paper_millions', 'rule'}."""
    blocks: dict[str, dict[str, Any]] = {}
    with torch.device("meta"):
        for spec in family_class(setup.family).block_specs(setup):
            blocks[spec.name] = {"role": spec.role, "params": count_params(spec.build())}
    plain = sum(b["params"] for b in blocks.values())
    if family_class(setup.family).paper_counts_plain:
        paper, rule = plain, "paper: every network once (authors' code, or a family Table 8 does not list)"
    else:
        paper = sum(PAPER_MULTIPLICITY[b["role"]] * b["params"] for b in blocks.values())
        rule = "paper: generators x2, discriminators, heads and student detectors x1, frozen detectors x0"
    return {"family": setup.family, "blocks": blocks, "plain_total": plain, "paper_total": paper,
            "paper_millions": round(paper / 1e6, 1), "rule": rule}


def format_counts(res: dict[str, Any]) -> str:
    """The counts as a small text table (``darkside gan params`` without ``--json``)."""
    lines = [f"{name:20s} {b['role']:14s} {b['params']:>12,d}" for name, b in res["blocks"].items()]
    lines += [f"{'plain total':35s} {res['plain_total']:>12,d}",
              f"{'paper (Table 8) total':35s} {res['paper_total']:>12,d}  ({res['paper_millions']} M)"]
    return "\n".join(lines)
