"""Typed building of config dataclasses from nested dicts: the checks every section gets.

An unknown key, a value of the wrong type or a non-finite number is a `ConfigError` naming
the dotted key and the value.
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, Literal, Union

_SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


class ConfigError(ValueError):
    """A config key is unknown, or its value has the wrong type or range."""


def _union(value: Any, tp: Any, key: str) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg, key)
        except ConfigError as e:
            errors.append(str(e))
    raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of {tp}")


def _container(value: Any, tp: Any, origin: Any, key: str) -> Any:
    """A list, tuple or dict annotation."""
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        k_tp, v_tp = typing.get_args(tp) or (Any, Any)
        return {_convert(k, k_tp, key): _convert(v, v_tp, f"{key}.{k}") for k, v in value.items()}
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key}: expected a list, got {value!r}")
    (item_tp, *_) = typing.get_args(tp) or (Any,)
    items = [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    return items if origin is list else tuple(items)


def _float(value: Any, key: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        number = float(value)  # YAML 1.1 (PyYAML) reads 2e-3 as a string; 2.0e-3 as a number
    else:
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if not math.isfinite(number):  # YAML's .nan / .inf, or 1e999
        raise ConfigError(f"{key}: {value!r} is not a finite number")
    return number


# scalar annotation -> (accepts, what the error says it expected)
_SCALARS = {bool: (lambda v: isinstance(v, bool), "true/false"),
            int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
            str: (lambda v: isinstance(v, str), "a string")}


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Checks `value` against the annotation `tp`, converting where lossless."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        return _union(value, tp, key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not one of {list(allowed)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {value!r}")
        return build(tp, value, key)
    if origin in (list, tuple, dict):
        return _container(value, tp, origin, key)
    if tp is float:
        return _float(value, key)
    if tp in _SCALARS:
        ok, expected = _SCALARS[tp]
        if ok(value):
            return value
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")
    raise ConfigError(f"{key}: unsupported config type {tp}")


def build(cls: type, values: dict, prefix: str = "") -> Any:
    """Builds dataclass `cls` from a nested dict, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for k, v in values.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in names:
            raise ConfigError(f"unknown config key '{key}' (known: {', '.join(sorted(names))})")
        kwargs[k] = _convert(v, hints[k], key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{prefix or cls.__name__}: {e}") from e
