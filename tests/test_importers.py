"""Importers on tiny fixtures in the exact native formats (pickles with numpy arrays, CSVs, kapture)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import native_fixtures
import numpy as np
import pytest
from native_fixtures import img, pkl

from darkside.data.importers import gandtr_lists, kapture, sfm120k, tokyo247, tokyo247_daco
from darkside.data.importers._common import cid_to_path
from darkside.data.importers.cityscapes_foggy import import_foggy_cityscapes
from darkside.data.importers.revisited import import_revisited
from darkside.data.importers.synthia import SynthiaSettings, import_synthia
from darkside.data.manifest import load_groundtruth, load_manifest
from darkside.data.registry import prepare_dataset
from darkside.errors import DarksideError, ImageError
from darkside.settings import parse


def meta(out: Path) -> dict:
    return json.loads((out / "dataset.json").read_text())["metadata"]


# ---------------------------------------------------------------- Retrieval-SfM-120k

CIDS = {"train": ["aaaa000011", "bbbb000022", "cccc000033", "dddd000044"], "val": ["eeee000055", "ffff000066"]}
SIZES = {
    "aaaa000011": (640, 520),
    "bbbb000022": (500, 800),
    "cccc000033": (700, 600),
    "dddd000044": (600, 600),
    "eeee000055": (64, 48),
    "ffff000066": (48, 64),
}


@pytest.fixture
def sfm_raw(tmp_path):
    raw = tmp_path / "raw" / "sfm120k"
    for cid, (w, h) in SIZES.items():
        img(raw / "ims" / cid_to_path(cid), w, h)
    db = {
        s: {"cids": CIDS[s], "cluster": np.array(c), "qidxs": q, "pidxs": np.array(p)}
        for s, c, q, p in (("train", [3, 3, 7, 7], [0, 2], [1, 3]), ("val", [9, 9], [1], [0]))
    }
    pkl(raw / "retrieval-SfM-120k.pkl", db)
    (raw / "train_day.txt").write_text("11/00/00/aaaa000011\n\ncccc000033\nbbbb000022\n")
    (raw / "train_night.txt").write_text("# night\n44/00/00/dddd000044\n")
    return tmp_path / "raw"


def test_sfm120k_import(sfm_raw, tmp_path):
    assert cid_to_path("aaaa000011") == "11/00/00/aaaa000011"
    out = prepare_dataset("sfm120k", sfm_raw, tmp_path / "prep")
    m = load_manifest(out)
    assert [(r.image_id, r.split, r.domain, r.cluster) for r in m.records] == [
        ("aaaa000011", "train", "day", "3"),
        ("bbbb000022", "train", "day", "3"),
        ("cccc000033", "train", "day", "7"),
        ("dddd000044", "train", "night", "7"),
        ("eeee000055", "val", "other", "9"),
        ("ffff000066", "val", "other", "9"),
    ]
    assert (m.records[1].width, m.records[1].height) == (500, 800)
    assert m.image_path(m.records[0]).is_file()
    gt = load_groundtruth(out, m)
    assert gt.protocol == "training"
    assert gt.pairs == {
        "train": [("aaaa000011", "bbbb000022"), ("cccc000033", "dddd000044")],
        "val": [("ffff000066", "eeee000055")],
    }
    assert meta(out)["counts"]["train"] == {"images": 4, "pairs": 2, "day": 3, "night": 1}


def test_sfm120k_whiten_import(sfm_raw, tmp_path):
    pkl(
        sfm_raw / "sfm120k-whiten" / "retrieval-SfM-120k-whiten.pkl",
        {"cids": ["cccc000033", "aaaa000011", "cccc000033"], "qidxs": np.array([0, 2]), "pidxs": [1, 1]},
    )
    out = prepare_dataset("sfm120k-whiten", sfm_raw, tmp_path / "prep")
    m = load_manifest(out)
    assert m.ids == ["cccc000033", "aaaa000011"]  # repeated cid = same image, one row
    assert {r.split for r in m.records} == {"whiten"}
    assert load_groundtruth(out, m).pairs == {"whiten": [("cccc000033", "aaaa000011")] * 2}


def test_gandtr_lists_min_side_filter_counts(sfm_raw, tmp_path):
    out = gandtr_lists.import_daynight_lists(
        sfm_raw / "sfm120k" / "train_day.txt",
        sfm_raw / "sfm120k" / "train_night.txt",
        sfm_raw / "sfm120k" / "ims",
        tmp_path / "dn",
        gandtr_lists.DayNightListSettings(min_side=512),
    )
    m = load_manifest(out)
    # bbbb: 500x800 -> smaller side 500 < 512, dropped; aaaa 640x520 kept (520 >= 512)
    assert [(r.image_id, r.domain) for r in m.records] == [
        ("aaaa000011", "day"),
        ("cccc000033", "day"),
        ("dddd000044", "night"),
    ]
    c = meta(out)["counts"]
    assert c["day"] == {"listed": 3, "kept": 2, "dropped_small": 1}
    assert c["night"] == {"listed": 1, "kept": 1, "dropped_small": 0}
    assert c["paper"] == {"day": 86385, "night": 10039}
    with pytest.raises(DarksideError, match="min_side"):
        parse(gandtr_lists.DayNightListSettings, {"min_side": -1}, "daynight_lists")


def test_truncated_image_gives_one_line_error_naming_it(sfm_raw, tmp_path):
    victim = sfm_raw / "sfm120k" / "ims" / cid_to_path("cccc000033")
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as err:
        sfm120k.prepare(sfm_raw, tmp_path / "prep")
    assert str(victim) in str(err.value) and "truncated" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "prep" / "manifest.csv").exists()


def _sfm_summary(out: Path) -> tuple[list[tuple], dict]:
    m = load_manifest(out)
    assert all(m.image_path(r).is_file() for r in m.records)
    rows = [(r.path, r.image_id, r.split, r.domain, r.cluster, r.width, r.height) for r in m.records]
    return rows, load_groundtruth(out, m).pairs


@pytest.mark.parametrize("layout", ["dbs", "cirtorch_data_root"])
def test_sfm120k_import_finds_the_pickles_in_cirtorch_layouts(sfm_raw, tmp_path, layout):
    whiten = {"cids": ["cccc000033", "aaaa000011"], "qidxs": [0], "pidxs": [1]}
    pkl(sfm_raw / "sfm120k-whiten" / "retrieval-SfM-120k-whiten.pkl", whiten)
    expected = _sfm_summary(prepare_dataset("sfm120k", sfm_raw, tmp_path / "top"))
    expected_whiten = _sfm_summary(prepare_dataset("sfm120k-whiten", sfm_raw, tmp_path / "top"))
    raw = sfm_raw / "sfm120k"
    # a copy of cirtorch's server tree .../data/train/ has both pickles in dbs/ beside ims/; cirtorch's
    # download_train(DATA_ROOT) puts the pickles and ims/ in DATA_ROOT/train/retrieval-SfM-120k/
    home = raw / "dbs" if layout == "dbs" else raw / "train" / "retrieval-SfM-120k"
    moves = [(raw, "retrieval-SfM-120k.pkl"), (sfm_raw / "sfm120k-whiten", "retrieval-SfM-120k-whiten.pkl")]
    if layout == "cirtorch_data_root":
        moves.append((raw, "ims"))
    home.mkdir(parents=True)
    for src, name in moves:
        (src / name).rename(home / name)
    assert not (raw / "retrieval-SfM-120k.pkl").exists()
    assert _sfm_summary(prepare_dataset("sfm120k", sfm_raw, tmp_path / "moved")) == expected
    assert _sfm_summary(prepare_dataset("sfm120k-whiten", sfm_raw, tmp_path / "moved")) == expected_whiten


def test_sfm120k_missing_pickle_names_every_place_searched(sfm_raw, tmp_path):
    raw = sfm_raw / "sfm120k"
    (raw / "retrieval-SfM-120k.pkl").unlink()
    with pytest.raises(DarksideError) as err:
        prepare_dataset("sfm120k", sfm_raw, tmp_path / "prep")
    msg = str(err.value)
    assert "\n" not in msg
    for place in (raw, raw / "dbs", raw / "train" / "retrieval-SfM-120k"):
        assert str(place / "retrieval-SfM-120k.pkl") in msg


def test_sfm_nd_holds_sfm120k_and_the_day_night_pairs(sfm_raw, tmp_path):
    """sfm120k-nd is what the N/D recipes train on: SfM-120k's images and day pairs AND the N/D pairs (before,
    it held only the pair images, and no rule could give a recipe both)."""
    img(sfm_raw / "sfm120k" / "ims" / cid_to_path("gggg000077"), 300, 200)  # an N/D image the pickle does not list
    nd = sfm_raw / "sfm120k-nd"
    nd.mkdir()
    (nd / "pairs.csv").write_text("night,day\n# comment\ndddd000044,cccc000033\nbbbb000022\taaaa000011\n"
                                  "gggg000077,aaaa000011\n")
    base_dir = prepare_dataset("sfm120k", sfm_raw, tmp_path / "sfm")
    base = load_manifest(base_dir)
    out = prepare_dataset("sfm120k-nd", sfm_raw, tmp_path / "prep")
    m = load_manifest(out)
    assert {r.image_id: (r.split, r.domain, r.cluster) for r in m.records} == {
        **{r.image_id: (r.split, r.domain, r.cluster) for r in base.records},
        "bbbb000022": ("train", "night", "3"),  # the pair list wins over gandtr's day list
        "gggg000077": ("train", "night", "-1"),
    }
    gt = load_groundtruth(out, m)
    assert gt.pairs == load_groundtruth(base_dir, base).pairs
    assert gt.day_night_pairs == [("dddd000044", "cccc000033"), ("bbbb000022", "aaaa000011"),
                                  ("gggg000077", "aaaa000011")]
    assert {m.records[m.index(a)].split for a, _ in gt.day_night_pairs} == {"train"}  # a pair is its anchor's split
    assert meta(out)["counts"]["day_night"] == {"pairs": 3, "night": 3, "day": 2, "images_not_in_the_pickle": 1}
    (nd / "pairs.csv").write_text("dddd000044,cccc000033,x\n")
    with pytest.raises(DarksideError, match=r"pairs.csv:1: expected"):
        prepare_dataset("sfm120k-nd", sfm_raw, tmp_path / "prep2")


# ---------------------------------------------------------------- Tokyo 24/7


_tokyo = native_fixtures.tokyo


def test_tokyo247_import(tmp_path):
    raw = _tokyo(tmp_path / "raw" / "tokyo247")
    out = tokyo247.prepare(tmp_path / "raw", tmp_path / "prep")
    m = load_manifest(out)
    assert [r.domain for r in m.records[:3]] == ["day", "sunset", "night"]
    assert [r.cluster for r in m.records] == ["scene0000"] * 3 + ["scene0001"] * 3 + ["scene0002"] * 3
    assert {r.place for r in m.records} == {"place0000"}
    assert m.records[4].path == "nested/00005.jpg" and (m.records[4].width, m.records[4].height) == (45, 30)
    gt = load_groundtruth(out, m)
    assert gt.protocol == "tokyo" and len(gt.queries) == 9
    assert (gt.queries[4].query, gt.queries[4].positives, gt.queries[4].junk) == (
        "00005",
        ["00004", "00006"],
        ["00005"],
    )
    assert meta(out)["counts"] == {"day": 3, "sunset": 3, "night": 3}
    assert raw.is_dir()


def test_tokyo247_refuses_scene_order_it_cannot_trust(tmp_path):
    _tokyo(tmp_path / "raw" / "tokyo247", labels="DSNDDNDSN")
    with pytest.raises(DarksideError, match="00004, 00005, 00006"):
        tokyo247.prepare(tmp_path / "raw", tmp_path / "prep")


def test_tokyo247_query_is_junk_for_itself_whatever_the_pickle_says(tmp_path):
    raw = _tokyo(tmp_path / "raw" / "tokyo247", self_junk=False)  # no query lists itself as junk
    obj = pickle.loads((raw / "gnd_247tokyo1k.pkl").read_bytes())
    obj["gnd"][4]["ok"] = np.array([3, 4, 5])  # and one lists itself as a positive
    pkl(raw / "gnd_247tokyo1k.pkl", obj)
    out = tokyo247.prepare(tmp_path / "raw", tmp_path / "prep")
    gt = load_groundtruth(out)
    for q in gt.queries:
        assert q.query in q.junk and q.query not in q.positives
    q4 = gt.queries[4]
    assert (q4.query, q4.positives, q4.junk) == ("00005", ["00004", "00006"], ["00005"])
    assert meta(out)["query_self_junk"] == {"added": 9, "removed_from_positives": 1}


def test_tokyo247_refuses_positives_outside_the_inferred_place(tmp_path):
    # files numbered differently from the order the ids assume: the gnd's first scene is 00001, 00011,
    # 00003, across two places (every sorted triple is still one day, one sunset and one night image)
    order = list(range(18))
    order[1], order[10] = order[10], order[1]
    _tokyo(tmp_path / "raw" / "tokyo247", labels="DSN" * 6, scene_order=order)
    with pytest.raises(DarksideError) as err:
        tokyo247.prepare(tmp_path / "raw", tmp_path / "prep")
    msg = str(err.value)
    assert "\n" not in msg and "query 00001" in msg and "positive 00011" in msg
    assert not (tmp_path / "prep" / "manifest.csv").exists()


def test_tokyo247_positives_from_another_direction_of_the_place_are_counted(tmp_path):
    # the same swap within one place (00002 and 00005: two directions of place 0) passes and is counted
    _tokyo(tmp_path / "raw" / "tokyo247", scene_order=[0, 4, 2, 3, 1, 5, 6, 7, 8])
    out = tokyo247.prepare(tmp_path / "raw", tmp_path / "prep")
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["metadata"]["positives_from_another_direction"] == 8


def test_tokyo247_daco_pairs_each_scenes_day_and_night_image_with_daco_split(tmp_path):
    _tokyo(tmp_path / "raw" / "tokyo247", labels="DSNNSDSDN" * 2)  # 6 scenes, lighting order varies per scene
    out = tokyo247_daco.import_tokyo247_daco(tmp_path / "raw" / "tokyo247", tmp_path / "prep", train_pairs=4)
    m = load_manifest(out)
    gt = load_groundtruth(out, m)
    assert gt.protocol == "cross_domain" and gt.database_split == "val"
    # scene k = names 3k+1..3k+3; its day and night image, (night, day) per pair, in scene order
    assert gt.pairs["train"] == [("nested/00003.jpg", "nested/00001.jpg"), ("nested/00004.jpg", "nested/00006.jpg"),
                                 ("nested/00009.jpg", "nested/00008.jpg"), ("nested/00012.jpg", "nested/00010.jpg")]
    assert gt.pairs["val"] == [("nested/00013.jpg", "nested/00015.jpg"), ("nested/00018.jpg", "nested/00017.jpg")]
    assert {r.domain for r in m.records} == {"day", "night"} and len(m.records) == 12
    assert m.records[m.index("nested/00013.jpg")].place == "place0001"
    with pytest.raises(DarksideError, match="6 scenes, but DaCo's split trains on the first 300"):
        tokyo247_daco.import_tokyo247_daco(tmp_path / "raw" / "tokyo247", tmp_path / "prep2")
    _tokyo(tmp_path / "raw2" / "tokyo247", labels="DSNDDN")
    with pytest.raises(DarksideError, match="00004, 00005, 00006"):
        tokyo247_daco.prepare(tmp_path / "raw2", tmp_path / "prep3")
    # after `darkside download` the dataset's own folder exists (its sentinel) without DaCo's folders: the pairs
    # still come from Tokyo's 247query_v3
    (tmp_path / "raw" / "tokyo247-daco").mkdir()
    (tmp_path / "raw" / "tokyo247-daco" / ".downloaded").write_text("{}\n")
    out = tokyo247_daco.prepare(tmp_path / "raw", tmp_path / "prep4", train_pairs=4)
    assert load_groundtruth(out).pairs == gt.pairs


def test_tokyo_csv_lighting_column(tmp_path):
    (tmp_path / "a.csv").write_text("00001.jpg,35.6,139.7,90,n,x\n")
    (tmp_path / "b.csv").write_text("1,00001.jpg,35.6,139.7,90,S\n")  # label in the 6th column
    (tmp_path / "c.csv").write_text("00001.jpg,35.6,139.7,90,X,Y\n")
    assert tokyo247.read_lighting(tmp_path / "a.csv") == "night"
    assert tokyo247.read_lighting(tmp_path / "b.csv") == "sunset"
    with pytest.raises(DarksideError, match=r"c.csv: column 5 is not one of D/S/N \('X'\)"):
        tokyo247.read_lighting(tmp_path / "c.csv")


# ---------------------------------------------------------------- Revisited Oxford / Paris


def test_revisited_import(tmp_path):
    jpg = tmp_path / "raw" / "roxford5k" / "jpg"
    for i, name in enumerate(["all_souls_000001", "all_souls_000013", "radcliffe_camera_000002", "oxford_000003"]):
        img(jpg / "sub" / f"{name}.jpg", 50 + i, 40)
    gnd = [
        {
            "bbx": np.array([1.0, 2.0, 30.5, 35.0]),
            "easy": np.array([0]),
            "hard": np.array([2]),
            "junk": np.array([], dtype=np.int64),
        },
        {"bbx": [0, 0, 10, 10], "easy": [], "hard": [1], "junk": [0]},
    ]
    pkl(
        jpg.parent / "gnd_roxford5k.pkl",
        {
            "imlist": ["all_souls_000001", "oxford_000003", "radcliffe_camera_000002"],
            "qimlist": ["all_souls_000013", "oxford_000003"],
            "gnd": gnd,
        },
    )
    out = prepare_dataset("roxford5k", tmp_path / "raw", tmp_path / "prep")
    m = load_manifest(out)
    assert [(r.image_id, r.split, r.cluster) for r in m.records] == [
        ("all_souls_000001", "database", "all_souls"),
        ("oxford_000003", "database", "oxford"),
        ("radcliffe_camera_000002", "database", "radcliffe_camera"),
        ("all_souls_000013", "query", "all_souls"),
        ("query:oxford_000003", "query", "oxford"),
    ]
    gt = load_groundtruth(out, m)
    assert gt.protocol == "revisited" and gt.database_split == "database"
    q0, q1 = gt.queries
    assert (q0.easy, q0.hard, q0.junk, q0.bbox) == (
        ["all_souls_000001"],
        ["radcliffe_camera_000002"],
        [],
        (1.0, 2.0, 30.5, 35.0),
    )
    assert (q1.query, q1.hard, q1.junk) == ("query:oxford_000003", ["oxford_000003"], ["all_souls_000001"])
    (jpg / "sub" / "oxford_000003.jpg").unlink()
    with pytest.raises(DarksideError, match=r"oxford_000003.jpg listed in gnd_roxford5k.pkl not found"):
        import_revisited(jpg, jpg.parent / "gnd_roxford5k.pkl", tmp_path / "p2", "x")


# ---------------------------------------------------------------- kapture (Aachen / RobotCar)

S2 = native_fixtures.S2
_kapture = native_fixtures.kapture


def test_kapture_import_with_rig_poses_and_hidden_query_gt(tmp_path):
    raw = tmp_path / "raw" / "aachen-v11"
    _kapture(
        raw / "mapping" / "Aachen-v1.1" / "mapping",
        "cam0, , camera, SIMPLE_RADIAL, 1600, 1200, 1000, 800, 600, 0\n",
        "0, cam0, db/1.jpg\n1, cam0, db/2.jpg\n",
        traj="0, cam0, 1, 0, 0, 0, 5, 6, 7\n1, rig, 1, 0, 0, 0, 1, 2, 3\n",
        rigs=f"rig, cam0, {S2}, 0, 0, {S2}, 0, 0, 1\n",
    )
    _kapture(
        raw / "query_night" / "query",
        "q1, , camera, UNKNOWN_CAMERA\n",
        "5, q1, query/night/nexus5x/IMG_1.jpg\n",
        images=["query/night/nexus5x/IMG_1.jpg"],
    )
    _kapture(
        raw / "query_day" / "query",
        "q2, , camera, SIMPLE_PINHOLE, 800, 600, 700, 400, 300\n",
        "6, q2, query/day/milestone/2010-10-30_17-47-25_73.jpg\n",
    )
    out = prepare_dataset("aachen-v11", tmp_path / "raw", tmp_path / "prep")
    m = load_manifest(out, check_files=False)
    by_id = {r.image_id: r for r in m.records}
    assert by_id["db/1.jpg"].pose == (1.0, 0.0, 0.0, 0.0, 5.0, 6.0, 7.0)
    # world->rig (identity, t=(1,2,3)) then rig->cam (90 deg about z, t=(0,0,1)): t = Rz(1,2,3)+(0,0,1)
    pose = by_id["db/2.jpg"].pose
    np.testing.assert_allclose(pose, (S2, 0, 0, S2, -2.0, 1.0, 4.0), atol=1e-12)
    assert (by_id["db/1.jpg"].split, by_id["db/1.jpg"].width, by_id["db/1.jpg"].height) == ("database", 1600, 1200)
    night = by_id["query/night/nexus5x/IMG_1.jpg"]
    assert (night.split, night.domain, night.width, night.pose) == ("query", "night", 32, None)
    assert by_id["query/day/milestone/2010-10-30_17-47-25_73.jpg"].domain == "day"
    assert night.path == "query_night/query/sensors/records_data/query/night/nexus5x/IMG_1.jpg"
    gt = load_groundtruth(out, m)
    assert gt.protocol == "localization" and [q.positives for q in gt.queries] == [[], []]
    md = meta(out)
    assert md["query_ground_truth"] == "not public" and "visuallocalization.net" in md["note"]
    assert md["counts"]["query_with_pose"] == 0 and md["counts"]["database_with_pose"] == 2


def test_kapture_compose_matches_hand_computation():
    world_to_rig = (1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0)
    rig_to_cam = (S2, 0.0, 0.0, S2, 0.0, 0.0, 1.0)
    np.testing.assert_allclose(kapture.compose(world_to_rig, rig_to_cam), (S2, 0, 0, S2, -2, 1, 4), atol=1e-12)


# ---------------------------------------------------------------- Foggy Cityscapes, SYNTHIA


def test_foggy_cityscapes_native_layout(tmp_path):
    root = tmp_path / "raw" / "foggy-cityscapes"
    for split, city, stem in (
        ("train", "aachen", "aachen_000000_000019"),
        ("train", "bochum", "bochum_000000_000313"),
        ("val", "lindau", "lindau_000000_000019"),
    ):
        img(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", 16, 8, "PNG")
        for beta in ("0.01", "0.02"):
            img(
                root / "leftImg8bit_foggyDBF" / split / city / f"{stem}_leftImg8bit_foggy_beta_{beta}.png", 16, 8, "PNG"
            )
    out = import_foggy_cityscapes(root, tmp_path / "prep")
    m = load_manifest(out)
    gt = load_groundtruth(out, m)
    assert {k: len(v) for k, v in gt.pairs.items()} == {"train": 2, "val": 1}
    foggy, clear = gt.pairs["val"][0]
    assert foggy.endswith("lindau_000000_000019_leftImg8bit_foggy_beta_0.02.png")
    assert clear == "leftImg8bit/val/lindau/lindau_000000_000019_leftImg8bit.png"
    assert m.records[m.index(clear)].domain == "day" and m.records[m.index(foggy)].domain == "other"
    assert m.records[m.index(clear)].cluster == m.records[m.index(foggy)].cluster
    (root / "leftImg8bit_foggyDBF" / "val" / "lindau" / "lindau_000000_000019_leftImg8bit_foggy_beta_0.02.png").unlink()
    with pytest.raises(DarksideError, match="missing foggy counterpart"):
        import_foggy_cityscapes(root, tmp_path / "prep2")


def test_synthia_native_pairs_by_index(tmp_path):
    root = tmp_path / "raw" / "synthia-seqs"
    for cond, n in (("SUNSET", 3), ("RAINNIGHT", 2)):
        for i in range(n):
            img(root / f"SYNTHIA-SEQS-02-{cond}" / "RGB" / "Stereo_Left" / "Omni_F" / f"{i:06d}.png", 8, 8, "PNG")
    out = import_synthia(root, tmp_path / "prep", SynthiaSettings(val_pairs=1, seed=0))
    m = load_manifest(out)
    gt = load_groundtruth(out, m)
    all_pairs = [p for v in gt.pairs.values() for p in v]
    assert sorted(all_pairs) == [
        (
            "SYNTHIA-SEQS-02-RAINNIGHT/RGB/Stereo_Left/Omni_F/000000.png",
            "SYNTHIA-SEQS-02-SUNSET/RGB/Stereo_Left/Omni_F/000000.png",
        ),
        (
            "SYNTHIA-SEQS-02-RAINNIGHT/RGB/Stereo_Left/Omni_F/000001.png",
            "SYNTHIA-SEQS-02-SUNSET/RGB/Stereo_Left/Omni_F/000001.png",
        ),
    ]
    assert len(gt.pairs["val"]) == 1 and gt.protocol == "cross_domain" and gt.database_split == "val"
    assert meta(out)["unpaired_frames_dropped"] == 1
    assert {r.domain for r in m.records} == {"sunset", "night"}


def test_daco_prearranged_layout_pairs_by_sorted_index(tmp_path):
    root = tmp_path / "raw" / "synthia-seqs" / "original"
    for dom in ("domain_a", "domain_b"):
        for i in (2, 1):
            img(root / dom / "val" / f"{dom[-1]}_{i:03d}.png", 8, 8, "PNG")
    out = import_synthia(root.parent, tmp_path / "prep")
    gt = load_groundtruth(out)
    assert gt.pairs == {
        "val": [
            ("original/domain_b/val/b_001.png", "original/domain_a/val/a_001.png"),
            ("original/domain_b/val/b_002.png", "original/domain_a/val/a_002.png"),
        ]
    }


def test_manual_dataset_prepare_says_what_to_place(tmp_path):
    with pytest.raises(DarksideError, match=r"synthia-dataset\.net"):
        prepare_dataset("synthia-seqs", tmp_path / "raw", tmp_path / "prep")
