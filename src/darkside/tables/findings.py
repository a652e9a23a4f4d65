"""The paper's findings as paired claims on this preset's models: per claim the per-query difference
``recipe - against`` on one column (or the mean of several), its 95% paired bootstrap interval over the
same queries, and whether the claim holds. A claim is an explicit ``expect`` (``above``: the interval
is clear of zero and the difference at least ``by``; ``below``: the mirror image; ``not_below``: the
interval's low end is at least ``-by``, i.e. inside [-by, +by] or above)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from darkside.errors import ConfigError
from darkside.settings import parse, setting
from darkside.tables.common import Metrics, TableInputs, builder, cell, paired_parts, uses_paired_data
from darkside.tables.render import Block, Cell, Row, Table

Expect = Literal["above", "below", "not_below"]
HOLDS, FAILS = "holds", "does not hold"


@dataclass(frozen=True)
class Claim:
    """One finding: ``recipe`` against ``against`` on ``column`` (a source, or a key of the layout's averages)."""

    method: str = setting("the claim as the table prints it")
    recipe: str = setting()
    against: str = setting()
    column: str = setting()
    expect: Expect = setting()
    by: float = setting("the least difference (above / below) or the tolerance (not_below)", ge=0, default=0.0)

    def holds(self, mean: float, lo: float, hi: float) -> bool:
        if self.expect == "above":
            return lo > 0 and mean >= self.by
        if self.expect == "below":
            return hi < 0 and mean <= -self.by
        return lo >= -self.by

    def wording(self) -> str:
        if self.expect == "above":
            return f"difference >= {self.by:g}, interval above 0" if self.by else "interval above 0"
        if self.expect == "below":
            return f"difference <= -{self.by:g}, interval below 0" if self.by else "interval below 0"
        return f"interval low end >= -{self.by:g}"


@builder("findings")
def build(name: str, spec: dict[str, Any], inputs: TableInputs, metrics: Metrics) -> Table:
    sources = {col: (getattr(inputs, role), key) for col, (role, key) in spec["sources"].items()}
    averages: dict[str, list[str]] = spec.get("averages", {})
    blocks = []
    for key, b in spec["blocks"].items():
        rows = []
        for i, raw in enumerate(b["rows"]):
            claim = parse(Claim, raw, f"{name}.blocks.{key}.rows[{i}]")
            parts = averages.get(claim.column, [claim.column])
            if unknown := [c for c in parts if c not in sources]:
                raise ConfigError(f"{name}/{key}: column {unknown[0]!r} is neither a source nor an average")
            cells = _claim_cell(claim, parts, b["backbone"], sources, inputs, metrics)
            rows.append(Row(claim.method, claim.recipe, [cells],
                            paired_data=uses_paired_data({"recipe": claim.recipe}, inputs.families)))
        blocks.append(Block(key, b["title"], rows))
    return Table(name, spec["title"], list(spec["columns"]), blocks)


def _claim_cell(claim: Claim, parts: list[str], backbone: str, sources: dict[str, tuple[str, str]],
                inputs: TableInputs, metrics: Metrics) -> Cell:
    if backbone not in inputs.backbones:
        return Cell(note=f"backbone {backbone} is not in preset {inputs.preset!r}")
    diffs, why = paired_parts(metrics, backbone, claim.recipe, claim.against, [sources[col] for col in parts])
    if diffs is None:
        return Cell(note=why)
    c = cell(None, diffs, inputs)
    if c.ours is None:
        return c
    verdict = HOLDS if claim.holds(c.ours, c.ci_low, c.ci_high) else FAILS
    c.note = f"{verdict} (claim: {claim.wording()})"
    return c
