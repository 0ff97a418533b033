"""Byte access to the CLI's streams (container output, archives) next to their text use."""

from __future__ import annotations

import io
from typing import Any, BinaryIO


class _TextAsBinary(io.RawIOBase):
    """A text stream (in-process tests) seen as bytes: decoded as UTF-8."""

    def __init__(self, text: Any):
        self.text = text

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.text.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self.text.flush()


def binary(stream: Any) -> BinaryIO:
    """The byte side of a text stream; flushes pending text first so order is kept."""
    try:
        stream.flush()
    except (AttributeError, OSError, ValueError):
        pass
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return buffer
    return _TextAsBinary(stream)  # type: ignore[return-value]


def stdin_fd(cli: Any) -> int | None:
    try:
        return cli.inp.fileno()
    except (AttributeError, OSError, ValueError):
        return None
