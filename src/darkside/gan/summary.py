"""A generator run's summary for Table 8: training time, time per epoch, epochs and parameter counts,
taken from the run's own log (``log.json``) and from the networks the preset's settings build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from darkside.atomic import atomic_write_json
from darkside.errors import DarksideError
from darkside.gan.family import GanSetup, family_class
from darkside.gan.params import count_parameters


def training_summary(run_dir: str | Path, setup: GanSetup, device: str) -> dict[str, Any]:
    """Times and throughput from ``<run_dir>/log.json``, the parameter counts (plain and Table 8's) and
    the family's title (the tables name rows of families they have no layout for by it)."""
    log_path = Path(run_dir) / "log.json"
    if not log_path.is_file():
        raise DarksideError(f"{log_path}: missing (the generator has not been trained)")
    log = json.loads(log_path.read_text(encoding="utf-8"))
    epochs = log["epochs"]
    if not epochs:
        raise DarksideError(f"{log_path}: no completed epoch")
    wall = [float(e["wall_s"]) for e in epochs]
    counts = count_parameters(setup)
    return {"family": log["family"], "title": family_class(setup.family).title, "device": device,
            "epochs": len(epochs), "train_s": sum(wall), "epoch_s": sum(wall) / len(wall),
            "images_per_s": sum(float(e["images_per_s"]) for e in epochs) / len(epochs),
            "params_plain": counts["plain_total"], "params_paper": counts["paper_total"],
            "params_paper_millions": counts["paper_millions"], "params_blocks": counts["blocks"]}


def write_training_summary(run_dir: str | Path, setup: GanSetup, device: str, out_json: str | Path) -> Path:
    """Write :func:`training_summary` as JSON (atomic); return the path."""
    return atomic_write_json(out_json, training_summary(run_dir, setup, device))
