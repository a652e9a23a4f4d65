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
from darkside.gan.family import FAMILIES, GanTraining, family_class, setup_for
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


@pytest.fixture(scope="module")
def paper() -> dict:
    return setups("paper")


def test_common_paper_numbers(paper):
    for s in paper.values():
        c = s.common
        assert (c.crop, c.scale_min, c.lr, c.beta1, c.beta2) == (256, 0.8, 2e-4, 0.5, 0.999)
        f = s.settings
        assert f.pairs_per_epoch == 10000
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
                "hedngan": (40_248_658, 40.2), "rcfngan": (40_336_268, 40.3)}
    for f, (total, millions) in expected.items():
        res = count_parameters(paper[f])
        assert (res["paper_total"], res["paper_millions"]) == (total, millions)
    assert count_parameters(paper["hedgan"])["plain_total"] == 11_383_427 + 2_765_633 + 14_716_171


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
