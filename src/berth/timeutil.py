"""Time values as docker clients write them, and Docker's timestamp form. Pure functions.

Used by the daemon (since/until query parameters) and by the CLI (``--since 10m``).
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from berth.errors import InvalidParameter
from berth.units import parse_go_duration

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$")


def parse_duration_ns(text: str) -> int | None:
    """Go's time.ParseDuration ("1h30m", "10s", "-5m"); None if ``text`` is not one."""
    try:
        return parse_go_duration(text)
    except ValueError:
        return None


def parse_time_value(value: str, name: str = "time", now_ns: int | None = None) -> int:
    """Nanoseconds since the epoch from a unix time (``1700000000.5``), an RFC 3339 date or
    a duration before now (``10m``), like docker's ``--since``/``--until``."""
    value = value.strip()
    now_ns = time.time_ns() if now_ns is None else now_ns
    if re.fullmatch(r"-?\d+(\.\d{1,9})?", value):
        seconds, _, frac = value.partition(".")
        return int(seconds) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))
    duration = parse_duration_ns(value)
    if duration is not None:
        return now_ns - duration
    match = _RFC3339.match(value)
    if match:
        year, month, day, hour, minute, second, frac, zone = match.groups()
        tz = timezone.utc
        if zone and zone != "Z":
            hours, minutes = int(zone[1:3]), int(zone[-2:])
            offset = (hours * 60 + minutes) * (-1 if zone[0] == "-" else 1)
            from datetime import timedelta
            tz = timezone(timedelta(minutes=offset))
        elif not zone and hour is not None:
            tz = datetime.now().astimezone().tzinfo or timezone.utc  # Docker: local time
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                          int(second or 0), tzinfo=tz)
        return int(moment.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0"))
    raise InvalidParameter(f"failed to parse value as time or duration: \"{value}\"")


def rfc3339_nano(ns: int | None = None) -> str:
    """Docker's timestamp form: 2026-11-27T22:43:22.123456789Z (UTC, nanoseconds)."""
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"
