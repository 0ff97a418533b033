"""Docker's shell-word expansion (berth.builder.shell)."""

from __future__ import annotations

import pytest

from berth.builder.shell import Lexer, ShellError, env_map

ENV = {"A": "1", "EMPTY": "", "PATHV": "/usr/local/bin", "SP": "a b"}


@pytest.mark.parametrize("word, expected", [
    ("$A", "1"), ("${A}", "1"), ("x${A}y", "x1y"), ("$NOPE", ""),
    ("${NOPE:-def}", "def"), ("${EMPTY:-def}", "def"), ("${EMPTY-def}", ""), ("${NOPE-def}", "def"),
    ("${A:+alt}", "alt"), ("${NOPE:+alt}", ""), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"),
    ("${NOPE:-$A}", "1"), ("${NOPE:-${A}x}", "1x"),
    ("'$A'", "$A"), ('"$A"', "1"), ('"\\$A"', "$A"), ("\\$A", "$A"), ("a\\ b", "a b"),
    ('"a\\b"', "a\\b"), ("$", "$"), ("x$", "x$"), ("$-", "$-"), ("a'b c'd", "ab cd"),
    ("${PATHV#*/}", "usr/local/bin"), ("${PATHV##*/}", "bin"), ("${PATHV%/*}", "/usr/local"),
    ("${PATHV%%/l*}", "/usr"), ("${PATHV/local/opt}", "/usr/opt/bin"), ("${SP// /_}", "a_b"),
])
def test_process_word(word, expected):
    assert Lexer().process_word(word, ENV) == expected


def test_backtick_escape():
    lexer = Lexer("`")
    assert lexer.process_word("a`$A", ENV) == "a$A"
    assert lexer.process_word("c:\\dir", ENV) == "c:\\dir"


def test_process_words_splits_unquoted_blanks():
    assert Lexer().process_words('a "b c" $SP d', ENV) == ["a", "b c", "a", "b", "d"]


@pytest.mark.parametrize("word, message", [
    ("${NOPE:?must be set}", 'failed to process "${NOPE:?must be set}": NOPE: must be set'),
    ("${EMPTY?}", None),
    ("${NOPE?}", 'failed to process "${NOPE?}": NOPE: is not allowed to be unset'),
    ("${A", 'failed to process "${A": missing \'}\''),
    ("${A:x}", 'failed to process "${A:x}": unsupported modifier (:x) in substitution'),
    ("'open", "failed to process \"'open\": unexpected end of statement while looking for matching single-quote"),
])
def test_errors(word, message):
    if message is None:
        assert Lexer().process_word(word, ENV) == ""
        return
    with pytest.raises(ShellError) as caught:
        Lexer().process_word(word, ENV)
    assert caught.value.message == message


def test_matches_report_which_names_were_used():
    word, used = Lexer().process_word_matches("$A-${NOPE:-x}", ENV)
    assert word == "1-x" and used == {"A"}


def test_env_map_last_wins():
    assert env_map(["A=1", "B=x=y", "A=2"]) == {"A": "2", "B": "x=y"}
