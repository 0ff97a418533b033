"""``--env-file`` and ``--label-file``: docker's kvfile format.

One ``KEY=value`` per line (the value is taken verbatim, quotes included); blank lines and
lines starting with ``#`` are skipped; a bare ``KEY`` takes the local environment's value
(env files only) or is dropped.
"""

from __future__ import annotations

import os
from typing import Callable

Lookup = Callable[[str], "str | None"]


def parse_lines(text: bytes, lookup: Lookup | None) -> list[str]:
    """Raises ValueError with docker's message (without the file name)."""
    out: list[str] = []
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        raw = raw.removesuffix(b"\r")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"invalid utf8 bytes at line {number}: {list(raw)}") from None
        if number == 1:
            line = line.removeprefix("\ufeff")
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, _ = line.partition("=")
        if not key:
            raise ValueError(f"no variable name on line '{line}'")
        if " " in key or "\t" in key:
            raise ValueError(f"variable '{key}' contains whitespaces")
        if sep:
            out.append(line)
        elif lookup is not None:
            value = lookup(line)
            if value is not None:
                out.append(f"{key}={value}")
    return out


def parse_file(path: str, lookup: Lookup | None) -> list[str]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    try:
        return parse_lines(data, lookup)
    except ValueError as e:
        raise ValueError(f"invalid env file ({path}): {e}") from None


def read_kv_strings(files: list[str], overrides: list[str], lookup: Lookup | None) -> list[str]:
    """docker's readKVStrings: the files' entries, then the flags'."""
    out: list[str] = []
    for path in files:
        out += parse_file(path, lookup)
    return out + list(overrides)


def read_env(files: list[str], overrides: list[str]) -> list[str]:
    return read_kv_strings(files, overrides, os.environ.get)


def read_labels(files: list[str], overrides: list[str]) -> list[str]:
    return read_kv_strings(files, overrides, None)
