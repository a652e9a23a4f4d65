"""Typed settings: every section of params.yaml is one frozen dataclass, read by one strict parser.

A field's type says what it accepts (``int``, ``float``, ``bool``, ``str``, ``Literal`` choices,
``X | None``, ``tuple[T, ...]``, ``tuple[A, B]``, ``dict[str, T]``, a nested section) and
:func:`setting` adds its bounds, its choices (a tuple, or a callable that asks a registry) and a
description. :func:`parse` checks a mapping against that declaration (unknown and missing keys,
types, bounds: a one-line :class:`ConfigError` naming the key path) and :func:`json_schema` turns
the same declaration into the JSON schema that ``workflow/schemas/params.schema.yaml`` holds, so a
rule is written once. Only this module knows the JSON Schema vocabulary; it imports no model code.

Two references cannot be said in a field's type and are annotations of the schema, checked by
:func:`check_references`: ``keys_of`` (every key of this map names an entry of another map, e.g.
``finetune.margins`` names backbones) and ``key_in`` (the value names an entry of another map,
e.g. a family's ``detector`` names one of ``edges.detectors``); both paths are relative to the
preset.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import Any, Literal, TypeVar

from darkside.errors import ConfigError

T = TypeVar("T")
Choices = tuple[Any, ...] | Callable[[], Any]
KEYS_OF, KEY_IN = "x-keys-of", "x-key-in"


def setting(doc: str = "", *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, min_items: int | None = None, max_items: int | None = None,
            choices: Choices | None = None,
            pattern: str | None = None, keyed: Callable[[], Mapping[str, type]] | None = None,
            keys_of: str | None = None, key_in: str | None = None, default: Any = dataclasses.MISSING,
            kw_only: bool = False) -> Any:
    """A dataclass field with its rules. Bounds and choices apply to every scalar of the value (the
    items of a tuple, the values of a map). ``keyed``: a map whose value type depends on the key
    (``gan.families``: each family has its own settings), given by a registry callable. ``min_items`` and
    ``max_items`` bound the length of a tuple or the number of keys of a map (1 and 1: a map naming exactly one
    registry entry with its settings, such as a contrastive learner's objective). ``kw_only``: a field with a
    default in a base class whose subclasses add fields without one."""
    meta = {k: v for k, v in {"doc": doc, "ge": ge, "gt": gt, "le": le, "lt": lt, "min_items": min_items,
                              "max_items": max_items,
                              "choices": choices, "pattern": pattern, "keyed": keyed, "keys_of": keys_of,
                              "key_in": key_in}.items() if v not in (None, "")}
    return dataclasses.field(default=default, metadata=meta, kw_only=kw_only)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _choices(meta: Mapping[str, Any]) -> list[Any] | None:
    c = meta.get("choices")
    if c is None:
        return None
    return sorted(c()) if callable(c) else list(c)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --- parsing ------------------------------------------------------------------------------------------

def parse(cls: type[T], data: Any, where: str) -> T:
    """``data`` as a ``cls`` instance; unknown keys, missing keys, wrong types and values out of bounds
    raise a :class:`ConfigError` naming the key path (``where`` is the path of ``data``)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {_kind(data)}")
    fields = {f.name: f for f in _fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(f"{where}.{key}: unknown key")
    values = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _value(_hints(cls)[name], data[name], f"{where}.{name}", f.metadata)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: missing key")
    return cls(**values)


def _value(tp: Any, v: Any, where: str, meta: Mapping[str, Any]) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        options = [a for a in args if a is not type(None)]
        if v is None:
            if len(options) < len(args):
                return None
            raise ConfigError(f"{where}: must not be null")
        return _value(_pick(options, v), v, where, meta)
    if origin is Literal:
        if v not in args:
            raise ConfigError(f"{where}: {v!r} is not one of {list(args)}")
        return v
    if dataclasses.is_dataclass(tp):
        return parse(tp, v, where)
    if origin is tuple:
        if not isinstance(v, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {_kind(v)}")
        items = args[:1] * len(v) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(v):
            raise ConfigError(f"{where}: expected {len(items)} values, got {len(v)}")
        if not meta.get("min_items", 0) <= len(v) <= meta.get("max_items", len(v)):
            raise ConfigError(f"{where}: expected {_count(meta, 'value')}, got {len(v)}")
        return tuple(_value(t, x, f"{where}[{i}]", meta) for i, (t, x) in enumerate(zip(items, v, strict=True)))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(v, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {_kind(v)}")
        keyed = meta["keyed"]() if "keyed" in meta else None
        if not meta.get("min_items", 0) <= len(v) <= meta.get("max_items", len(v)):
            raise ConfigError(f"{where}: expected {_count(meta, 'key')}, got {len(v)} ({', '.join(map(str, v))})")
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: keys must be strings, got {k!r}")
            if keyed is not None and k not in keyed:
                raise ConfigError(f"{where}.{k}: unknown key (known: {', '.join(sorted(keyed))})")
            out[k] = _value(keyed[k] if keyed is not None else args[1], x, f"{where}.{k}", meta)
        return out
    return _scalar(tp, v, where, meta)


def _count(meta: Mapping[str, Any], word: str) -> str:
    """'at least 2 values', 'at most 3 keys', 'exactly 1 key' from a field's min_items / max_items."""
    lo, hi = meta.get("min_items"), meta.get("max_items")
    n, bound = (lo, "exactly") if lo == hi else (lo, "at least") if hi is None else (hi, "at most") \
        if lo is None else (None, f"{lo} to {hi}")
    return f"{bound} {word}s" if n is None else f"{bound} {n} {word}{'s' if n != 1 else ''}"


def _pick(options: list[Any], v: Any) -> Any:
    """The branch of a union that a value's shape selects (a mapping, a list, or a scalar)."""
    def shape(t: Any) -> str:
        o = typing.get_origin(t)
        if dataclasses.is_dataclass(t) or o in (dict, Mapping) or t in (dict, Mapping):
            return "map"
        return "list" if o is tuple else "scalar"
    want = "map" if isinstance(v, Mapping) else "list" if isinstance(v, (list, tuple)) else "scalar"
    return next((t for t in options if shape(t) == want), options[0])


def _scalar(tp: Any, v: Any, where: str, meta: Mapping[str, Any]) -> Any:
    if tp is Any:
        return v
    if tp is bool:
        if not isinstance(v, bool):
            raise ConfigError(f"{where}: expected true or false, got {v!r}")
        return v
    if tp in (int, float):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (tp is int and not isinstance(v, int)):
            raise ConfigError(f"{where}: expected {'an integer' if tp is int else 'a number'}, got {v!r}")
        v = tp(v)
        for key, ok, word in (("ge", v.__ge__, "at least"), ("gt", v.__gt__, "above"),
                              ("le", v.__le__, "at most"), ("lt", v.__lt__, "below")):
            if key in meta and not ok(meta[key]):
                raise ConfigError(f"{where}: {v!r} must be {word} {meta[key]!r}")
        return v
    if tp is str:
        if not isinstance(v, str):
            raise ConfigError(f"{where}: expected a string, got {v!r}")
        choices = _choices(meta)
        if choices is not None and v not in choices:
            raise ConfigError(f"{where}: {v!r} is not one of {choices}")
        if "pattern" in meta:
            import re

            if not re.search(meta["pattern"], v):
                raise ConfigError(f"{where}: {v!r} does not match {meta['pattern']!r}")
        return v
    raise TypeError(f"settings: unsupported field type {tp!r} at {where}")


# --- plain values and key paths -----------------------------------------------------------------------

def to_plain(obj: Any) -> Any:
    """A settings object as plain YAML/JSON types (tuples as lists), e.g. for checkpoints."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in _fields(type(obj))}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    return obj


def leaf_paths(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every scalar or list value of a nested mapping (what DVC tracks as params)."""
    out = []
    for k, v in data.items():
        path = f"{prefix}{k}"
        out += leaf_paths(v, path + ".") if isinstance(v, Mapping) and v else [path]
    return out


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of a nested mapping; KeyError names the missing part."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


# --- JSON schema --------------------------------------------------------------------------------------

def json_schema(tp: Any, meta: Mapping[str, Any] | None = None, defs: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of a settings type, with the rules of :func:`setting`. Choices
    given by a named function (a registry: ``_datasets``) go once into ``defs`` (``$defs``) and are
    referred to."""
    meta = meta or {}
    if defs is None:
        defs = {}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _is_union(tp):
        options = [json_schema(a, meta, defs) for a in args if a is not type(None)]
        if len(options) < len(args):
            options.append({"type": "null"})
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin is Literal:
        return {"enum": list(args)}
    if dataclasses.is_dataclass(tp):
        props = {}
        for f in _fields(tp):
            props[f.name] = json_schema(_hints(tp)[f.name], f.metadata, defs)
            for key, word in (("doc", "description"), ("keys_of", KEYS_OF), ("key_in", KEY_IN)):
                if key in f.metadata:
                    props[f.name][word] = f.metadata[key]
        required = [f.name for f in _fields(tp)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        return {"type": "object", "additionalProperties": False, **({"required": required} if required else {}),
                "properties": props}
    if origin is tuple:
        out: dict[str, Any] = {"type": "array"}
        if len(args) == 2 and args[1] is Ellipsis:
            out["items"] = json_schema(args[0], meta, defs)
            if "min_items" in meta:
                out["minItems"] = meta["min_items"]
            if "max_items" in meta:
                out["maxItems"] = meta["max_items"]
        else:
            out.update(prefixItems=[json_schema(a, meta, defs) for a in args], items=False, minItems=len(args))
        return out
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if "keyed" in meta:
            keyed = meta["keyed"]()
            bounds = {word: meta[key] for key, word in (("min_items", "minProperties"), ("max_items", "maxProperties"))
                      if key in meta}
            return {"type": "object", "additionalProperties": False, **bounds,
                    "properties": {k: json_schema(keyed[k], None, defs) for k in sorted(keyed)}}
        return {"type": "object", "additionalProperties": json_schema(args[1], meta, defs)}
    if tp is Any:
        return {}
    schema: dict[str, Any] = {"type": {bool: "boolean", int: "integer", float: "number", str: "string"}[tp]}
    for key, word in (("ge", "minimum"), ("gt", "exclusiveMinimum"), ("le", "maximum"), ("lt", "exclusiveMaximum")):
        if key in meta and tp in (int, float):
            schema[word] = meta[key]
    if tp is str:
        choices = meta.get("choices")
        name = getattr(choices, "__name__", "<lambda>").strip("_")
        if callable(choices) and name != "<lambda>":
            defs[name] = {"enum": _choices(meta)}
            schema = {"$ref": f"#/$defs/{name}"}
        elif choices is not None:
            schema = {"enum": _choices(meta)}
        if "pattern" in meta:
            schema["pattern"] = meta["pattern"]
    return schema


def check_references(schema: Mapping[str, Any], preset: Mapping[str, Any], where: str) -> None:
    """The ``keys_of`` / ``key_in`` annotations of ``schema`` hold in ``preset`` (one-line error)."""
    for path, value, node in _annotated(schema, preset, where):
        for target, keys in ((node.get(KEYS_OF), list(value) if isinstance(value, Mapping) else []),
                             (node.get(KEY_IN), [value] if isinstance(value, str) else [])):
            if target is None:
                continue
            known = preset
            for part in target.split("."):
                known = known.get(part, {}) if isinstance(known, Mapping) else {}
            for key in keys:
                if key not in known:
                    at = f"{path}.{key}" if node.get(KEYS_OF) else path
                    raise ConfigError(f"{at}: {key!r} is not one of {where}.{target} ({', '.join(sorted(known))})")


def _annotated(schema: Mapping[str, Any], value: Any, path: str) -> Iterator[tuple[str, Any, Mapping[str, Any]]]:
    if KEYS_OF in schema or KEY_IN in schema:
        yield path, value, schema
    if isinstance(value, Mapping):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k, extra if isinstance(extra, Mapping) else None)
            if sub is not None:
                yield from _annotated(sub, v, f"{path}.{k}")
    for option in schema.get("anyOf", ()):
        if option.get("type") == "object" and isinstance(value, Mapping):
            yield from _annotated(option, value, path)
