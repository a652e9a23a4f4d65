"""Recipes and fine-tuning settings: paper numbers pinned, strict parsing, the named table rows."""

import jsonschema
import pytest
import yaml

from darkside.embed.recipes import (
    MINI_FINETUNE,
    PAPER_FINETUNE,
    FinetuneSettings,
    Recipe,
    named_recipes,
    recipe_by_name,
)
from darkside.errors import ConfigError

# the fragment proposed for params.schema.yaml (preset.properties.finetune)
SCHEMA = yaml.safe_load("""
type: object
additionalProperties: false
required: [margins, lr, betas, weight_decay, gem_lr_multiplier, gem_weight_decay, lr_gamma, epochs,
           anchors_per_epoch, anchor_pool, negative_pool, negatives, tuples_per_batch, image_size, seed,
           val_every, band, clahe_clip_limit, clahe_grid, mining_batch_size, cache_images]
properties:
  margins:
    type: object
    minProperties: 1
    propertyNames: {pattern: "^[a-z0-9]+$"}
    additionalProperties: {type: number, exclusiveMinimum: 0}
  lr: {type: number, exclusiveMinimum: 0}
  betas: {type: array, minItems: 2, maxItems: 2, items: {type: number, minimum: 0, exclusiveMaximum: 1}}
  weight_decay: {type: number, minimum: 0}
  gem_lr_multiplier: {type: number, exclusiveMinimum: 0}
  gem_weight_decay: {type: number, minimum: 0}
  lr_gamma: {type: number, exclusiveMinimum: 0, maximum: 1}
  epochs: {type: integer, minimum: 1}
  anchors_per_epoch: {type: integer, minimum: 1}
  anchor_pool: {type: integer, minimum: 1}
  negative_pool: {type: integer, minimum: 1}
  negatives: {type: integer, minimum: 1}
  tuples_per_batch: {type: integer, minimum: 1}
  image_size: {type: integer, minimum: 1}
  seed: {type: integer, minimum: 0}
  val_every: {type: integer, minimum: 1}
  band: {type: array, minItems: 2, maxItems: 2, items: {type: number, minimum: 0, maximum: 1}}
  clahe_clip_limit: {type: number, exclusiveMinimum: 0}
  clahe_grid: {type: integer, minimum: 1}
  mining_batch_size: {type: integer, minimum: 1}
  cache_images: {type: boolean}
""")


def test_paper_numbers_pinned():
    s = FinetuneSettings.from_dict(PAPER_FINETUNE)
    assert s.margin("vgg16") == 0.75
    assert s.margin("resnet101") == 0.85
    assert s.lr == 5e-7
    assert s.betas == (0.9, 0.999)
    assert s.weight_decay == 5e-4
    assert s.gem_lr_multiplier == 10.0
    assert s.gem_weight_decay == 0.0
    assert s.lr_gamma == 0.99
    assert s.epochs == 40
    assert s.anchors_per_epoch == 2000
    assert s.negative_pool == 22000
    assert s.anchor_pool == 10000
    assert s.negatives == 5
    assert s.tuples_per_batch == 5
    assert s.image_size == 362
    assert s.seed == 0
    assert s.val_every == 5
    assert s.band == (0.2, 0.8)
    assert s.clahe_clip_limit == 1.0
    assert s.clahe_grid == 8


def test_paper_recipe_defaults():
    r = recipe_by_name("hedngan-cd", families=["hedngan"])
    assert (r.clahe, r.diverse_anchors, r.generator) == (True, True, "hedngan")
    assert r.translate_fraction == 0.25
    assert r.translate_selection == "hash"
    assert not r.day_night_pairs and r.finetune


def test_presets_match_schema_fragment_and_round_trip():
    for d in (PAPER_FINETUNE, MINI_FINETUNE):
        jsonschema.Draft7Validator(SCHEMA).validate(d)
        s = FinetuneSettings.from_dict(d)
        assert s.to_dict() == d
    assert set(MINI_FINETUNE) == set(PAPER_FINETUNE)


def test_settings_strict_keys():
    with pytest.raises(ConfigError, match=r"^finetune\.epoch: unknown key$"):
        FinetuneSettings.from_dict({**PAPER_FINETUNE, "epoch": 3})
    missing = {k: v for k, v in PAPER_FINETUNE.items() if k != "lr"}
    with pytest.raises(ConfigError, match=r"finetune\.lr: missing key"):
        FinetuneSettings.from_dict(missing)
    with pytest.raises(ConfigError, match=r"finetune\.epochs: expected an integer"):
        FinetuneSettings.from_dict({**PAPER_FINETUNE, "epochs": 2.5})
    with pytest.raises(ConfigError, match=r"finetune\.band"):
        FinetuneSettings.from_dict({**PAPER_FINETUNE, "band": [0.8, 0.2]})
    with pytest.raises(ConfigError, match=r"finetune\.margins\.alexnet"):
        FinetuneSettings.from_dict(PAPER_FINETUNE).margin("alexnet")


def test_recipe_from_dict_strict():
    r = Recipe.from_dict({"clahe": True, "diverse_anchors": False, "generator": None}, name="x")
    assert r == Recipe("x", True, False, None)
    with pytest.raises(ConfigError, match=r"^recipes\.x\.clahee: unknown key$"):
        Recipe.from_dict({"clahee": True, "diverse_anchors": False, "generator": None}, name="x")
    with pytest.raises(ConfigError, match=r"recipes\.x\.generator"):
        Recipe.from_dict({"clahe": True, "diverse_anchors": False, "generator": "none"}, name="x")
    with pytest.raises(ConfigError, match=r"recipes\.x\.translate_selection"):
        Recipe("x", True, False, "cyclegan", translate_selection="random")
    with pytest.raises(ConfigError, match=r"recipes\.x\.clahe: expected true/false"):
        Recipe.from_dict({"clahe": "yes", "diverse_anchors": False, "generator": None}, name="x")


def test_named_table_rows():
    rows = named_recipes(["cyclegan", "hedngan"])
    for name in ["gem", "clahe-c", "clahe-cd", "clahe-nd-c", "clahe-nd-cd", "lab-inversion-cd", "cyclegan-c",
                 "cyclegan-cd", "hedngan-c", "hedngan-cd", "cyclegan-cd-nd", "offtheshelf"]:
        assert rows[name].name == name
    assert rows["gem"] == Recipe("gem", clahe=False, diverse_anchors=False, generator=None)
    assert rows["clahe-nd-cd"].day_night_pairs and rows["clahe-nd-cd"].diverse_anchors
    assert rows["clahe-nd-c"].generator is None and not rows["clahe-nd-c"].diverse_anchors
    assert rows["lab-inversion-cd"].generator == "lab-inversion" and rows["lab-inversion-cd"].clahe
    assert not rows["cyclegan-c"].diverse_anchors and rows["cyclegan-c"].clahe
    assert not rows["offtheshelf"].finetune
    with pytest.raises(ConfigError, match="unknown recipe 'cut-cd'"):
        recipe_by_name("cut-cd", ["cyclegan"])


def test_night_anchor_shares_follow_the_paper():
    rows = named_recipes(["cyclegan"])
    # SfM N/D keeps the same 25% of night anchors as translation (paper §3, "Night image generation")
    for name in ("gem-nd", "clahe-nd-c", "clahe-nd-cd"):
        assert rows[name].day_night_pairs and rows[name].day_night_fraction == 0.25
    assert rows["cyclegan-cd"].translate_fraction == 0.25 and not rows["cyclegan-cd"].day_night_pairs
    # Table 7 bottom block: generated and real nights 1:1, 25% (default) and 50% of anchors in all
    for name, total in (("cyclegan-cd-nd", 0.25), ("cyclegan-cd-nd50", 0.5)):
        r = rows[name]
        translated = r.translate_fraction * (1 - r.day_night_fraction)  # only day anchors are translated
        assert r.day_night_pairs and translated == pytest.approx(r.day_night_fraction)
        assert translated + r.day_night_fraction == pytest.approx(total)
    with pytest.raises(ConfigError, match=r"^recipes\.x\.day_night_fraction: 1\.5 is outside"):
        Recipe.from_dict({"clahe": True, "diverse_anchors": False, "generator": None, "day_night_pairs": True,
                          "day_night_fraction": 1.5}, name="x")
    assert Recipe.from_dict({"clahe": True, "diverse_anchors": False, "generator": None, "day_night_pairs": True,
                             "day_night_fraction": 0.5}, name="x").day_night_fraction == 0.5
