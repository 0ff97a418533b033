"""The local terminal: is it one, its size, and raw mode (moby/term's MakeRaw) with restore."""

from __future__ import annotations

import fcntl
import os
import struct
import termios
import threading
from typing import Any


def fd_of(stream: Any) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def is_terminal(stream: Any) -> bool:
    fd = fd_of(stream)
    return fd is not None and os.isatty(fd)


def winsize(stream: Any) -> tuple[int, int]:
    """(height, width), or (0, 0) when ``stream`` is not a terminal (docker's GetTtySize)."""
    fd = fd_of(stream)
    if fd is None:
        return 0, 0
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return 0, 0
    return rows, cols


class RawMode:
    """Put a terminal fd in raw mode; ``restore()`` (idempotent, thread-safe) undoes it.

    The flags are moby/term's MakeRaw: no echo, no canonical mode, no signals from keys
    (Ctrl-C becomes a byte for the container), no output post-processing, 8-bit chars.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self._saved: list[Any] | None = None
        self._lock = threading.Lock()

    def enter(self) -> "RawMode":
        if os.environ.get("NORAW"):  # docker's escape hatch
            return self
        saved = termios.tcgetattr(self.fd)
        mode = list(saved)
        mode[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
        mode[1] &= ~termios.OPOST
        mode[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        mode[2] &= ~(termios.CSIZE | termios.PARENB)
        mode[2] |= termios.CS8
        cc = list(mode[6])
        cc[termios.VMIN] = 1
        cc[termios.VTIME] = 0
        mode[6] = cc
        termios.tcsetattr(self.fd, termios.TCSANOW, mode)
        self._saved = saved
        return self

    def restore(self) -> None:
        with self._lock:
            saved, self._saved = self._saved, None
        if saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSANOW, saved)
            except (OSError, termios.error):
                pass
