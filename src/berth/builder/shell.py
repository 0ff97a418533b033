"""Docker's shell-word lexer for Dockerfiles (BuildKit's ``frontend/dockerfile/shell``): the
expansion of ``$VAR`` and ``${VAR...}`` in instruction arguments, with quote removal. Pure.

Rules (as Docker's):

- ``'...'`` is literal; ``"..."`` expands variables, and there the escape token only escapes
  ``"``, ``$``, the escape token itself (and a newline); elsewhere it is kept;
- outside quotes the escape token escapes the next character (and is removed);
- ``$NAME`` (letters, digits, ``_``), ``${NAME}``, ``${NAME:-word}`` / ``${NAME-word}``
  (default when unset-or-empty / unset), ``${NAME:+word}`` / ``${NAME+word}`` (alternative),
  ``${NAME:?msg}`` / ``${NAME?msg}`` (error), ``${NAME#pat}``, ``${NAME##pat}``,
  ``${NAME%pat}``, ``${NAME%%pat}`` (prefix/suffix removal with ``*`` and ``?`` globs),
  ``${NAME/pat/repl}`` and ``${NAME//pat/repl}``; a ``$`` followed by anything else is
  literal.

``process_word`` gives one string; ``process_words`` splits on unquoted blanks (after
expansion of what is quoted, before splitting of what is not, as Docker does).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Mapping

from berth.errors import InvalidParameter


class ShellError(InvalidParameter):
    pass


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class _Scanner:
    def __init__(self, word: str, env: Mapping[str, str], escape: str, skip_unset: bool):
        self.word = word
        self.pos = 0
        self.env = env
        self.escape = escape
        self.skip_unset = skip_unset
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.word[index] if index < len(self.word) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    # -- words -----------------------------------------------------------------------------
    def words(self, split: bool) -> list[str]:
        """Expanded words (quote removal done). Without ``split`` one word."""
        out: list[str] = []
        current: list[str] = []
        started = False
        while self.pos < len(self.word):
            ch = self.peek()
            if split and ch in " \t\n\r" :
                self.next()
                if started:
                    out.append("".join(current))
                    current, started = [], False
                continue
            started = True
            if ch == "'":
                current.append(self.single_quoted())
            elif ch == '"':
                current.append(self.double_quoted())
            elif ch == "$":
                value = self.dollar()
                if split:
                    # an unquoted expansion is split on blanks (as the shell does)
                    parts = re.split(r"[ \t\n]+", value)
                    if len(parts) > 1:
                        current.append(parts[0])
                        for part in parts[1:]:
                            out.append("".join(current))
                            current = [part]
                        continue
                current.append(value)
            elif ch == self.escape:
                self.next()
                escaped = self.next()
                if escaped:
                    current.append(escaped)
            else:
                current.append(self.next())
        if started:
            out.append("".join(current))
        return out

    def single_quoted(self) -> str:
        self.next()  # the quote
        result: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise ShellError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(result)
            result.append(ch)

    def double_quoted(self) -> str:
        self.next()
        result: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise ShellError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(result)
            if ch == "$":
                result.append(self.dollar())
            elif ch == self.escape:
                following = self.peek(1)
                self.next()
                if following in ('"', "$", self.escape):
                    result.append(self.next())
                elif following == "\n":
                    self.next()
                else:
                    result.append(ch)
            else:
                result.append(self.next())

    # -- expansion -------------------------------------------------------------------------
    def lookup(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            self.unmatched.add(name)
        else:
            self.matched.add(name)
        return value

    def dollar(self) -> str:
        self.next()  # $
        ch = self.peek()
        if ch != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None and self.skip_unset:
                return "$" + name
            return value or ""
        self.next()  # {
        start = self.pos
        name = self.name()
        if not name:
            raise ShellError(f"bad substitution: ${{{self.word[start:]}")
        ch = self.peek()
        if ch == "}":
            self.next()
            value = self.lookup(name)
            if value is None and self.skip_unset:
                return "${" + name + "}"
            return value or ""
        if not ch:
            raise ShellError("missing '}'")
        colon = False
        if ch == ":":
            colon = True
            self.next()
            ch = self.peek()
            if ch not in ("-", "+", "?"):
                raise ShellError(f"unsupported modifier (:{ch}) in substitution")
        self.next()  # the modifier
        if ch in ("#", "%"):
            longest = self.peek() == ch
            if longest:
                self.next()
            pattern = self.sub_word("}")
            value = self.lookup(name) or ""
            return _trim(value, pattern, prefix=ch == "#", longest=longest)
        if ch == "/":
            replace_all = self.peek() == "/"
            if replace_all:
                self.next()
            pattern = self.sub_word("/}")
            replacement = ""
            if self.word[self.pos - 1] == "/":
                replacement = self.sub_word("}")
            value = self.lookup(name) or ""
            return _replace(value, pattern, replacement, replace_all)
        if ch not in ("-", "+", "?"):
            raise ShellError(f"unsupported modifier ({ch}) in substitution")
        word = self.sub_word("}")
        value = self.lookup(name)
        is_set = value is not None and (value != "" or not colon)
        if ch == "-":
            return value if is_set else word  # type: ignore[return-value]
        if ch == "+":
            return word if is_set else ""
        if not is_set:
            message = word or "is not allowed to be unset"
            raise ShellError(f"{name}: {message}")
        return value or ""

    def name(self) -> str:
        start = self.pos
        while self.peek() and _is_name_char(self.peek()):
            self.next()
        return self.word[start:self.pos]

    def sub_word(self, stops: str) -> str:
        """The word inside ``${...}`` up to one of ``stops`` (consumed), expanded."""
        result: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise ShellError("missing '}'")
            if ch in stops:
                self.next()
                return "".join(result)
            if ch == "'":
                result.append(self.single_quoted())
            elif ch == '"':
                result.append(self.double_quoted())
            elif ch == "$":
                result.append(self.dollar())
            elif ch == self.escape:
                self.next()
                result.append(self.next())
            else:
                result.append(self.next())


def _glob_regex(pattern: str) -> str:
    return fnmatch.translate(pattern)[4:-3]  # strip (?s: ... )\Z


def _trim(value: str, pattern: str, prefix: bool, longest: bool) -> str:
    regex = re.compile("(?s:" + _glob_regex(pattern) + ")")
    lengths = range(len(value), -1, -1) if longest else range(0, len(value) + 1)
    for n in lengths:
        part = value[:n] if prefix else value[len(value) - n:]
        if regex.fullmatch(part):
            return value[n:] if prefix else value[:len(value) - n]
    return value


def _replace(value: str, pattern: str, replacement: str, replace_all: bool) -> str:
    if not pattern:
        return value
    regex = re.compile("(?s:" + _glob_regex(pattern) + ")")
    return regex.sub(lambda _m: replacement, value, count=0 if replace_all else 1)


class Lexer:
    """One Dockerfile's lexer (its escape token: ``\\`` or the directive's backtick)."""

    def __init__(self, escape: str = "\\"):
        self.escape = escape

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        words = self._scan(word, env, split=False)
        return words[0] if words else ""

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        return self._scan(word, env, split=True)

    def process_word_matches(self, word: str, env: Mapping[str, str]) -> tuple[str, set[str]]:
        """The word and the names it used that were set (for build-arg accounting)."""
        scanner = _Scanner(word, env, self.escape, False)
        try:
            words = scanner.words(split=False)
        except ShellError as exc:
            raise ShellError(f'failed to process "{word}": {exc.message}') from None
        return (words[0] if words else ""), scanner.matched

    def _scan(self, word: str, env: Mapping[str, str], split: bool) -> list[str]:
        try:
            return _Scanner(word, env, self.escape, False).words(split)
        except ShellError as exc:
            raise ShellError(f'failed to process "{word}": {exc.message}') from None


def env_map(env_list: list[str] | None) -> dict[str, str]:
    """``["A=b", ...]`` (a config's Env) as a dict; the last one wins."""
    out: dict[str, str] = {}
    for item in env_list or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out
