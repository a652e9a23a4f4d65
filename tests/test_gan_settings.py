"""GanSettings: strict parsing, every SPEC §5 number of the paper preset, Table 8 parameter counts."""

import json
from pathlib import Path

import pytest
import yaml

from darkside.errors import ConfigError
from darkside.gan.families import CYCLEGAN_OFFICIAL, GanSettings, settings_for
from darkside.gan.params import count_parameters, main

ROOT = Path(__file__).resolve().parents[1]

# The `gan` section proposed for presets.paper (reference notes §2.3 / SPEC §5). Once params.yaml
# carries presets.paper.gan, the tests below check that one instead.
PROPOSED_PAPER_GAN = """
common: {crop: 256, scale_min: 0.8, pairs_per_epoch: 10000, lr: 0.0002, beta1: 0.5, beta2: 0.999,
  ngf: 64, n_blocks: 9, ndf: 64, n_layers_d: 3, edge_weight: 5.0, cycle_weight: 10.0,
  identity_weight: 0.0, detector_width: 1.0, detector_input: caffe255, student_lr: 1.0e-6,
  student_beta1: 0.9, student_beta2: 0.999, student_weight_decay: 0.0002, sample_images: 4,
  cache_images: false}
families:
  cyclegan: {norm: instance, batch_size: 1, epochs_constant: 50, epochs_decay: 50, init: normal,
    init_gain: 0.2, pool_size: 50, detector: null, detector_weights: null, student_lr_multipliers: false}
  hedgan: {norm: batch, batch_size: 10, epochs_constant: 25, epochs_decay: 25, init: kaiming,
    init_gain: 0.2, pool_size: 0, detector: hed, detector_weights: data/weights/hed_sniklaus_github.pth,
    student_lr_multipliers: false}
  hedngan: {norm: batch, batch_size: 10, epochs_constant: 25, epochs_decay: 25, init: kaiming,
    init_gain: 0.2, pool_size: 0, detector: hed, detector_weights: data/weights/hed_sniklaus_github.pth,
    student_lr_multipliers: true}
  rcfngan: {norm: batch, batch_size: 10, epochs_constant: 25, epochs_decay: 25, init: kaiming,
    init_gain: 0.2, pool_size: 0, detector: rcf,
    detector_weights: data/weights/rcf_bsds500_pascal_model.pth, student_lr_multipliers: false}
"""


def paper_gan() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    gan = params.get("presets", {}).get("paper", {}).get("gan")
    return gan if gan is not None else yaml.safe_load(PROPOSED_PAPER_GAN)


@pytest.fixture(scope="module")
def paper() -> dict:
    return {f: settings_for(paper_gan(), f) for f in ("cyclegan", "hedgan", "hedngan", "rcfngan")}


def test_common_paper_numbers(paper):
    for s in paper.values():
        assert (s.crop, s.scale_min, s.pairs_per_epoch) == (256, 0.8, 10000)
        assert (s.lr, s.beta1, s.beta2) == (2e-4, 0.5, 0.999)
        assert (s.ngf, s.n_blocks, s.ndf, s.n_layers_d) == (64, 9, 64, 3)


def test_cyclegan_paper_numbers(paper):
    s = paper["cyclegan"]
    assert (s.norm, s.batch_size, s.epochs_constant, s.epochs_decay) == ("instance", 1, 50, 50)
    assert (s.cycle_weight, s.identity_weight, s.pool_size) == (10.0, 0.0, 50)
    assert (s.init, s.init_gain) == ("normal", 0.2)  # gandtr's effective init
    official = s.replace(**CYCLEGAN_OFFICIAL)
    assert (official.init_gain, official.identity_weight * official.cycle_weight) == (0.02, 5.0)


def test_edge_family_paper_numbers(paper):
    for f in ("hedgan", "hedngan", "rcfngan"):
        s = paper[f]
        assert (s.norm, s.batch_size, s.epochs) == ("batch", 10, 50)
        assert (s.init, s.init_gain, s.edge_weight, s.pool_size) == ("kaiming", 0.2, 5.0, 0)
        assert s.pairs_per_epoch // s.batch_size == 1000
        assert s.detector_width == 1.0 and s.detector_input == "caffe255"
    assert paper["hedgan"].detector == paper["hedngan"].detector == "hed"
    assert paper["rcfngan"].detector == "rcf"
    for f in ("hedngan", "rcfngan"):
        s = paper[f]
        assert (s.student_lr, s.student_beta1, s.student_weight_decay) == (1e-6, 0.9, 2e-4)
    assert paper["hedngan"].student_lr_multipliers and not paper["rcfngan"].student_lr_multipliers


def test_table8_parameter_counts(paper):
    expected = {"cyclegan": (51_042_190, 51.0), "hedgan": (25_532_487, 25.5),
                "hedngan": (40_248_658, 40.2), "rcfngan": (40_336_268, 40.3)}
    for f, (total, millions) in expected.items():
        res = count_parameters(f, paper[f])
        assert (res["paper_total"], res["paper_millions"]) == (total, millions)
    assert count_parameters("hedgan", paper["hedgan"])["plain_total"] == 11_383_427 + 2_765_633 + 14_716_171


def test_strict_keys():
    d = paper_gan()
    base = {**d["common"], **d["families"]["hedgan"], "family": "hedgan"}
    with pytest.raises(ConfigError, match=r"^gan\.typo: unknown key$"):
        GanSettings.from_dict({**base, "typo": 1})
    with pytest.raises(ConfigError, match=r"^gan\.lr: missing key$"):
        GanSettings.from_dict({k: v for k, v in base.items() if k != "lr"})
    with pytest.raises(ConfigError, match=r"^gan\.batch_size: expected int"):
        GanSettings.from_dict({**base, "batch_size": 2.5})
    with pytest.raises(ConfigError, match=r"gan\.norm: 'group'"):
        GanSettings.from_dict({**base, "norm": "group"})
    with pytest.raises(ConfigError, match=r"families\.nope"):
        settings_for(d, "nope")


def test_params_main_json(tmp_path, capsys):
    p = tmp_path / "gan.yaml"
    p.write_text(yaml.safe_dump(paper_gan()))
    assert main(["--family", "hedngan", "--gan-yaml", str(p), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["paper_millions"] == 40.2 and out["blocks"]["detector_teacher"]["role"] == "frozen"
