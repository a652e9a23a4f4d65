"""The README's main command, end to end: the whole mini DAG in a scratch folder, then a second run
that finds nothing to do. Slow (a few minutes on 2 cores); it is the suite's acceptance test."""

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from darkside.recipes import part_recipes, recipe_or_ensemble

pytestmark = pytest.mark.slow


# A safety net, not a performance test: the one-seed mini suite takes 35-48 min on 2 CPU cores (README, "Where the
# time goes"), so a slower CI machine must not time out before the suite's own checks run.
SUITE_TIMEOUT_S = 3600


def _run(repo_root: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(repo_root / "Snakefile"), "-d", str(workdir),
                           "--cores", "2", *args], env=env, capture_output=True, text=True,
                          timeout=SUITE_TIMEOUT_S)


@pytest.fixture(scope="module")
def suite(repo_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("suite")
    shutil.copy(repo_root / "params.yaml", work / "params.yaml")
    t0 = time.perf_counter()
    proc = _run(repo_root, work)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-5000:]
    return work, wall


def test_tables_and_figures_written(suite):
    work, wall = suite
    for n in (1, 3, 4, 5, 6, 7, 8):
        for ext in ("csv", "md", "tex"):
            assert (work / "results" / "tables" / f"table{n}.{ext}").stat().st_size > 0
    for name in ("findings", "instrument"):
        assert (work / "results" / "tables" / f"{name}.md").stat().st_size > 0
    assert (work / "results" / "figures" / "synthetic-contact-sheet.png").stat().st_size > 0
    assert (work / "results" / "figures" / "retrieval_night.png").stat().st_size > 0
    headline = json.loads((work / "results" / "metrics" / "headline.json").read_text())
    assert headline and all(isinstance(v, (int, float)) and -100 <= v <= 100 for cells in headline.values()
                            for v in cells.values())
    rows = list(csv.DictReader((work / "results" / "tables" / "table1.csv").open()))
    ours = [r for r in rows if r["recipe"] == "offtheshelf" and r["ours"]]
    assert {r["block"] for r in ours} == {"vgg16", "resnet101"}
    for r in ours:
        assert float(r["ci_low"]) <= float(r["ours"]) <= float(r["ci_high"])
    print(f"mini suite wall time: {wall:.0f} s")


def test_generators_edges_and_table8(suite):
    work, _ = suite
    for name in ("translations", "edges"):
        assert (work / "results" / "figures" / f"{name}.png").stat().st_size > 0
    for kind in ("hed", "rcf"):
        report = json.loads((work / "results" / "metrics" / "edges" / f"{kind}.json").read_text())
        assert set(report["scores"]["night"]) == {kind.upper(), kind.upper() + "^N"}
    rows = list(csv.DictReader((work / "results" / "tables" / "table8.csv").open()))
    measured = {r["recipe"] for r in rows if r["ours"]}
    assert measured == {"cyclegan", "cut", "cyeda", "drit", "forkgan", "hedgan", "hedngan", "mduit", "rcfngan"}


def _rows(work: Path, table: str) -> list[dict[str, str]]:
    return list(csv.DictReader((work / "results" / "tables" / f"{table}.csv").open()))


def test_every_trained_row_is_filled_and_every_metric_is_a_percentage(suite):
    import yaml

    from darkside.tables.paper import paper_tables

    work, _ = suite
    preset = yaml.safe_load((work / "params.yaml").read_text())["presets"]["mini"]
    trained = {(b, r) for b, recipes in preset["recipes"].items() for r in recipes}
    checked = 0
    for table in ("table1", "table5", "table6", "table7"):
        blocks = paper_tables()[table]["blocks"]
        for r in _rows(work, table):
            if r["block"] not in blocks:  # the paired-difference blocks: differences, not metrics
                continue
            if (blocks[r["block"]]["backbone"], r["recipe"]) in trained:
                assert r["ours"], (table, r["block"], r["method"], r["column"], r["note"])
                assert 0.0 <= float(r["ours"]) <= 100.0, (table, r["method"], r["column"], r["ours"])
                checked += 1
    assert checked >= 100


# Claims of the findings table the mini benchmark does not resolve yet (issue 13 keeps them open): the GAN CD rows
# lose 2-4 points on the day-only ROxf/RPar-like cells against CLAHE CD (paired intervals below -1; the mini
# generators' translations cost the small trunk day retrieval, the oracle's about one point). Four fine-tuning seeds
# (benchmarks/seed_spread.py) confirm it is not seed noise: HED^N GAN CD -5.0 / -5.6, CycleGAN CD -3.3 / -4.8 on
# ROxf / RPar, intervals resampling seeds and queries clear of zero; Oracle CD -0.4 [-2.5, +1.5] / -1.3 [-2.9, +0.3].
# VGG16's CIConv ties GeM on the Tokyo-like set (-1.1 [-4.4, +2.4]; ResNet-101's is 24 points above).
NOT_YET_RESOLVED = {"day stays: HED^N GAN CD - CLAHE CD, ROxf", "day stays: HED^N GAN CD - CLAHE CD, RPar",
                    "day stays: CycleGAN CD - CLAHE CD, ROxf", "day stays: CycleGAN CD - CLAHE CD, RPar",
                    "colour invariance helps at night: CIConv - GeM (VGG16), Tokyo"}

# Claims whose side depends on the machine: the same code for these rows, seed and preset measured them on two
# machines (an earlier CI machine, and an AMD EPYC whose oneDNN/MKL kernels are AVX2 ones; kernels round differently
# across CPUs and the mini fine-tunes amplify it): LAB inversion - GeM, Avg: -16.8 [-18.2, -15.3] there,
# +1.2 [+0.3, +2.1] here; HOW N/D - HOW, Tokyo: -3.1
# [-4.8, -1.3] there, +5.6 [+4.0, +7.1] here; LAB inversion - CycleGAN CD / - HED^N GAN CD, Tokyo: below 0 there,
# -2.0 [-4.8, +0.8] and +0.6 [-2.0, +3.3] here. The paired intervals resample queries, not training runs, so
# they are too narrow for these: each needs further seeds (the preset's `seeds`) before it is a finding either way.
MACHINE_DEPENDENT = {"inversion helps a little: LAB inversion - GeM, Avg",
                     "night augmentation carries over to HOW: HOW N/D - HOW, Tokyo",
                     "a learned night beats a fixed one: LAB inversion - CycleGAN CD, Tokyo",
                     "a learned night beats a fixed one: LAB inversion - HED^N GAN CD, Tokyo"}


def test_the_papers_findings_hold_with_paired_intervals(suite):
    """The instrument resolves what the paper found: each claim's paired 95% interval is on its side."""
    work, _ = suite
    rows = _rows(work, "findings")
    assert len(rows) == 23 and all(r["ours"] for r in rows)
    assert {r["method"] for r in rows} >= NOT_YET_RESOLVED | MACHINE_DEPENDENT
    failing = [(r["method"], r["ours"], r["ci_low"], r["ci_high"]) for r in rows
               if r["method"] not in NOT_YET_RESOLVED | MACHINE_DEPENDENT and not r["note"].startswith("holds")]
    assert not failing, failing
    # every claim is measured and judged, the ones not guarded here too
    assert all(r["note"].startswith(("holds", "does not hold")) for r in rows)
    edges = json.loads((work / "results/metrics/edges/hed.json").read_text())["scores"]["night"]
    assert edges["HED^N"]["ap"] > edges["HED"]["ap"]  # HED^N edges still beat HED's on night images


def test_night_cells_resolve_above_chance_and_leave_room(suite):
    """The day-trained rows GeM and CLAHE C retrieve at night at 15 mAP or more in every night cell (about 20x
    chance), every VGG16 row's mean night cell is at least 15x chance, no night cell saturates (room for
    generators), and day retrieval of the fine-tuned GeM rows is at least 9x chance and at most 75."""
    work, _ = suite
    chance = json.loads((work / "results/metrics/chance/synth-tokyo.json").read_text())["breakdown"]
    night = {"S->N": "sunset->night", "N->S": "night->sunset", "D->N": "day->night", "N->D": "night->day"}
    floor = sum(chance[k] for k in night.values()) / 4
    cells: dict[str, list[float]] = {}
    for r in _rows(work, "table6"):
        if r["ours"] and r["column"] in night and not r["block"].startswith("paired"):
            assert float(r["ours"]) <= 90.0, (r["method"], r["column"], r["ours"])
            cells.setdefault(r["recipe"], []).append(float(r["ours"]))
    assert {"clahe-c", "clahe-cd", "oracle-cd"} <= set(cells)
    for recipe, v in cells.items():
        assert len(v) == 4 and sum(v) / 4 >= 15 * floor, (recipe, v, floor)
    assert min(cells["clahe-c"]) >= 15.0, cells["clahe-c"]
    gem = json.loads((work / "results/metrics/vgg16-gem/synth-tokyo.json").read_text())["breakdown"]
    assert min(gem[k]["mAP"] for k in night.values()) >= 15.0, gem
    rox = json.loads((work / "results/metrics/chance/synth-roxford.json").read_text())["metrics"]["medium.mAP"]
    # the instrument's day floor is a property of the GeM network; CIConv's and EdgeMAC's day cells are findings
    mini = yaml.safe_load((work / "params.yaml").read_text())["presets"]["mini"]["gan"]
    translators = [*mini["families"], *mini["published"]]
    gem_rows = {n for n in {r["recipe"] for r in _rows(work, "table1") if r["block"] == "vgg16"} if n != "offtheshelf"
                and all(p.network == "gem" for p in part_recipes(recipe_or_ensemble(n, translators)))}
    day = [(r["method"], r["column"], float(r["ours"])) for r in _rows(work, "table1")
           if r["block"] == "vgg16" and r["recipe"] in gem_rows and r["ours"] and r["column"] in ("ROxf", "RPar")]
    assert day and all(9 * rox <= v <= 75.0 for _, _, v in day), day
    # the instrument table puts the oracle's room above CLAHE CD and the chance floor in one place
    inst = {(r["method"], r["column"]): r for r in _rows(work, "instrument")}
    assert float(inst[("chance", "night")]["ours"]) == pytest.approx(floor, abs=0.05)
    assert float(inst[("room left: Oracle CD - CLAHE CD", "night")]["ci_low"]) >= 10.0


def test_chance_levels_are_the_floor(suite):
    work, _ = suite
    tokyo = json.loads((work / "results/metrics/chance/synth-tokyo.json").read_text())
    assert all(v < 1.0 for v in tokyo["breakdown"].values()) and tokyo["draws"] == 20
    rox = json.loads((work / "results/metrics/chance/synth-roxford.json").read_text())
    assert 1.0 < rox["metrics"]["medium.mAP"] < 4.0


def test_daco_tables_fill_every_run_and_the_ceiling_clears_chance(suite):
    """DaCo's Tables 1-6 are written; in each, every row that `daco.runs` lists for the table's task is filled in
    all 12 cells with recalls in [0, 100]."""
    import yaml

    from darkside.tables.paper import paper_tables

    work, _ = suite
    runs = yaml.safe_load((work / "params.yaml").read_text())["presets"]["mini"]["daco"]["runs"]
    filled: set[tuple[str, str]] = set()
    for n in range(1, 7):
        name = f"daco-table{n}"
        assert (work / "results" / "tables" / f"{name}.md").stat().st_size > 0
        task = paper_tables()[name]["dataset"]
        for r in _rows(work, name):
            if r["recipe"] in runs[task]:
                assert r["ours"] and 0.0 <= float(r["ours"]) <= 100.0, (name, r["method"], r["column"], r["ours"])
                filled.add((task, r["recipe"]))
    assert filled == {(task, n) for task, names in runs.items() for n in names}
    # the renderer's translations (the ceiling) and SIFT matching (no training) retrieve above chance on the night
    # task: the lower end of each cell's interval clears the chance row (measured 40.0 and 43.3 at R@8 against 26.7;
    # SIFT 10.0 at R@1 against 3.3)
    cells = {(r["recipe"], r["column"]): r for r in _rows(work, "daco-table1") if r["block"] == "methods"}
    for recipe, column in [("resnet50-daco-renderer", "A->B R@8"), ("resnet50-daco-renderer", "B->A R@8"),
                           ("sift-matches", "A->B R@1"), ("sift-matches", "B->A R@1")]:
        cell, chance = cells[recipe, column], float(cells["", column]["ours"])
        assert float(cell["ci_low"]) > chance, (recipe, column, cell["ours"], cell["ci_low"], chance)


def test_metrics_have_per_query_values(suite):
    work, _ = suite
    m = json.loads((work / "results/metrics/vgg16-offtheshelf/synth-tokyo.json").read_text())
    assert m["protocol"] == "tokyo" and len(m["per_query"]["mAP"]["ap"]) == m["n_queries"]
    assert set(m["breakdown"]) >= {"day->night", "night->day", "day->sunset"}


def report_results(page: str) -> dict[str, dict]:
    """The results a Snakemake HTML report carries: path -> entry (name, labels, mime type, data URI)."""
    import re

    m = re.search(r'<script id="results">\s*var results = (\{.*?\});\s*</script>', page, re.S)
    assert m, "no results in the report"
    return json.loads(m.group(1))


def check_report(repo_root: Path, work: Path) -> dict[str, dict]:
    """On a finished suite: `snakemake --report results/report.html` writes one self-contained page that carries
    every output the DAG marks for the report (each table's page, every figure, every model's and generator's
    training curve, every sample grid, the calibration, the settings), each as the file's own bytes; and the
    training curves' data files have the fields dvc.yaml plots. Returns the report's results."""
    import base64

    from darkside.orchestration import PLOT_FIELDS, snakemake_jobs

    proc = _run(repo_root, work, "--report", "results/report.html")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = report_results((work / "results" / "report.html").read_text(encoding="utf-8"))
    cwd = os.getcwd()
    try:
        os.chdir(work)
        jobs = snakemake_jobs(repo_root / "Snakefile", work)
    finally:
        os.chdir(cwd)
    expected = set()
    for job in jobs:
        for f in job["report"]:
            expected |= ({str(p.relative_to(work)) for p in (work / f).glob("epoch_*.png")}
                         if (work / f).is_dir() else {f})
    assert expected and expected <= set(results), sorted(expected - set(results))
    assert {f for f in expected if f.startswith("results/report/tables/")} == {
        f"results/report/tables/{t.stem}.html" for t in (work / "results" / "tables").glob("*.csv")}
    assert {f for f in expected if f.startswith("results/figures/")} == {
        str(p.relative_to(work)) for p in (work / "results" / "figures").glob("*.png")}
    grids = [f for f in expected if "/samples/epoch_" in f]
    assert len(grids) >= 2 * len([j for j in jobs if j["rule"] == "train_gan"])
    for f in expected:
        entry = results[f]
        assert entry["mime_type"] == ("text/html" if f.endswith(".html") else "image/png"), f
        assert base64.b64decode(entry["data_uri"].split("base64,", 1)[1]) == (work / f).read_bytes(), f
    for job in jobs:
        for f, _ in job["output"]:
            if Path(f).name in PLOT_FIELDS:
                with (work / f).open() as fh:
                    header = next(csv.reader(fh))
                assert header[0] == "epoch" and set(PLOT_FIELDS[Path(f).name]) <= set(header), (f, header)
    return results


def test_the_report_carries_every_table_figure_and_training_curve(repo_root, suite):
    work, _ = suite
    check_report(repo_root, work)


def test_second_run_does_nothing(repo_root, suite):
    work, _ = suite
    t0 = time.perf_counter()
    proc = _run(repo_root, work)
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert time.perf_counter() - t0 < 60  # a safety net; the no-op's measured time is in the README


def _overlay(work: Path, name: str, overlay: dict) -> Path:
    import yaml

    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return path


def _planned(out: str) -> list[str]:
    import re

    return [m.group(1) for m in re.finditer(r"^(?:local)?rule (\w+):", out, re.M) if m.group(1) != "all"]


def test_an_overlay_reruns_what_reads_it_and_the_job_computes_with_it(repo_root, suite):
    """On the built suite: a student_lr overlay plans HED^N GAN's training and what follows it, not
    CycleGAN's; a bootstrap_samples overlay plans the tables only, and running it changes the tables'
    intervals (the job computes with the overlay's value) but no mean."""
    work, _ = suite
    lr = _overlay(work, "lr", {"presets": {"mini": {"gan": {"families": {"hedngan": {"student_lr": 2e-5}}}}}})
    proc = _run(repo_root, work, "-n", "--configfile", str(lr))
    planned = _planned(proc.stdout)
    assert proc.returncode == 0 and planned.count("train_gan") == 1 and "family=hedngan" in proc.stdout
    assert "family=cyclegan" not in proc.stdout and "pretrain_edges" not in planned

    before = list(csv.DictReader((work / "results" / "tables" / "table1.csv").open()))
    boot = _overlay(work, "boot", {"presets": {"mini": {"evaluate": {"bootstrap_samples": 2000}}}})
    proc = _run(repo_root, work, "-n", "--configfile", str(boot))
    # the tables, and the report's pages of the tables and of the settings (which read every setting)
    assert sorted(_planned(proc.stdout)) == ["report_settings", "report_tables", "tables"]
    assert _run(repo_root, work, "--configfile", str(boot)).returncode == 0
    after = list(csv.DictReader((work / "results" / "tables" / "table1.csv").open()))
    assert [r["ours"] for r in after] == [r["ours"] for r in before]
    assert [r["ci_low"] for r in after if r["ours"]] != [r["ci_low"] for r in before if r["ours"]]
    assert _planned(_run(repo_root, work, "-n", "--configfile", str(boot)).stdout) == []  # done: nothing left
