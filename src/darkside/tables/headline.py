"""The tables' headline cells as one small metrics file, ``results/metrics/headline.json``: what ``dvc metrics
show`` / ``dvc metrics diff`` list and ``dvc exp show`` compares across a parameter sweep (``dvc exp run -S``).

Which cells: the mAP columns Avg, Tokyo, ROxf and RPar of the tables of the ``retrieval`` builder (Tables 1, 4,
5 and 7, the paper's main results), every row the preset produced: the paper's rows, the suite's extra rows and
the paired differences against the baseline. Read from the same frames the CSV files are
(:func:`darkside.tables.render.table_frame`), rounded as the CSV is (4 decimals).

Layout, two levels: ``{"<table>/<block>/<recipe>": {"<column>": mAP}}``, e.g. ``table1/vgg16/gem`` ->
``{"Avg", "Tokyo", "ROxf", "RPar"}`` (GeM fine-tuned, VGG16) and ``table1/paired-vgg16/cyclegan-cd`` -> the same
four columns of CycleGAN CD - CLAHE CD over the same queries (a row without a recipe is keyed by its method).
Numbers only: a cell that is not produced is left out, as is a row with none; the interval, the paper's value
and the notes stay in the tables.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from darkside.atomic import atomic_write_text
from darkside.errors import DarksideError

HEADLINE_BUILDERS = ("retrieval",)
HEADLINE_COLUMNS = ("Avg", "Tokyo", "ROxf", "RPar")


def headline(frames: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
    """The produced cells of :data:`HEADLINE_COLUMNS` of each frame (one per table), keyed as the module says."""
    out: dict[str, dict[str, float]] = {}
    for name, frame in frames.items():
        cells = frame[frame["column"].isin(HEADLINE_COLUMNS) & frame["ours"].notna()]
        for _, line in cells.iterrows():
            row = f"{name}/{line['block']}/{line['recipe'] or line['method']}"
            value = round(float(line["ours"]), 4)
            if not math.isfinite(value):
                continue
            if line["column"] in out.setdefault(row, {}):
                raise DarksideError(f"headline metrics: two rows of {name}/{line['block']} are {row!r}; "
                                    f"give them distinct recipes in paper_tables.yaml")
            out[row][line["column"]] = value
    return out


def write_headline(frames: Mapping[str, pd.DataFrame], path: Path) -> Path:
    """Write :func:`headline` of ``frames`` as JSON atomically (no NaN can get in: it is refused); return the path."""
    return atomic_write_text(path, json.dumps(headline(frames), indent=2, allow_nan=False) + "\n")
