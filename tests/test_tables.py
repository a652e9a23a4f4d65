import csv
import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from darkside.errors import ConfigError, DarksideError
from darkside.tables.build import TableInputs, build_table, build_tables, builders
from darkside.tables.generators import params_cell_note, params_note
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


def inputs_of(params_yaml, name):
    """The tables' inputs of a preset, read from params.yaml itself (as the CLI derives them)."""
    p = yaml.safe_load(params_yaml.read_text())["presets"][name]
    roles = p["data"]["roles"]
    return TableInputs(preset=name, tokyo=roles["tokyo"], roxford=roles["roxford"], rparis=roles["rparis"],
                       localization=tuple(roles["localization"]), cross_domain=dict(roles["cross_domain"]),
                       seeds=tuple(p["seeds"]),
                       bootstrap_samples=p["evaluate"]["bootstrap_samples"],
                       bootstrap_seed=p["evaluate"]["bootstrap_seed"],
                       backbones=tuple(p["backbones"]), families=tuple(p["gan"]["families"]))


@pytest.fixture()
def mini(repo_root):
    return inputs_of(repo_root / "params.yaml", "mini")


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
    assert ciconv.recipe == "ciconv" and "recipe 'ciconv' not produced" in ciconv.cells[1].note
    # the resnet101 block has no metrics at all
    assert t.blocks[1].rows[0].cells[0].ours is None


def test_a_rows_caveat_travels_with_its_produced_cells(tmp_path, mini):
    # CIConv is the suite's retrained network, not the authors' model: every produced cell says so
    for ds, key in (("synth-tokyo", "mAP"), ("synth-roxford", "medium"), ("synth-rparis", "medium")):
        _write_metrics(tmp_path, "vgg16-ciconv", ds, {"per_query": {key: {"ids": [], "ap": [10.0, 30.0]}}})
    row = build_table("table1", mini, tmp_path).blocks[0].rows[3]
    assert row.method == "CIConv [16]" and row.cells[1].ours == pytest.approx(20.0)
    assert all("retrained with this suite's GeM recipe" in c.note for c in row.cells)
    assert row.cells[1].paper == 83.3


def test_written_files(tmp_path, mini):
    paths = build_tables(mini, tmp_path / "metrics", tmp_path / "tables", tables=["table1", "table6"])
    assert sorted(p.name for p in paths) == sorted(
        f"table{n}.{e}" for n in (1, 6) for e in ("csv", "md", "tex"))
    rows = list(csv.DictReader((tmp_path / "tables" / "table1.csv").open()))
    first = [r for r in rows if r["method"] == "GeM [30]" and r["block"] == "vgg16"]
    assert [r["column"] for r in first] == ["Avg", "Tokyo", "ROxf", "RPar"]
    assert first[1]["paper"] == "79.4" and first[1]["ours"] == "" and first[1]["note"]
    md = (tmp_path / "tables" / "table1.md").read_text()
    assert re.search(r"\| GeM \[30\] +\| n/p \(\d\) ", md) and "Notes:" in md
    assert "## VGG-16 backbone" in md and "| Method " in md and "Tokyo paper" in md
    tex = (tmp_path / "tables" / "table1.tex").read_text()
    assert r"\begin{tabular}" in tex and "HED\\textasciicircum{}N" in tex and r"\multicolumn{3}{c}{Tokyo}" in tex
    assert "GeM [30] & n/p$^{(" in tex


def test_paired_differences_match_ids_and_drop_skipped_queries():
    from darkside.tables.common import paired_differences

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
    two = dataclasses.replace(mini, seeds=(0, 1))
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
    _, lo, hi = bootstrap_ci((s0 + s1) / 2, two.bootstrap_samples, two.bootstrap_seed)
    assert (tok.ci_low, tok.ci_high) == pytest.approx((lo, hi))
    # one seed in the preset: the seed-1 folder is ignored
    assert build_table("table1", mini, tmp_path).blocks[0].rows[1].cells[1].ours == pytest.approx(s0.mean())


def test_every_table_has_a_builder_and_unknown_names_are_one_line_errors(tmp_path, mini, monkeypatch):
    for name, spec in paper_tables().items():
        assert spec["builder"] in builders(), name
    with pytest.raises(DarksideError, match=r"unknown table 'table2'") as e:
        build_table("table2", mini, tmp_path)
    assert "\n" not in str(e.value)
    with pytest.raises(DarksideError, match="unknown table"):
        build_tables(mini, tmp_path, tmp_path / "tables", tables=["table1", "tabel3"])
    assert not (tmp_path / "tables").exists()  # nothing written before the bad name was seen
    monkeypatch.setattr("darkside.tables.build.paper_tables", lambda: {"table9": {"builder": "histogram"}})
    with pytest.raises(DarksideError, match=r"^table9: unknown builder 'histogram'"):
        build_table("table9", mini, tmp_path)


def _retrieval_metrics(root, model, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    ids = [f"q{i}" for i in range(30)]
    for ds, key in (("synth-tokyo", "mAP"), ("synth-roxford", "medium"), ("synth-rparis", "medium")):
        _write_metrics(root, model, ds, {"per_query": {key: {"ids": ids, "ap": list(rng.uniform(0, 90, 30) + shift)}}})


def test_a_new_family_gets_rows_in_tables_7_and_8(tmp_path, mini):
    # the preset's families that have rows of the paper's Table 7, and one more
    listed = {r["recipe"] for r in paper_tables()["table7"]["blocks"]["generators"]["rows"]}
    mini = dataclasses.replace(mini, families=tuple(f for f in mini.families if f"{f}-cd" in listed))
    toy = dataclasses.replace(mini, families=(*mini.families, "toygan"))
    (tmp_path / "gans").mkdir()
    (tmp_path / "gans" / "toygan.json").write_text(json.dumps(
        {"title": "ToyGAN", "device": "cpu", "images_per_s": 3.0, "train_s": 3725.0, "epoch_s": 931.0,
         "epochs": 4, "params_paper_millions": 0.5, "params_plain": 300_000}))
    _retrieval_metrics(tmp_path, "vgg16-clahe-cd")
    _retrieval_metrics(tmp_path, "vgg16-toygan-cd", shift=5.0)
    t7 = build_table("table7", toy, tmp_path)
    gens = next(b for b in t7.blocks if b.key == "generators")
    extra = [r.method for r in gens.rows if r.extra]
    assert extra == ["Oracle CD (the benchmark's night renderer)", "ToyGAN CD"]  # the layout's, then the family's
    row = gens.rows[-1]
    assert row.recipe == "toygan-cd" and row.cells[1].ours is not None and row.cells[1].paper is None
    paired = next(b for b in t7.blocks if b.key == "paired-generators")
    assert [(r.method, r.recipe) for r in paired.rows] == [("ToyGAN CD - CLAHE CD", "toygan-cd")]
    # the layout's families keep their own rows: no duplicates, and the preset without toygan adds none
    assert len(gens.rows) == len(paper_tables()["table7"]["blocks"]["generators"]["rows"]) + 2
    assert [r.method for r in build_table("table7", mini, tmp_path).blocks[0].rows if r.extra] == extra[:1]
    t8 = build_table("table8", toy, tmp_path)
    (new,) = [r for r in t8.blocks[0].rows if r.extra]
    assert (new.method, new.recipe) == ("ToyGAN", "toygan")
    assert new.cells[0].display == "1:02:05" and new.cells[3].ours == 0.5
    # the measured hours, and only they, are marked as what no two runs share
    assert [c.wall_clock for c in new.cells] == [True, True, False, False]
    assert new.cells[3].note == params_cell_note(None, 0.5, 300_000)
    # no summary title: the family's name
    (tmp_path / "gans" / "toygan.json").write_text(json.dumps({"device": "cpu"}))
    t7 = build_table("table7", toy, tmp_path)
    assert any(r.method == "toygan CD" for r in t7.blocks[0].rows)


def test_paired_rows_follow_the_recipes_generator_field(tmp_path, mini, monkeypatch):
    """Whether a row is compared against CLAHE CD is the recipe's typed `generator`, not its name."""
    _retrieval_metrics(tmp_path, "vgg16-clahe-cd")
    for recipe in ("clahe-c", "hedngan", "hedngan-c", "hedngan-cd"):
        _retrieval_metrics(tmp_path, f"vgg16-{recipe}", seed=1)
    t5 = build_table("table5", mini, tmp_path)
    paired = {b.key: [r.recipe for r in b.rows] for b in t5.blocks if b.key.startswith("paired")}
    assert paired == {"paired-hedngan": ["hedngan", "hedngan-c", "hedngan-cd"]}  # clahe-c/-cd have none
    # a recipe named like a family but without a generator gets none; one named otherwise but with one does
    import darkside.recipes as recipes
    from darkside.recipes import Recipe

    real = recipes.recipe_by_name

    def fake(name, families=()):
        if name == "clahe-c":
            return Recipe(name=name, clahe=True, diverse_anchors=False, generator="hedngan")
        if name == "hedngan":
            return Recipe(name=name, clahe=False, diverse_anchors=False, generator=None)
        return real(name, families)

    monkeypatch.setattr("darkside.tables.common.recipe_by_name", fake)
    t5 = build_table("table5", mini, tmp_path)
    paired = {b.key: [r.recipe for r in b.rows] for b in t5.blocks if b.key.startswith("paired")}
    assert paired == {"paired-baselines": ["clahe-c"], "paired-hedngan": ["hedngan-c", "hedngan-cd"]}


def test_table8_params_note_only_where_the_count_differs_from_the_paper(tmp_path, mini):
    note = "parameters of this preset's (scaled-down) networks"
    assert params_note(51.0, 1.4) == note
    assert params_note(51.0, 51.04) == "" and params_note(40, 40.0) == ""  # equal as printed
    assert params_note(51.0, 50.96) == ""
    assert params_note(None, 1.4) == ""  # the paper has no number
    full = params_cell_note(26.0, 26.01, 14_636_484)
    assert full.startswith("counted as the paper's numbers imply (an inferred rule")
    assert "every network once: 14.6 M" in full
    assert note not in full and note in params_cell_note(26.0, 1.2, 700_000)
    (tmp_path / "gans").mkdir()
    for fam, millions in (("cyclegan", 51.0), ("hedgan", 1.2)):
        (tmp_path / "gans" / f"{fam}.json").write_text(json.dumps(
            {"device": "cpu", "images_per_s": 3.0, "train_s": 60.0, "epoch_s": 15.0, "epochs": 4,
             "params_paper_millions": millions, "params_plain": 1_000_000}))
    rows = {r.recipe: r for r in build_table("table8", mini, tmp_path).blocks[0].rows}
    assert rows["cyclegan"].cells[3].note == params_cell_note(51.0, 51.0, 1_000_000)
    assert rows["hedgan"].cells[3].note == params_cell_note(25.5, 1.2, 1_000_000)
    assert note in rows["hedgan"].cells[3].note
    assert rows["drit"].cells[0].note == "generator not trained by this preset's DAG (no gans/drit.json)"
    assert rows["hedngan"].cells[0].note == "generator not trained by this preset's DAG (no gans/hedngan.json)"


def _findings_metrics(root, model, base, shift):
    """Tokyo (mAP and the four night cells), ROxf and RPar per-query values ``base + shift`` for ``model``."""
    ids = [f"q{i}" for i in range(len(base))]
    night = {k: {"ids": ids, "ap": list(base + shift)}
             for k in ("sunset->night", "night->sunset", "day->night", "night->day")}
    _write_metrics(root, model, "synth-tokyo", {"per_query": {"mAP": {"ids": ids, "ap": list(base + shift)}, **night}})
    for ds in ("synth-roxford", "synth-rparis"):
        _write_metrics(root, model, ds, {"per_query": {"medium": {"ids": ids, "ap": list(base + shift)}}})


def test_findings_are_paired_claims_that_hold_or_not_by_their_interval(tmp_path, mini):
    rng = np.random.default_rng(3)
    base = rng.uniform(10, 80, 60)
    noise = rng.normal(0, 0.5, 60)
    shifts = {"offtheshelf": -5.0, "gem": 0.0, "clahe-c": 0.0, "clahe-nd-c": 3.0, "clahe-cd": 0.0,
              "hedngan-cd": 2.0, "cyclegan-cd": 2.5 + noise, "lab-inversion": 1.0, "oracle-cd": 12.0,
              "gem-n2d-cyclegan": -3.0, "ciconv": 2.0}
    for recipe, s in shifts.items():
        _findings_metrics(tmp_path, f"vgg16-{recipe}", base, s)
    # ResNet-101's CIConv: above GeM on the Tokyo-like set, below on the day-only ones
    _findings_metrics(tmp_path, "resnet101-gem", base, 0.0)
    _findings_metrics(tmp_path, "resnet101-ciconv", base, -2.0)
    _write_metrics(tmp_path, "resnet101-ciconv", "synth-tokyo",
                   {"per_query": {"mAP": {"ids": [f"q{i}" for i in range(60)], "ap": list(base + 3.0)}}})
    # HOW: N/D and the GAN CD recipes above HOW on the Tokyo-like set
    for recipe, s in (("how", 0.0), ("how-nd", 1.0), ("how-hedngan-cd", 2.0), ("how-cyclegan-cd", 2.0)):
        _findings_metrics(tmp_path, f"resnet18-{recipe}", base, s)
    t = build_table("findings", mini, tmp_path)
    rows = {r.method: r.cells[0] for b in t.blocks for r in b.rows}
    assert all(c.note.startswith("holds") for c in rows.values()), {m: c.note for m, c in rows.items()}
    gem = rows["fine-tuning helps: GeM - off-the-shelf, Tokyo"]
    assert gem.ours == pytest.approx(5.0) and gem.ci_low == pytest.approx(5.0)  # a constant shift: no spread
    assert rows["colour invariance costs day retrieval: CIConv - GeM (ResNet-101), RPar"].ours == pytest.approx(-2.0)
    cyc = rows["CycleGAN CD - CLAHE CD, mean night cell"]
    assert cyc.ours == pytest.approx(2.5 + noise.mean()) and cyc.ci_low < cyc.ours < cyc.ci_high

    # a day cell 1.5 points lower breaks "day stays"; an oracle only 8 points up is not room enough
    _findings_metrics(tmp_path, "vgg16-hedngan-cd", base, np.r_[np.full(30, -1.5), np.full(30, -1.5)])
    _findings_metrics(tmp_path, "vgg16-oracle-cd", base, 8.0)
    rows = {r.method: r.cells[0] for b in build_table("findings", mini, tmp_path).blocks for r in b.rows}
    assert rows["day stays: HED^N GAN CD - CLAHE CD, ROxf"].note.startswith("does not hold")
    assert rows["HED^N GAN CD - CLAHE CD, Tokyo"].note.startswith("does not hold")
    assert rows["room left: Oracle CD - CLAHE CD, mean night cell"].note == \
        "does not hold (claim: difference >= 10, interval above 0)"

    (tmp_path / "vgg16-oracle-cd" / "synth-tokyo.json").unlink()
    rows = {r.method: r.cells[0] for b in build_table("findings", mini, tmp_path).blocks for r in b.rows}
    assert rows["room left: Oracle CD - CLAHE CD, mean night cell"].ours is None
    assert "oracle-cd" in rows["room left: Oracle CD - CLAHE CD, mean night cell"].note


def test_instrument_reads_rows_against_chance_and_the_oracle(tmp_path, mini):
    rng = np.random.default_rng(5)
    base = rng.uniform(10, 80, 60)
    for recipe, s in {"offtheshelf": -5.0, "gem": 0.0, "clahe-c": 1.0, "clahe-cd": 2.0, "oracle-cd": 14.0}.items():
        _findings_metrics(tmp_path, f"vgg16-{recipe}", base, s)
    cells = {"sunset->night": 0.8, "night->sunset": 0.7, "day->night": 0.9, "night->day": 0.6}
    _write_metrics(tmp_path, "chance", "synth-tokyo", {"draws": 20, "metrics": {"mAP": 0.93},
                                                       "breakdown": {**cells, "day->sunset": 0.5}})
    _write_metrics(tmp_path, "chance", "synth-roxford", {"draws": 20, "metrics": {"mAP": 2.07, "medium.mAP": 2.07}})
    t = build_table("instrument", mini, tmp_path)
    rows = {r.method: r for r in t.blocks[0].rows}
    col = {c: i for i, c in enumerate(t.columns)}
    chance = rows["chance"]
    assert chance.extra and next(iter(rows)) == "chance"
    assert chance.cells[col["Tokyo"]].ours == pytest.approx(0.93)
    assert chance.cells[col["night"]].ours == pytest.approx(0.75)  # the mean of the four night cells
    assert chance.cells[col["ROxf"]].ours == pytest.approx(2.07)
    assert "run `darkside chance`" in chance.cells[col["RPar"]].note  # no chance file for the Paris-like set
    assert rows["GeM"].cells[col["Tokyo"]].ours == pytest.approx(base.mean())
    room = rows["room left: Oracle CD - CLAHE CD"].cells
    assert room[col["night"]].ours == pytest.approx(12.0) and room[col["ROxf"]].ours == pytest.approx(12.0)
    assert rows["day-trained gap: Oracle CD - GeM"].cells[col["Tokyo"]].ours == pytest.approx(14.0)
    (tmp_path / "vgg16-oracle-cd" / "synth-tokyo.json").unlink()
    rows = {r.method: r for r in build_table("instrument", mini, tmp_path).blocks[0].rows}
    assert rows["room left: Oracle CD - CLAHE CD"].cells[col["Tokyo"]].ours is None
    assert "oracle-cd" in rows["Oracle CD (the benchmark's night renderer)"].cells[col["Tokyo"]].note


def test_instrument_rejects_a_chance_file_without_draws(tmp_path, mini):
    _write_metrics(tmp_path, "chance", "synth-tokyo", {"metrics": {"mAP": 0.9}, "breakdown": {}})
    with pytest.raises(DarksideError, match=r"chance/synth-tokyo\.json: no 'draws'"):
        build_table("instrument", mini, tmp_path)


def test_a_table_is_one_read_csv_of_the_frame_it_was_written_from(tmp_path, mini):
    """The CSV is the table's long frame as it stands: ``pandas.read_csv`` gives back its columns, its numbers (to
    the 4 decimals written) and typed marks; Markdown and LaTeX print the same cells."""
    from darkside.tables.render import COLUMNS, table_frame, write_table

    _retrieval_metrics(tmp_path, "vgg16-gem")
    _retrieval_metrics(tmp_path, "vgg16-clahe-cd", seed=1)
    _retrieval_metrics(tmp_path, "vgg16-cyclegan-cd", seed=2, shift=3.0)
    frame = table_frame(build_table("table1", mini, tmp_path))
    (csv_path, md_path, tex_path) = write_table(frame, tmp_path / "tables")
    back = pd.read_csv(csv_path)
    assert list(back.columns) == list(COLUMNS) and len(back) == len(frame)
    assert back["extra"].dtype == bool and back["paired_data"].dtype == bool
    assert (back["extra"] == frame["extra"]).all() and (back["paired_data"] == frame["paired_data"]).all()
    for col in ("ours", "ci_low", "ci_high", "diff", "paper"):
        assert np.allclose(back[col].astype(float), frame[col].astype(float), atol=5e-5, equal_nan=True), col
    assert back["ours"].notna().sum() == 12  # gem, cyclegan-cd and its paired difference, 4 columns each
    gem = back[(back["block"] == "vgg16") & (back["recipe"] == "gem")].set_index("column")
    assert gem.loc["Tokyo", "paper"] == 79.4 and gem.loc["Tokyo", "diff"] == pytest.approx(
        gem.loc["Tokyo", "ours"] - 79.4, abs=1e-3)
    # every produced cell of the frame is printed in Markdown and LaTeX, as value [low, high] and difference
    md, tex = md_path.read_text(), tex_path.read_text()
    for _, line in frame[frame["ours"].notna()].iterrows():
        shown = f"{line['ours']:.1f} [{line['ci_low']:.1f}, {line['ci_high']:.1f}]"
        assert shown in md and shown in tex, (line["method"], line["column"])
        if not math.isnan(line["diff"]):
            assert f"{line['diff']:+.1f}" in md and f"{line['diff']:+.1f}" in tex
    # each distinct note once, numbered, in both
    for i, note in enumerate(dict.fromkeys(n for n in frame["note"] if n), 1):
        assert f"- ({i}) {note}" in md and f"% ({i}) " in tex


#: the rows the paper marks "!" (paired day-night training data), as its tables print them (seed 000)
PAPER_MARKED = {"table1": {"GeM N/D [13]", "CLAHE N/D C [13]", "HOW N/D"},
                "table5": {"CLAHE N/D C", "CLAHE N/D CD"},
                "table6": {"CLAHE N/D C"},
                "table7": {"C-GAN+N/D CD", "C-GAN+N/D 50% CD"}}


def test_paired_data_rows_carry_the_papers_mark_in_every_output(tmp_path, mini):
    """The paper's `!` rows, and the suite's rows of recipes trained with N/D pairs (a paired difference of one,
    a claim about one), carry the mark: a typed column in the CSV, `!` after the method in Markdown and LaTeX."""
    _retrieval_metrics(tmp_path, "vgg16-clahe-cd")
    _retrieval_metrics(tmp_path, "vgg16-cyclegan-cd-nd", seed=3, shift=2.0)
    from darkside.tables.render import tex_escape

    build_tables(mini, tmp_path, tmp_path / "tables", tables=[*PAPER_MARKED, "findings"])
    for table, marked in PAPER_MARKED.items():
        rows = pd.read_csv(tmp_path / "tables" / f"{table}.csv")
        paper_rows = rows[~rows["extra"]]
        assert set(paper_rows.loc[paper_rows["paired_data"], "method"]) == marked, table
        md = (tmp_path / "tables" / f"{table}.md").read_text()
        tex = (tmp_path / "tables" / f"{table}.tex").read_text()
        for method in set(paper_rows["method"]):
            in_md = re.search(rf"^\| {re.escape(method)} !", md, re.M) is not None
            in_tex = f"& {tex_escape(method)} ! &" in tex
            assert in_md == in_tex == (method in marked), (table, method)
        assert "! uses paired day-night training data" in md and "% ! uses paired day-night" in tex
    t7 = pd.read_csv(tmp_path / "tables" / "table7.csv")
    paired = t7[t7["block"] == "paired-nd"]
    assert set(paired["method"]) == {"C-GAN+N/D CD - CLAHE CD"} and paired["paired_data"].all()
    assert "| C-GAN+N/D CD - CLAHE CD ! * " in (tmp_path / "tables" / "table7.md").read_text()
    findings = pd.read_csv(tmp_path / "tables" / "findings.csv")
    assert set(findings.loc[findings["paired_data"], "recipe"]) == {"clahe-nd-c", "how-nd"}
    # a table without such rows says nothing about the mark
    build_tables(mini, tmp_path, tmp_path / "tables", tables=["table8"])
    assert "!" not in (tmp_path / "tables" / "table8.md").read_text()


def test_the_mark_follows_typed_fields_not_method_names(tmp_path, mini, monkeypatch):
    """A layout row's `nd`, else its recipe's `day_night_pairs`; never "N/D" in a name. A row whose `nd`
    contradicts its recipe is a one-line layout error."""
    layout = {"builder": "retrieval", "title": "T", "columns": ["Tokyo"], "sources": {"Tokyo": ["tokyo", "mAP"]},
              "blocks": {"b": {"title": "B", "backbone": "vgg16", "rows": [
                  {"method": "GeM N/D lookalike", "recipe": "gem", "values": [1.0]},
                  {"method": "plain name", "recipe": "clahe-nd-cd", "values": [1.0]},
                  {"method": "external N/D", "recipe": None, "nd": True, "values": [1.0]},
                  {"method": "external", "recipe": None, "nd": False, "values": [1.0]}]}}}
    monkeypatch.setattr("darkside.tables.build.paper_tables", lambda: {"t": layout})
    rows = {r.method: r.paired_data for r in build_table("t", mini, tmp_path).blocks[0].rows}
    assert rows == {"GeM N/D lookalike": False, "plain name": True, "external N/D": True, "external": False}
    layout["blocks"]["b"]["rows"] = [{"method": "GeM", "recipe": "gem", "nd": True, "values": [1.0]}]
    with pytest.raises(ConfigError, match=r"row 'GeM' says nd: true, but recipe 'gem' has day_night_pairs=False"):
        build_table("t", mini, tmp_path)


def test_the_layouts_nd_agrees_with_the_recipes_the_suite_trains():
    """Every paper row that names a suite recipe marks `nd` as that recipe trains (no silent drift)."""
    from darkside.recipes import named_recipes

    recipes = named_recipes(["cyclegan", "hedngan", "hedgan", "rcfngan", "cut", "cyeda", "drit"])
    checked = 0
    for name, t in paper_tables().items():
        for key, b in t["blocks"].items():
            for row in b["rows"]:
                if "nd" in row and row.get("recipe") in recipes:
                    assert row["nd"] == recipes[row["recipe"]].day_night_pairs, (name, key, row["method"])
                    checked += 1
    assert checked >= 25


def test_headline_metrics_are_the_retrieval_tables_main_cells_numbers_only(tmp_path, mini):
    """headline.json: {"<table>/<block>/<recipe>": {column: mAP}} of the retrieval tables' produced Avg / Tokyo /
    ROxf / RPar cells, the CSV's numbers; no string, no NaN, nothing for a cell that was not produced."""
    _retrieval_metrics(tmp_path, "vgg16-gem")
    _retrieval_metrics(tmp_path, "vgg16-clahe-cd", seed=1)
    _retrieval_metrics(tmp_path, "vgg16-cyclegan-cd", seed=2, shift=3.0)
    ids = [f"q{i}" for i in range(30)]
    for ds, key in (("synth-tokyo", "mAP"), ("synth-roxford", "medium"), ("synth-rparis", "medium")):
        _write_metrics(tmp_path, "vgg16-clahe-c", ds, {"per_query": {key: {"ids": ids, "ap": [None] * 30}}})
    out = tmp_path / "metrics-out" / "headline.json"
    # every table whose cells these files can fill (the instrument table needs the lighting breakdown)
    tables = ["table1", "table3", "table4", "table5", "table6", "table7", "table8", "findings"]
    paths = build_tables(mini, tmp_path, tmp_path / "tables", tables=tables, headline=out)
    assert out in paths

    def no_constant(name):
        raise AssertionError(f"{name} in headline.json")

    head = json.loads(out.read_text(), parse_constant=no_constant)
    values = [v for row in head.values() for v in row.values()]
    assert values and all(type(v) is float and math.isfinite(v) for v in values)
    assert {k.split("/")[0] for k in head} == {"table1", "table5", "table7"}  # retrieval tables, produced rows
    assert set(head["table5/baselines/clahe-cd"]) == {"Avg", "Tokyo", "ROxf", "RPar"}
    assert all(set(row) <= {"Avg", "Tokyo", "ROxf", "RPar"} for row in head.values())
    assert set(head["table1/vgg16/gem"]) == {"Avg", "Tokyo", "ROxf", "RPar"}
    assert "table1/paired-vgg16/cyclegan-cd" in head and "table7/generators/cyclegan-cd" in head
    assert not any(k.rsplit("/", 1)[1] == "clahe-c" for k in head)  # no scored queries: not produced
    assert not any(k.startswith(("table6/", "findings/", "instrument/", "table8/")) for k in head)
    # the same numbers as the CSV
    t1 = pd.read_csv(tmp_path / "tables" / "table1.csv")
    for row, cells in head.items():
        table, block, recipe = row.split("/")
        if table != "table1":
            continue
        for col, v in cells.items():
            (ours,) = t1[(t1["block"] == block) & (t1["recipe"] == recipe) & (t1["column"] == col)]["ours"]
            assert v == pytest.approx(ours, abs=1e-9), (row, col)
    # without --headline nothing is written there
    out.unlink()
    build_tables(mini, tmp_path, tmp_path / "tables", tables=["table1"])
    assert not out.exists()


def test_headline_rows_must_be_distinct():
    from darkside.tables.headline import headline

    frame = pd.DataFrame({"block": ["b", "b"], "recipe": ["gem", "gem"], "method": ["GeM", "GeM again"],
                          "column": ["Tokyo", "Tokyo"], "ours": [1.0, 2.0]})
    with pytest.raises(DarksideError, match=r"two rows of t/b are 't/b/gem'"):
        headline({"t": frame})


def test_an_ensemble_row_is_filled_from_its_metrics_and_paired_against_its_parts(tmp_path, mini):
    """Table 4's ensembles: the `a+b` row reads `vgg16-a+b`'s metrics like any model, a block follows with the row
    minus each of its `paired_with` models over the same queries, and a row without metrics says so."""
    _retrieval_metrics(tmp_path, "vgg16-hedngan-cd", seed=1)
    _retrieval_metrics(tmp_path, "vgg16-cyclegan-cd", seed=2)
    _retrieval_metrics(tmp_path, "vgg16-hedngan-cd+cyclegan-cd", seed=3, shift=5.0)
    t4 = build_table("table4", mini, tmp_path)
    ens = next(b for b in t4.blocks if b.key == "ensembles")
    row = ens.rows[0]
    assert row.recipe == "hedngan-cd+cyclegan-cd" and row.extra
    mine = np.array(json.loads((tmp_path / "vgg16-hedngan-cd+cyclegan-cd" / "synth-tokyo.json").read_text())
                    ["per_query"]["mAP"]["ap"])
    assert row.cells[1].ours == pytest.approx(mine.mean()) and row.cells[1].ci_low < mine.mean()
    for r in ens.rows[1:]:  # the paper's rows, recipes of the preset whose metrics this test did not write
        assert r.cells[0].ours is None and r.cells[0].note.startswith(f"recipe {r.recipe!r} not produced")
    from darkside.tables.common import model_note

    unknown = {"method": "x", "recipe": "edgemac-sketch+gem"}  # a part no module provides
    assert model_note(unknown, "vgg16", ["synth-tokyo"], mini, None) == (
        None, "ensemble part 'edgemac-sketch' is not a recipe of the suite yet")
    paired = next(b for b in t4.blocks if b.key == "paired-with-ensembles")
    assert [(r.method, r.recipe) for r in paired.rows] == [
        ("HED^N GAN CD + CycleGAN CD - HED^N GAN CD", "hedngan-cd+cyclegan-cd - hedngan-cd"),
        ("HED^N GAN CD + CycleGAN CD - CycleGAN CD", "hedngan-cd+cyclegan-cd - cyclegan-cd")]
    for r, part in zip(paired.rows, ("vgg16-hedngan-cd", "vgg16-cyclegan-cd"), strict=True):
        theirs = np.array(json.loads((tmp_path / part / "synth-tokyo.json").read_text())["per_query"]["mAP"]["ap"])
        assert r.extra and r.cells[1].ours == pytest.approx(np.mean(mine - theirs))
    # no metrics of a baseline: no row against it; of the ensemble: no paired block
    for d in ("synth-tokyo", "synth-roxford", "synth-rparis"):
        (tmp_path / "vgg16-cyclegan-cd" / f"{d}.json").unlink()
    t4 = build_table("table4", mini, tmp_path)
    assert [r.recipe for r in next(b for b in t4.blocks if b.key == "paired-with-ensembles").rows] == [
        "hedngan-cd+cyclegan-cd - hedngan-cd"]
    # each difference has its own headline key (two rows of one recipe in a block would be refused)
    from darkside.tables.headline import headline
    from darkside.tables.render import table_frame

    assert "table4/paired-with-ensembles/hedngan-cd+cyclegan-cd - hedngan-cd" in headline({"table4": table_frame(t4)})


def test_the_papers_ensembles_are_paired_against_their_image_embedding_alone():
    """Table 4 (the issue): HEDMAC+GeM and HED^N MAC+GeM against GeM, HED^N MAC + ^N GAN against HED^N GAN CD,
    HED^N MAC + GAN against CycleGAN CD; each row's parts are the recipes its name joins."""
    rows = paper_tables()["table4"]["blocks"]["ensembles"]["rows"]
    assert {r["recipe"]: [b["recipe"] for b in r["paired_with"]] for r in rows} == {
        "edgemac-hed+gem": ["gem"], "edgemac-hedn+gem": ["gem"], "edgemac-hedn+hedngan-cd": ["hedngan-cd"],
        "edgemac-hedn+cyclegan-cd": ["cyclegan-cd"]}
    assert all(r["paired_with"][0]["recipe"] in r["recipe"].split("+") and "missing" not in r for r in rows)


def test_paired_with_is_a_typed_list_of_baselines(tmp_path, mini, monkeypatch):
    layout = {"builder": "retrieval", "title": "t", "columns": ["Tokyo"], "sources": {"Tokyo": ["tokyo", "mAP"]},
              "blocks": {"b": {"title": "b", "backbone": "vgg16",
                               "rows": [{"method": "GeM", "recipe": "gem", "paired_with": {"recipe": "clahe-c"}}]}}}
    monkeypatch.setattr("darkside.tables.build.paper_tables", lambda: {"t": layout})
    with pytest.raises(ConfigError, match=r"row 'GeM': paired_with: expected a list of \{method, recipe\}"):
        build_table("t", mini, tmp_path)
    layout["blocks"]["b"]["rows"][0]["paired_with"] = [{"recipe": "clahe-c"}]
    with pytest.raises(ConfigError, match=r"row 'GeM': paired_with\[0\]\.method: missing key"):
        build_table("t", mini, tmp_path)


def test_table1_how_block_rows_are_paired_against_how(tmp_path, mini):
    """Table 1's HOW ResNet-18 block: its four rows from the resnet18-how* models (scored by ASMK), and each
    augmented row's paired difference against HOW itself (there is no CLAHE CD with HOW)."""
    for recipe, shift in (("how", 0.0), ("how-nd", 1.0), ("how-hedngan-cd", 2.0), ("how-cyclegan-cd", 3.0)):
        _retrieval_metrics(tmp_path, f"resnet18-{recipe}", shift=shift)
    blocks = {b.key: b for b in build_table("table1", mini, tmp_path).blocks}
    how = {r.method: r for r in blocks["how-resnet18"].rows}
    assert set(how) == {"HOW [41]", "HOW N/D", "HED^N GAN CD (ours)", "CycleGAN CD (ours)"}
    assert all(c.ours is not None for r in how.values() for c in r.cells)
    paired = {r.method: r.cells for b in blocks.values() if "resnet18" in b.title for r in b.rows if " - " in r.method}
    assert set(paired) == {"HOW N/D - HOW [41]", "HED^N GAN CD (ours) - HOW [41]", "CycleGAN CD (ours) - HOW [41]"}
    assert paired["CycleGAN CD (ours) - HOW [41]"][1].ours == pytest.approx(3.0)  # Tokyo: a constant shift


# --- MDUIT's Table 1 (RobotCar Seasons localization by retrieval with z_s) -------------------------------------

#: the table as the seed text (../shared/seeds/001_0f846abf8a1214e3.txt) has it, tab-separated, verbatim
MDUIT_TABLE1 = """\
Method\tDay-All\t\t\tNight-All\t\t
\t0.25m 2°\t0.5m 5°\t5m 10°\t0.25m 2°\t0.5m 5°\t5m 10°
NetVLAD [35] (baseline)\t6.4\t26.3\t90.9\t0.3\t2.3\t15.9
w/o I2I, \\mathcal{L}_{NCE}\t2.9\t12.7\t56.8\t0.2\t1.3\t18.7
w/o I2I\t5.1\t18.9\t74.9\t0.7\t4.4\t27.7
w/o \\mathcal{L}_{NCE}\t7.7\t25.9\t82.4\t1.7\t6.3\t41.9
<i>Full</i>\t8.5\t31.8\t88.2\t4.1\t14.2\t61.0
"""
MDUIT_SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "001_0f846abf8a1214e3.txt"


def test_mduit_table1_is_transcribed_cell_by_cell():
    if MDUIT_SEED.is_file():  # the seed text is beside the checkout where it was transcribed
        assert MDUIT_TABLE1 in MDUIT_SEED.read_text(encoding="utf-8")
    lines = MDUIT_TABLE1.splitlines()
    groups = [g for g in lines[0].split("\t")[1:] if g]
    thresholds = [tuple(float(v.rstrip("m°")) for v in c.split()) for c in lines[1].split("\t")[1:]]
    t = paper_tables()["mduit-table1"]
    assert [g["name"] for g in t["query_groups"]] == groups == ["Day-All", "Night-All"]
    assert [tuple(map(float, x)) for x in t["thresholds"]] * 2 == thresholds
    rows = t["blocks"]["robotcar-vgg16"]["rows"]
    names = {"w/o I2I, \\mathcal{L}_{NCE}": "w/o I2I, L_NCE", "w/o \\mathcal{L}_{NCE}": "w/o L_NCE",
             "<i>Full</i>": "Full"}
    assert len(rows) == len(lines) - 2
    for row, line in zip(rows, lines[2:], strict=True):
        method, *values = line.split("\t")
        assert row["method"] == names.get(method, method)
        assert [v for group in row["values"] for v in group] == [float(v) for v in values], method
    assert [r["recipe"] for r in rows] == ["netvlad", "mduit-no-i2i-no-nce-content", "mduit-no-i2i-content",
                                           "mduit-no-nce-content", "mduit-content"]


def _localization_run(domains, position, rotation):
    return {"localization": {"per_query": {
        "ids": [f"q{i}" for i in range(len(domains))], "domains": domains,
        "position_error_m": position, "rotation_error_deg": rotation}}}


def test_mduit_table1_pools_query_domains_and_pairs_each_ablation_against_full(tmp_path, mini):
    """Day-All = day and sunset queries, Night-All = night ones, each cell 100 x the share within the threshold;
    an unlocalised query (no pose) misses; the ablations' paired rows are minus Full on the same queries."""
    robotcar = mini.localization[1]
    domains = ["day", "sunset", "night", "night", "dusk-not-a-domain"]
    # Full: q0 (day) within 0.25 m 2 deg, q1 (sunset) within 5 m 10 deg only, q2 (night) within 0.5 m 5 deg, q3
    # (night) unlocalised; the fifth query's domain is in neither group
    full = _localization_run(domains, [0.1, 3.0, 0.4, None, 0.1], [1.0, 8.0, 3.0, None, 1.0])
    netvlad = _localization_run(domains, [9.0, 0.2, 9.0, 9.0, 9.0], [1.0, 1.0, 1.0, 1.0, 1.0])
    _write_metrics(tmp_path, "vgg16-mduit-content", robotcar, full)
    _write_metrics(tmp_path, "vgg16-netvlad", robotcar, netvlad)
    _write_metrics(tmp_path, "vgg16-mduit-no-i2i-content", robotcar, netvlad)
    table = build_table("mduit-table1", mini, tmp_path)
    assert table.columns == ["Day-All 0.25m,2deg", "Day-All 0.5m,5deg", "Day-All 5m,10deg", "Night-All 0.25m,2deg",
                             "Night-All 0.5m,5deg", "Night-All 5m,10deg"]
    block, paired = table.blocks
    rows = {r.method: r for r in block.rows}
    assert [c.ours for c in rows["Full"].cells] == [50.0, 50.0, 100.0, 0.0, 50.0, 50.0]
    assert [c.paper for c in rows["Full"].cells] == [8.5, 31.8, 88.2, 4.1, 14.2, 61.0]
    assert [c.ours for c in rows["NetVLAD [35] (baseline)"].cells] == [50.0, 50.0, 50.0, 0.0, 0.0, 0.0]
    assert "fine-tuned as GeM" in rows["NetVLAD [35] (baseline)"].cells[0].note
    lo, hi = rows["Full"].cells[0].ci_low, rows["Full"].cells[0].ci_high
    assert 0.0 <= lo <= 50.0 <= hi <= 100.0
    assert all(c.ours is None and "not produced" in c.note for c in rows["w/o L_NCE"].cells)
    # paired over the same queries: w/o I2I (here NetVLAD's numbers) - Full, and Full - NetVLAD; at 0.25 m, 2 deg
    # Day-All q0 (-100) and q1 (+100) cancel
    diffs = {r.method: [c.ours for c in r.cells] for r in paired.rows}
    assert diffs == {"w/o I2I - Full": [0.0, 0.0, -50.0, 0.0, -50.0, -50.0],
                     "Full - NetVLAD [35] (baseline)": [0.0, 0.0, 50.0, 0.0, 50.0, 50.0]}
    assert not any(r.recipe is None for r in block.rows)
