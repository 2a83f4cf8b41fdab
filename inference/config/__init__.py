"""detectron2-compatible configuration: YAML with ``_BASE_`` inheritance into an attribute tree.

``get_cfg()`` returns detectron2's defaults (every key a detectron2 v0.6 full config dump holds);
``load_config(path)`` merges a YAML file (and its ``_BASE_`` chain) on top. Unknown keys raise
:class:`ConfigError` naming the full key; values are checked against the default's type.
"""
from __future__ import annotations

import ast
import copy
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

__all__ = ["CfgNode", "ConfigError", "get_cfg", "load_config"]

_DEFAULTS_PATH = Path(__file__).with_name("_defaults.yaml")
BASE_KEY = "_BASE_"


class ConfigError(ValueError):
    """A config file or override that does not fit detectron2's schema."""


class CfgNode(dict):
    """A dict whose keys are also attributes (``cfg.MODEL.ROI_HEADS.NUM_CLASSES``)."""

    def __init__(self, init: dict | None = None):
        super().__init__()
        object.__setattr__(self, "_frozen", False)
        for k, v in (init or {}).items():
            dict.__setitem__(self, k, CfgNode(v) if isinstance(v, dict) else v)

    # attribute access -------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise AttributeError(f"config is frozen; cannot set {name}")
        self[name] = CfgNode(value) if isinstance(value, dict) and not isinstance(value, CfgNode) else value

    def __deepcopy__(self, memo):
        return CfgNode({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def clone(self) -> CfgNode:
        return copy.deepcopy(self)

    def freeze(self) -> CfgNode:
        for v in self.values():
            if isinstance(v, CfgNode):
                v.freeze()
        object.__setattr__(self, "_frozen", True)
        return self

    def defrost(self) -> CfgNode:
        for v in self.values():
            if isinstance(v, CfgNode):
                v.defrost()
        object.__setattr__(self, "_frozen", False)
        return self

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, CfgNode) else copy.deepcopy(v) for k, v in self.items()}

    def dump(self) -> str:
        """The config as YAML text (loadable by detectron2 and by :func:`load_config`)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=True, default_flow_style=None)

    # merging ----------------------------------------------------------------------------------
    def merge_from_dict(self, other: dict, prefix: str = "") -> CfgNode:
        if self._frozen:
            raise AttributeError("config is frozen")
        for k, v in other.items():
            full = f"{prefix}{k}"
            if k not in self:
                raise ConfigError(f"unknown config key: {full}")
            cur = self[k]
            if isinstance(cur, CfgNode):
                if not isinstance(v, dict):
                    raise ConfigError(f"config key {full} is a section; got {type(v).__name__} {v!r}")
                cur.merge_from_dict(v, full + ".")
            else:
                dict.__setitem__(self, k, _check_type(full, cur, v))
        return self

    def merge_from_file(self, path: str | os.PathLike) -> CfgNode:
        return self.merge_from_dict(_load_yaml_with_base(path))

    def merge_from_list(self, pairs: Iterable[str]) -> CfgNode:
        """Merge ``["MODEL.ROI_HEADS.NUM_CLASSES", "6", ...]`` (values parsed as YAML)."""
        pairs = list(pairs)
        if len(pairs) % 2:
            raise ConfigError("override list needs KEY VALUE pairs")
        for key, raw in zip(pairs[0::2], pairs[1::2]):
            value = _parse_value(raw) if isinstance(raw, str) else raw
            node: dict = {}
            cur = node
            parts = key.split(".")
            for p in parts[:-1]:
                cur = cur.setdefault(p, {})
            cur[parts[-1]] = value
            self.merge_from_dict(node)
        return self


def _parse_value(raw: str) -> Any:
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _check_type(key: str, default: Any, value: Any) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) if isinstance(default, float) else (value if isinstance(value, int) or not float(value).is_integer() else int(value))
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return list(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return [value]  # detectron2 accepts a scalar for MIN_SIZE_TRAIN
    raise ConfigError(
        f"config key {key}: expected {type(default).__name__} like {default!r}, got {type(value).__name__} {value!r}"
    )


def _load_yaml_with_base(path: str | os.PathLike, _seen: tuple = ()) -> dict:
    path = os.fspath(path)
    if path in _seen:
        raise ConfigError(f"_BASE_ cycle through {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    bases = base if isinstance(base, list) else [base]
    merged: dict = {}
    for b in bases:
        b = os.path.expanduser(b)
        if b.startswith(("detectron2://", "http://", "https://")):
            raise ConfigError(f"{path}: _BASE_ {b!r} must be a local file")
        if not os.path.isabs(b):
            b = os.path.join(os.path.dirname(path), b)
        _merge_dicts(merged, _load_yaml_with_base(b, _seen + (path,)))
    _merge_dicts(merged, data)
    return merged


def _merge_dicts(a: dict, b: dict) -> None:
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            _merge_dicts(a[k], v)
        else:
            a[k] = copy.deepcopy(v)


_DEFAULTS: CfgNode | None = None


def get_cfg() -> CfgNode:
    """A fresh copy of detectron2's default config."""
    global _DEFAULTS
    if _DEFAULTS is None:
        with open(_DEFAULTS_PATH, encoding="utf-8") as f:
            _DEFAULTS = CfgNode(yaml.safe_load(f))
    return _DEFAULTS.clone()


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> CfgNode:
    """Defaults, then ``path`` (with its ``_BASE_`` chain), then ``KEY VALUE`` overrides."""
    cfg = get_cfg()
    cfg.merge_from_file(path)
    if overrides:
        cfg.merge_from_list(overrides)
    return cfg
