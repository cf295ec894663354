"""Command-line overrides, validation, dict conversion and YAML dumping for dataclass configs.

Env and agent configs are nested ``@dataclass`` trees. :func:`apply_overrides` applies
Hydra-syntax overrides (``env.scene.num_envs=256``) to them with type checking,
:func:`merge_dict` applies a saved config (``params/*.yaml``) the same way, :func:`diff`
lists what differs between two configs, :func:`validate` calls every node's ``validate()``
(range and cross-field rules, written with :class:`FieldChecks`), :func:`to_dict` turns a
config into plain nested containers and :func:`save_yaml` writes that atomically as YAML.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from hydra.errors import HydraException

__all__ = ["ConfigError", "FieldChecks", "apply_overrides", "merge_dict", "diff", "validate", "to_dict",
           "save_yaml"]


class ConfigError(ValueError):
    """A config override or the config built from it is invalid.

    Attributes:
        lines: One line per problem (``key=value: what is valid``), keys relative to the config that raised it
            until :func:`validate` prefixes them with their full dotted path.
    """

    def __init__(self, message: str, lines: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.lines = list(lines)


class FieldChecks:
    """Collects range and cross-field errors of one config node, for its ``validate()``.

    Every check names a field by its dotted path below the node (``"scene.num_envs"``) and adds one line
    ``<key>=<value>: <what is valid>`` when it fails; non-finite numbers fail every numeric check. ``raise_errors``
    raises them all at once as a :class:`ConfigError`.
    """

    def __init__(self, cfg: Any, title: str) -> None:
        self.cfg, self.title, self.lines = cfg, title, []

    def value(self, key: str) -> Any:
        """The value of the field at dotted path ``key`` below the node (raises AttributeError if absent)."""
        obj = self.cfg
        for name in key.split("."):
            obj = getattr(obj, name)
        return obj

    def require(self, ok: bool, key: str, valid: str) -> bool:
        """Add ``key=<its value>: valid`` unless ``ok``; returns ``ok``."""
        if not ok:
            self.lines.append(f"{key}={self.value(key)!r}: {valid}")
        return ok

    def _number(self, key: str) -> float | None:
        v = self.value(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self.lines.append(f"{key}={v!r}: must be a finite number")
            return None
        return v

    def at_least(self, key: str, low: float, why: str = "") -> None:
        """``value >= low``."""
        v = self._number(key)
        if v is not None:
            self.require(v >= low, key, f"must be >= {low}{why}")

    def positive(self, key: str, why: str = "") -> None:
        """``value > 0``."""
        v = self._number(key)
        if v is not None:
            self.require(v > 0, key, f"must be > 0{why}")

    def in_range(self, key: str, low: float, high: float, open_low: bool = False, open_high: bool = False) -> None:
        """``low <= value <= high`` (strict at an open end)."""
        v = self._number(key)
        if v is None:
            return
        ok = (v > low if open_low else v >= low) and (v < high if open_high else v <= high)
        self.require(ok, key, f"must be in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}")

    def range_pair(self, key: str, bound: float | None = None, closed: bool = True, integer: bool = False) -> None:
        """``value`` is a ``(low, high)`` pair of finite numbers (integers with ``integer``) with ``low <= high`` and,
        with ``bound``, ``low >= bound`` (``low > bound`` unless ``closed``)."""
        v = self.value(key)
        kind = int if integer else (int, float)
        if not (isinstance(v, (tuple, list)) and len(v) == 2 and all(
                isinstance(x, kind) and not isinstance(x, bool) and math.isfinite(x) for x in v)):
            self.require(False, key, f"must be a (low, high) pair of {'integers' if integer else 'finite numbers'}")
            return
        low_ok = bound is None or (v[0] >= bound if closed else v[0] > bound)
        lower = "" if bound is None else f"{bound} {'<=' if closed else '<'} "
        self.require(low_ok and v[0] <= v[1], key, f"must be (low, high) with {lower}low <= high")

    def one_of(self, key: str, valid: Sequence[Any]) -> None:
        """``value in valid``."""
        self.require(self.value(key) in valid, key, f"must be one of {', '.join(map(repr, valid))}")

    def raise_errors(self) -> None:
        """Raise a :class:`ConfigError` listing every failed check (no-op when all passed)."""
        if self.lines:
            raise ConfigError(f"Invalid {self.title}: " + "; ".join(self.lines) + ".", self.lines)


def validate(cfgs: dict[str, Any]) -> None:
    """Call ``validate()`` of every dataclass node (that has one) in each root config, parents first.

    Args:
        cfgs: Maps a root name (``"env"``, ``"agent"``) to a dataclass instance.

    Raises:
        ConfigError: listing every problem of every node, one line each, keys with their full dotted path
            (``agent.algorithm.gamma=2.0: must be in [0.0, 1.0]``).
    """
    lines: list[str] = []
    for root, cfg in cfgs.items():
        lines += _validate_node(cfg, root)
    if lines:
        raise ConfigError("invalid config:\n" + "\n".join(f"  - {ln}" for ln in lines), lines)


def _validate_node(obj: Any, path: str) -> list[str]:
    lines = []
    check = getattr(obj, "validate", None)
    if callable(check):
        try:
            check()
        except ConfigError as err:
            lines += [f"{path}.{ln}" for ln in err.lines] or [f"{path}: {err}"]
    for name in _field_names(obj):
        child = getattr(obj, name)
        if dataclasses.is_dataclass(child) and not isinstance(child, type):
            lines += _validate_node(child, f"{path}.{name}")
    return lines


class _Mismatch(Exception):
    """Internal: a value does not fit a type annotation."""


@dataclasses.dataclass
class _Leaf:
    value: Any


def apply_overrides(cfgs: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply Hydra-syntax ``key=value`` overrides to dataclass configs.

    Values are typed by Hydra's override grammar (ints, floats, bools, ``null``, lists,
    dicts, quoted strings) and then checked against the field annotations. Allowed
    conversions: int -> float, list -> tuple (length- and element-checked), ``null`` only
    for Optional fields, Literal values only from the allowed set. An unquoted number or
    bool given to a ``str`` field is kept as its literal text. Later overrides of the
    same key win.

    Args:
        cfgs: Maps a root name (e.g. ``"env"``, ``"agent"``) to a dataclass instance.
        overrides: Strings such as ``"env.scene.num_envs=256"``.

    Returns:
        A new dict with the same roots, each a deep copy of the input config with the
        overrides applied. Changed nodes are rebuilt via :func:`dataclasses.replace`, so
        their ``__post_init__`` runs. The inputs are not modified.

    Raises:
        ConfigError: Before anything is built, listing every bad override at once: parse
            errors, non-plain overrides (``+key``, ``++key``, ``~key``, ``key@pkg``,
            sweeps), unknown roots, unknown keys (with close-match suggestions), a whole
            nested config overridden with a value, or a value of the wrong type. Also
            raised if a rebuilt dataclass's ``__post_init__`` rejects the result.
    """
    parser = OverridesParser.create()
    errors: list[str] = []
    changes: dict[str, dict] = {}  # root -> nested {field: subtree | _Leaf}
    for text in overrides:
        try:
            (ov,) = parser.parse_overrides([text])
        except HydraException as e:
            lines = str(e).splitlines()[1:]
            detail = "; ".join(ln for ln in lines if ln and not ln.startswith("See "))
            errors.append(f"cannot parse {text!r}: {detail}")
            continue
        if ov.type != OverrideType.CHANGE or ov.package is not None or ov.is_sweep_override():
            errors.append(f"{text!r}: only plain 'key=value' overrides are supported "
                          "(no +key, ++key, ~key, key@package or sweeps)")
            continue
        try:
            path, value = _resolve(cfgs, ov.key_or_group, ov.value(), text.split("=", 1)[1].strip())
        except ConfigError as e:
            errors.append(str(e))
            continue
        node = changes.setdefault(path[0], {})
        for name in path[1:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = _Leaf(value)
    if errors:
        raise ConfigError("invalid config overrides:\n" + "\n".join(f"  - {e}" for e in errors))
    out = {}
    for root, cfg in cfgs.items():
        out[root] = _rebuild(copy.deepcopy(cfg), changes.get(root, {}), root)
    return out


def merge_dict(cfg: Any, data: Mapping, root: str) -> Any:
    """A copy of the dataclass ``cfg`` with the values of ``data`` (nested dicts, e.g. a saved ``params/*.yaml``).

    Values are checked against the field annotations as :func:`apply_overrides` checks them (lists become tuples
    where the field is a tuple); fields missing from ``data`` keep their value in ``cfg``.

    Raises:
        ConfigError: naming every unknown key and every value of the wrong type (keys prefixed with ``root``).
    """
    errors: list[str] = []
    changes = _dict_changes(cfg, data, root, errors)
    if errors:
        raise ConfigError(f"invalid saved config {root}:\n" + "\n".join(f"  - {e}" for e in errors), errors)
    return _rebuild(copy.deepcopy(cfg), changes, root)


def _dict_changes(obj: Any, data: Mapping, path: str, errors: list[str]) -> dict:
    changes: dict = {}
    hints = typing.get_type_hints(type(obj))
    names = _field_names(obj)
    for name, value in data.items():
        key = f"{path}.{name}"
        if name not in names:
            errors.append(f"{key}: unknown key; valid keys under {path}: {', '.join(names)}")
            continue
        child = getattr(obj, name)
        if dataclasses.is_dataclass(child) and isinstance(value, Mapping):
            changes[name] = _dict_changes(child, value, key, errors)
            continue
        try:
            changes[name] = _Leaf(_convert(value, hints[name]))
        except _Mismatch:
            errors.append(f"{key}: expected {_type_name(hints[name])}, got {value!r}")
    return changes


def diff(old: Any, new: Any, path: str) -> list[str]:
    """``"<key>: <old> -> <new>"`` for every leaf field that differs between two configs of the same type."""
    lines = []
    for name in _field_names(new):
        a, b = getattr(old, name, None), getattr(new, name)
        if dataclasses.is_dataclass(b) and dataclasses.is_dataclass(a):
            lines += diff(a, b, f"{path}.{name}")
        elif _plain(a) != _plain(b):
            lines.append(f"{path}.{name}: {_plain(a)!r} -> {_plain(b)!r}")
    return lines


def _resolve(cfgs: dict[str, Any], key: str, value: Any, raw: str) -> tuple[list[str], Any]:
    """Check one override; return its key path and the converted value."""
    parts = key.split(".")
    if parts[0] not in cfgs:
        roots = ", ".join(sorted(cfgs))
        raise ConfigError(f"{key!r}: unknown root {parts[0]!r}; valid roots: {roots}")
    if len(parts) == 1:
        raise ConfigError(f"{key!r}: cannot replace a whole root config; override its fields")
    obj = cfgs[parts[0]]
    for i, name in enumerate(parts[1:], start=1):
        names = _field_names(obj) if dataclasses.is_dataclass(obj) else []
        if name not in names:
            valid = sorted(_dotted_keys(cfgs[parts[0]], parts[0]))
            close = difflib.get_close_matches(key, valid, n=3, cutoff=0.8)
            where = ".".join(parts[:i])
            hint = (f"did you mean {', '.join(close)}?" if close else
                    f"valid keys under {where}: {', '.join(names)}" if names else
                    f"{where} is not a nested config")
            raise ConfigError(f"{key!r}: unknown key; {hint}")
        hint_type = typing.get_type_hints(type(obj))[name]
        obj = getattr(obj, name)
    if dataclasses.is_dataclass(obj):
        raise ConfigError(f"{key!r} is a nested config ({type(obj).__name__}); override its fields "
                          f"instead, e.g. {key}.{_field_names(obj)[0]}=...")
    try:
        return parts, _convert(value, hint_type)
    except _Mismatch:
        if isinstance(value, (int, float)) and str in (hint_type, *typing.get_args(hint_type)):
            return parts, raw  # unquoted name=2024 / name=true for a str field: keep the text
        raise ConfigError(f"{key!r}: expected {_type_name(hint_type)}, got {value!r} "
                          f"({type(value).__name__})") from None


def _convert(value: Any, tp: Any) -> Any:
    """Return ``value`` converted to annotation ``tp``; raise _Mismatch if it does not fit."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise _Mismatch
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg)
            except _Mismatch:
                pass
        raise _Mismatch
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _Mismatch
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise _Mismatch
    if origin in (list, tuple) and isinstance(value, list):
        if origin is list:
            return [_convert(v, args[0]) for v in value] if args else list(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0]) for v in value)
        if args and len(args) != len(value):
            raise _Mismatch
        return tuple(_convert(v, a) for v, a in zip(value, args)) if args else tuple(value)
    if origin is dict and isinstance(value, dict):
        if not args:
            return dict(value)
        return {_convert(k, args[0]): _convert(v, args[1]) for k, v in value.items()}
    if origin is None and isinstance(tp, type) and not dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
    raise _Mismatch


def _rebuild(obj: Any, changes: dict, path: str) -> Any:
    """Return ``obj`` with ``changes`` applied, re-creating changed dataclasses."""
    if not changes:
        return obj
    updates = {}
    for name, ch in changes.items():
        sub = f"{path}.{name}"
        updates[name] = ch.value if isinstance(ch, _Leaf) else _rebuild(getattr(obj, name), ch, sub)
    try:
        return dataclasses.replace(obj, **updates)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path} ({type(obj).__name__}) rejected the overrides: {e}") from e


def _field_names(obj: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(obj) if f.init]


def _dotted_keys(obj: Any, prefix: str) -> list[str]:
    """All dotted keys (intermediate and leaf) below the dataclass instance ``obj``."""
    keys = []
    for name in _field_names(obj):
        keys.append(f"{prefix}.{name}")
        child = getattr(obj, name)
        if dataclasses.is_dataclass(child):
            keys.extend(_dotted_keys(child, f"{prefix}.{name}"))
    return keys


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    return str(tp).replace("typing.", "")


def to_dict(cfg: Any) -> dict:
    """Convert a dataclass config into plain nested dicts and lists.

    Args:
        cfg: A dataclass instance (or a mapping of them / of plain values).

    Returns:
        A new dict: dataclasses become dicts (all fields, in declaration order), tuples
        and lists become lists; other leaves are returned as they are.

    Raises:
        TypeError: If ``cfg`` is neither a dataclass instance nor a mapping.
    """
    is_instance = dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)
    if not is_instance and not isinstance(cfg, Mapping):
        raise TypeError(f"expected a dataclass instance or mapping, got {type(cfg).__name__}")
    return _plain(cfg)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def save_yaml(cfg: Any, path: str | os.PathLike) -> None:
    """Write ``to_dict(cfg)`` as YAML to ``path`` atomically.

    The text is written to ``path + ".tmp"`` in the same directory (created if missing)
    and then moved over ``path`` with :func:`os.replace`, so readers never see a partial
    file.

    Args:
        cfg: A dataclass instance or a mapping (see :func:`to_dict`).
        path: Destination file.

    Raises:
        TypeError: If ``cfg`` is not a dataclass instance or mapping.
        yaml.representer.RepresenterError: If a leaf value is not YAML-serialisable
            (nothing is written then).
        OSError: If the file cannot be written (the ``.tmp`` file is removed).
    """
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
