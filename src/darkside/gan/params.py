"""Parameter counts of a generator family: plain per-block counts and the paper's Table 8 convention.

Table 8 (CycleGAN 51.0, HEDGAN 25.5, HED^N GAN 40.2, RCF^N GAN 40.3 M) is reproduced by one rule
(reference notes §4.2, an empirical fit the paper does not state): every *generator* is counted
twice, discriminators and trainable student detectors once, and frozen detectors not at all. The
plain count (every network once, frozen ones included) is reported beside it. Networks are built
on the 'meta' device, so counting the paper widths costs no memory and no time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from darkside.errors import ConfigError
from darkside.gan.families import GanSettings, family_class, settings_for
from darkside.gan.networks import count_params

# how many times the paper counts a block of each role
PAPER_MULTIPLICITY = {"generator": 2, "discriminator": 1, "student": 1, "frozen": 0}


def count_parameters(family: str, settings: GanSettings) -> dict[str, Any]:
    """{'blocks': {name: {'role', 'params'}}, 'plain_total', 'paper_total', 'paper_millions', 'rule'}."""
    cls = family_class(family)
    blocks: dict[str, dict[str, Any]] = {}
    with torch.device("meta"):
        for spec in cls.block_specs(settings):
            blocks[spec.name] = {"role": spec.role, "params": count_params(spec.build())}
    plain = sum(b["params"] for b in blocks.values())
    paper = sum(PAPER_MULTIPLICITY[b["role"]] * b["params"] for b in blocks.values())
    return {"family": family, "blocks": blocks, "plain_total": plain, "paper_total": paper,
            "paper_millions": round(paper / 1e6, 1),
            "rule": "paper: generators x2, discriminators and student detectors x1, frozen detectors x0"}


def _gan_section(args: argparse.Namespace) -> Mapping[str, Any]:
    if args.gan_yaml is not None:
        p = Path(args.gan_yaml)
        if not p.is_file():
            raise ConfigError(f"{p}: file does not exist")
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    from darkside.config import load_params

    params = load_params(args.params)
    preset = args.preset or params["preset"]
    if preset not in params["presets"] or "gan" not in params["presets"][preset]:
        raise ConfigError(f"{args.params}: presets.{preset}.gan: missing")
    return params["presets"][preset]["gan"]


def main(argv: Sequence[str] | None = None) -> int:
    """``darkside gan params --family F [--preset P] [--json]``: print the parameter counts."""
    ap = argparse.ArgumentParser(prog="darkside gan params", description=__doc__.splitlines()[0])
    ap.add_argument("--family", required=True)
    ap.add_argument("--preset", default=None, help="preset of params.yaml (default: its `preset` key)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--gan-yaml", default=None, help="a YAML file holding just a `gan` section (ad hoc)")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args(argv)
    settings = settings_for(_gan_section(args), args.family)
    res = count_parameters(args.family, settings)
    if args.json:
        sys.stdout.write(json.dumps(res, indent=2, sort_keys=True) + "\n")
    else:
        for name, b in res["blocks"].items():
            sys.stdout.write(f"{name:20s} {b['role']:14s} {b['params']:>12,d}\n")
        sys.stdout.write(f"{'plain total':35s} {res['plain_total']:>12,d}\n")
        sys.stdout.write(f"{'paper (Table 8) total':35s} {res['paper_total']:>12,d}  "
                         f"({res['paper_millions']} M)\n")
    return 0
