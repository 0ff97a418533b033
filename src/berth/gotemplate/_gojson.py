"""Go's encoding/json output, as docker's ``json`` template function makes it.

Compact, no trailing newline, and no HTML escaping: the docker CLI turns
that off (``enc.SetEscapeHTML(false)``), so ``<``, ``>`` and ``&`` stay as
they are. Dicts keep their insertion order, which for data decoded from the
Engine API is the order the daemon sent.
"""

from __future__ import annotations

from typing import Any

from ._gofmt import format_float, json_float
from ._values import MISSING, METHOD_TYPES

_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update({
    ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
    ord("\b"): "\\b", ord("\f"): "\\f", 0x2028: "\\u2028", 0x2029: "\\u2029",
})


class UnsupportedValue(ValueError):
    pass


def _string(s: str) -> str:
    text = s.translate(_ESCAPES)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: Go writes U+FFFD
            text = "".join("\\ufffd" if 0xD800 <= ord(c) < 0xE000 else c for c in text)
    return '"' + text + '"'


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_string(value))
    elif value is None or value is MISSING:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise UnsupportedValue(f"json: unsupported value: {format_float(value, 'g')}")
        out.append(json_float(value))
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, dict):
        _encode_object(((str(k), v) for k, v in value.items()), out)
    elif isinstance(value, METHOD_TYPES) or callable(value):
        raise UnsupportedValue(f"json: unsupported type: {type(value).__name__}")
    else:  # a plain object: its public attributes, like a Go struct's exported fields
        fields = getattr(value, "__dict__", {})
        _encode_object(((k, v) for k, v in fields.items() if not k.startswith("_")), out)


def _encode_object(items: Any, out: list[str]) -> None:
    out.append("{")
    for i, (key, item) in enumerate(items):
        if i:
            out.append(",")
        out.append(_string(key))
        out.append(":")
        _encode(item, out)
    out.append("}")


def to_json(value: Any) -> str:
    """JSON text for value; raises UnsupportedValue (e.g. NaN) like Go."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)
