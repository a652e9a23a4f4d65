"""score_dataset end to end on tiny datasets written with the suite's own writers."""

import dataclasses
import json

import numpy as np
import pytest

from darkside.config import ScoreSettings
from darkside.data import manifest
from darkside.data.manifest import GroundTruth, ImageRecord, Query, write_dataset
from darkside.errors import DarksideError
from darkside.evaluate.score import PROTOCOLS, score_dataset
from darkside.extract.hdf5 import DescriptorSet, write_descriptors

SETTINGS = ScoreSettings(chunk_size=4, recall_ks=(1, 2), pairs_topk=2,
                         localization_thresholds=((0.25, 2.0), (0.5, 5.0), (5.0, 10.0)))


def _unit(deg):
    r = np.radians(np.asarray(deg, dtype=np.float64))
    return np.stack([np.cos(r), np.sin(r)], axis=1).astype(np.float32)


def _rec(i, split, domain, cluster, pose=None):
    return ImageRecord(f"{i}.jpg", i, split, domain, cluster, cluster, 8, 8, pose)


def _tokyo(tmp_path):
    ids = ["d0", "s0", "n0", "d1", "s1", "n1"]
    doms = ["day", "sunset", "night"] * 2
    scene = ["a"] * 3 + ["b"] * 3
    recs = [_rec(i, "test", d, s) for i, d, s in zip(ids, doms, scene, strict=True)]
    same = {i: [j for j, s2 in zip(ids, scene, strict=True) if s2 == s and j != i]
            for i, s in zip(ids, scene, strict=True)}
    queries = [Query(i, positives=same[i], junk=[i]) for i in ids]
    root = write_dataset(tmp_path / "tokyo", "toy-tokyo", recs, GroundTruth("tokyo", queries))
    # angles chosen so that no query sees a tie
    h5 = write_descriptors(tmp_path / "tokyo.h5", DescriptorSet(ids, _unit([0, 10, 105, 180, 190, 65]),
                                                                 attrs={"model_sha256": "abc", "model": "m"}))
    return root, h5


def test_tokyo_end_to_end(tmp_path):
    root, h5 = _tokyo(tmp_path)
    out = score_dataset(h5, root, SETTINGS, tmp_path / "m.json")
    assert out == tmp_path / "m.json"
    res = json.loads(out.read_text())
    assert res["protocol"] == "tokyo" and res["dataset"] == "toy-tokyo" and res["model_sha256"] == "abc"
    assert res["n_queries"] == 6
    pq = res["per_query"]["mAP"]
    assert pq["ids"][0] == "d0"
    # d0 ranks d0, s0, n1, n0, s1, d1; junk d0 removed: positives at 0 and 2
    assert pq["ap"][0] == pytest.approx(100 * (1 + (0.5 + 2 / 3) / 2) / 2)
    assert res["metrics"]["mAP"] == pytest.approx(np.mean(pq["ap"]))
    # Table 6: d0's night image at rank 3 with d0 and s0 junk -> rank 1 -> 1/4; same for d1
    assert res["breakdown"]["day->night"] == {"mAP": pytest.approx(25.0), "n_queries": 2}
    assert set(res["breakdown"]) == {"day->sunset", "sunset->day", "sunset->night", "night->sunset",
                                     "day->night", "night->day"}
    # day->sunset: s0 right after d0 (rank 1, junk d0 ahead -> rank 0): AP 1; likewise d1 -> s1
    assert res["breakdown"]["day->sunset"]["mAP"] == pytest.approx(100.0)
    rec = res["recall"]
    assert rec["n_pairs"] == 2
    # day 0/180 vs night 105/65: d0 -> n1 (65) first, d1 -> n0 (105) first: both miss at 1, hit at 2
    assert rec["day->night"] == {"R@1": 0.0, "R@2": 100.0}
    assert res["per_query"]["R@1 day<->night"]["ids"] == ["d0", "d1", "n0", "n1"]


def test_tokyo_chunk_size_does_not_change_numbers(tmp_path):
    root, h5 = _tokyo(tmp_path)
    a = json.loads(score_dataset(h5, root, SETTINGS, tmp_path / "a.json").read_text())
    big = dataclasses.replace(SETTINGS, chunk_size=1000)
    b = json.loads(score_dataset(h5, root, big, tmp_path / "b.json").read_text())
    assert a == b


def test_revisited_uses_cropped_queries(tmp_path):
    db = [_rec(f"x{i}", "database", "day", "c") for i in range(5)]
    q = [_rec("q0", "query", "day", "c")]
    query = Query("q0", easy=["x1"], hard=["x3"], junk=["x2"], positives=["x1", "x3"], bbox=(0, 0, 4, 4))
    gt = GroundTruth("revisited", [query], database_split="database")
    root = write_dataset(tmp_path / "rox", "toy-rox", db + q, gt)
    X = _unit([0, 10, 20, 30, 40, 28])  # x0..x4 then the uncropped q0 at 28 degrees
    cropped = _unit([0])  # the cropped query sits on x0: ranking x0, x1, x2, x3, x4
    h5 = write_descriptors(tmp_path / "r.h5", DescriptorSet([r.image_id for r in db + q], X, ["q0"], cropped))
    res = json.loads(score_dataset(h5, root, SETTINGS, tmp_path / "r.json").read_text())
    m = res["metrics"]
    # easy: x1 at 1, junk x2, x3 after it -> 1/4; medium: x1 at 1, x3 at 3 - 1 junk = 2
    assert m["easy"]["mAP"] == pytest.approx(25.0)
    assert m["medium"]["mAP"] == pytest.approx(100 * ((0 + 0.5) / 2 + (0.5 + 2 / 3) / 2) / 2)
    assert m["mAP"] == m["medium"]["mAP"]
    # hard: x3 at 3 with junk x1, x2 ahead -> rank 1 -> 1/4; mP@5 kq = 2 -> 1/2
    assert m["hard"]["mAP"] == pytest.approx(25.0) and m["hard"]["mP@5"] == pytest.approx(50.0)
    assert res["per_query"]["medium"]["ids"] == ["q0"]
    # without the /queries group the row's own (uncropped) descriptor at 28 degrees is used
    write_descriptors(tmp_path / "r2.h5", DescriptorSet([r.image_id for r in db + q], X))
    res2 = json.loads(score_dataset(tmp_path / "r2.h5", root, SETTINGS, tmp_path / "r2.json").read_text())
    # ranking x3, x2, x4, x1, x0: hard x3 first -> 1; medium x3 at 0, x1 at 3 - 1 junk = 2
    assert res2["metrics"]["hard"]["mAP"] == pytest.approx(100.0)
    assert res2["metrics"]["medium"]["mAP"] == pytest.approx(100 * (1 + (0.5 + 2 / 3) / 2) / 2)


def test_missing_database_descriptor_ranks_last(tmp_path):
    db = [_rec(f"x{i}", "database", "day", "c") for i in range(3)]
    gt = GroundTruth("revisited", [Query("x0", easy=["x1"], hard=[], junk=[], positives=["x1"])],
                     database_split="database")
    root = write_dataset(tmp_path / "d", "toy", db, gt)
    h5 = write_descriptors(tmp_path / "m.h5", DescriptorSet(["x0", "x2"], _unit([0, 5])))
    res = json.loads(score_dataset(h5, root, SETTINGS, tmp_path / "o.json").read_text())
    # x1 has no descriptor: ranked after x0 and x2 -> rank 2 -> 1/6
    assert res["metrics"]["easy"]["mAP"] == pytest.approx(100 / 6)
    assert res["n_database_missing"] == 1
    write_descriptors(tmp_path / "m2.h5", DescriptorSet(["x1", "x2"], _unit([0, 5])))
    with pytest.raises(DarksideError, match="x0"):
        score_dataset(tmp_path / "m2.h5", root, SETTINGS, tmp_path / "o2.json")


def test_localization_end_to_end(tmp_path):
    ident = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    db = [_rec("m0", "database", "day", "c", ident),
          _rec("m1", "database", "day", "c", (1.0, 0, 0, 0, -1.0, 0, 0)),
          _rec("m2", "database", "day", "c", (1.0, 0, 0, 0, -9.0, 0, 0))]
    qs = [_rec("q0", "query", "night", "c", ident), _rec("q1", "query", "night", "c", ident),
          _rec("q2", "query", "night", "c", None)]
    gt = GroundTruth("localization", [Query("q0", positives=["m0"])], database_split="database")
    root = write_dataset(tmp_path / "loc", "toy-loc", db + qs, gt)
    # q0 retrieves m0 (same pose); q1 retrieves m1 (1 m away); q2 has no pose
    X = _unit([0, 90, 200, 5, 85, 190])
    h5 = write_descriptors(tmp_path / "l.h5", DescriptorSet([r.image_id for r in db + qs], X))
    pairs = tmp_path / "pairs"
    res = json.loads(score_dataset(h5, root, SETTINGS, tmp_path / "l.json", pairs_dir=pairs).read_text())
    assert res["metrics"]["0.25m,2deg"] == pytest.approx(50.0)
    assert res["metrics"]["5m,10deg"] == pytest.approx(100.0)
    assert res["metrics"]["mAP"] == pytest.approx(100.0)
    loc = res["localization"]
    assert loc["n_scored"] == 2 and loc["per_query"]["top1"] == ["m0", "m1"]
    assert loc["per_query"]["position_error_m"] == pytest.approx([0.0, 1.0])
    # a dataset that declares no benchmark style (the synthetic benchmark) names images by id everywhere
    assert (pairs / "pairs-top1.txt").read_text() == "q0 m0\nq1 m1\nq2 m2\n"
    assert (pairs / "pairs-top2.txt").read_text().splitlines()[:2] == ["q0 m0", "q0 m1"]
    assert (pairs / "pairs-top2.csv").read_text().startswith("# query_image, map_image, score\n")
    assert (pairs / "poses-top1.txt").read_text().splitlines()[1] == "q1 1.0 0.0 0.0 0.0 -1.0 0.0 0.0"
    assert sorted(loc["files"]) == ["pairs-top1.csv", "pairs-top1.txt", "pairs-top2.csv", "pairs-top2.txt",
                                    "poses-top1.txt"]


def test_protocol_registry_matches_the_manifest_protocols(tmp_path):
    # every protocol groundtruth.json may name has a scorer, except training (no queries)
    assert set(PROTOCOLS) == manifest.PROTOCOLS - {"training"}
    assert all(callable(f) for f in PROTOCOLS.values())
    root = write_dataset(tmp_path / "train", "toy-train", [_rec("a", "train", "day", "c")],
                         GroundTruth("training", pairs={"train": []}))
    h5 = write_descriptors(tmp_path / "t.h5", DescriptorSet(["a"], _unit([0])))
    with pytest.raises(DarksideError, match="'training' has no queries to score"):
        score_dataset(h5, root, SETTINGS, tmp_path / "t.json")


def _cross_domain(tmp_path, angles_a, angles_b, drop=None):
    n = len(angles_a)
    recs = [_rec(f"a{k}", "val", "day", f"pair{k}") for k in range(n)]
    recs += [_rec(f"b{k}", "val", "night", f"pair{k}") for k in range(n)]
    recs += [_rec("ta", "train", "day", "t"), _rec("tb", "train", "night", "t")]
    gt = GroundTruth("cross_domain", database_split="val",
                     pairs={"train": [("tb", "ta")], "val": [(f"b{k}", f"a{k}") for k in range(n)]})
    root = write_dataset(tmp_path / "cd", "toy-cd", recs, gt)
    ids = [r.image_id for r in recs if r.image_id != drop]
    X = {r.image_id: v for r, v in zip(recs, _unit(list(angles_a) + list(angles_b) + [0, 0]), strict=True)}
    h5 = write_descriptors(tmp_path / "cd.h5", DescriptorSet(ids, np.stack([X[i] for i in ids])))
    return root, h5


def test_cross_domain_recall_equals_a_brute_force_count(tmp_path):
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 360, 7), rng.uniform(0, 360, 7)
    root, h5 = _cross_domain(tmp_path, a, b)
    res = json.loads(score_dataset(h5, root, SETTINGS, tmp_path / "m.json").read_text())
    assert res["protocol"] == "cross_domain" and res["n_queries"] == 7 and res["n_database"] == 14
    assert res["domains"] == {"A": "day", "B": "night"}
    A, B = _unit(a).astype(np.float64), _unit(b).astype(np.float64)
    X = np.concatenate([A, B])

    def brute(Q, G, positive, exclude_self):
        S = Q @ G.T
        if exclude_self:
            np.fill_diagonal(S, -np.inf)
        # rank of the positive: the gallery items strictly more similar (no ties among random angles)
        rank = (S[np.arange(len(Q)), positive][:, None] < S).sum(1)
        return {k: 100.0 * float((rank < k).mean()) for k in SETTINGS.recall_ks}

    own = np.arange(7)
    expect = {"A->B": brute(A, B, own, False), "B->A": brute(B, A, own, False),
              "A<->B": brute(X, X, (np.arange(14) + 7) % 14, True)}
    for mode, rk in expect.items():
        for k, v in rk.items():
            assert res["metrics"][mode][f"R@{k}"] == pytest.approx(v)
            assert np.mean(res["per_query"][f"R@{k} {mode}"]["hit"]) == pytest.approx(v)
    assert res["per_query"]["R@1 B->A"]["ids"] == [f"b{k}" for k in range(7)]
    assert res["per_query"]["R@1 A<->B"]["ids"] == [f"a{k}" for k in range(7)] + [f"b{k}" for k in range(7)]


def test_cross_domain_hand_computed_case(tmp_path):
    # a0 at 0 deg, a1 at 90; b0 at 80, b1 at 10: each A image is nearest the other pair's B image
    root, h5 = _cross_domain(tmp_path, [0, 90], [80, 10])
    res = json.loads(score_dataset(h5, root, SETTINGS, tmp_path / "m.json").read_text())
    assert res["metrics"]["A->B"] == {"R@1": 0.0, "R@2": 100.0}
    # a0's nearest of {a1, b0, b1} (itself removed) is b1 (10), then b0 (80) tied-free before a1 (90)
    assert res["per_query"]["R@2 A<->B"]["hit"][0] == 100.0
    assert res["per_query"]["R@1 A<->B"]["hit"] == [0.0, 0.0, 0.0, 0.0]


def test_cross_domain_needs_every_pair_descriptor(tmp_path):
    root, h5 = _cross_domain(tmp_path, [0, 90], [80, 10], drop="b1")
    with pytest.raises(DarksideError, match=r"have no descriptor \(first 'b1'"):
        score_dataset(h5, root, SETTINGS, tmp_path / "m.json")


def test_cross_domain_ground_truth_names_its_evaluation_split(tmp_path):
    recs = [_rec("a", "val", "day", "p"), _rec("b", "val", "night", "p")]
    with pytest.raises(DarksideError, match="database_split: 'test' names no split of 'pairs'"):
        root = write_dataset(tmp_path / "x", "x", recs,
                             GroundTruth("cross_domain", database_split="test", pairs={"val": [("b", "a")]}))
        manifest.load_groundtruth(root)
