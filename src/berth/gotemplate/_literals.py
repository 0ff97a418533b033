"""Go literal syntax: string, character and number constants.

These follow strconv.Unquote, strconv.UnquoteChar and the number rules of
text/template/parse (newNumber). Errors raise ValueError with Go's text.
"""

from __future__ import annotations

from ._gofmt import quote
from ._nodes import NumberNode

_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}
_HEX_LENGTHS = {"x": 2, "u": 4, "U": 8}
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1


def _unquote_one(body: str, i: int, quote_char: str, out: bytearray) -> int:
    """Decode one character or escape of body at i into out; returns the next index."""
    ch = body[i]
    if ch != "\\":
        if ch == quote_char or ch == "\n":
            raise ValueError("invalid syntax")
        out += ch.encode("utf-8", "surrogatepass")
        return i + 1
    if i + 1 >= len(body):
        raise ValueError("invalid syntax")
    esc = body[i + 1]
    if esc in _SIMPLE_ESCAPES:
        out.append(_SIMPLE_ESCAPES[esc])
        return i + 2
    if esc == quote_char and esc in "'\"":
        out.append(ord(esc))
        return i + 2
    if esc in _HEX_LENGTHS:
        digits = body[i + 2:i + 2 + _HEX_LENGTHS[esc]]
        if len(digits) != _HEX_LENGTHS[esc] or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise ValueError("invalid syntax")
        value = int(digits, 16)
        if esc == "x":
            out.append(value)  # a raw byte, not a character
        else:
            if value > 0x10FFFF or 0xD800 <= value < 0xE000:
                raise ValueError("invalid syntax")
            out += chr(value).encode("utf-8")
        return i + 2 + len(digits)
    if esc in "01234567":
        digits = body[i + 1:i + 4]
        if len(digits) != 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
            raise ValueError("invalid syntax")
        out.append(int(digits, 8))
        return i + 4
    raise ValueError("invalid syntax")


def unquote_string(quoted: str) -> str:
    """strconv.Unquote of a "..." or `...` literal."""
    if quoted.startswith("`"):
        if len(quoted) < 2 or not quoted.endswith("`") or "`" in quoted[1:-1]:
            raise ValueError("invalid syntax")
        return quoted[1:-1].replace("\r", "")
    if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
        raise ValueError("invalid syntax")
    body = quoted[1:-1]
    if "\\" not in body and '"' not in body and "\n" not in body:
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        i = _unquote_one(body, i, '"', out)
    return out.decode("utf-8", "replace")


def unquote_char(text: str) -> int:
    """The code point of a character constant such as 'a' or '\\n'."""
    body = text[1:]
    out = bytearray()
    try:
        end = _unquote_one(body, 0, "'", out)
    except (ValueError, IndexError):
        raise ValueError("invalid syntax") from None
    if body[end:] != "'":
        raise ValueError(f"malformed character constant: {text}")
    if body[0] == "\\" and body[1] in "x01234567":
        return out[0]
    return ord(out.decode("utf-8", "surrogatepass"))


def _parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, ...) without the range check; None if not an integer."""
    sign = 1
    body = text
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if not body or body[0] == "_" or body[-1] == "_":
        return None
    try:
        if len(body) > 1 and body[0] == "0" and body[1] in "01234567_":
            return sign * int(body[1:].lstrip("_"), 8) if all(c in "01234567_" for c in body) else None
        return sign * int(body, 0)
    except ValueError:
        return None


def _parse_float(text: str) -> float | None:
    body = text.lstrip("+-")
    try:
        if body[:2] in ("0x", "0X"):
            value = float.fromhex(body.replace("_", ""))
        else:
            if any(c not in "0123456789._eE+-" for c in body):
                return None
            value = float(body)
    except ValueError:
        return None
    return -value if text.startswith("-") else value


def make_number(pos: int, text: str, is_char: bool) -> NumberNode:
    """Read a number literal every way Go does; ValueError if none works."""
    node = NumberNode(pos, text)
    if is_char:
        code = unquote_char(text)
        node.int_value, node.float_value, node.ideal = code, float(code), code
        return node
    if text.endswith("i"):
        raise ValueError(f"complex numbers are not supported: {quote(text)}")
    as_int = _parse_int(text)
    fits_uint = as_int is not None and 0 <= as_int <= _UINT64_MAX and not text.startswith(("+", "-"))
    if as_int is not None and _INT64_MIN <= as_int <= _INT64_MAX:
        node.int_value = as_int
        node.float_value = float(as_int)
    elif as_int is not None and fits_uint:  # a uint64: usable only as a float
        node.float_value = float(as_int)
    else:
        value = _parse_float(text)
        if value is not None:
            if not any(c in text for c in ".eEpP"):
                raise ValueError(f"integer overflow: {quote(text)}")
            node.float_value = value
            if value.is_integer() and _INT64_MIN <= value <= _INT64_MAX:
                node.int_value = int(value)  # 2.0 may be passed where an int is wanted
    if node.int_value is None and node.float_value is None:
        raise ValueError(f"illegal number syntax: {quote(text)}")
    _set_ideal(node, fits_uint)
    return node


def _set_ideal(node: NumberNode, fits_uint: bool) -> None:
    """The value a number has where no type is asked for (Go's idealConstant)."""
    text = node.text
    is_hex_int = text[:2] in ("0x", "0X") and not any(c in text for c in "pP")
    if node.float_value is not None and not is_hex_int and any(c in text for c in ".eEpP"):
        node.ideal = node.float_value
    elif node.int_value is not None:
        node.ideal = node.int_value
    elif fits_uint:
        node.ideal_error = f"{text} overflows int"
