"""Recipes and fine-tuning settings: paper numbers pinned, strict parsing, the named table rows."""

from pathlib import Path

import pytest
import yaml

from darkside.errors import ConfigError
from darkside.recipes import FinetuneSettings, Recipe, named_recipes, recipe_by_name
from darkside.settings import parse

_PRESETS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())["presets"]
PAPER_FINETUNE = _PRESETS["paper"]["finetune"]


def test_paper_numbers_pinned():
    s = parse(FinetuneSettings, PAPER_FINETUNE, "presets.paper.finetune")
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
    assert s.precision == "fp32"  # bf16 autocast is a named option, off: it moves the numbers
    assert s.backward == "tuple"  # gandtr's fake batch; one backward of the summed loss is the named option


def test_paper_recipe_defaults():
    r = recipe_by_name("hedngan-cd", families=["hedngan"])
    assert (r.clahe, r.diverse_anchors, r.generator) == (True, True, "hedngan")
    assert r.translate_fraction == 0.25
    assert r.translate_selection == "hash"
    assert not r.day_night_pairs and r.finetune


def test_presets_share_the_keys():
    assert set(_PRESETS["mini"]["finetune"]) == set(PAPER_FINETUNE)
    parse(FinetuneSettings, _PRESETS["mini"]["finetune"], "presets.mini.finetune")


def test_settings_strict_keys():
    with pytest.raises(ConfigError, match=r"^finetune\.epoch: unknown key$"):
        parse(FinetuneSettings, {**PAPER_FINETUNE, "epoch": 3}, "finetune")
    missing = {k: v for k, v in PAPER_FINETUNE.items() if k != "lr"}
    with pytest.raises(ConfigError, match=r"finetune\.lr: missing key"):
        parse(FinetuneSettings, missing, "finetune")
    with pytest.raises(ConfigError, match=r"finetune\.epochs: expected an integer"):
        parse(FinetuneSettings, {**PAPER_FINETUNE, "epochs": 2.5}, "finetune")
    with pytest.raises(ConfigError, match=r"finetune\.band"):
        parse(FinetuneSettings, {**PAPER_FINETUNE, "band": [0.8, 0.2]}, "finetune")
    with pytest.raises(ConfigError, match=r"finetune\.margins\.alexnet"):
        parse(FinetuneSettings, PAPER_FINETUNE, "finetune").margin("alexnet")


def test_recipe_rules():
    with pytest.raises(ConfigError, match=r"recipes\.x\.generator"):
        Recipe("x", True, False, "none")
    with pytest.raises(ConfigError, match=r"recipes\.x\.translate_selection"):
        Recipe("x", True, False, "cyclegan", translate_selection="random")
    with pytest.raises(ConfigError, match=r"recipes\.x\.finetune: an off-the-shelf recipe"):
        Recipe("x", False, True, None, finetune=False)


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
    # LAB inversion as the text has it (section 4.4): neither CLAHE nor diverse anchors
    lab = rows["lab-inversion"]
    assert (lab.generator, lab.clahe, lab.diverse_anchors) == ("lab-inversion", False, False)
    # translation at test time (section 4.2): GeM's model, night test images through a family's night->day
    n2d = rows["gem-n2d-cyclegan"]
    assert (n2d.weights_of, n2d.night_to_day, n2d.generator, n2d.clahe) == ("gem", "cyclegan", None, False)
    assert "gem-n2d-lab-inversion" not in rows and "gem-n2d-oracle" not in rows  # no night->day generator
    with pytest.raises(ConfigError, match=r"recipes\.x: night_to_day and weights_of go together"):
        Recipe("x", False, False, None, night_to_day="cyclegan")
    with pytest.raises(ConfigError, match="unknown recipe 'cut-cd'"):
        recipe_by_name("cut-cd", ["cyclegan"])


def test_mduits_table1_rows_are_recipes():
    """NetVLAD fine-tuned as GeM with its own pooling; every translator's content embedding, not fine-tuned."""
    rows = named_recipes(["cyclegan", "mduit", "mduit-no-i2i"])
    assert rows["netvlad"] == Recipe("netvlad", clahe=False, diverse_anchors=False, generator=None, network="netvlad")
    for fam in ("mduit", "mduit-no-i2i", "cyclegan"):  # (cyclegan has none: its model's init says so)
        r = rows[f"{fam}-content"]
        assert (r.content_of, r.network, r.finetune, r.generator, r.clahe) == (fam, "content", False, None, False)
    assert "oracle-content" not in rows and "lab-inversion-content" not in rows  # built-ins have no generator file
    with pytest.raises(ConfigError, match=r"recipes\.x\.content_of: a generator's content embedding is not "):
        Recipe("x", False, False, None, content_of="mduit")
    # a translator named after another's recipe would make one name two recipes
    with pytest.raises(ConfigError, match="recipe 'mduit-c' would be two recipes"):
        named_recipes(["mduit", "mduit-c"])


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
    with pytest.raises(ConfigError, match=r"^recipes\.x\.day_night_fraction: expected a number in \[0.0, 1.0\]"):
        Recipe("x", True, False, None, day_night_pairs=True, day_night_fraction=1.5)
    assert Recipe("x", True, False, None, day_night_pairs=True, day_night_fraction=0.5).day_night_fraction == 0.5
