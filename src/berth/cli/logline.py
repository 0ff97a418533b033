"""Error lines in the format of logrus, docker CLI's logger, for the few messages docker logs
instead of returning (e.g. "Error waiting for container: ...").

Not a terminal: ``time="2026-01-02T03:04:05Z" level=error msg="..."``; a terminal:
``ERRO[0000] ...`` with the level in red.
"""

from __future__ import annotations

import re
import time
from typing import Any

from berth.goquote import quote as go_quote

_STARTED = time.time()
_SAFE = re.compile(r"^[A-Za-z0-9\-._/@^+]+$")


def error_line(message: str, terminal: bool, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if terminal:
        return f"\x1b[31mERRO\x1b[0m[{int(now - _STARTED):04d}] {message}"
    from berth.units import go_rfc3339

    value = message if _SAFE.match(message) else go_quote(message)
    return f'time="{go_rfc3339(now)}" level=error msg={value}'


def log_error(stream: Any, message: str) -> None:
    from berth.cli.terminal import is_terminal

    stream.write(error_line(message, is_terminal(stream)) + "\n")
    stream.flush()
