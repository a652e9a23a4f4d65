"""The oracle translator: the benchmark's own night rendering of a training view, through the same pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from darkside.data.images import load_rgb
from darkside.data.manifest import load_manifest
from darkside.data.photometric import resize_max_side
from darkside.data.synthetic import NIGHT_TWINS, SyntheticParams, generate
from darkside.embed.tuples import ImagePipeline
from darkside.errors import DarksideError
from darkside.gan.translator import Translator, ViewTranslator, load_translator
from darkside.recipes import recipe_by_name

TINY = dict(train_scenes=2, train_views=3, day_night_pairs=1, val_scenes=1, val_views=2, whiten_scenes=1,
            whiten_views=2, datasets=("synth-sfm",))


@pytest.fixture(scope="module")
def sfm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(root, SyntheticParams(**TINY))
    return root / "synth-sfm"


def test_oracle_recipes_translate_with_the_renderer():
    r = recipe_by_name("oracle-cd")
    assert r.generator == "oracle" and r.clahe and r.diverse_anchors and r.translate_fraction == 0.25
    tr = load_translator("oracle", None)
    assert isinstance(tr, ViewTranslator) and not isinstance(tr, Translator)


def test_oracle_returns_the_night_twin_resized(sfm: Path):
    man = load_manifest(sfm)
    rec = next(r for r in man.select("train") if r.domain == "day")
    got = load_translator("oracle", None).translate_view(man, rec.image_id, 40)
    want = np.asarray(resize_max_side(load_rgb(sfm / NIGHT_TWINS / rec.path), 40), np.float32) / 255
    assert got.dtype == np.float32 and max(got.shape[:2]) == 40
    np.testing.assert_array_equal(got, want)
    day = ImagePipeline(man, 40, None, None, cache=False).rgb(rec.image_id)
    assert got.shape == day.shape and got.mean() < day.mean()
    # the pipeline hands the oracle the image id, and the result goes on through CLAHE + normalisation
    pipe = ImagePipeline(man, 40, (1.0, 8), load_translator("oracle", None), cache=True)
    assert not np.allclose(pipe.tensor(rec.image_id, translate=True).numpy(), pipe.tensor(rec.image_id).numpy())


def test_a_view_without_twin_is_a_one_line_error(sfm: Path, tmp_path: Path):
    man = load_manifest(sfm)
    rec = next(r for r in man.select("val") if r.domain == "day")
    (sfm / NIGHT_TWINS / rec.path).unlink()  # e.g. a training set copied without its twins
    with pytest.raises(DarksideError, match=rf"{NIGHT_TWINS}/.*no night twin of '{rec.image_id}'"):
        load_translator("oracle", None).translate_view(man, rec.image_id, 40)
