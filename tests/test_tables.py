import csv
import json

import numpy as np
import pytest

from darkside.config import load_preset
from darkside.tables.build import build_table, build_tables
from darkside.tables.paper import paper_tables, paper_value


def test_paper_numbers_transcribed():
    """Spot checks of the transcription against the paper (seed 000)."""
    assert paper_value("table1", "vgg16", "CycleGAN CD (ours)", "Tokyo") == 90.2
    assert paper_value("table1", "resnet101", "HED^N GAN CD (ours)", "Avg") == 78.4
    assert paper_value("table1", "how-resnet18", "HOW [41]", "ROxf") == 75.1
    assert paper_value("table5", "hedngan", "HED^N GAN CD", "Tokyo") == 88.8
    assert paper_value("table6", "main", "CLAHE N/D C", "N->S") == 86.2
    assert paper_value("table7", "generators", "DRIT CD", "Avg") == 73.5
    assert paper_value("table8", "generators", "CycleGAN", "Params (M)") == 51.0
    assert paper_value("table4", "ensembles", "HED^N MAC+GAN", "RPar") == 71.9
    t3 = paper_tables()["table3"]["blocks"]["robotcar-resnet101"]["rows"][1]
    assert t3["method"] == "CycleGAN CD" and t3["values"][2] == [16.3, 29.2, 40.9]
    # every retrieval row has one value per column
    for name in ("table1", "table4", "table5", "table6", "table7", "table8"):
        t = paper_tables()[name]
        for b in t["blocks"].values():
            for row in b["rows"]:
                assert len(row["values"]) == len(t["columns"]), (name, row["method"])


def _write_metrics(root, model, dataset, payload):
    p = root / model / f"{dataset}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(payload))


@pytest.fixture()
def mini(repo_root):
    return load_preset(repo_root / "params.yaml", "mini")


def test_table1_cells_with_ci_and_reasons(tmp_path, mini):
    rng = np.random.default_rng(0)
    tokyo = list(rng.uniform(0, 100, 50))
    ox = [*rng.uniform(0, 100, 20), None]  # a query without positives is skipped
    rp = list(rng.uniform(0, 100, 20))
    _write_metrics(tmp_path, "vgg16-offtheshelf", "synth-tokyo", {"per_query": {"mAP": {"ids": [], "ap": tokyo}}})
    _write_metrics(tmp_path, "vgg16-offtheshelf", "synth-roxford", {"per_query": {"medium": {"ids": [], "ap": ox}}})
    _write_metrics(tmp_path, "vgg16-offtheshelf", "synth-rparis", {"per_query": {"medium": {"ids": [], "ap": rp}}})
    t = build_table("table1", mini, tmp_path)
    vgg = t.blocks[0]
    row = vgg.rows[0]
    assert row.extra and row.recipe == "offtheshelf"
    avg, tok, rox, _rpa = row.cells
    assert tok.ours == pytest.approx(np.mean(tokyo))
    assert rox.ours == pytest.approx(np.mean([v for v in ox if v is not None]))
    assert avg.ours == pytest.approx((np.mean(tokyo) + rox.ours + np.mean(rp)) / 3)
    assert tok.ci_low < tok.ours < tok.ci_high
    assert tok.paper is None and tok.diff is None
    # a paper row the preset cannot produce says why, and keeps the paper's number
    gem = vgg.rows[1]
    assert gem.cells[1].paper == 79.4 and gem.cells[1].ours is None
    assert "gem" in gem.cells[1].note
    ciconv = vgg.rows[3]
    assert "external model" in ciconv.cells[1].note
    # the resnet101 block has no metrics at all
    assert t.blocks[1].rows[0].cells[0].ours is None


def test_written_files(tmp_path, mini):
    paths = build_tables(mini, tmp_path / "metrics", tmp_path / "tables", tables=["table1", "table6"])
    assert sorted(p.name for p in paths) == sorted(
        f"table{n}.{e}" for n in (1, 6) for e in ("csv", "md", "tex"))
    rows = list(csv.DictReader((tmp_path / "tables" / "table1.csv").open()))
    first = [r for r in rows if r["method"] == "GeM [30]" and r["block"] == "vgg16"]
    assert [r["column"] for r in first] == ["Avg", "Tokyo", "ROxf", "RPar"]
    assert first[1]["paper"] == "79.4" and first[1]["ours"] == "" and first[1]["note"]
    md = (tmp_path / "tables" / "table1.md").read_text()
    assert "| GeM [30] | n/p" in md and "Notes:" in md
    tex = (tmp_path / "tables" / "table1.tex").read_text()
    assert r"\begin{tabular}" in tex and "HED\\textasciicircum{}N" in tex
