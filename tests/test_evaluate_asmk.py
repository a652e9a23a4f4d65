"""ASMK: the kernel against a brute-force computation of the same definition, the codebook, and scoring with it."""

import json
import math

import numpy as np
import pytest

from darkside.config import ScoreSettings
from darkside.data.manifest import GroundTruth, ImageRecord, Query, load_groundtruth, load_manifest, write_dataset
from darkside.errors import DarksideError
from darkside.evaluate.asmk import (
    AsmkSettings,
    AsmkSimilarity,
    aggregate,
    asmk_descriptor_set,
    asmk_scores,
    kmeans,
    nearest_words,
    read_codebook,
    selectivity,
    write_codebook,
)
from darkside.evaluate.score import PROTOCOLS, score_dataset
from darkside.extract.hdf5 import DescriptorSet, LocalFeatures, read_descriptors, write_descriptors

PAPER = AsmkSettings(database_assignments=1, query_assignments=5, alpha=3.0, tau=0.0)
SETTINGS = ScoreSettings(chunk_size=3, recall_ks=(1, 2), pairs_topk=2,
                         localization_thresholds=((0.25, 2.0), (0.5, 5.0), (5.0, 10.0)))


def _brute_side(X, C, k):
    """word -> list of +-1 signs of the summed residuals, written out loop by loop."""
    sums = {}
    for x in X:
        d = [float(np.sum((x.astype(np.float64) - c) ** 2)) for c in C]
        for w in sorted(range(len(C)), key=lambda j: (d[j], j))[:k]:
            sums[w] = sums.get(w, 0.0) + (x.astype(np.float64) - C[w])
    return {w: np.where(v > 0, 1.0, -1.0) for w, v in sums.items()}


def _brute_score(q, x, dim, alpha, tau):
    total = 0.0
    for w in set(q) & set(x):
        u = float(q[w] @ x[w]) / dim
        total += math.copysign(abs(u) ** alpha, u) if u >= tau else 0.0
    return total / math.sqrt(len(q) * len(x)) if q and x else 0.0


def _random_images(rng, n, dim, most=7):
    return [rng.standard_normal((int(rng.integers(0, most + 1)), dim)).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize(("qa", "da", "alpha", "tau"), [(5, 1, 3.0, 0.0), (2, 2, 1.0, 0.25), (3, 1, 2.0, -0.5)])
def test_kernel_equals_brute_force(qa, da, alpha, tau):
    rng = np.random.default_rng(1)
    dim, C = 12, rng.standard_normal((7, 12)).astype(np.float32)  # 12 dims: codes of two bytes, 4 padding bits
    qs, xs = _random_images(rng, 5, dim), _random_images(rng, 6, dim)
    got = asmk_scores([aggregate(q, C, qa) for q in qs], [aggregate(x, C, da) for x in xs], alpha, tau)
    want = np.array([[_brute_score(_brute_side(q, C, qa), _brute_side(x, C, da), dim, alpha, tau) for x in xs]
                     for q in qs])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert np.count_nonzero(want) > 10  # the random set shares words: the check is not vacuous


def test_selectivity_and_self_similarity():
    np.testing.assert_allclose(selectivity(np.array([1.0, 0.5, 0.0, -0.5]), 3.0, 0.0), [1.0, 0.125, 0.0, 0.0])
    np.testing.assert_allclose(selectivity(np.array([0.5, -0.5]), 3.0, -1.0), [0.125, -0.125])
    rng = np.random.default_rng(0)
    C = rng.standard_normal((5, 8)).astype(np.float32)
    x = aggregate(rng.standard_normal((6, 8)).astype(np.float32), C, 1)
    assert asmk_scores([x], [x], 3.0, 0.0)[0, 0] == pytest.approx(1.0)  # normalised by the number of words


def test_aggregate_by_hand():
    C = np.array([[0.0, 0.0], [10.0, 10.0]], dtype=np.float32)
    X = np.array([[1.0, -2.0], [0.5, 3.0], [9.0, 12.0]], dtype=np.float32)
    a = aggregate(X, C, 1)
    # word 0: (1, -2) + (0.5, 3) = (1.5, 1) -> ++ ; word 1: (-1, 2) -> -+
    assert a.words.tolist() == [0, 1] and np.unpackbits(a.codes, axis=1)[:, :2].tolist() == [[1, 1], [0, 1]]
    both = aggregate(X[:1], C, 2)  # multiple assignment: the one descriptor joins both words
    assert both.words.tolist() == [0, 1]
    zero = aggregate(np.array([[0.0, 5.0]], np.float32), C, 1)  # a zero residual dimension is a -1
    assert np.unpackbits(zero.codes, axis=1)[:, :2].tolist() == [[0, 1]]


def test_nearest_words_order_and_ties():
    C = np.array([[0.0], [2.0], [-2.0], [5.0]], dtype=np.float32)
    np.testing.assert_array_equal(nearest_words(np.array([[1.0], [4.0]], np.float32), C, 3), [[0, 1, 2], [3, 1, 0]])
    np.testing.assert_array_equal(nearest_words(np.array([[1.0]], np.float32), C, 1), [[0]])  # 0 and 1 tie


def test_kmeans_finds_separated_clusters(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    X = np.concatenate([c + 0.1 * rng.standard_normal((30, 2)) for c in centres]).astype(np.float32)
    C = kmeans(X, 3, 10, seed=0)
    np.testing.assert_allclose(sorted(map(tuple, np.round(C))), sorted(map(tuple, centres)), atol=0.5)
    np.testing.assert_array_equal(C, kmeans(X, 3, 10, seed=0))
    with pytest.raises(DarksideError, match="at least as many descriptors"):
        kmeans(X[:2], 3, 1, seed=0)
    path = write_codebook(tmp_path / "cb.h5", C, {"model": "m"})
    np.testing.assert_array_equal(read_codebook(path), C)
    (tmp_path / "bad.h5").write_bytes(b"no")
    with pytest.raises(DarksideError, match=r"bad\.h5: unreadable codebook"):
        read_codebook(tmp_path / "bad.h5")


def test_blocks_score_like_the_whole():
    rng = np.random.default_rng(2)
    C = rng.standard_normal((4, 8)).astype(np.float32)
    imgs = _random_images(rng, 7, 8)
    local = LocalFeatures.concat([(x, np.ones(len(x), np.float32)) for x in imgs], 8)
    sim = AsmkSimilarity(local, None, C, PAPER)
    h = np.arange(7, dtype=np.float64).reshape(-1, 1)
    whole = sim(h, h)
    np.testing.assert_array_equal(np.concatenate([sim(h, h[:3]), sim(h, h[3:])], axis=1), whole)
    qs = [aggregate(x, C, 5) for x in imgs]
    np.testing.assert_array_equal(whole, asmk_scores(qs, [aggregate(x, C, 1) for x in imgs], 3.0, 0.0))


# --- scoring with the kernel, every protocol ------------------------------------------------------------------

def _rec(i, split, domain, cluster, pose=None):
    return ImageRecord(f"{i}.jpg", i, split, domain, cluster, cluster, 8, 8, pose)


def _scene_features(rng, centre, n=4):
    return (centre + 0.05 * rng.standard_normal((n, centre.shape[1]))).astype(np.float32)


def _datasets(tmp_path):
    """Three toy datasets whose local features share a scene's patterns while their global rows do not."""
    rng = np.random.default_rng(3)
    patterns = {s: rng.standard_normal((1, 8)) * 3 for s in "abc"}
    out = {}
    ids, doms, scene = ["d0", "s0", "n0", "d1", "s1", "n1"], ["day", "sunset", "night"] * 2, ["a"] * 3 + ["b"] * 3
    recs = [_rec(i, "test", d, s) for i, d, s in zip(ids, doms, scene, strict=True)]
    qs = [Query(i, positives=[j for j, t in zip(ids, scene, strict=True) if t == s and j != i], junk=[i])
          for i, s in zip(ids, scene, strict=True)]
    out["tokyo"] = (write_dataset(tmp_path / "tokyo", "toy-tokyo", recs, GroundTruth("tokyo", qs)), ids, scene, None)
    db = [_rec(f"x{i}", "database", "day", c) for i, c in enumerate("aabbc")]
    q = [_rec("q0", "query", "day", "b")]
    gt = GroundTruth("revisited", [Query("q0", easy=["x2"], hard=["x3"], junk=[], positives=["x2", "x3"],
                                         bbox=(0, 0, 4, 4))], database_split="database")
    out["revisited"] = (write_dataset(tmp_path / "rox", "toy-rox", db + q, gt), [r.image_id for r in db + q],
                        [*"aabbc", "c"], ["b"])  # the uncropped query shows c, its crop b
    ident = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    db = [_rec("m0", "database", "day", "a", ident), _rec("m1", "database", "day", "b", (1.0, 0, 0, 0, -9.0, 0, 0))]
    q = [_rec("q0", "query", "night", "a", ident), _rec("q1", "query", "night", "b", (1.0, 0, 0, 0, -9.0, 0, 0))]
    gt = GroundTruth("localization", [Query("q0", positives=["m0"])], database_split="database")
    out["localization"] = (write_dataset(tmp_path / "loc", "toy-loc", db + q, gt), [r.image_id for r in db + q],
                           ["a", "b", "a", "b"], None)
    files = {}
    for name, (root, ids, scenes, qscenes) in out.items():
        local = LocalFeatures.concat([(f, np.linspace(1, 0.5, len(f)).astype(np.float32))
                                      for f in (_scene_features(rng, patterns[s]) for s in scenes)], 8)
        qlocal = None if qscenes is None else LocalFeatures.concat(
            [(_scene_features(rng, patterns[s]), np.ones(4, np.float32)) for s in qscenes], 8)
        glob = rng.standard_normal((len(ids), 4)).astype(np.float32)
        glob /= np.linalg.norm(glob, axis=1, keepdims=True)
        qglob = None if qscenes is None else glob[:1]
        files[name] = (root, write_descriptors(tmp_path / f"{name}.h5", DescriptorSet(
            ids, glob, None if qscenes is None else ["q0"], qglob, {"model": "how"}, local, qlocal)))
    return files


def test_score_with_a_codebook_ranks_by_asmk_in_every_protocol(tmp_path):
    rng = np.random.default_rng(4)
    C = rng.standard_normal((6, 8)).astype(np.float32)
    cb = write_codebook(tmp_path / "codebook.h5", C, {})
    for name, (root, h5) in _datasets(tmp_path).items():
        pairs = tmp_path / f"pairs-{name}"
        res = json.loads(score_dataset(h5, root, SETTINGS, tmp_path / f"{name}.json", pairs, codebook=cb,
                                       asmk=PAPER).read_text())
        first = (pairs / "pairs-top1.txt" if name == "localization" else pairs / "pairs-top2.txt").read_text()
        assert first.splitlines()[0] == {"tokyo": "d0.jpg s0.jpg", "revisited": "q0.jpg x2.jpg",
                                         "localization": "q0 m0"}[name]  # localization names by image id
        assert res["similarity"] == "asmk" and res["codebook"] == str(cb)
        # the same scorer given the brute-force kernel as its similarity: the same numbers
        ds = read_descriptors(h5)
        n = len(ds.image_ids)
        qimgs = [ds.local.of(i) for i in range(n)] + ([ds.query_local.of(0)] if ds.query_local else [])
        S = np.array([[_brute_score(_brute_side(q, C, 5), _brute_side(ds.local.of(j), C, 1), 8, 3.0, 0.0)
                       for j in range(n)] for q in qimgs])
        ref = asmk_descriptor_set(ds, C, PAPER, h5)
        ref.similarity = lambda Q, X, S=S: S[np.asarray(Q[:, 0], int)][:, np.asarray(X[:, 0], int)]
        manifest = load_manifest(root, check_files=False)
        want = PROTOCOLS[name](manifest, load_groundtruth(root, manifest), ref, SETTINGS, root / "groundtruth.json",
                               h5, tmp_path / f"ref-{name}")
        assert {k: res[k] for k in want} == json.loads(json.dumps(want)), name
        plain = json.loads(score_dataset(h5, root, SETTINGS, tmp_path / f"{name}-global.json").read_text())
        if name == "localization":
            assert res["metrics"]["5m,10deg"] == 100.0  # each query finds its scene's database image
        else:
            assert res["metrics"]["mAP"] == 100.0  # the scene's local patterns find every positive first
            assert plain["metrics"]["mAP"] < 100.0  # the global rows (random) do not: the kernel was used
        if name == "tokyo":
            assert all(res["recall"][m] == {"R@1": 100.0, "R@2": 100.0}
                       for m in ("day->night", "night->day", "day<->night"))
        assert "similarity" not in plain


def test_codebook_needs_local_features(tmp_path):
    root, _ = _datasets(tmp_path)["tokyo"]
    h5 = write_descriptors(tmp_path / "g.h5", DescriptorSet(["d0"], np.ones((1, 8), np.float32)))
    cb = write_codebook(tmp_path / "cb.h5", np.zeros((2, 8), np.float32), {})
    with pytest.raises(DarksideError, match=r"g\.h5: no /local features"):
        score_dataset(h5, root, SETTINGS, tmp_path / "o.json", codebook=cb, asmk=PAPER)
    with pytest.raises(DarksideError, match=r"local\.asmk"):
        score_dataset(h5, root, SETTINGS, tmp_path / "o.json", codebook=cb)


def test_paper_preset_local_settings(repo_root):
    """HOW eccv20 R18 at test time (7 scales, top 1000) and its ASMK (65,536 words, 10 k-means rounds on the first
    20,000 training images; multiple assignment 1 / 5; alpha 3, tau 0)."""
    from darkside.config import load_params

    paper = load_params(repo_root / "params.yaml")["presets"]["paper"]["local"]
    assert paper["extract"] == {"scales": [2.0, 1.414, 1.0, 0.707, 0.5, 0.353, 0.25], "features": 1000}
    assert paper["codebook"] == {"words": 65536, "iterations": 10, "images": 20000, "seed": 0}
    assert AsmkSettings(**paper["asmk"]) == PAPER


def test_score_reads_the_kernel_only_with_a_codebook(repo_root):
    from darkside.cli import job_settings
    from darkside.config import load_params
    from darkside.errors import ConfigError

    params = load_params(repo_root / "params.yaml")
    assert job_settings("score", params, "paper", {"codebook": "cb.h5"}).section("local.asmk", AsmkSettings) == PAPER
    with pytest.raises(ConfigError, match="not among this job's settings"):
        job_settings("score", params, "paper", {"codebook": None}).get("local.asmk")
