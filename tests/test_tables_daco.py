"""DaCo's Tables 1-6 (builder ``cross_domain``): the transcription, cell by cell, and the cells from real score jobs
of protocol ``cross_domain``."""

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from test_tables import inputs_of  # tests/ is on sys.path (no package)

from darkside.config import ScoreSettings
from darkside.data.manifest import GroundTruth, ImageRecord, write_dataset
from darkside.evaluate.score import score_dataset
from darkside.extract.hdf5 import DescriptorSet, write_descriptors
from darkside.tables.build import build_table
from darkside.tables.paper import paper_tables

DACO_SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "003_ceb799b30297151a.txt"
#: evaluation pairs of each role (DaCo section 4.1)
PAIRS = {"daco_night": 75, "daco_fog": 500, "daco_rain": 60}
TABLES = [f"daco-table{i}" for i in range(1, 7)]


def _rows(name):
    return [r for b in paper_tables()[name]["blocks"].values() for r in b["rows"]]


def _seed_tables(text):
    """{table number: [row's fields]}: the rows under each 'Table N' caption after its R@K header line."""
    out, lines = {}, text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"Table ([1-6]) ", line)
        if not m:
            continue
        j = next((j for j in range(i, min(i + 6, len(lines))) if "R@1\tR@2\t" in lines[j]), None)
        if j is None or int(m.group(1)) in out:  # a 'Table N' in the running text, not a caption
            continue
        rows = []
        for row in lines[j + 1:]:
            fields = [f for f in row.split("\t") if f.strip()]
            if len(fields) < 12:
                break
            rows.append(fields)
        out[int(m.group(1))] = rows
    return out


@pytest.mark.skipif(not DACO_SEED.is_file(), reason="the seed text is beside the checkout where it was transcribed")
def test_every_cell_is_the_seed_texts():
    seed = _seed_tables(DACO_SEED.read_text(encoding="utf-8"))
    assert sorted(seed) == [1, 2, 3, 4, 5, 6]
    for n in range(1, 7):
        assert [r["values"] for r in _rows(f"daco-table{n}")] == [[float(v) for v in f[-12:]] for f in seed[n]], n
    # Table 6's marks (jittering, grayscaling, flipping; the seed writes "no" as "_" or "-") name each row
    for row, fields in zip(_rows("daco-table6"), seed[6], strict=True):
        used = [name for name, mark in zip(("jitter", "gray", "flip"), fields[:3], strict=True) if mark == "\u2713"]
        assert row["method"].split(" (")[0] == " + ".join(["crop", *used])


def test_every_cell_is_a_possible_recall_of_its_evaluation_pairs():
    """A->B and B->A are multiples of 100/N, A<->B of 100/2N (N pairs, DaCo section 4.1); the paper prints two
    decimals, so a mistyped digit almost always breaks this."""
    for name in TABLES:
        t = paper_tables()[name]
        n = PAIRS[t["dataset"]]
        for row in _rows(name):
            assert len(row["values"]) == len(t["columns"]) == 12
            for col, v in zip(t["columns"], row["values"], strict=True):
                queries = 2 * n if col.startswith("A<->B") else n
                assert abs(v * queries / 100 - round(v * queries / 100)) * 100 / queries < 0.006, (name, col, v)
    # DaCo's own row is the same run in Tables 2, 4 (lambda 0.8), 5 (without the terms) and 6 (all three)
    daco = {name: [r["values"] for r in _rows(name) if r["recipe"] == "resnet50-daco"]
            for name in ("daco-table2", "daco-table4", "daco-table5", "daco-table6")}
    assert all(v == daco["daco-table2"] for v in daco.values())


SETTINGS = ScoreSettings(chunk_size=4, recall_ks=(1, 2, 4, 8), pairs_topk=2,
                         localization_thresholds=((5.0, 10.0),))


def _unit(deg):
    r = np.radians(np.asarray(deg, dtype=np.float64))
    return np.stack([np.cos(r), np.sin(r)], axis=1).astype(np.float32)


def _score(tmp_path, model, dataset, angles_a, angles_b, domains=("day", "night")):
    """The score job's metrics of ``model`` on a toy cross-domain set (pair k: a<k>, b<k>), at the table's path."""
    n = len(angles_a)
    recs = [ImageRecord(f"{s}{k}.jpg", f"{s}{k}", "val", dom, f"p{k}", f"p{k}", 8, 8, None)
            for s, dom in zip("ab", domains, strict=True) for k in range(n)]
    gt = GroundTruth("cross_domain", database_split="val", pairs={"val": [(f"b{k}", f"a{k}") for k in range(n)]})
    root = write_dataset(tmp_path / "data" / model, dataset, recs, gt)
    h5 = write_descriptors(tmp_path / "data" / f"{model}.h5",
                           DescriptorSet([r.image_id for r in recs], _unit(list(angles_a) + list(angles_b))))
    return score_dataset(h5, root, SETTINGS, tmp_path / "metrics" / model / f"{dataset}.json")


@pytest.fixture()
def mini_with_daco(repo_root):
    mini = inputs_of(repo_root / "params.yaml", "mini")
    return dataclasses.replace(mini, cross_domain={"daco_night": "toy-night"})


def test_cells_are_the_scored_recalls_and_daco_is_paired_against_simclr(tmp_path, mini_with_daco):
    # DaCo: every A image next to its own B image -> every recall 100; SimCLR: pair k's A image nearest pair k+1's
    # B image (4 pairs on the circle, 90 deg apart, B turned by 60 deg) -> R@1 A->B 0
    a = [0, 90, 180, 270]
    _score(tmp_path, "resnet50-daco", "toy-night", a, [v + 5 for v in a])
    simclr = _score(tmp_path, "resnet50-simclr", "toy-night", a, [v + 60 for v in a])
    table = build_table("daco-table1", mini_with_daco, tmp_path / "metrics")
    main, paired = table.blocks
    rows = {r.method: r for r in main.rows}
    # the floor: one positive among the 4 B images (A->B, B->A), among the 7 other images (A<->B)
    chance = main.rows[0]
    assert chance.method.startswith("Chance") and chance.extra and all(c.ci_low is None for c in chance.cells)
    assert [c.ours for c in chance.cells] == pytest.approx([25, 50, 100, 100] * 2 + [100 / 7, 200 / 7, 400 / 7, 100])
    assert [c.ours for c in rows["DaCo"].cells] == [100.0] * 12
    assert rows["DaCo"].cells[0].paper == 61.33
    got = json.loads(simclr.read_text())
    expect = [got["metrics"][m][f"R@{k}"] for m in ("A->B", "B->A", "A<->B") for k in (1, 2, 4, 8)]
    assert [c.ours for c in rows["SimCLR [12]"].cells] == pytest.approx(expect)
    assert expect[0] == 0.0 and expect[1] == 100.0  # a0 (0 deg): b3 (330) is nearer than b0 (60), then b0
    assert all(c.ours is None and "not produced" in c.note for c in rows["MoCo [11]"].cells)
    (diff,) = paired.rows
    assert diff.method == "DaCo - SimCLR [12]"
    assert [c.ours for c in diff.cells] == pytest.approx([100.0 - v for v in expect])


def test_a_run_with_its_domains_swapped_is_refused(tmp_path, mini_with_daco):
    a = [0, 90, 180, 270]
    _score(tmp_path, "resnet50-daco", "toy-night", a, [v + 5 for v in a], domains=("night", "day"))
    rows = {r.method: r for r in build_table("daco-table1", mini_with_daco, tmp_path / "metrics").blocks[0].rows}
    assert all(c.ours is None and "scored with A = night, B = day" in c.note for c in rows["DaCo"].cells)


def test_a_role_the_preset_leaves_out_says_so(tmp_path, repo_root):
    mini = inputs_of(repo_root / "params.yaml", "mini")
    assert mini.cross_domain == {"daco_night": "synth-daco-night", "daco_fog": "synth-daco-fog",
                                 "daco_rain": "synth-daco-rain"}
    rows = build_table("daco-table3", mini, tmp_path).blocks[0].rows
    assert all(c.ours is None and "no resnet50-daco/synth-daco-rain.json" in c.note
               for r in rows if r.recipe == "resnet50-daco" for c in r.cells)
    for name in TABLES:
        none = dataclasses.replace(mini, cross_domain={})
        cells = [c for b in build_table(name, none, tmp_path).blocks for r in b.rows for c in r.cells]
        role = paper_tables()[name]["dataset"]
        assert cells and all(c.ours is None and f"no dataset plays role {role!r}" in c.note for c in cells)
    paper = inputs_of(repo_root / "params.yaml", "paper")
    assert paper.cross_domain == {"daco_night": "tokyo247-daco", "daco_fog": "foggy-cityscapes",
                                  "daco_rain": "synthia-seqs"}
