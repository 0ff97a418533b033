"""Docker's ``.dockerignore`` patterns (moby/patternmatcher and its ``ignorefile``). Pure.

Shared by the two sides, as upstream: the CLI (``berth build`` leaves ignored files out of
the context it sends, as the docker CLI does) and the builder (``berth.builder.dockerignore``
applies the same rules to a context it receives).

- ``read_patterns(text)``: one pattern a line; a line starting with ``#`` is a comment;
  blanks trimmed; ``!`` makes an exception; each pattern is cleaned (``filepath.Clean``) and
  a leading ``/`` dropped (patterns are relative to the context root).
- ``PatternMatcher.matches(path)``: patterns in order, the last that matches wins; a pattern
  that matches a parent directory matches what is under it; ``*`` and ``?`` do not cross
  ``/``, ``**`` matches any number of directories (also none), ``[...]`` is a class,
  ``\\`` escapes.
"""

from __future__ import annotations

import posixpath
import re


def clean(path: str) -> str:
    """Go's ``filepath.Clean`` for slash paths."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def read_patterns(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff")
    patterns = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


class PatternError(ValueError):
    pass


class Pattern:
    __slots__ = ("text", "exclusion", "regex", "dirs")

    def __init__(self, text: str):
        self.exclusion = text.startswith("!")
        if self.exclusion:
            text = text[1:]
            if not text:
                raise PatternError('illegal exclusion pattern: "!"')
        self.text = clean(text)
        self.dirs = self.text.split("/")
        self.regex = _compile(self.text)

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                if i >= n:
                    if out == ["^"]:
                        return re.compile(r"^.*$", re.S)
                    out.append(".*")
                else:
                    out.append("(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(r"\\")
        elif ch == "[":
            end = pattern.find("]", i + 1 if i < n and pattern[i] in "!^" else i)
            if end < 0:
                raise PatternError("syntax error in pattern")
            body = pattern[i:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
    out.append("$")
    try:
        return re.compile("".join(out), re.S)
    except re.error as exc:
        raise PatternError(f"syntax error in pattern: {exc}") from None


class PatternMatcher:
    def __init__(self, patterns: list[str]):
        self.patterns = [Pattern(p) for p in patterns if p and p != "!"]

    @property
    def exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """Is ``path`` (slash-separated, relative to the root) excluded? Docker's
        MatchesOrParentMatches."""
        path = clean(path)
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit and parents:
                for i in range(len(parents)):
                    if pattern.match("/".join(parents[:i + 1])):
                        hit = True
                        break
            if hit:
                matched = not pattern.exclusion
        return matched

    def may_include_below(self, directory: str) -> bool:
        """Could an exception pattern bring back something under an excluded ``directory``
        (so a walk must go in)?"""
        prefix = clean(directory) + "/"
        for pattern in self.patterns:
            if pattern.exclusion and (pattern.text + "/").startswith(prefix):
                return True
            if pattern.exclusion and ("*" in pattern.text or "?" in pattern.text or "[" in pattern.text):
                return True
        return False
