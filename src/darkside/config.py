"""params.yaml: loading, schema validation with key-path errors, and typed access to a preset.

The JSON schema lives in ``darkside/schemas/params.schema.yaml`` (``workflow/schemas/`` links to
it so that Snakemake's ``validate`` and the CLI check exactly the same rules).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from darkside.errors import ConfigError

SCHEMA_PATH = Path(__file__).with_name("schemas") / "params.schema.yaml"


@cache
def schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def check_keys(d: Any, names: Iterable[str], where: str) -> None:
    """Strict key check of a settings mapping (typed dataclasses' ``from_dict``): a ConfigError naming
    the first unknown or missing key, so a typo stops the run instead of being ignored."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
    names = list(names)
    for key in d:
        if key not in names:
            raise ConfigError(f"{where}.{key}: unknown key")
    for key in names:
        if key not in d:
            raise ConfigError(f"{where}.{key}: missing key")


def _key_path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            return f"{_key_path([*path, extra[0]])}: unknown key"
    if error.validator == "required":
        return f"{_key_path(path)}: {error.message}"
    return f"{_key_path(path)}: {error.message}"


def validate(params: Any, source: str = "params.yaml") -> dict[str, Any]:
    """Validate ``params`` against the schema; raise :class:`ConfigError` naming the key path."""
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(params), key=lambda e: (len(list(e.absolute_path)), str(e.message)))
    if errors:
        # the deepest error is the most specific one (oneOf/anyOf wrap their branches' errors)
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"{source}: {_describe(best)}")
    if params["preset"] not in params["presets"]:
        raise ConfigError(f"{source}: preset: {params['preset']!r} is not one of {sorted(params['presets'])}")
    return params


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read and validate a params file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: parameter file does not exist")
    try:
        params = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return validate(params, str(p))


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    arch: str
    width: float
    blocks: tuple[int, ...] | None
    init: str
    weights: str | None


@dataclass(frozen=True)
class ExtractSettings:
    image_size: int
    scales: tuple[float, ...]
    batch_size: int
    on_corrupt: str


@dataclass(frozen=True)
class EvaluateSettings:
    chunk_size: int
    bootstrap_samples: int
    bootstrap_seed: int
    recall_ks: tuple[int, ...]
    pairs_topk: int
    localization_thresholds: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Preset:
    """Typed view of one preset of params.yaml (``raw`` keeps the validated dict)."""

    name: str
    raw: dict[str, Any]

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(self.raw["seeds"])

    @property
    def device(self) -> str:
        return self.raw["device"]

    @property
    def roles(self) -> dict[str, Any]:
        return self.raw["data"]["roles"]

    def backbone(self, name: str) -> BackboneSpec:
        try:
            b = self.raw["backbones"][name]
        except KeyError:
            raise ConfigError(f"presets.{self.name}.backbones.{name}: no such backbone") from None
        return BackboneSpec(name=name, arch=b["arch"], width=float(b["width"]),
                            blocks=tuple(b["blocks"]) if b["blocks"] is not None else None,
                            init=b["init"], weights=b["weights"])

    @property
    def backbones(self) -> list[str]:
        return list(self.raw["backbones"])

    @property
    def extract(self) -> ExtractSettings:
        e = self.raw["extract"]
        return ExtractSettings(e["image_size"], tuple(float(s) for s in e["scales"]), e["batch_size"],
                               e["on_corrupt"])

    @property
    def evaluate(self) -> EvaluateSettings:
        e = self.raw["evaluate"]
        return EvaluateSettings(e["chunk_size"], e["bootstrap_samples"], e["bootstrap_seed"],
                                tuple(e["recall_ks"]), e["pairs_topk"],
                                tuple((float(t), float(r)) for t, r in e["localization_thresholds"]))


def load_preset(path: str | Path = "params.yaml", name: str | None = None) -> Preset:
    """Validated preset ``name`` (default: the file's ``preset`` key)."""
    params = load_params(path)
    name = name or params["preset"]
    if name not in params["presets"]:
        raise ConfigError(f"{path}: preset: {name!r} is not one of {sorted(params['presets'])}")
    return Preset(name=name, raw=params["presets"][name])
