"""The whole of params.yaml as one tree of settings dataclasses, and the JSON schema made from it.

Every section's dataclass lives beside the code that reads it; this module only assembles the
tree, with the registries supplying the choices (architectures, families, detectors, datasets).
``darkside schema`` writes the schema to ``darkside/schemas/params.schema.yaml`` (which
``workflow/schemas/`` links to); a test fails when the committed file differs from what the
registries give now. It imports every registry, hence torch: nothing at run time imports it
unless params.yaml names ``plugins``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from darkside.atomic import atomic_write_text
from darkside.config import (
    LOCAL_FEATURES,
    MULTI_DOMAIN,
    SCHEMA_PATH,
    BackboneSettings,
    EvaluateSettings,
    ExtractSettings,
    WhiteningSettings,
)
from darkside.data.daynight import DayNightSettings
from darkside.data.download import DownloadSettings
from darkside.data.synthetic import SyntheticParams
from darkside.embed.daco import DacoSettings, DacoVariant, Normalisation
from darkside.embed.how import LocalExtractSettings
from darkside.embed.networks import get_network, network_settings
from darkside.embed.pretrain import BackbonePretrainSettings
from darkside.evaluate.asmk import AsmkSettings, CodebookSettings
from darkside.extract.handcrafted import HandcraftedMethod
from darkside.gan.edges import DETECTORS, DetectorSettings
from darkside.gan.edges.pretrain import EdgePretrainSettings
from darkside.gan.edges.quality import EdgeQualitySettings
from darkside.gan.family import GanTraining, GanVariant, family_class, family_settings
from darkside.gan.published import PublishedGenerator
from darkside.localize.run import LocalizeSettings
from darkside.recipes import FinetuneSettings
from darkside.settings import json_schema, setting
from darkside.tables.qualitative import RetrievalFigureSettings

NAME = "^[a-z0-9]+$"


def _datasets() -> list[str]:
    from darkside.data.registry import dataset_names

    return dataset_names()


@dataclass(frozen=True)
class Roles:
    """``data.roles``: which prepared dataset plays which part of the paper."""

    train: str = setting(choices=_datasets)
    train_day_night: str = setting(
        "what recipes with day_night_pairs fine-tune on: the train role's day pairs and the N/D pairs in one dataset "
        "(paper: sfm120k-nd, which holds sfm120k and the pair list; synthetic: synth-sfm holds both)",
        choices=_datasets)
    whiten: str = setting(choices=_datasets)
    tokyo: str = setting(choices=_datasets)
    roxford: str = setting(choices=_datasets)
    rparis: str = setting(choices=_datasets)
    localization: tuple[str, ...] = setting(choices=_datasets)
    cross_domain: dict[str, str] = setting(
        "DaCo's cross-domain retrieval tasks (protocol cross_domain): the role a DaCo table names -> the dataset "
        "scored (paper: daco_night tokyo247-daco, daco_fog foggy-cityscapes, daco_rain synthia-seqs); a role the "
        "preset leaves out has no dataset, and its table's cells say so", choices=_datasets)


@dataclass(frozen=True)
class DataSettings:
    roles: Roles
    download: DownloadSettings
    synthetic: SyntheticParams = setting("the embedded benchmark (SPEC 4.3), written by `darkside synth`")


@dataclass(frozen=True)
class EdgeSettings:
    detectors: dict[str, DetectorSettings] = setting("edge detectors the families use, one teacher file each",
                                                     keyed=lambda: dict.fromkeys(DETECTORS, DetectorSettings))
    pretrain: EdgePretrainSettings = setting("teachers trained on ground-truth edges (where none are published)")
    quality: EdgeQualitySettings = setting()


@dataclass(frozen=True)
class GanSection:
    common: GanTraining
    families: dict[str, Any] = setting("one entry per generator family, with that family's own settings",
                                       keyed=family_settings)
    published: dict[str, PublishedGenerator] = setting(
        "generators their authors published (imported, not trained): name -> family and file",
        pattern="^[a-z0-9][a-z0-9-]*$")
    variants: dict[str, GanVariant] = setting(
        "further trained runs of a family with some of its settings replaced (MDUIT's Table 1 ablations): name -> "
        "family and overrides, each trained into results/gans/<name> like the family itself")


@dataclass(frozen=True)
class LocalSection:
    extract: LocalExtractSettings = setting()
    codebook: CodebookSettings = setting()
    asmk: AsmkSettings = setting()


@dataclass(frozen=True)
class DacoSection:
    """``daco``: the methods of DaCo's tables — the contrastive learners (DaCo itself, and its baselines SimCLR,
    MoCo, NPID, SimSiam), each a named entry of every setting, trained by ``darkside train-daco --learner <name>``
    per task (``runs``) into ``results/daco/models/<name>/<dataset>``; the hand-crafted baselines; and the
    generator that translates each task's training images."""

    seed: int = setting("the runs' seed (DaCo's main.py: 1)", ge=0)
    backbone: BackboneSettings = setting("the trunk, from random initialisation (DaCo: torchvision's ResNet-50 "
                                         "without ImageNet weights, its fc layer dropped)")
    normalisation: dict[str, Normalisation] = setting("prepared dataset -> its normalisation (a dataset a run "
                                                      "trains on needs one)")
    learners: dict[str, DacoSettings] = setting("learner name -> its settings (the model's name)")
    variants: dict[str, DacoVariant] = setting("further runs of a learner with some settings replaced: name -> "
                                               "learner and overrides")
    translator: GanVariant = setting(
        "the generator trained once per task on its pair set's training images (domain A as the family's day, B "
        "as its night; DaCo: ForkGAN) with the family's gan.families entry, overrides applied; it translates every "
        "training image into the other domain once (`darkside train-daco-translator`)")
    handcrafted: dict[str, HandcraftedMethod] = setting(
        "the hand-crafted baselines of DaCo's tables (SIFT, BoW, VLAD): name (the model's) -> SIFT settings and "
        "encoding, extracted by `darkside extract-handcrafted`", pattern="^[a-z0-9][a-z0-9-]*$")
    runs: dict[str, tuple[str, ...]] = setting("cross_domain role -> the learners, variants and hand-crafted methods "
                                               "the DAG runs and scores on that role's dataset",
                                               keys_of="data.roles.cross_domain")


@dataclass(frozen=True)
class FigureSection:
    retrieval: RetrievalFigureSettings = setting("the qualitative retrieval figure (night queries, top 5)")


@dataclass(frozen=True)
class PresetSettings:
    seeds: tuple[int, ...] = setting("fine-tuning seeds; a table row is the per-query mean over them", ge=0,
                                     min_items=1)
    device: Literal["cpu", "cuda", "auto"] = setting()
    data: DataSettings = setting()
    day_night: DayNightSettings = setting()
    backbones: dict[str, BackboneSettings] = setting("name (no dash) -> trunk")
    backbone_pretrain: BackbonePretrainSettings = setting("the mini preset's stand-in for ImageNet weights")
    recipes: dict[str, tuple[str, ...]] = setting("backbone -> the recipes the DAG trains and scores (`a+b`: the "
                                                  "ensemble of two recipes' models)",
                                                  pattern="^[a-z0-9][a-z0-9-]*(\\+[a-z0-9][a-z0-9-]*)*$", min_items=1,
                                                  keys_of="backbones")
    extract: ExtractSettings = setting()
    whitening: WhiteningSettings = setting()
    finetune: FinetuneSettings = setting()
    evaluate: EvaluateSettings = setting()
    local: LocalSection = setting("HOW's local descriptors and the ASMK kernel that ranks them")
    localize: LocalizeSettings = setting("paradigms 2a/2b: local features, matching, triangulation, pose")
    edges: EdgeSettings = setting()
    gan: GanSection = setting()
    daco: DacoSection = setting("DaCo's contrastive learners (DaCo's Tables 1-6)")
    figures: FigureSection = setting()
    networks: dict[str, Any] | None = setting(
        "descriptor networks (darkside.embed.networks) whose numbers differ from their defaults: name -> settings "
        "(a network without an entry: every default)", keyed=network_settings, default=None)


@dataclass(frozen=True)
class Params:
    preset: str = setting("the active preset (a key of presets)")
    presets: dict[str, PresetSettings] = setting()
    plugins: tuple[str, ...] = setting("modules to import first: families, backbones... from outside the package",
                                       default=())


def params_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of params.yaml as the registries stand now."""
    defs: dict[str, Any] = {}
    schema = json_schema(Params, None, defs)
    preset = schema["properties"]["presets"]["additionalProperties"]["properties"]
    preset["backbones"]["propertyNames"] = {"pattern": NAME}
    # a variant's name is a generator run's folder and the stem of its recipes' names
    preset["gan"]["properties"]["variants"]["propertyNames"] = {"pattern": "^[a-z0-9][a-z0-9-]*$"}
    # a DaCo run's name is a model folder and a key path segment: no dot (it would read as a .seedN suffix)
    for key in ("learners", "variants"):
        preset["daco"]["properties"][key]["propertyNames"] = {"pattern": "^[a-z0-9][a-z0-9-]*$"}
    # the DAG reads which families train on every lighting domain from here, without importing them (torch)
    families = preset["gan"]["properties"]["families"]["properties"]
    for name in families:
        if family_class(name).multi_domain:
            families[name][MULTI_DOMAIN] = True
    nets = preset["networks"]["anyOf"][0]["properties"]
    for name in nets:
        if get_network(name).local:
            nets[name][LOCAL_FEATURES] = True
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "description": "params.yaml of darkside. GENERATED by `darkside schema` from the settings dataclasses "
                           "and the registries: do not edit by hand.", **schema, "$defs": defs}


def render_schema() -> str:
    return "# GENERATED by `darkside schema`; tests/test_config.py fails when it drifts.\n" + yaml.safe_dump(
        params_schema(), sort_keys=False, width=120, default_flow_style=None)


def write_schema(out: Path = SCHEMA_PATH) -> Path:
    """Regenerate the committed schema; return its path."""
    return atomic_write_text(out, render_schema())
