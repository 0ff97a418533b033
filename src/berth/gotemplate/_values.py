"""How Python values stand in for Go values.

The data handed to a template is what Go would get from decoding JSON into
``interface{}``: dict is ``map[string]interface {}``, list is ``[]interface {}``,
str, int, float and bool are themselves, and None is a nil ``interface{}``.
Any other Python object plays a Go struct pointer: attributes are fields,
methods are methods.

Go's reflect has one more state that Python lacks: the *invalid* value, e.g.
the result of looking up a missing map key. ``MISSING`` stands for it. It
prints as ``<no value>``; passed to a function it becomes None.
"""

from __future__ import annotations

from types import BuiltinMethodType, MethodType
from typing import Any


class _Missing:
    """The invalid reflect.Value: 'no value at all' (e.g. a missing map key)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

METHOD_TYPES = (MethodType, BuiltinMethodType)


def is_plain_object(value: Any) -> bool:
    """True for values that play a Go struct (attribute lookup applies)."""
    return not isinstance(value, (str, int, float, list, tuple, dict, _Missing)) and value is not None


def go_type_name(value: Any) -> str:
    """The Go type name of a value, as shown in Go's error messages and %T."""
    if value is None or value is MISSING:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if callable(value):
        return "func"
    return "*" + type(value).__name__


def is_true(value: Any) -> bool:
    """Go template truth: the zero value of any type is false, structs are true."""
    if value is None or value is MISSING:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True
