"""Stream framing shared by attach, exec, logs and the progress endpoints. Pure functions.

The I/O side (worker threads feeding a response, an upload read by a worker thread) is
``berth.api.streams``."""

from __future__ import annotations

import json
import struct
from typing import Any

from berth.jsonprogress import NO_TERMINAL_WIDTH, progress_string

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW_STREAM = "application/vnd.docker.raw-stream"
_HEADER = struct.Struct(">BxxxL")
_MAX_FRAME = 0xFFFFFFFF


def frame(stream: int, payload: bytes) -> bytes:
    """One stdcopy frame: [stream, 0, 0, 0, size(uint32 BE)] + payload."""
    if len(payload) <= _MAX_FRAME:
        return _HEADER.pack(stream, len(payload)) + payload
    return b"".join(frame(stream, payload[i:i + _MAX_FRAME])
                    for i in range(0, len(payload), _MAX_FRAME))


class FrameDecoder:
    """Splits a byte stream of stdcopy frames back into (stream, payload) pairs."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            frames.append((stream, bytes(self._buffer[_HEADER.size:end])))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buffer)


def json_line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\r\n"


def message_line(message: dict[str, Any]) -> bytes:
    """One JSON-lines progress message as dockerd's streamformatter writes it: a message with
    a ``progressDetail`` also gets the rendered bar as ``"progress"`` (right after it, as
    jsonmessage.JSONMessage orders its fields; left out when the bar is empty, omitempty).
    The engine sends the structured detail only; docker-compose 1.29 and docker-py users
    print the text."""
    detail = message.get("progressDetail")
    if not isinstance(detail, dict) or "progress" in message:
        return json_line(message)
    text = progress_string(detail, NO_TERMINAL_WIDTH)
    if not text:
        return json_line(message)
    shaped: dict[str, Any] = {}
    for key, value in message.items():
        shaped[key] = value
        if key == "progressDetail":
            shaped["progress"] = text
    return json_line(shaped)


class ProgressWriter:
    """Builds the JSON-lines messages of pull/push/load/import/build (Docker's jsonmessage)."""

    @staticmethod
    def status(status: str, id: str | None = None, current: int | None = None,
               total: int | None = None) -> bytes:
        message: dict[str, Any] = {"status": status}
        if current is not None or total is not None:
            detail: dict[str, int] = {}
            if current is not None:
                detail["current"] = current
            if total is not None:
                detail["total"] = total
            message["progressDetail"] = detail
        if id is not None:
            message["id"] = id
        return message_line(message)

    @staticmethod
    def stream(text: str) -> bytes:
        return json_line({"stream": text})

    @staticmethod
    def aux(data: Any) -> bytes:
        return json_line({"aux": data})

    @staticmethod
    def error(message: str, code: int = 0) -> bytes:
        detail: dict = {"code": code, "message": message} if code else {"message": message}
        return json_line({"errorDetail": detail, "error": message})
