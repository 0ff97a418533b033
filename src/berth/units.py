"""Sizes, durations and times the way docker prints and parses them (go-units and Go's
``time`` package), shared by the CLI and the engine. Pure functions: they decide what users see, so they are unit-tested
against docker's own outputs.
"""

from __future__ import annotations

import re
import time as _time
from datetime import datetime, timezone

_DECIMAL = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _scale(size: float, base: float, units: list[str]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def go_g(value: float, precision: int) -> str:
    """Go's ``%.<p>g`` (Python's matches it for the magnitudes sizes have)."""
    return f"{value:.{precision}g}"


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision (HumanSize is precision 4): "1.98MB", "0B"."""
    value, unit = _scale(float(size), 1000.0, _DECIMAL)
    return go_g(value, precision) + unit


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, "%.4g"."""
    value, unit = _scale(float(size), 1024.0, _BINARY)
    return go_g(value, 4) + unit


def human_duration(seconds: float) -> str:
    """go-units HumanDuration."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def since(unix: float, now: float | None = None) -> str:
    """"<duration> ago", as docker's list commands print creation times."""
    now = _time.time() if now is None else now
    return human_duration(now - unix) + " ago"


# -- parsing sizes ---------------------------------------------------------------------------
_BINARY_MAP = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_DECIMAL_MAP = {"k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}
_GO_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|[iI]nf(inity)?|[nN]a[nN])$")


def _parse_size(text: str, mults: dict[str, int]) -> int:
    """go-units parseSize; raises ValueError with go-units' message."""
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep == -1:
        raise ValueError(f"invalid size: '{text}'")
    if text[sep] != " ":
        num, sfx = text[: sep + 1], text[sep + 1 :]
    else:
        num, sfx = text[:sep], text[sep + 1 :]
    if not _GO_FLOAT.match(num):
        raise ValueError(f'strconv.ParseFloat: parsing "{num}": invalid syntax')
    size = float(num)
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if not sfx:
        return int(size)
    bad = ValueError(f"invalid suffix: '{sfx}'")
    if len(sfx) > 3:
        raise bad
    sfx = sfx.lower()
    if sfx[0] == "b":
        if len(sfx) > 1:
            raise bad
        return int(size)
    if sfx[0] not in mults:
        raise bad
    size *= mults[sfx[0]]
    if (len(sfx) == 2 and sfx[1] != "b") or (len(sfx) == 3 and sfx[1:] != "ib"):
        raise bad
    return int(size)


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: "64m" -> 67108864 (binary multiples)."""
    return _parse_size(text, _BINARY_MAP)


def from_human_size(text: str) -> int:
    """go-units FromHumanSize: "1k" -> 1000 (decimal multiples)."""
    return _parse_size(text, _DECIMAL_MAP)


# -- Go durations ------------------------------------------------------------------------------
_DUR_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


_MAX_DURATION = 1 << 63  # Go accumulates in uint64 and refuses more than int64 can hold


def _leading_digits(text: str, pos: int) -> int:
    end = pos
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    return end


def parse_go_duration(text: str) -> int:
    """Go's time.ParseDuration ("1h30m", "1.5s", "-5m", "0") -> nanoseconds; ValueError
    with Go's message. The one Go-duration parser: ``timeutil.parse_duration_ns`` is this
    one answering None instead of raising."""
    orig = text
    bad = f'time: invalid duration "{orig}"'
    neg = False
    if text[:1] in ("+", "-"):
        neg = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise ValueError(bad)
    total = 0
    pos = 0
    while pos < len(text):
        # as Go: [0-9]*(\.[0-9]*)? then a unit (the run up to the next digit or dot)
        if not (text[pos] == "." or "0" <= text[pos] <= "9"):
            raise ValueError(bad)
        end = _leading_digits(text, pos)
        whole = int(text[pos:end]) if end > pos else 0
        if whole > _MAX_DURATION:  # leadingInt overflow
            raise ValueError(bad)
        pre, pos = end > pos, end
        frac, scale, post = 0, 1.0, False
        if pos < len(text) and text[pos] == ".":
            end = _leading_digits(text, pos + 1)
            post = end > pos + 1
            for digit in text[pos + 1:end]:  # leadingFraction: digits past overflow ignored
                if frac > (_MAX_DURATION - 1) // 10 or frac * 10 + int(digit) > _MAX_DURATION:
                    break
                frac, scale = frac * 10 + int(digit), scale * 10
            pos = end
        if not pre and not post:
            raise ValueError(bad)
        end = pos
        while end < len(text) and not (text[end] == "." or "0" <= text[end] <= "9"):
            end += 1
        unit = text[pos:end]
        if not unit:
            raise ValueError(f'time: missing unit in duration "{orig}"')
        if unit not in _DUR_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{orig}"')
        pos = end
        scaled = _DUR_UNITS[unit]
        if whole > _MAX_DURATION // scaled:
            raise ValueError(bad)
        value = whole * scaled
        if frac:
            value += int(float(frac) * (float(scaled) / scale))  # Go's float64 step
            if value > _MAX_DURATION:
                raise ValueError(bad)
        total += value
        if total > _MAX_DURATION:
            raise ValueError(bad)
    if neg:
        return -total
    if total > _MAX_DURATION - 1:
        raise ValueError(bad)
    return total


def go_duration_string(ns: int) -> str:
    """Go's Duration.String(): "1h0m0s", "1.5s", "500ms", "0s"."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = abs(ns)
    if u < 10**9:
        if u < 1_000:
            text = f"{u}ns"
        elif u < 1_000_000:
            text = _frac(u, 1_000) + "µs"
        else:
            text = _frac(u, 1_000_000) + "ms"
    else:
        hours, rem = divmod(u, 3600 * 10**9)
        minutes, rem = divmod(rem, 60 * 10**9)
        text = _frac(rem, 10**9) + "s"
        if hours or minutes:
            text = f"{minutes}m" + text
        if hours:
            text = f"{hours}h" + text
    return "-" + text if neg else text


def _frac(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    digits = str(rest).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


# -- Go time formatting -------------------------------------------------------------------------
def _local(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, timezone.utc).astimezone()


def go_time_string(unix: float) -> str:
    """Go's Time.String() for ``time.Unix(unix, 0)`` in local time:
    "2025-06-10 12:00:00 +0000 UTC"."""
    moment = _local(int(unix))
    zone = moment.strftime("%Z") or moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M:%S} {moment:%z} {zone}"


def go_rfc3339(unix: float) -> str:
    """Go's ``Format(time.RFC3339)`` in local time: "2025-06-10T12:00:00Z" / "+02:00"."""
    moment = _local(int(unix))
    offset = moment.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    return f"{moment:%Y-%m-%dT%H:%M:%S}{zone}"


def parse_rfc3339(text: str) -> float | None:
    """An Engine API timestamp (RFC 3339, nanoseconds) as unix seconds; None if unparsable."""
    m = re.match(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$", text or "")
    if not m:
        return None
    zone = "+00:00" if m.group(4) == "Z" else m.group(4)
    try:
        base = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{zone}")
    except ValueError:
        return None
    return base.timestamp() + float(m.group(3) or 0)
