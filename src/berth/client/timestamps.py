"""``--since``/``--until`` values to the query form the daemon takes, as docker's client does.

A Go duration (``10m``) means that long before now (whole unix seconds); an RFC 3339 date or
time (zone optional: local time) becomes ``<seconds>.<nanoseconds>``; a unix timestamp
(``1700000000`` or ``1700000000.5``) is passed through as is.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from berth.timeutil import parse_duration_ns

_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
    r"(Z|z|[+-]\d{2}:\d{2})?$"
)
_UNIX = re.compile(r"^\d+(\.\d+)?$")


def get_timestamp(value: str | int | float | datetime, now: float | None = None) -> str:
    if isinstance(value, datetime):
        return _format(value if value.tzinfo else value.astimezone())
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else f"{value:.9f}"
    now = time.time() if now is None else now
    if value != "0":
        ns = parse_duration_ns(value)
        if ns is not None:
            return str(int(now - ns / 1e9))
    m = _DATE_TIME.match(value)
    if m:
        year, month, day, hour, minute, second, frac, zone = m.groups()
        if zone in ("Z", "z"):
            tz: timezone = timezone.utc
        elif zone:
            sign = -1 if zone[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        else:
            tz = datetime.fromtimestamp(now).astimezone().tzinfo  # type: ignore[assignment]
        try:
            moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=tz)
        except ValueError as e:
            raise ValueError(f'parsing time "{value}": {e}') from e
        return f"{int(moment.timestamp())}.{int((frac or '0').ljust(9, '0')):09d}"
    if "-" in value:
        raise ValueError(f'parsing time "{value}" as RFC 3339: cannot parse')
    if _UNIX.match(value):
        return value
    raise ValueError(f'failed to parse value as time or duration: "{value}"')


def _format(moment: datetime) -> str:
    return f"{int(moment.timestamp())}.{moment.microsecond * 1000:09d}"
