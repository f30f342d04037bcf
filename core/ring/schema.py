"""One (de)serializer for the ring's JSON documents, driven by their dataclasses.

The manifest, its records, leases and this site's pins are frozen dataclasses;
their field annotations are the schema. :func:`encode` turns one into plain
JSON values (fields in declaration order, as :func:`dataclasses.asdict` does);
:func:`decode` builds one from JSON read off a shared server, checking every
field against its annotation:

- ``int`` refuses floats and booleans; ``float`` takes ints (as JSON writes
  ``1.0`` as ``1``); ``str``, ``bool``, ``Literal[...]``, ``X | None``,
  ``tuple[X, ...]``, ``list[X]``, ``dict[str, X]`` and nested dataclasses as written;
- a tagged union of dataclasses (``TurnRecord | RingEvent``) picks the first
  class whose ``claims(value)`` says the object is one of its kind;
- a field that is missing (or null) takes its default, and is an error when it
  has none; keys the class does not know are ignored (derived values written
  for people, or fields of a later format);
- then each name listed in the class's ``NAMES`` (``{"site": "site"}``) passes
  :func:`core.ring.names.check_name` (an optional name, None or an empty
  string where that is the default, is left out), and
  the class's own ``check()`` runs, if it has one.

Every refusal is a ``ValueError`` naming the field (``history[3].site``);
callers turn it into their typed error.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from typing import Any, Literal, TypeVar, Union

from .names import check_name

C = TypeVar("C")
_HINTS: dict[type, dict[str, Any]] = {}


def encode(value: Any, tp: Any = Any) -> Any:
    """Plain JSON values of a dataclass (recursively): what ``asdict`` gives, tuples as
    lists, and a number in a ``float`` field as a float (``600`` given for a lease time is
    written ``600.0``, as it reads back: what is hashed or signed has one spelling)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = _hints(type(value))
        return {f.name: encode(getattr(value, f.name), hints.get(f.name, Any)) for f in dataclasses.fields(value)}
    args = typing.get_args(tp)
    if isinstance(value, (tuple, list)):
        return [encode(v, args[0] if args else Any) for v in value]
    if isinstance(value, dict):
        return {k: encode(v, args[1] if len(args) == 2 else Any) for k, v in value.items()}
    if isinstance(value, int) and not isinstance(value, bool) and (tp is float or float in args):
        return float(value)
    return value


def decode(cls: type[C], value: Any, where: str) -> C:
    """A ``cls`` from JSON ``value``, every field checked (see the module docstring)."""
    return _decode(cls, value, where)


def field_types(cls: type) -> dict[str, Any]:
    """Each field's annotation, resolved (the schema of ``cls``)."""
    return _hints(cls)


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        module = sys.modules[cls.__module__]
        _HINTS[cls] = typing.get_type_hints(cls, vars(module))
    return _HINTS[cls]


def _decode(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, value, where)
    if origin in (Union, types.UnionType):
        return _decode_union(args, value, where)
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (tuple, list, dict):
        return _decode_container(origin, args, value, where)
    return _decode_scalar(tp, value, where)


def _decode_union(args: tuple, value: Any, where: str) -> Any:
    if value is None and type(None) in args:
        return None
    options = [a for a in args if a is not type(None)]
    if len(options) == 1:
        return _decode(options[0], value, where)
    for option in options:  # a tagged union of dataclasses
        if isinstance(value, dict) and option.claims(value):
            return _decode(option, value, where)
    raise ValueError(f"{where} is none of {', '.join(o.__name__ for o in options)}")


def _decode_container(origin: Any, args: tuple, value: Any, where: str) -> Any:
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where} is not an object")
        return {_decode(args[0], k, f"{where} key"): _decode(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if not isinstance(value, list):
        raise ValueError(f"{where} is not a list")
    items = [_decode(args[0], v, f"{where}[{n}]") for n, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _decode_scalar(tp: Any, value: Any, where: str) -> Any:
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} has the wrong type (not a number)")
        return float(value)
    if tp in (int, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ValueError(f"{where} has the wrong type (not {tp.__name__})")
        return value
    raise TypeError(f"{where}: the schema has no rule for {tp!r}")  # a programming error


def _decode_dataclass(cls: type, value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise ValueError(f"{where or cls.__name__} is not an object")
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        at = f"{where}.{f.name}" if where else f.name
        raw = value.get(f.name)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if raw is None and has_default:
            continue  # missing, or null: the default
        if f.name not in value:
            raise ValueError(f"{at} missing")
        kwargs[f.name] = _decode(hints[f.name], raw, at)
    obj = cls(**kwargs)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for name, kind in getattr(cls, "NAMES", {}).items():
        v = getattr(obj, name)
        if v is not None and not (v == "" and defaults[name] == ""):  # an optional name left out
            check_name(kind, v, f"{where}.{name}" if where else name)
    check = getattr(obj, "check", None)
    if check is not None:
        check(where or cls.__name__)
    return obj
