"""Generator settings: each family's own typed settings, every SPEC section 5 number of the paper preset,
the named variants, and Table 8's parameter counts."""

import json
import typing
from pathlib import Path

import pytest
import yaml

from darkside.cli import main
from darkside.config import JobSettings, load_params
from darkside.errors import ConfigError
from darkside.gan.edges import DetectorSettings
from darkside.gan.family import FAMILIES, GanTraining, ResnetGanSettings, family_class, setup_for
from darkside.gan.params import count_parameters
from darkside.settings import parse

ROOT = Path(__file__).resolve().parents[1]


def setups(preset: str) -> dict:
    params = load_params(ROOT / "params.yaml")
    gan, edges = params["presets"][preset]["gan"], params["presets"][preset]["edges"]
    common = parse(GanTraining, gan["common"], "gan.common")
    detectors = {k: parse(DetectorSettings, v, f"edges.detectors.{k}") for k, v in edges["detectors"].items()}
    return {f: setup_for(f, common, parse(family_class(f).Settings, entry, f"gan.families.{f}"), detectors)
            for f, entry in gan["families"].items()}


def paper_entry(family: str) -> dict:
    """``gan.families.<family>`` of the paper preset, as params.yaml gives it."""
    return dict(load_params(ROOT / "params.yaml")["presets"]["paper"]["gan"]["families"][family])


@pytest.fixture(scope="module")
def paper() -> dict:
    return setups("paper")


def test_common_paper_numbers(paper):
    for s in paper.values():
        c = s.common
        assert (c.crop, c.scale_min, c.lr, c.beta1, c.beta2) == (256, 0.8, 2e-4, 0.5, 0.999)
        f = s.settings
        assert f.pairs_per_epoch == 10000
        if isinstance(f, ResnetGanSettings):  # the ResNet-generator families
            assert (f.ngf, f.n_blocks, f.ndf, f.n_layers_d) == (64, 9, 64, 3)


def test_cyclegan_paper_numbers(paper):
    s = paper["cyclegan"].settings
    assert (s.norm, s.batch_size, s.epochs_constant, s.epochs_decay) == ("instance", 1, 50, 50)
    assert (s.cycle_weight, s.identity_weight, s.pool_size) == (10.0, 0.0, 50)
    assert (s.variant, s.init, s.init_gain) == ("gandtr", "normal", 0.2)  # gandtr's effective init


def test_cyclegan_official_is_a_named_variant(paper):
    import dataclasses

    s = paper["cyclegan"].settings
    official = family_class("cyclegan").effective(dataclasses.replace(s, variant="official"))
    assert (official.init_gain, official.identity_weight * official.cycle_weight) == (0.02, 5.0)
    assert family_class("cyclegan").effective(s) is s  # gandtr: nothing overlaid
    literal = typing.get_type_hints(family_class("cyclegan").Settings)["variant"]
    assert set(family_class("cyclegan").variants) | {"gandtr"} == set(typing.get_args(literal))


def test_edge_family_paper_numbers(paper):
    for f in ("hedgan", "hedngan", "rcfngan"):
        s = paper[f].settings
        assert (s.norm, s.batch_size, s.epochs) == ("batch", 10, 50)
        assert (s.init, s.init_gain, s.edge_weight) == ("kaiming", 0.2, 5.0)
        assert s.pairs_per_epoch // s.batch_size == 1000
        assert (paper[f].detector.width, paper[f].detector.input) == (1.0, "caffe255")
    assert paper["hedgan"].settings.detector == paper["hedngan"].settings.detector == "hed"
    assert paper["rcfngan"].settings.detector == "rcf"
    assert paper["hedgan"].detector.weights == "data/weights/hed_sniklaus_github.pth"
    assert paper["rcfngan"].detector.weights == "data/weights/rcf_bsds500_pascal_model.pth"
    for f in ("hedngan", "rcfngan"):
        s = paper[f].settings
        assert (s.student_lr, s.student_beta1, s.student_beta2, s.student_weight_decay) == (1e-6, 0.9, 0.999, 2e-4)
    assert paper["hedngan"].settings.student_lr_multipliers
    assert not hasattr(paper["rcfngan"].settings, "student_lr_multipliers")  # RCF has no Caffe multipliers


def test_table8_parameter_counts(paper):
    expected = {"cyclegan": (51_042_190, 51.0), "hedgan": (25_532_487, 25.5),
                "hedngan": (40_248_658, 40.2), "rcfngan": (40_336_268, 40.3), "cut": (26_014_663, 26.0),
                "cyeda": (39_582_106, 39.6), "drit": (75_462_691, 75.5),
                # not in Table 8 (marked extra rows): plain counts
                "forkgan": (67_089_024, 67.1), "mduit": (19_411_398, 19.4)}
    for f, (total, millions) in expected.items():
        res = count_parameters(paper[f])
        assert (res["paper_total"], res["paper_millions"]) == (total, millions)
    assert count_parameters(paper["hedgan"])["plain_total"] == 11_383_427 + 2_765_633 + 14_716_171
    cut = count_parameters(paper["cut"])["blocks"]
    assert {k: (b["role"], b["params"]) for k, b in cut.items()} == {
        "generator_X": ("generator", 11_378_179), "discriminator_X": ("discriminator", 2_764_737),
        "heads": ("head", 493_568)}


def test_cut_paper_numbers_and_variants(paper):
    import dataclasses

    s = paper["cut"].settings
    assert (s.variant, s.norm, s.batch_size, s.epochs_constant, s.epochs_decay) == ("gandtr", "instance", 1, 25, 25)
    assert (s.antialias, s.nce_layers, s.num_patches, s.nce_temperature, s.head_dim) == (
        False, (4, 8, 12, 16), 256, 0.07, 256)
    assert (s.gan_weight, s.nce_weight, s.nce_identity_weight, s.flip_equivariance) == (1.0, 1.0, 10.0, False)
    assert (s.init, s.pairs_per_epoch) == ("kaiming", 10000)
    cls = family_class("cut")
    official = cls.effective(dataclasses.replace(s, variant="official"))
    assert (official.antialias, official.nce_layers, official.init, official.init_gain) == (
        True, (0, 4, 8, 12, 16), "xavier", 0.02)
    assert (official.nce_weight, official.nce_identity_weight) == (1.0, 1.0)
    fast = cls.effective(dataclasses.replace(s, variant="fastcut"))
    assert (fast.nce_weight, fast.nce_identity_weight, fast.flip_equivariance) == (10.0, 0.0, True)
    # antialiasing adds buffers, not parameters; official CUT's heads also embed the RGB layer
    res = count_parameters(dataclasses.replace(paper["cut"], settings=official))["blocks"]
    assert (res["generator_X"]["params"], res["heads"]["params"]) == (11_378_179, 560_384)
    literal = typing.get_type_hints(cls.Settings)["variant"]
    assert set(cls.variants) | {"gandtr"} == set(typing.get_args(literal))


def test_cyeda_paper_numbers(paper):
    s = paper["cyeda"].settings
    assert (s.batch_size, s.epochs_constant, s.epochs_decay, s.lr, s.pool_size) == (2, 20, 20, 1e-4, 50)
    assert (s.base_width, s.n_masks, s.ndf, s.n_layers_d, s.edge_weight) == (32, 3, 64, 5, 3.0)
    assert (s.init, s.init_gain, s.reconstructions) == ("normal", 0.02, True)
    res = count_parameters(paper["cyeda"])
    assert res["plain_total"] == res["paper_total"] == 2 * 8_636_684 + 2 * 11_154_369  # Table 8 counts it plainly
    assert res["rule"].startswith("paper: every network once")


def test_cut_nce_layers_must_lie_in_the_encoder(paper):
    import dataclasses

    entry = load_params(ROOT / "params.yaml")["presets"]["paper"]["gan"]["families"]["cut"]
    cls = family_class("cut").Settings
    with pytest.raises(ConfigError, match=r"^gan\.families\.cut\.nce_layers: layer 19 is not in the encoder "
                                          r"\(modules 0\.\.18 with n_blocks 9, antialias False\)$"):
        parse(cls, {**entry, "nce_layers": [4, 19]}, "gan.families.cut")
    # the official layers on a three-block generator reach into the decoder
    mini = parse(cls, {**entry, "n_blocks": 3, "nce_layers": [4, 8, 10, 12]}, "gan.families.cut")
    with pytest.raises(ConfigError, match="layer 16 is not in the encoder"):
        family_class("cut").effective(dataclasses.replace(mini, variant="official"))


def test_a_family_reads_only_its_own_keys():
    entry = load_params(ROOT / "params.yaml")["presets"]["paper"]["gan"]["families"]["hedgan"]
    cls = family_class("hedgan").Settings
    with pytest.raises(ConfigError, match=r"^gan\.families\.hedgan\.pool_size: unknown key$"):
        parse(cls, {**entry, "pool_size": 50}, "gan.families.hedgan")  # CycleGAN's knob, not HEDGAN's
    with pytest.raises(ConfigError, match=r"^gan\.families\.hedgan\.edge_weight: missing key$"):
        parse(cls, {k: v for k, v in entry.items() if k != "edge_weight"}, "gan.families.hedgan")
    with pytest.raises(ConfigError, match=r"^gan\.families\.hedgan\.batch_size: expected an integer"):
        parse(cls, {**entry, "batch_size": 2.5}, "gan.families.hedgan")
    with pytest.raises(ConfigError, match=r"gan\.families\.hedgan\.norm: 'group' is not one of"):
        parse(cls, {**entry, "norm": "group"}, "gan.families.hedgan")
    with pytest.raises(ConfigError, match="gan family 'nope' is not one of"):
        family_class("nope")
    assert {"cyclegan", "hedgan", "hedngan", "rcfngan"} <= set(FAMILIES)


def test_gan_params_verb_prints_the_counts(capsys):
    assert main(["--params", str(ROOT / "params.yaml"), "--preset", "paper", "gan", "params", "--family", "hedngan",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["paper_millions"] == 40.2 and out["blocks"]["detector_teacher"]["role"] == "frozen"


def test_the_gan_job_reads_its_family_and_its_detector_only():
    from darkside.cli import job_settings

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    job = job_settings("train-gan", params, "mini", {"family": "hedngan"})
    assert set(job.values["gan"]["families"]) == {"hedngan"}
    assert set(job.values["edges"]["detectors"]) == {"hed"}
    assert "presets.mini.gan.families.hedngan.student_lr" in job.param_keys()
    assert not any("cyclegan" in k or "edges.pretrain" in k for k in job.param_keys())
    assert isinstance(JobSettings.from_json(job.to_json()).section("gan.common", GanTraining), GanTraining)


def test_drit_forkgan_mduit_paper_numbers(paper):
    """SPEC section 5 and the reference notes' values of the three families, as the paper preset carries them."""
    d = paper["drit"].settings
    assert (d.batch_size, d.epochs_constant, d.epochs_decay, d.pairs_per_epoch) == (2, 150, 150, 10000)
    assert (d.width, d.content_blocks, d.shared_blocks, d.content_noise, d.attr_width, d.nz, d.mlp_width,
            d.gen_blocks) == (64, 3, 1, 1.0, 64, 8, 256, 4)
    assert (d.ndf, d.d_layers, d.d_scales, d.content_d_kernel, d.content_d_last_kernel) == (64, 4, 3, 7, 4)
    assert (d.init, d.init_gain, d.lr, d.content_lr_divisor, d.content_grad_clip, d.weight_decay, d.d_iter) == (
        "normal", 0.02, 1e-4, 2.5, 5.0, 1e-4, 3)
    assert (d.cross_cycle_weight, d.self_recon_weight, d.latent_weight, d.attr_l2_weight, d.content_l2_weight,
            d.mode_seeking_weight, d.translate_attribute) == (10.0, 10.0, 10.0, 0.01, 0.01, 1.0, "night-image")
    f = paper["forkgan"].settings
    assert (f.variant, f.batch_size, f.epochs_constant, f.epochs_decay, f.pairs_per_epoch) == (
        "official", 1, 10, 10, 10000)
    assert (f.ngf, f.encoder_blocks, f.decoder_blocks, f.ndf, f.n_layers_d, f.n_scales, f.n_discriminators) == (
        64, 5, 4, 32, 4, 2, 2)
    assert (f.init, f.init_gain, f.noise_std, f.cycle_weight, f.reconstruction_weight, f.perceptual_weight,
            f.classifier_weight, f.pool_size) == ("normal", 0.02, 0.02, 10.0, 10.0, 1.0, 1.0, 50)
    m = paper["mduit"].settings
    assert (m.batch_size, m.epochs_constant, m.epochs_decay, m.pairs_per_epoch) == (1, 35, 15, 10000)
    assert (m.ngf, m.filter_size, m.filter_groups, m.vgg_width, m.vgg_weights) == (64, 5, 256, 1.0, None)
    assert (m.init, m.init_gain, m.self_weight, m.cycle_weight, m.content_weight, m.content_margin) == (
        "normal", 0.001, 100.0, 100.0, 10.0, 0.1)
    assert (m.filter_weight, m.nce_weight, m.nce_temperature, m.nce_negatives) == (1.0, 1.0, 0.07, 16)
    # the full method; Table 1's ablations are gan.variants (jitter: SimCLR's strength 1, the paper gives none)
    assert (m.translation, m.consistency) == ("generator", "nce")
    # H at PyTorch's default init, not the paper's N(0, 0.001) of 'all networks' (it collapses z; mduit.py)
    assert m.head_init == "default"
    assert (m.jitter_brightness, m.jitter_contrast, m.jitter_saturation, m.jitter_hue) == (0.8, 0.8, 0.8, 0.2)
    assert paper["mduit"].common.lr == 2e-4 and paper["mduit"].common.beta1 == 0.5


@pytest.mark.parametrize("preset", ["mini", "paper"])
def test_mduits_table1_ablations_are_variants_of_the_full_method(preset):
    """gan.variants: w/o I2I, w/o L_NCE and both, each MDUIT's entry with only the ablated setting replaced."""
    from darkside.gan.family import GanVariant

    gan = load_params(ROOT / "params.yaml")["presets"][preset]["gan"]
    full = parse(family_class("mduit").Settings, gan["families"]["mduit"], "gan.families.mduit")
    expected = {"mduit-no-i2i": ("colour-jitter", "nce"), "mduit-no-nce": ("generator", "l1"),
                "mduit-no-i2i-no-nce": ("colour-jitter", "l1")}
    assert set(gan["variants"]) == set(expected)
    for name, (translation, consistency) in expected.items():
        v = parse(GanVariant, gan["variants"][name], f"gan.variants.{name}")
        s = v.settings(gan["families"][v.family], f"gan.variants.{name}")
        assert v.family == "mduit" and (s.translation, s.consistency) == (translation, consistency)
        import dataclasses
        assert dataclasses.replace(s, translation=full.translation, consistency=full.consistency) == full
