"""``--ulimit name=soft[:hard]`` (go-units ParseUlimit)."""

from __future__ import annotations

import re

NAMES = {
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}
_INT = re.compile(r"^[+-]?\d+$")


def _parse_int64(text: str) -> int:
    if not _INT.match(text):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def parse_ulimit(value: str) -> dict:
    """-> {"Name", "Hard", "Soft"} (the API's field order)."""
    name, sep, limits = value.partition("=")
    if not sep:
        raise ValueError(f"invalid ulimit argument: {value}")
    if name not in NAMES:
        raise ValueError(f"invalid ulimit type: {name}")
    soft_text, colon, hard_text = limits.partition(":")
    hard = None
    if colon:
        hard = _parse_int64(hard_text)
    soft = _parse_int64(soft_text)
    if hard is None:
        hard = soft
    if hard != -1:
        if soft == -1:
            raise ValueError(
                f"ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}"
            )
        if soft > hard:
            raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}


def ulimit_list(values: list[dict]) -> list[dict]:
    """docker's UlimitOpt.GetList: one per name (the last wins), sorted by name."""
    by_name = {u["Name"]: u for u in values}
    return [by_name[n] for n in sorted(by_name)]
