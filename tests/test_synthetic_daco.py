"""The synthetic DaCo tasks (synth-daco-night / -fog / -rain) and the renderer's fog."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from darkside.data import synthetic_render as sr
from darkside.data.manifest import load_groundtruth, load_manifest
from darkside.data.synthetic import CROSS_DOMAIN, TRANSLATIONS, SyntheticParams, generate

TASKS = {"synth-daco-night": ("day", "night"), "synth-daco-fog": ("day", "other"),
         "synth-daco-rain": ("sunset", "night")}
SMALL = dict(cross_domain_train_pairs=3, cross_domain_val_pairs=2, datasets=tuple(CROSS_DOMAIN))


@pytest.fixture(scope="module")
def daco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("daco")
    generate(root, SyntheticParams(**SMALL))
    return root


class _Seq:
    """A stand-in generator whose uniform draws are fixed, so the fog's visibility and level are known."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def uniform(self, low: float, high: float) -> float:
        return self.values.pop(0)


def test_fog_follows_koschmieders_law_on_a_hand_computed_ray() -> None:
    # camera 2 m above the plane Z = 0; one ray straight down (length 2 m) and one ray at 60 deg from the normal
    # (length 4 m); a third pixel is sky
    cam = sr.Camera(K=np.eye(3), R=np.eye(3), t=np.array([0.0, 0.0, -2.0]), width=3, height=1)
    assert cam.center[2] == pytest.approx(2.0)
    rays = np.array([[0, 0, -1], [math.sin(math.pi / 3), 0, -0.5], [0, 1, 0]], np.float32)
    img = np.full((1, 3, 3), 0.2, np.float32)
    sky = np.array([[0.0, 0.0, 1.0]], np.float32)
    out = sr._fog(img, cam, rays, sky, _Seq(100.0, 1.0))
    airlight = np.array(sr.FOG_AIRLIGHT)
    for px, metres in ((0, 2.0), (1, 4.0)):
        keep = math.exp(-3.912 * metres / 100.0)
        np.testing.assert_allclose(out[0, px], 0.2 * keep + airlight * (1 - keep), rtol=1e-5)
    np.testing.assert_allclose(out[0, 2], airlight, rtol=1e-6)  # the sky is at infinity: all airlight
    # thinner fog (a longer visibility) lets more of the scene through; the level scales the airlight
    thin = sr._fog(img, cam, rays, sky, _Seq(1000.0, 0.5))
    assert abs(thin[0, 0] - 0.2).max() < abs(out[0, 0] - 0.2).max()
    np.testing.assert_allclose(thin[0, 2], airlight * 0.5, rtol=1e-6)


def test_each_task_is_a_cross_domain_pair_set_with_the_real_sets_domains(daco: Path) -> None:
    for name, (dom_a, dom_b) in TASKS.items():
        man = load_manifest(daco / name)
        gt = load_groundtruth(daco / name, man)
        rec = {r.image_id: r for r in man.records}
        assert gt.protocol == "cross_domain" and gt.database_split == "val"
        assert {s: len(v) for s, v in gt.pairs.items()} == {"train": 3, "val": 2}
        assert len(man) == 2 * (3 + 2)
        for split, pairs in gt.pairs.items():
            for b, a in pairs:
                assert (rec[a].domain, rec[b].domain) == (dom_a, dom_b)
                assert rec[a].split == rec[b].split == split
                assert rec[a].cluster == rec[b].cluster  # one view of one scene in two conditions
        assert len({rec[a].cluster for pairs in gt.pairs.values() for _, a in pairs}) == 5


def test_translations_exist_for_training_images_only_and_look_like_the_other_domain(daco: Path) -> None:
    def pixels(path: Path) -> np.ndarray:
        return np.asarray(Image.open(path), np.float32)

    for name in TASKS:
        man = load_manifest(daco / name)
        gt = load_groundtruth(daco / name, man)
        rec = {r.image_id: r for r in man.records}
        translated = {str(p.relative_to(daco / name / TRANSLATIONS)).replace("\\", "/")
                      for p in (daco / name / TRANSLATIONS).rglob("*.png")}
        assert translated == {r.path for r in man.records if r.split == "train"}
        to_twin, to_self = [], []
        for b, a in gt.pairs["train"]:
            # each side rendered in the other condition (same camera, draws of its own: sun, fog, lit windows)
            # sits closer, pixel for pixel, to its real twin in that condition than to itself
            for src, twin in ((rec[a], rec[b]), (rec[b], rec[a])):
                fake = pixels(daco / name / TRANSLATIONS / src.path)
                assert not np.array_equal(fake, pixels(man.image_path(twin)))  # not a copy of the twin
                to_twin.append(np.abs(fake - pixels(man.image_path(twin))).mean())
                to_self.append(np.abs(fake - pixels(man.image_path(src))).mean())
        assert all(t < s for t, s in zip(to_twin, to_self, strict=True))
        assert np.mean(to_twin) < 0.4 * np.mean(to_self)


def test_fog_lifts_the_dark_pixels_towards_the_airlight(daco: Path) -> None:
    man = load_manifest(daco / "synth-daco-fog")
    gt = load_groundtruth(daco / "synth-daco-fog", man)
    rec = {r.image_id: r for r in man.records}
    for b, a in gt.pairs["val"]:
        clear = np.asarray(Image.open(man.image_path(rec[a])), np.float32)
        foggy = np.asarray(Image.open(man.image_path(rec[b])), np.float32)
        assert np.percentile(foggy, 5) > np.percentile(clear, 5) + 20  # no deep shadows through fog
        assert foggy.std() < clear.std()  # contrast falls


def test_same_seed_same_bytes(tmp_path: Path, daco: Path) -> None:
    generate(tmp_path, SyntheticParams(**{**SMALL, "datasets": ("synth-daco-fog",)}))

    def digest(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    assert digest(tmp_path / "synth-daco-fog") == digest(daco / "synth-daco-fog")


def test_the_mini_presets_normalisation_is_that_of_the_sets_it_writes(tmp_path: Path, repo_root: Path) -> None:
    """daco.normalisation in params.yaml was measured on these images; a renderer change that moves the
    statistics by more than the rounding must update it."""
    import yaml

    from darkside.settings import parse

    mini = yaml.safe_load((repo_root / "params.yaml").read_text())["presets"]["mini"]
    synthetic = {**mini["data"]["synthetic"], "datasets": list(CROSS_DOMAIN)}
    generate(tmp_path, parse(SyntheticParams, synthetic, "synthetic"))
    for name, norm in mini["daco"]["normalisation"].items():
        man = load_manifest(tmp_path / name)
        pixels = np.concatenate([np.asarray(Image.open(man.image_path(r)), np.float64).reshape(-1, 3) / 255
                                 for r in man.records if r.split == "train"])
        np.testing.assert_allclose(pixels.mean(0), norm["mean"], atol=6e-4)
        np.testing.assert_allclose(pixels.std(0), norm["std"], atol=6e-4)
