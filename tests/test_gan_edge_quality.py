"""Edge scoring against hand-computed cases, dataset scoring on a tiny written dataset, run loaders."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from darkside.data.manifest import GroundTruth, ImageRecord, write_dataset
from darkside.errors import DarksideError
from darkside.gan.edges.quality import (
    DEFAULT_THRESHOLDS,
    average_precision,
    edge_counts,
    edge_quality_report,
    edge_scores,
    paired_ap_difference,
    score_detectors,
)
from darkside.settings import parse

torch.set_num_threads(1)


def square_outline(h=12, w=12, top=3, left=3, side=6) -> np.ndarray:
    gt = np.zeros((h, w), dtype=bool)
    gt[top, left:left + side] = gt[top + side - 1, left:left + side] = True
    gt[top:top + side, left] = gt[top:top + side, left + side - 1] = True
    return gt


def test_perfect_prediction_scores_one():
    gt = square_outline()
    s = edge_scores(gt.astype(float), gt)
    assert s["precision"] == s["recall"] == s["f"] == 1.0
    assert s["ap"] == pytest.approx(1.0)
    assert s["threshold"] == pytest.approx(0.01)  # ties: the lowest threshold


def test_one_pixel_shift_is_within_tolerance_only():
    gt = np.zeros((10, 10), dtype=bool)
    gt[:, 4] = True                     # vertical line
    pred = np.zeros((10, 10))
    pred[:, 5] = 1.0                    # same line one pixel right
    assert edge_scores(pred, gt, tolerance_px=1)["f"] == 1.0
    assert edge_scores(pred, gt, tolerance_px=0)["f"] == 0.0


def test_empty_prediction_scores_zero():
    gt = square_outline()
    s = edge_scores(np.zeros(gt.shape), gt)
    assert s["f"] == s["precision"] == s["recall"] == s["ap"] == 0.0


def test_best_threshold_and_hand_counts():
    # GT: 4 edge pixels in row 0. Predictions: the 4 GT pixels at 0.8, plus 4 far-away pixels at 0.4.
    gt = np.zeros((9, 9), dtype=bool)
    gt[0, :4] = True
    pred = np.zeros((9, 9))
    pred[0, :4] = 0.8
    pred[8, 5:9] = 0.4
    th = [0.3, 0.5, 0.9]
    c = edge_counts(pred, gt, th, tolerance_px=1)
    # rows: [matched predictions, predictions, matched GT, GT]
    assert c.tolist() == [[4, 8, 4, 4], [4, 4, 4, 4], [0, 0, 0, 4]]
    s = edge_scores(pred, gt, th, tolerance_px=1)
    assert s["threshold"] == 0.5 and s["f"] == 1.0
    # AP walks thresholds high->low: 0.9 gains no recall, 0.5 gains recall 1 at precision 1
    assert s["ap"] == pytest.approx(1.0)


def test_average_precision_steps():
    # ascending thresholds: recall 1.0, 0.5, 0.0 with precisions 0.5, 1.0, 0.0
    assert average_precision(np.array([0.5, 1.0, 0.0]), np.array([1.0, 0.5, 0.0])) == pytest.approx(
        0.5 * 1.0 + 0.5 * 0.5)


def test_gt_may_be_0_255_and_shapes_must_match():
    gt = square_outline().astype(np.uint8) * 255
    assert edge_scores(gt / 255.0, gt)["f"] == 1.0
    with pytest.raises(DarksideError, match="differ"):
        edge_counts(np.zeros((4, 4)), np.zeros((4, 5)))


class Oracle(nn.Module):
    """Stand-in detector: edges where the red channel is bright (the test images draw edges there)."""

    def forward(self, x, logits=False):
        return (x[:, :1] > 0.5).float()


class Blind(nn.Module):
    def forward(self, x, logits=False):
        return torch.zeros_like(x[:, :1])


@pytest.fixture
def tiny_dataset(tmp_path):
    root = tmp_path / "ds"
    recs = []
    for i, dom in enumerate(["day", "night", "night"]):
        gt = square_outline(12, 16, top=2 + i, left=3, side=6)
        img = np.zeros((12, 16, 3), dtype=np.uint8)
        img[..., 0] = gt * 255
        rel = f"test/im{i}.png"
        for sub, arr in (("images", img), ("edges", gt.astype(np.uint8) * 255)):
            (root / sub / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(root / sub / rel)
        recs.append(ImageRecord(rel, f"im{i}", "test", dom, f"c{i}", f"c{i}", 16, 12))
    write_dataset(root, "tiny", recs, GroundTruth(protocol="training"))
    return root


def test_score_detectors_on_a_tiny_dataset(tiny_dataset):
    res = score_detectors(tiny_dataset, {"oracle": Oracle(), "blind": Blind()}, domain="night")
    assert res["oracle"]["f"] == 1.0 and res["oracle"]["images"] == 2 and res["oracle"]["ois_f"] == 1.0
    assert res["blind"]["f"] == 0.0
    assert score_detectors(tiny_dataset, {"o": Oracle()}, domain="night", limit=1)["o"]["images"] == 1
    with pytest.raises(DarksideError, match="no images of domain 'sunset'"):
        score_detectors(tiny_dataset, {"o": Oracle()}, domain="sunset")


def test_report_is_json_per_domain(tiny_dataset, tmp_path):
    out = edge_quality_report(tmp_path / "r" / "edges.json", tiny_dataset, {"oracle": Oracle()})
    rep = json.loads(out.read_text())
    assert set(rep["scores"]) == {"day", "night"}
    assert rep["scores"]["day"]["oracle"]["images"] == 1
    assert rep["thresholds"] == {"min": 0.01, "max": 0.99, "n": 99}


def test_load_student_from_a_hedngan_generator_file(tmp_path):
    """The student comes from the run's declared generator.pt (a finished run deletes its checkpoint)."""
    from darkside.gan.edges import DetectorSettings
    from darkside.gan.edges.quality import night_students
    from darkside.gan.family import GanTraining, build, family_class, save_generator, setup_for

    entry = dict(batch_size=2, pairs_per_epoch=2, epochs_constant=1, epochs_decay=0, ngf=2, n_blocks=1, ndf=2,
                 n_layers_d=1, norm="batch", init="kaiming", init_gain=0.2, detector="hed", edge_weight=5.0,
                 student_lr=1e-2, student_beta1=0.9, student_beta2=0.999, student_weight_decay=0.0,
                 student_lr_multipliers=False)
    common = GanTraining(crop=16, scale_min=0.8, lr=2e-4, beta1=0.5, beta2=0.999, sample_images=1, cache_images=True)
    s = setup_for("hedngan", common, parse(family_class("hedngan").Settings, entry, "hedngan"),
                  {"hed": DetectorSettings(0.0625, "caffe255", None)})
    b = build(s, "cpu", seed=0)
    g = torch.Generator().manual_seed(0)
    b.train_step((torch.rand(2, 3, 16, 16, generator=g) * 2 - 1, torch.rand(2, 3, 16, 16, generator=g) * 2 - 1))
    save_generator(b, tmp_path / "generator.pt")
    assert not (tmp_path / "checkpoint.pt").exists()
    assert list(night_students([tmp_path])) == ["HED^N"]  # named after the detector it adapts
    stu, tea = night_students([tmp_path])["HED^N"], b.nets["detector_teacher"]
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(stu(x), b.nets["detector_student"].eval()(x))
        assert not torch.allclose(stu(x, logits=True), tea(x, logits=True))  # the student moved
    with pytest.raises(DarksideError, match="does not exist"):
        night_students([tmp_path / "nope"])


def test_quality_settings_are_strict():
    from darkside.errors import ConfigError
    from darkside.gan.edges.quality import EdgeQualitySettings

    d = {"tolerance_px": 1, "thresholds": 99, "domains": ["day", "night"], "split": None, "limit": None}
    q = parse(EdgeQualitySettings, d, "edges.quality")
    assert q.domains == ("day", "night")
    assert np.allclose(q.threshold_values, DEFAULT_THRESHOLDS)
    with pytest.raises(ConfigError, match=r"edges\.quality\.limit"):
        parse(EdgeQualitySettings, {**d, "limit": 0}, "edges.quality")
    with pytest.raises(ConfigError, match=r"edges\.quality\.extra: unknown key"):
        parse(EdgeQualitySettings, {**d, "extra": 1}, "edges.quality")


def test_report_pairs_each_student_with_its_teacher(tiny_dataset, tmp_path):
    """'X^N - X' per domain: mean per-image AP difference with its interval and the image counts."""
    out = edge_quality_report(tmp_path / "edges.json", tiny_dataset, {"HED": Blind(), "HED^N": Oracle()})
    rep = json.loads(out.read_text())
    for dom in ("day", "night"):
        pair = rep["paired"][dom]["HED^N - HED"]
        s, t = rep["scores"][dom]["HED^N"]["per_image_ap"], rep["scores"][dom]["HED"]["per_image_ap"]
        assert pair["mean"] == pytest.approx(np.mean(np.subtract(s, t))) and pair["mean"] > 0
        assert pair["images_higher"] == pair["images"] == len(s) and pair["images_lower"] == 0
    # a report without a student has no pairs
    assert json.loads(edge_quality_report(tmp_path / "o.json", tiny_dataset, {"HED": Oracle()}).read_text())[
        "paired"] == {}


def test_paired_ap_difference_counts_and_interval():
    r = paired_ap_difference([0.9, 0.8, 0.7, 0.6], [0.8, 0.8, 0.5, 0.7], samples=200, seed=0)
    assert r["mean"] == pytest.approx(0.05) and (r["images_higher"], r["images_lower"], r["images"]) == (2, 1, 4)
    assert r["ci"][0] <= r["mean"] <= r["ci"][1]
    with pytest.raises(DarksideError, match="no images"):
        paired_ap_difference([], [])
