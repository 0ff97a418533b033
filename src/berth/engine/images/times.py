"""Image timestamps as Go writes them (time.RFC3339Nano: UTC, fraction without trailing
zeros) and reading them back from foreign configs. Pure functions."""

from __future__ import annotations

import time
from typing import Any

from berth.errors import InvalidParameter
from berth.timeutil import parse_time_value

ZERO_TIME = "0001-01-01T00:00:00Z"


def go_time(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def parse_ns(value: Any) -> int | None:
    """Nanoseconds of an RFC 3339 string from an image config; None if absent or odd."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    try:
        return parse_time_value(value)
    except (InvalidParameter, ValueError, OverflowError):
        return None


def created_ns(document: dict[str, Any]) -> int | None:
    return parse_ns(document.get("created"))


def created_seconds(document: dict[str, Any]) -> int:
    ns = created_ns(document)
    return ns // 1_000_000_000 if ns is not None else 0
