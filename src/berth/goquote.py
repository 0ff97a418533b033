"""Go's strconv quoting (Quote, QuoteToASCII, QuoteRune, CanBackquote). Pure functions.

The one implementation for everything that writes a Go ``%q``: error texts of the engine
(``invalid option: "x"``), the CLI's COMMAND column and logrus lines, and the template
engine's ``printf "%q"``.
"""

from __future__ import annotations

_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                  "\v": "\\v"}


def _escape(ch: str, quote_char: str, ascii_only: bool) -> str:
    if ch == quote_char or ch == "\\":
        return "\\" + ch
    code = ord(ch)
    if ch.isprintable() and (code < 0x80 or not ascii_only) and not 0xD800 <= code < 0xE000:
        return ch
    short = _SHORT_ESCAPES.get(ch)
    if short:
        return short
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xD800 <= code < 0xE000:  # lone surrogate: not valid UTF-8 in Go
        return "\\ufffd"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote (or QuoteToASCII): a double-quoted Go string literal."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    return '"' + "".join(_escape(ch, '"', ascii_only) for ch in s) + '"'


def quote_rune(code: int, ascii_only: bool = False) -> str:
    """strconv.QuoteRune: a single-quoted Go character literal."""
    if code > 0x10FFFF or 0xD800 <= code < 0xE000 or code < 0:
        code = 0xFFFD
    return "'" + _escape(chr(code), "'", ascii_only) + "'"


def can_backquote(s: str) -> bool:
    """strconv.CanBackquote: s fits in a raw `...` literal unchanged."""
    return all(
        ch == "\t" or (ch >= " " and ch not in "`\x7f\ufeff" and not 0xD800 <= ord(ch) < 0xE000)
        for ch in s
    )
