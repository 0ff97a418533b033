"""Wire trace: ``DOCKER_DEBUG=1`` (or ``berth -D``) prints each exchange's request line and
headers and the response status line and headers to stderr, as ``> ...`` and ``< ...`` lines."""

from __future__ import annotations

import os
import sys
from typing import Iterable, TextIO


def env_enabled() -> bool:
    return os.environ.get("DOCKER_DEBUG", "").lower() not in ("", "0", "false", "no")


class WireTrace:
    def __init__(self, out: TextIO | None = None):
        self._out = out

    @property
    def out(self) -> TextIO:
        return self._out or sys.stderr

    def request(self, endpoint: str, lines: Iterable[str]) -> None:
        self._write(f"* {endpoint}", [f"> {line}" for line in lines])

    def response(self, version: int, status: int, reason: str, headers: Iterable[tuple[str, str]]) -> None:
        proto = "HTTP/1.0" if version == 10 else "HTTP/1.1"
        lines = [f"< {proto} {status} {reason}".rstrip()] + [f"< {k}: {v}" for k, v in headers]
        self._write(None, lines)

    def _write(self, head: str | None, lines: list[str]) -> None:
        text = "\n".join(([head] if head else []) + lines) + "\n"
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):
            pass  # tracing must never break a request
