"""DaCo's hand-crafted baselines: ratio-test matching (darkside.evaluate.matches), BoW and VLAD encodings
(darkside.extract.handcrafted), checked by hand, and the extract -> score chain on a toy pair set."""

import json

import numpy as np
import pytest
from test_embed_daco import pair_set  # noqa: F401  (a fixture: 4 training and 3 evaluation pairs)

from darkside.config import MatchCountSettings, ScoreSettings
from darkside.evaluate.matches import MatchSimilarity, match_score, ratio_matches
from darkside.evaluate.score import score_dataset
from darkside.extract.handcrafted import HandcraftedMethod, SiftSettings, extract_handcrafted
from darkside.extract.handcrafted.bow import BowSettings, bow_histograms, tf_idf
from darkside.extract.handcrafted.matches import MatchesSettings
from darkside.extract.handcrafted.vlad import VladSettings, vlad
from darkside.extract.hdf5 import LocalFeatures, read_descriptors

SIFT = SiftSettings(height=96, contrast_threshold=0.04, max_keypoints=0)


def test_ratio_matches_count_the_query_rows_whose_nearest_is_clearly_nearer():
    q = np.array([[0.0, 0.0], [5.0, 5.0], [10.0, 0.0]])
    x = np.array([[0.1, 0.0], [5.0, 5.9], [5.0, 4.0], [20.0, 0.0]])
    # q0: 0.1 vs 5.9 (ratio 0.02) -> match; q1: 0.9 vs 1.0 (0.9); q2: sqrt(41) vs sqrt(59.81) (0.828)
    assert ratio_matches(q, x, 0.7) == 1
    assert ratio_matches(q, x, 0.85) == 2 and ratio_matches(q, x, 0.95) == 3
    assert ratio_matches(q, x[:1], 0.7) == 0 and ratio_matches(q[:0], x, 0.7) == 0  # one candidate, no query
    assert match_score(3, 10, 5, "count") == 3.0 and match_score(3, 10, 5, "jaccard") == pytest.approx(3 / 12)


def test_the_match_kernel_is_asymmetric_and_cached():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 8)), rng.normal(size=(3, 8))
    b = np.concatenate([b, a[:2] + 0.01])  # two of a's rows have near twins in b
    local = LocalFeatures.concat([(a.astype(np.float32), np.ones(6, np.float32)),
                                  (b.astype(np.float32), np.ones(5, np.float32))], 8)
    sim = MatchSimilarity(local, MatchCountSettings(ratio=0.7, score="count"))
    S = sim(np.array([[0.0], [1.0]]), np.array([[0.0], [1.0]]))
    assert S[0, 1] == ratio_matches(a, b, 0.7) and S[1, 0] == ratio_matches(b, a, 0.7)
    assert S[0, 1] >= 2 and S[0, 0] == 6  # every row of a matches itself
    assert set(sim._cache) == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_bow_is_idf_weighted_word_counts():
    C = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], np.float32)
    per_image = [np.array([[0.1, 0], [9, 0], [9.5, 0.5]], np.float32), np.array([[0, 9]], np.float32)]
    counts = bow_histograms(per_image, C)
    assert counts.tolist() == [[1, 2, 0], [0, 0, 1]]
    # N = 2; words 0 and 1 in one image each, word 2 in one: idf log(3 / 2) for all three
    assert np.allclose(tf_idf(counts), counts * np.log(3 / 2))


def test_vlad_sums_residuals_per_nearest_centroid_then_signed_root_and_l2():
    C = np.array([[0.0, 0.0], [10.0, 0.0]], np.float32)
    d = np.array([[1.0, 0.0], [0.0, -4.0], [9.0, 1.0]], np.float32)
    residuals = np.array([[1.0, -4.0], [-1.0, 1.0]]).reshape(-1)
    v = np.sign(residuals) * np.sqrt(np.abs(residuals))
    assert np.allclose(vlad(d, C), v / np.linalg.norm(v))
    assert not vlad(np.zeros((0, 2), np.float32), C).any()


@pytest.mark.parametrize("encoding", [{"matches": MatchesSettings()},
                                      {"bow": BowSettings(words=4, iterations=5, seed=0)},
                                      {"vlad": VladSettings(clusters=2, codebook="per-image", iterations=5, seed=0)},
                                      {"vlad": VladSettings(clusters=2, codebook="shared", iterations=5, seed=0)}])
def test_extract_then_score_gives_the_recall_of_the_method_kernel(encoding, pair_set, tmp_path):  # noqa: F811
    """The toy pairs: night = the day texture darkened, so SIFT finds the same structure in both. The scored
    A->B R@1 is the kernel's own, recomputed from the written file."""
    root, _ = pair_set
    method = HandcraftedMethod(sift=SIFT, encoding=encoding)
    h5 = extract_handcrafted("toy", method, root, tmp_path / "toy.h5")
    ds = read_descriptors(h5)
    assert ds.image_ids == [f"val/{d}/{k}.png" for d in ("day", "night") for k in range(3)]
    assert np.allclose(np.linalg.norm(ds.descriptors, axis=1), 1.0, atol=1e-5)
    matches = MatchCountSettings(ratio=0.7, score="count") if "matches" in encoding else None
    assert (ds.local is not None) == (matches is not None)
    out = score_dataset(h5, root, ScoreSettings(chunk_size=4, recall_ks=(1, 2), pairs_topk=2,
                                                localization_thresholds=((1.0, 1.0),)), tmp_path / "m.json",
                        matches=matches)
    got = json.loads(out.read_text())
    if matches is not None:
        S = MatchSimilarity(ds.local, matches)(np.arange(3.0).reshape(-1, 1), np.arange(3.0, 6.0).reshape(-1, 1))
        assert got["similarity"] == "matches"
    else:
        S = ds.descriptors[:3] @ ds.descriptors[3:].T
    top1 = [int(np.argmax(row)) for row in S]  # ties: the lower index, as the rankers
    assert got["metrics"]["A->B"]["R@1"] == pytest.approx(100 * np.mean([t == i for i, t in enumerate(top1)]))


def test_matches_need_local_features(pair_set, tmp_path):  # noqa: F811
    from darkside.errors import DarksideError

    root, _ = pair_set
    h5 = extract_handcrafted("bow", HandcraftedMethod(SIFT, {"bow": BowSettings(4, 5, 0)}), root, tmp_path / "b.h5")
    with pytest.raises(DarksideError, match=r"b\.h5: no /local features to rank by matches"):
        score_dataset(h5, root, ScoreSettings(4, (1,), 2, ((1.0, 1.0),)), tmp_path / "m.json",
                      matches=MatchCountSettings(0.7, "count"))


def test_the_cli_reads_the_method_from_daco_handcrafted(pair_set, tmp_path, repo_root):  # noqa: F811
    import yaml

    from darkside.cli import job_settings, main
    from darkside.errors import ConfigError

    root, _ = pair_set
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["presets"]["mini"]["daco"]["handcrafted"]["sift-bow"]["encoding"]["bow"]["words"] = 4
    handed = job_settings("extract-handcrafted", params, "mini", {"method": "sift-bow"})
    assert list(handed.values["daco"]["handcrafted"]) == ["sift-bow"]
    assert main(["--settings", handed.to_json(), "extract-handcrafted", "--method", "sift-bow", "--dataset",
                 str(root), "--out", str(tmp_path / "b.h5")]) == 0
    assert read_descriptors(tmp_path / "b.h5").attrs["model"] == "sift-bow"
    with pytest.raises(ConfigError, match=r"daco\.handcrafted: no method 'sift-x'"):
        job_settings("extract-handcrafted", params, "mini", {"method": "sift-x"})


def test_score_matches_through_the_cli_reads_evaluate_matches(pair_set, tmp_path, repo_root):  # noqa: F811
    import yaml

    from darkside.cli import job_settings, main
    from darkside.errors import DarksideError

    root, _ = pair_set
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    h5 = extract_handcrafted("sift-matches", HandcraftedMethod(SIFT, {"matches": MatchesSettings()}), root,
                             tmp_path / "s.h5")
    plain = job_settings("score", params, "mini")
    assert "matches" not in plain.values["evaluate"]  # only a --matches job reads the kernel's settings
    handed = job_settings("score", params, "mini", {"matches": True})
    assert handed.values["evaluate"]["matches"] == {"ratio": 0.7, "score": "count"}
    assert main(["--settings", handed.to_json(), "score", "--matches", "--descriptors", str(h5), "--dataset",
                 str(root), "--out", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["matches"] == {"ratio": 0.7, "score": "count"}
    with pytest.raises(DarksideError, match="give one"):
        import argparse

        from darkside.cli import VERBS
        VERBS["score"].run(argparse.Namespace(codebook="c.h5", matches=True, descriptors=[], dataset=[], out=[],
                                              pairs_dir=None), handed)
