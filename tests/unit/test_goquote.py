"""berth.goquote: Go's strconv quoting, the one implementation engine, CLI and templates use."""

import pytest

from berth.goquote import can_backquote, quote, quote_rune


@pytest.mark.parametrize("text, quoted", [
    ("plain", '"plain"'),
    ('a "b" \\c', '"a \\"b\\" \\\\c"'),
    ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
    ("\x00\x01\x1f\x7f", '"\\x00\\x01\\x1f\\x7f"'),    # Go: \x, not JSON's \u00XX
    ("héllo ☃ \U0001F600", '"héllo ☃ \U0001F600"'),     # printable non-ASCII stays
    ("\u00a0\u2028\u200b\ufeff", '"\\u00a0\\u2028\\u200b\\ufeff"'),  # not IsPrint
    ("\U000E0001", '"\\U000e0001"'),
    ("\ufffd", '"\ufffd"'),
    ("\udcff", '"\\ufffd"'),
])
def test_quote_matches_go(text, quoted):
    assert quote(text) == quoted


def test_quote_to_ascii_and_runes():
    assert quote("héllo", ascii_only=True) == '"h\\u00e9llo"'
    assert quote_rune(ord("'")) == "'\\''" and quote_rune(0x263A) == "'☺'"
    assert quote_rune(0xD800) == "'\ufffd'"
    assert can_backquote("a\tb") and not can_backquote("a`b") and not can_backquote("a\nb")
