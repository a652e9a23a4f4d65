"""Table 8 from the generator runs' own logs (``<metrics>/gans/<family>.json``): training time in all and per
epoch (h:mm:ss here; the paper's hours are on a Tesla P100), epochs, parameters as the paper counts them (M)."""

from __future__ import annotations

from typing import Any

from darkside.tables.common import Metrics, TableInputs, blocks_of, builder
from darkside.tables.render import Cell, Table


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def params_note(paper: Any, millions: float) -> str:
    """A caveat where the measured count, as printed, is not the paper's (a scaled-down preset)."""
    differs = isinstance(paper, (int, float)) and f"{millions:.1f}" != f"{paper:.1f}"
    return "parameters of this preset's (scaled-down) networks" if differs else ""


#: the rule behind the paper's parameter column, inferred from its numbers (darkside.gan.params)
COUNTING_RULE = ("counted as the paper's numbers imply (an inferred rule, not stated in the paper): generators "
                 "twice, discriminators, heads and student detectors once, frozen detectors not at all")


def params_cell_note(paper: Any, millions: float, plain: float) -> str:
    """The parameter cell's note: the counting rule, the plain count beside it, and the scale caveat."""
    return "; ".join(filter(None, [COUNTING_RULE, f"every network once: {plain / 1e6:.1f} M",
                                   params_note(paper, millions)]))


@builder("generators")
def build(name: str, spec: dict[str, Any], inputs: TableInputs, metrics: Metrics) -> Table:
    def cells(b: dict[str, Any], row: dict[str, Any]) -> list[Cell]:
        fam, paper = row["family"], row.get("values") or [None] * len(spec["columns"])
        in_preset = fam in inputs.families
        reason = row.get("missing") or ("" if in_preset else f"family {fam!r} not in preset {inputs.preset!r}")
        if (g := None if reason else metrics.generator(fam)) is None:
            reason = reason or f"generator not trained by this preset's DAG (no gans/{fam}.json)"
            return [Cell(paper=v, note=reason) for v in paper]
        train_h, epoch_h, epochs, params = paper
        where = f"measured on {g.get('device', '?')}, {g['images_per_s']:.1f} images/s"
        millions = float(g["params_paper_millions"])
        return [Cell(paper=train_h, ours=g["train_s"] / 3600, display=_hms(g["train_s"]), note=where, wall_clock=True),
                Cell(paper=epoch_h, ours=g["epoch_s"] / 3600, display=_hms(g["epoch_s"]), note=where, wall_clock=True),
                Cell(paper=epochs, ours=float(g["epochs"]), display=str(g["epochs"])),
                Cell(paper=params, ours=millions, note=params_cell_note(params, millions, float(g["params_plain"])))]

    return Table(name, spec["title"], list(spec["columns"]), blocks_of(spec, inputs, metrics, cells))
