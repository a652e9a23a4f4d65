"""params.yaml: the settings every package shares, loading with one-line errors, and job views.

Validation is the JSON schema that :mod:`darkside.schema` generates from the settings dataclasses
and the registries (committed as ``darkside/schemas/params.schema.yaml``, which
``workflow/schemas/`` links to; a test fails when it drifts), plus the references it annotates.
It needs no model code, so Snakemake checks params.yaml while it parses the Snakefile. Modules
named in ``plugins`` (a family, a backbone... from outside the package) are imported first and
the schema is then generated afresh, since they add to the registries.

A job reads a few sections and leaves of one preset (its verb's ``reads`` in :mod:`darkside.cli`):
:class:`JobSettings` is that subset, handed over whole by the DAG (``--settings``) or taken from
params.yaml when a stage is run by hand or by DVC; :meth:`JobSettings.section` parses one part of
it into its typed settings.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from darkside.errors import ConfigError
from darkside.settings import check_references, leaf_paths, lookup, parse, setting

SCHEMA_PATH = Path(__file__).with_name("schemas") / "params.schema.yaml"
MULTI_DOMAIN = "x-multi-domain"  # schema annotation of a family that trains on every lighting domain
LOCAL_FEATURES = "x-local-features"  # schema annotation of a network with local descriptors (HOW)
T = TypeVar("T")


# --- settings shared by several packages (one dataclass per section; the rest live with their code) ---

def _archs() -> list[str]:
    from darkside.embed.backbones import ARCHS

    return sorted(ARCHS)


@dataclass(frozen=True)
class BackboneSettings:
    """``backbones.<name>``: the trunk of an embedding network."""

    arch: str = setting("a registered architecture (darkside.embed.backbones)", choices=_archs)
    width: float = setting("channel multiplier (1 = the published network)", gt=0, le=1)
    blocks: tuple[int, ...] | None = setting("blocks per stage (ResNet 4 values, VGG 5 conv counts); null = "
                                             "the architecture's own", ge=1, min_items=4)
    init: Literal["random", "imagenet-caffe", "imagenet-torchvision", "pretrained"] = setting()
    weights: str | None = setting("local weight file of the trunk (imagenet-caffe, pretrained)")


@dataclass(frozen=True)
class BackboneSpec(BackboneSettings):
    """A backbone's settings and its name (the key in ``backbones``), as networks record them."""

    name: str = ""

    @classmethod
    def named(cls, name: str, s: BackboneSettings) -> BackboneSpec:
        return cls(s.arch, s.width, s.blocks, s.init, s.weights, name)


@dataclass(frozen=True)
class ExtractSettings:
    """``extract``: multi-scale descriptors of test images (SPEC section 7)."""

    image_size: int = setting("max side of test images (paper 1024)", ge=1)
    scales: tuple[float, ...] = setting("scales combined by the GeM power mean", gt=0, min_items=1)
    batch_size: int = setting(ge=1)
    on_corrupt: Literal["error", "skip"] = setting("skip: leave unreadable images out, counted in the HDF5 file")


@dataclass(frozen=True)
class WhiteningSettings:
    """``whitening``: the learned whitening (Lw) of a model."""

    image_size: int = setting("max side of the whitening images (paper 1024)", ge=1)
    dims: int | None = setting("dimensions kept after whitening (null: all)", ge=1)
    pca_dims: int | None = setting(
        "longer descriptors are first reduced to this many by PCA of the whitening images (NetVLAD's 4096; null: "
        "never)", ge=1)


@dataclass(frozen=True)
class ScoreSettings:
    """``evaluate``: what scoring reads."""

    chunk_size: int = setting("database block size for ranking (bounded memory)", ge=1)
    recall_ks: tuple[int, ...] = setting(ge=1, min_items=1)
    pairs_topk: int = setting("retrieval pairs exported for kapture's paradigms 2a/2b", ge=1)
    localization_thresholds: tuple[tuple[float, float], ...] = setting("(metres, degrees)", gt=0, min_items=1)


@dataclass(frozen=True)
class BootstrapSettings:
    """``evaluate``: what the tables read (confidence intervals over queries)."""

    bootstrap_samples: int = setting(ge=1)
    bootstrap_seed: int = setting(ge=0)


@dataclass(frozen=True)
class MatchCountSettings:
    """``evaluate.matches``: the kernel of ``darkside score --matches`` (:mod:`darkside.evaluate.matches`)."""

    ratio: float = setting("nearest / second nearest distance below which a descriptor matches (DaCo 0.7)", gt=0,
                           le=1)
    score: Literal["count", "jaccard"] = setting("the number of matches (the paper), or matches / (|q| + |x| - "
                                                 "matches) (DaCo's reverted sift.py)")


@dataclass(frozen=True)
class EvaluateSettings(ScoreSettings, BootstrapSettings):
    """``evaluate``: scoring and table settings in one section."""

    matches: MatchCountSettings = setting("ranking by matched local features (DaCo's SIFT baseline)")


# --- loading and validation ---------------------------------------------------------------------------

@cache
def committed_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def import_plugins(names: Iterable[str]) -> None:
    """Import the ``plugins`` modules (they register families, backbones...); one-line error if one fails."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"plugins: cannot import {name!r} ({exc})") from None


def _key_path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _schema(params: Any) -> dict[str, Any]:
    """The schema ``params`` is checked against: the committed one, or the registries' own where it names
    ``plugins`` (imported first)."""
    plugins = params.get("plugins", []) if isinstance(params, Mapping) else []
    if plugins:
        import_plugins(plugins)
        from darkside.schema import params_schema

        return params_schema()
    return committed_schema()


def multi_domain_families(params: Mapping[str, Any]) -> list[str]:
    """The generator families that train on every lighting domain (``GanBundle.multi_domain``, which the schema
    records as ``x-multi-domain``), read without importing the families (the DAG imports no torch)."""
    preset = _schema(params)["properties"]["presets"]["additionalProperties"]["properties"]
    families = preset["gan"]["properties"]["families"]["properties"]
    return sorted(name for name, node in families.items() if node.get(MULTI_DOMAIN))


def local_feature_networks(params: Mapping[str, Any]) -> list[str]:
    """The descriptor networks with local descriptors (``Network.local``, recorded by the schema as
    ``x-local-features``): their models are extracted with ``--local`` and scored by ASMK. No torch import."""
    preset = _schema(params)["properties"]["presets"]["additionalProperties"]["properties"]
    nets = preset["networks"]["anyOf"][0]["properties"]
    return sorted(name for name, node in nets.items() if node.get(LOCAL_FEATURES))


def _check(schema: Mapping[str, Any], instance: Any, source: str, at: list[Any]) -> None:
    """``instance`` (at key path ``at``) against ``schema``: one line naming the deepest offending key."""
    import jsonschema

    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(instance))
    if errors:
        # the deepest error is the most specific one (anyOf wraps its branches' errors)
        e = jsonschema.exceptions.best_match(errors)
        path = [*at, *e.absolute_path]
        if e.validator == "additionalProperties" and isinstance(e.instance, Mapping):
            extra = sorted(k for k in e.instance if k not in e.schema.get("properties", {}))
            if extra:
                raise ConfigError(f"{source}: {_key_path([*path, extra[0]])}: unknown key")
        raise ConfigError(f"{source}: {_key_path(path)}: {e.message}")


def _check_variants(schema: Mapping[str, Any], preset: Mapping[str, Any], where: list[Any], source: str) -> None:
    """Each ``gan.variants`` entry's family entry with its overrides applied is a valid entry of that family
    (the family's schema: an unknown or mistyped override names its key), and its name is no family's or
    published generator's (they share results/gans/<name>)."""
    gan = preset["gan"]
    families = schema["properties"]["presets"]["additionalProperties"]["properties"]["gan"]["properties"]["families"]
    for name, variant in gan["variants"].items():
        at = [*where, "gan", "variants", name]
        if name in gan["families"] or name in gan["published"]:
            raise ConfigError(f"{source}: {_key_path(at)}: the name of a family or published generator")
        node = {**families["properties"][variant["family"]], "$defs": schema.get("$defs", {})}
        _check(node, {**gan["families"][variant["family"]], **variant["overrides"]}, source, [*at, "overrides"])
    _check_daco(schema, preset, where, source)


def daco_learner_entry(daco: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The plain settings of learner or variant ``name`` of a ``daco`` section: a variant's learner entry with its
    overrides merged in key by key (``{objective: {daco: {lam: 0.0}}}`` replaces lambda alone; the DAG, the params
    check and train-daco read it; DacoSettings types it). No torch import."""
    if name in daco.get("variants", {}):
        variant = daco["variants"][name]
        return _merge(dict(daco["learners"][variant["learner"]]), variant["overrides"])
    if name in daco["learners"]:
        return dict(daco["learners"][name])
    known = sorted([*daco["learners"], *daco.get("variants", {})])
    raise ConfigError(f"daco: no learner or variant {name!r} (known: {', '.join(known) or 'none'})")


def _check_daco(schema: Mapping[str, Any], preset: Mapping[str, Any], where: list[Any], source: str) -> None:
    """``daco``: the translator's family entry with its overrides is a valid entry of that family; each variant's
    learner entry with its overrides a valid learner, its name no learner's; a hand-crafted method's name neither;
    each run names a learner, variant or hand-crafted method."""
    daco, defs = preset["daco"], schema.get("$defs", {})
    props = schema["properties"]["presets"]["additionalProperties"]["properties"]
    families = props["gan"]["properties"]["families"]["properties"]
    translator, at = daco["translator"], [*where, "daco", "translator"]
    _check({**families[translator["family"]], "$defs": defs},
           {**preset["gan"]["families"][translator["family"]], **translator["overrides"]}, source, [*at, "overrides"])
    learner_schema = {**props["daco"]["properties"]["learners"]["additionalProperties"], "$defs": defs}
    for name in daco["variants"]:
        at = [*where, "daco", "variants", name]
        if name in daco["learners"]:
            raise ConfigError(f"{source}: {_key_path(at)}: the name of a learner")
        _check(learner_schema, daco_learner_entry(daco, name), source, [*at, "overrides"])
    for name in daco["handcrafted"]:
        if name in daco["learners"] or name in daco["variants"]:
            raise ConfigError(f"{source}: {_key_path([*where, 'daco', 'handcrafted', name])}: the name of a learner "
                              "or variant")
    for role, names in daco["runs"].items():
        for i, name in enumerate(names):
            if name not in daco["learners"] and name not in daco["variants"] and name not in daco["handcrafted"]:
                raise ConfigError(f"{source}: {_key_path([*where, 'daco', 'runs', role, i])}: {name!r} is no "
                                  f"daco.learners, daco.variants or daco.handcrafted entry")


def validate(params: Any, source: str = "params.yaml") -> dict[str, Any]:
    """Check ``params`` against the schema and its references; raise :class:`ConfigError` naming the key."""
    schema = _schema(params)
    _check(schema, params, source, [])
    if params["preset"] not in params["presets"]:
        raise ConfigError(f"{source}: preset: {params['preset']!r} is not one of {sorted(params['presets'])}")
    preset_schema = schema["properties"]["presets"]["additionalProperties"]
    for name, preset in params["presets"].items():
        try:
            check_references(preset_schema, preset, f"presets.{name}")
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        _check_variants(schema, preset, ["presets", name], source)
    return params


def _merge(base: Any, overlay: Any) -> Any:
    """``overlay`` merged into ``base`` key by key (Snakemake's --configfile/--config semantics)."""
    if isinstance(base, Mapping) and isinstance(overlay, Mapping):
        return {**base, **{k: _merge(base.get(k), v) for k, v in overlay.items()}}
    return overlay


def read_yaml(path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: parameter file does not exist")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None


def load_params(path: str | Path = "params.yaml", overlays: Iterable[str | Path] = ()) -> dict[str, Any]:
    """Read, merge the overlay files into, and validate a params file."""
    params = read_yaml(path)
    for overlay in overlays:
        params = _merge(params, read_yaml(overlay))
    return validate(params, str(path))


# --- what one job reads -------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobSettings:
    """The part of one preset a job reads: ``values`` is a nested subset of ``presets.<preset>``."""

    preset: str
    values: dict[str, Any]
    plugins: tuple[str, ...] = ()

    @classmethod
    def select(cls, params: Mapping[str, Any], reads: Iterable[str], preset: str | None = None) -> JobSettings:
        """The ``reads`` (dotted paths of sections or leaves) of a validated params dict's preset."""
        name = preset or params["preset"]
        if name not in params["presets"]:
            raise ConfigError(f"preset: {name!r} is not one of {sorted(params['presets'])}")
        source, values = params["presets"][name], {}
        for path in reads:
            try:
                value = lookup(source, path)
            except KeyError:
                raise ConfigError(f"presets.{name}.{path}: missing key") from None
            *parents, last = path.split(".")
            node = values
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        return cls(name, values, tuple(params.get("plugins", ())))

    @classmethod
    def from_json(cls, text: str) -> JobSettings:
        try:
            d = json.loads(text)
            job = cls(str(d["preset"]), dict(d["values"]), tuple(d.get("plugins", ())))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"--settings: not a job's settings ({exc})") from None
        import_plugins(job.plugins)
        return job

    def to_json(self) -> str:
        return json.dumps({"preset": self.preset, "plugins": list(self.plugins), "values": self.values},
                          sort_keys=True, separators=(",", ":"))

    def where(self, path: str) -> str:
        return f"presets.{self.preset}.{path}"

    def get(self, path: str) -> Any:
        """The raw value at ``path`` (it must be one of the job's reads)."""
        try:
            return lookup(self.values, path)
        except KeyError:
            raise ConfigError(f"{self.where(path)}: not among this job's settings") from None

    def section(self, path: str, cls: type[T]) -> T:
        """The typed settings at ``path`` (one-line error naming the key path)."""
        return parse(cls, self.get(path), self.where(path))

    def param_keys(self) -> list[str]:
        """The params.yaml key paths of every leaf the job reads (DVC's ``params``)."""
        return [self.where(p) for p in leaf_paths(self.values)] + (["plugins"] if self.plugins else [])
