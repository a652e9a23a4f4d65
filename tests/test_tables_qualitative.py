"""The qualitative retrieval figure on a tiny Tokyo-like set: the chosen queries are night queries, each result's
frame (label and pixels in the PNG) is what the ground truth says, junk is skipped, missing rankings fail in one
line naming the file."""

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from darkside.data.manifest import GroundTruth, ImageRecord, Query, load_groundtruth, load_manifest, write_dataset
from darkside.errors import DarksideError
from darkside.evaluate.database import write_pairs_kapture
from darkside.tables import qualitative as ql

SCENES = 4
LIGHTS = ("day", "sunset", "night")
MODELS = ("vgg16-gem", "vgg16-clahe-c", "vgg16-cyclegan-cd")  # the mini preset's figures.retrieval
EXTRA_JUNK = ("s1-night", "s3-day")  # a junk image besides the query itself, ranked first by every model


def _id(scene: int, light: str) -> str:
    return f"s{scene}-{light}"


@pytest.fixture
def tokyo(tmp_path) -> Path:
    """12 images (4 scenes x day/sunset/night, one portrait), Tokyo protocol: every image queries all, its scene's
    other images are positives, itself junk (and s1-night also has s3-day as junk)."""
    root = tmp_path / "tiny-tokyo"
    records = []
    for s in range(SCENES):
        for j, light in enumerate(LIGHTS):
            iid = _id(s, light)
            w, h = (24, 32) if (s, light) == (2, "day") else (32, 24)
            p = root / "images" / "test" / f"{iid}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((h, w, 3), 40 + 50 * s + 15 * j, dtype=np.uint8)).save(p)
            records.append(ImageRecord(f"test/{iid}.png", iid, "test", light, f"s{s}", f"p{s}", w, h))
    queries = []
    for r in records:
        junk = [r.image_id] + ([EXTRA_JUNK[1]] if r.image_id == EXTRA_JUNK[0] else [])
        queries.append(Query(r.image_id, positives=[o.image_id for o in records
                                                    if o.cluster == r.cluster and o.image_id != r.image_id],
                             junk=junk))
    write_dataset(root, "tiny-tokyo", records, GroundTruth(protocol="tokyo", queries=queries))
    return root


def _ranking(model: int, query: str, ids: list[str]) -> list[str]:
    """A model's made-up ranking of every other image: a seeded shuffle, the extra junk first for its query."""
    others = [i for i in ids if i != query]
    order = [others[k] for k in np.random.default_rng([model, ids.index(query)]).permutation(len(others))]
    if query == EXTRA_JUNK[0]:
        order.remove(EXTRA_JUNK[1])
        order.insert(0, EXTRA_JUNK[1])
    return order


@pytest.fixture
def pairs_root(tokyo, tmp_path) -> Path:
    """``<root>/<model>/tiny-tokyo/pairs-top11.csv`` as ``darkside score`` writes them (kapture pairs)."""
    manifest = load_manifest(tokyo)
    ids, names = manifest.ids, [r.path for r in manifest.records]
    root = tmp_path / "pairs"
    for m, model in enumerate(MODELS):
        idx = np.array([[ids.index(i) for i in _ranking(m, q, ids)] for q in ids])
        scores = np.tile(np.linspace(0.9, 0.1, idx.shape[1]), (len(ids), 1))
        write_pairs_kapture(root / model / tokyo.name / "pairs-top11.csv", names, names, idx, scores)
    return root


def _expected(tokyo: Path, model: int, query: str) -> list[tuple[str, bool]]:
    """The test's own reading of the ground truth: the first five results that are not junk, correct when they
    show the query's scene."""
    manifest = load_manifest(tokyo)
    scene = {r.image_id: r.cluster for r in manifest.records}
    junk = {query} | ({EXTRA_JUNK[1]} if query == EXTRA_JUNK[0] else set())
    kept = [i for i in _ranking(model, query, manifest.ids) if i not in junk][:5]
    return [(i, scene[i] == scene[query]) for i in kept]


def test_the_chosen_queries_are_night_queries_spread_by_id(tokyo):
    manifest, gt = load_manifest(tokyo), load_groundtruth(tokyo)
    chosen = ql.night_queries(manifest, gt, 2)
    assert [manifest.records[manifest.index(q.query)].domain for q in chosen] == ["night", "night"]
    assert [q.query for q in chosen] == ["s0-night", "s2-night"]  # of s0..s3-night, evenly spaced, first included
    assert [q.query for q in ql.night_queries(manifest, gt, 4)] == [f"s{s}-night" for s in range(SCENES)]
    with pytest.raises(DarksideError, match=r"5 asked.*4 night queries"):
        ql.night_queries(manifest, gt, 5)


def test_frames_are_the_ground_truth_and_junk_is_skipped(tokyo, pairs_root):
    manifest, gt = load_manifest(tokyo), load_groundtruth(tokyo)
    pairs = {m: pairs_root / m / tokyo.name for m in MODELS}
    rows = ql.figure_rows(manifest, gt, pairs, 4)
    assert [r.query for r in rows] == [f"s{s}-night" for s in range(SCENES)]
    labels = set()
    for row in rows:
        for m, model in enumerate(MODELS):
            got = [(t.image_id, t.correct) for t in row.results[model]]
            assert got == _expected(tokyo, m, row.query), (row.query, model)
            labels |= {c for _, c in got}
    assert labels == {True, False}  # the fixture shows both frames
    junk_row = next(r for r in rows if r.query == EXTRA_JUNK[0])
    assert all(EXTRA_JUNK[1] not in [t.image_id for t in ts] for ts in junk_row.results.values())


def test_rendered_frames_have_the_ground_truth_colours(tokyo, pairs_root, tmp_path):
    pairs = {m: pairs_root / m / tokyo.name for m in MODELS}
    out = ql.retrieval_figure(tokyo, pairs, tmp_path / "figs" / "retrieval_night.png", 4)
    assert out == tmp_path / "figs" / "retrieval_night.png"
    assert not [p for p in out.parent.iterdir() if p != out]  # written atomically, no temporary left
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert (img.shape[1], img.shape[0]) == ql.figure_size_px(rows=4, models=3)
    colours = {True: np.array(ql.CORRECT), False: np.array(ql.WRONG)}
    seen = set()
    for row, query in enumerate(f"s{s}-night" for s in range(SCENES)):
        for m in range(len(MODELS)):
            for rank, (_, correct) in enumerate(_expected(tokyo, m, query)):
                x0, y0, x1, y1 = ql.tile_box(row, m, rank)
                band = ql.FRAME_PX // 2  # the middle of the frame, on the left and the top edge
                for x, y in ((x0 + band, (y0 + y1) // 2), ((x0 + x1) // 2, y0 + band)):
                    assert np.abs(img[y, x] - colours[correct]).max() <= 2, (query, MODELS[m], rank, img[y, x])
                seen.add(correct)
        x0, y0, x1, y1 = ql.tile_box(row, None)
        assert np.abs(img[(y0 + y1) // 2, x0 + ql.FRAME_PX // 2] - np.array(ql.QUERY)).max() <= 2
    assert seen == {True, False}


def test_missing_rankings_are_one_line_errors_naming_the_file(tokyo, pairs_root):
    manifest, gt = load_manifest(tokyo), load_groundtruth(tokyo)
    gone = pairs_root / MODELS[1] / tokyo.name
    (gone / "pairs-top11.csv").unlink()
    pairs = {m: pairs_root / m / tokyo.name for m in MODELS}
    with pytest.raises(DarksideError) as exc:
        ql.figure_rows(manifest, gt, pairs, 2)
    assert str(gone / "pairs-top<k>.csv") in str(exc.value) and "\n" not in str(exc.value)
    gone.rmdir()
    with pytest.raises(DarksideError, match=re.escape(str(gone))):
        ql.figure_rows(manifest, gt, pairs, 2)


def test_a_ranking_too_short_after_junk_is_refused(tokyo, tmp_path):
    manifest, gt = load_manifest(tokyo), load_groundtruth(tokyo)
    names = [r.path for r in manifest.records]
    q = manifest.index(EXTRA_JUNK[0])
    short = tmp_path / "short" / "pairs-top5.csv"  # five results, one of them junk: four left to show
    ranked = [manifest.index(i) for i in _ranking(0, EXTRA_JUNK[0], manifest.ids)[:5]]
    write_pairs_kapture(short, [names[q]], names, np.array([ranked]), np.ones((1, 5)))
    query = next(x for x in gt.queries if x.query == EXTRA_JUNK[0])
    ranked = ql.read_rankings(ql.pairs_file(short.parent), manifest, [query.query])[query.query]
    assert len(ranked) == 5
    with pytest.raises(DarksideError, match=r"pairs-top5\.csv.*4 results besides junk.*pairs_topk"):
        ql.result_tiles(ranked, query, str(short))


def test_models_are_titled_as_the_tables_title_them():
    s = ql.RetrievalFigureSettings(queries=4, backbone="vgg16", gan_recipe="cyclegan-cd")
    assert ql.figure_models(s) == list(MODELS)
    assert [ql.model_title(m) for m in MODELS] == ["GeM [30]", "CLAHE C [13]", "CycleGAN CD (ours)"]
    assert ql.model_title("vgg16-no-such-recipe") == "vgg16-no-such-recipe"


def test_the_cli_verb_reads_the_preset_and_names_a_missing_ranking(repo_root, tokyo, pairs_root, tmp_path, capsys):
    from darkside.cli import main

    out = tmp_path / "fig.png"
    argv = ["--params", str(repo_root / "params.yaml"), "figure-retrieval", "--dataset", str(tokyo),
            "--pairs-root", str(pairs_root), "--out", str(out)]
    assert main(argv) == 0
    queries = yaml.safe_load((repo_root / "params.yaml").read_text())["presets"]["mini"]["figures"]["retrieval"]
    assert Image.open(out).size == ql.figure_size_px(rows=queries["queries"], models=3)
    gone = pairs_root / MODELS[2] / tokyo.name
    for f in gone.iterdir():
        f.unlink()
    gone.rmdir()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(gone) in err


def test_the_dag_stage_reads_rankings_not_networks(repo_root):
    stage = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]["figure_retrieval"]
    assert stage["outs"] == ["results/figures/retrieval_night.png"]
    assert {f"results/pairs/{m}/synth-tokyo" for m in MODELS} | {"data/prepared/synth-tokyo"} <= set(stage["deps"])
    assert not {"src/darkside/gan", "src/darkside/embed", "src/darkside/extract"} & set(stage["deps"])
    assert sorted(stage["params"]) == [f"presets.mini.figures.retrieval.{k}" for k in ("backbone", "gan_recipe",
                                                                                       "queries")]


def test_paper_preset_figure_settings():
    """The paper preset's qualitative figure: five night queries of real Tokyo, VGG16's GeM, CLAHE C and
    CycleGAN CD (the paper's qualitative comparison is of its VGG16 models)."""
    from darkside.config import load_params

    paper = load_params(Path(__file__).resolve().parents[1] / "params.yaml")["presets"]["paper"]
    assert paper["figures"]["retrieval"] == {"queries": 5, "backbone": "vgg16", "gan_recipe": "cyclegan-cd"}
