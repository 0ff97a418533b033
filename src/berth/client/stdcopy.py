"""Demultiplex docker's framed stdout/stderr stream (attach, exec and logs without a TTY).

Each frame: 8-byte header ``[stream, 0, 0, 0, size uint32 big-endian]`` then ``size`` bytes.
Streams: 0 stdin (written to stdout, as docker's stdcopy does), 1 stdout, 2 stderr, 3 a
system error from the daemon (the copy ends with that error).
"""

from __future__ import annotations

import struct
from typing import Callable, Iterable, Iterator

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
HEADER = 8


class StreamSystemError(Exception):
    """A frame on stream 3: the daemon reports an error in the middle of the stream."""


class FrameError(Exception):
    """Bytes that are not a frame (docker: "Unrecognized input header")."""


class Demuxer:
    """Feed bytes as they arrive; ``frames()`` yields the complete (stream, payload) frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self._buf += data
        while len(self._buf) >= HEADER:
            stream = self._buf[0]
            (size,) = struct.unpack(">I", self._buf[4:8])
            if stream > SYSTEMERR:
                raise FrameError(f"Unrecognized input header: {stream}")
            if len(self._buf) < HEADER + size:
                return
            payload = bytes(self._buf[HEADER : HEADER + size])
            del self._buf[: HEADER + size]
            yield stream, payload

    @property
    def pending(self) -> int:
        return len(self._buf)


def copy_frames(
    chunks: Iterable[bytes], write_out: Callable[[bytes], None] | None, write_err: Callable[[bytes], None] | None
) -> None:
    """Write each frame's payload to its writer (None: discard) until the chunks end."""
    demux = Demuxer()
    for chunk in chunks:
        for stream, payload in demux.feed(chunk):
            if stream == SYSTEMERR:
                raise StreamSystemError(payload.decode("utf-8", "replace"))
            target = write_err if stream == STDERR else write_out
            if target is not None and payload:
                target(payload)


def frame(stream: int, payload: bytes) -> bytes:
    """One frame (for tests and fakes)."""
    return struct.pack(">BxxxI", stream, len(payload)) + payload
