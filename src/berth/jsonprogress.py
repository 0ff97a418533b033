"""Docker's progress bar text (``JSONProgress.String()`` of moby's jsonmessage). Pure.

One implementation for both sides: the daemon's JSON-lines writer puts it in a message's
``"progress"`` field (dockerd's streamformatter marshals ``ProgressMessage: progress.String()``
next to ``progressDetail``, at the width of no terminal, 200), and the CLI draws it on a
terminal at the terminal's width.
"""

from __future__ import annotations

import time

from berth.units import go_duration_string, human_size

NO_TERMINAL_WIDTH = 200  # JSONProgress.width() when there is no terminal (the daemon's case)


def progress_string(detail: dict, width: int = NO_TERMINAL_WIDTH, now: float | None = None) -> str:
    """JSONProgress.String(): ``[====>   ] 1.049MB/3.4MB`` (the bar only when ``width`` is
    over 110; a time-left box only with a ``start`` time); "" when there is nothing to show."""
    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    units = detail.get("units") or ""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}" if not units else f"{current} {units}"
    percentage = int(current / total * 100) // 2
    percentage = min(percentage, 50)
    bar = ""
    if width > 110:
        bar = "[" + "=" * percentage + ">" + " " * max(50 - percentage, 0) + "] "
    numbers = ""
    if detail.get("hidecounts"):
        pass
    elif not units:
        numbers = f"{human_size(current):>8}/{human_size(total)}"
        if current > total:
            numbers = f"{human_size(current):>8}"
    else:
        numbers = f"{current}/{total} {units}"
        if current > total:
            numbers = f"{current} {units}"
    left = ""
    start = int(detail.get("start") or 0)
    if width > 50 and current > 0 and start > 0 and percentage < 50:
        now = time.time() if now is None else now
        per_entry = int((now - start) * 1e9) // current
        remaining = (total - current) * per_entry
        left = " " + go_duration_string(round(remaining / 1e9) * 10**9)
    return bar + numbers + left
