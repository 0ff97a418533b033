"""Docker's human-readable durations and sizes (go-units). Pure functions."""

from __future__ import annotations


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: "Less than a second", "5 seconds", "About a minute", ..."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = seconds / 60
    if int(minutes) == 1:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    hours = round(seconds / 3600)
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
    return f"{hours // 24 // 365} years"


def human_size(size: float) -> str:
    """go-units HumanSize: decimal units with 4 significant digits ("1.23MB", "5kB")."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.4g}{units[index]}"


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units ("1.5MiB")."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
    index = 0
    while size >= 1024 and index < len(units) - 1:
        size /= 1024
        index += 1
    return f"{size:.4g}{units[index]}"


def parse_size(text: str) -> int:
    """go-units RAMInBytes: "64m", "1g", "512k", "1024" (binary multiples)."""
    value = text.strip().lower()
    multipliers = {"b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4, "p": 1024 ** 5}
    for suffix in ("kib", "mib", "gib", "tib", "pib", "kb", "mb", "gb", "tb", "pb", "k", "m", "g", "t", "p", "b"):
        if value.endswith(suffix):
            number = value[: -len(suffix)].strip()
            factor = multipliers[suffix[0]]
            break
    else:
        number, factor = value, 1
    try:
        amount = float(number)
    except ValueError:
        raise ValueError(f"invalid size: '{text}'") from None
    if amount < 0:
        raise ValueError(f"invalid size: '{text}'")
    return int(amount * factor)
