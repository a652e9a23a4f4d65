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


def test_paired_differences_match_ids_and_drop_skipped_queries():
    from darkside.tables.build import paired_differences

    a = (["q1", "q2", "q3"], np.array([50.0, 20.0, np.nan]))
    b = (["q3", "q2", "q1"], np.array([10.0, 30.0, 40.0]))
    # matched by id, not position; q3 is skipped on one side
    assert paired_differences(a, b).tolist() == [10.0, -10.0]
    assert paired_differences(([], np.array([1.0, 2.0])), ([], np.array([0.5, 3.0]))).tolist() == [0.5, -1.0]
    with pytest.raises(ValueError, match="different lengths"):
        paired_differences(([], np.array([1.0])), ([], np.array([1.0, 2.0])))


def test_generator_rows_paired_against_clahe_cd(tmp_path, mini):
    """Tables 1 and 6 gain a block of '<GAN recipe> - CLAHE CD' rows: the mean per-query difference over
    the same queries, with a paired bootstrap interval narrower than either row's own."""
    rng = np.random.default_rng(1)
    ids = [f"q{i}" for i in range(60)]
    hard = rng.uniform(0, 60, 60)  # per-query difficulty both models share
    base = {"tokyo": hard, "rox": hard[:30], "rpa": hard[30:]}
    gan = {k: v + 2.0 + rng.normal(0, 0.5, v.size) for k, v in base.items()}
    for model, vals in (("vgg16-clahe-cd", base), ("vgg16-cyclegan-cd", gan)):
        night = {k: {"ids": ids[:20], "ap": list(vals["tokyo"][:20])} for k in
                 ("day->sunset", "sunset->day", "sunset->night", "night->sunset", "day->night", "night->day")}
        _write_metrics(tmp_path, model, "synth-tokyo",
                       {"per_query": {"mAP": {"ids": ids, "ap": list(vals["tokyo"])}, **night}})
        _write_metrics(tmp_path, model, "synth-roxford",
                       {"per_query": {"medium": {"ids": ids[:30], "ap": list(vals["rox"])}}})
        _write_metrics(tmp_path, model, "synth-rparis",
                       {"per_query": {"medium": {"ids": ids[30:], "ap": list(vals["rpa"])}}})
    t1 = build_table("table1", mini, tmp_path)
    paired = next(b for b in t1.blocks if b.key == "paired-vgg16")
    (row,) = paired.rows
    assert row.recipe == "cyclegan-cd" and row.extra and row.method == "CycleGAN CD (ours) - CLAHE CD"
    avg, tok, rox, rpa = row.cells
    assert tok.ours == pytest.approx(np.mean(gan["tokyo"] - base["tokyo"]))
    assert (rox.ours, rpa.ours) == pytest.approx((np.mean(gan["rox"] - base["rox"]), np.mean(gan["rpa"] - base["rpa"])))
    assert avg.ours == pytest.approx(np.mean([np.mean(gan[k] - base[k]) for k in ("tokyo", "rox", "rpa")]))
    assert 1.0 < tok.ci_low < tok.ours < tok.ci_high < 3.0  # unpaired, the rows' intervals overlap widely
    own = next(r for r in t1.blocks[0].rows if r.recipe == "cyclegan-cd").cells[1]
    assert own.ci_high - own.ci_low > 5 * (tok.ci_high - tok.ci_low)
    # no baseline on ResNet-101 -> no paired block there
    assert not any(b.key == "paired-resnet101" for b in t1.blocks)
    # Table 6 carries CycleGAN CD as an extra row; its paper rows (HED^N GAN) were not trained here
    t6 = build_table("table6", mini, tmp_path)
    (paired6,) = [b for b in t6.blocks if b.key.startswith("paired")]
    assert [r.recipe for r in paired6.rows] == ["cyclegan-cd"]
    assert paired6.rows[0].cells[4].ours == pytest.approx(np.mean(gan["tokyo"][:20] - base["tokyo"][:20]))


def test_rows_average_their_fine_tuning_seeds_query_by_query(tmp_path, mini):
    """With ``seeds: [0, 1]`` a fine-tuned row is the per-query mean of ``<model>`` and
    ``<model>.seed1`` (matched by query id), so its bootstrap resamples queries, not runs."""
    from darkside.config import Preset

    two = Preset("mini", {**mini.raw, "seeds": [0, 1]})
    ids = [f"q{i}" for i in range(8)]
    s0 = np.arange(8, dtype=float) * 10
    s1 = s0[::-1] + 1.0  # a different run scores the same queries differently
    for model, order in (("vgg16-gem", ids), ("vgg16-gem.seed1", ids[::-1])):
        vals = s0 if model == "vgg16-gem" else s1[::-1]  # stored in its own (reversed) query order
        _write_metrics(tmp_path, model, "synth-tokyo", {"per_query": {"mAP": {"ids": order, "ap": list(vals)}}})
        for ds in ("synth-roxford", "synth-rparis"):
            _write_metrics(tmp_path, model, ds, {"per_query": {"medium": {"ids": order, "ap": list(vals)}}})
    _write_metrics(tmp_path, "vgg16-offtheshelf", "synth-tokyo", {"per_query": {"mAP": {"ids": ids, "ap": list(s0)}}})
    for ds in ("synth-roxford", "synth-rparis"):
        _write_metrics(tmp_path, "vgg16-offtheshelf", ds, {"per_query": {"medium": {"ids": ids, "ap": list(s0)}}})
    t = build_table("table1", two, tmp_path)
    rows = {r.recipe: r for r in t.blocks[0].rows}
    tok = rows["gem"].cells[1]
    assert tok.ours == pytest.approx(np.mean((s0 + s1) / 2))
    assert "2 fine-tuning seeds" in tok.note
    assert rows["offtheshelf"].cells[1].note == ""  # not fine-tuned: one model, no seeds
    # the per-query mean, not a pooled set of 16 values: the interval is that of 8 averaged queries
    from darkside.evaluate.bootstrap import bootstrap_ci
    _, lo, hi = bootstrap_ci((s0 + s1) / 2, two.evaluate.bootstrap_samples, two.evaluate.bootstrap_seed)
    assert (tok.ci_low, tok.ci_high) == pytest.approx((lo, hi))
    # one seed in the preset: the seed-1 folder is ignored
    assert build_table("table1", mini, tmp_path).blocks[0].rows[1].cells[1].ours == pytest.approx(s0.mean())
