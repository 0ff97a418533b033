"""WebSocket framing over a hijacked connection (``/containers/{id}/attach/ws``), via wsproto."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from berth.api.http import Request
from berth.errors import InvalidParameter

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(request: Request) -> str:
    """Sec-WebSocket-Accept for the client's key (RFC 6455 §4.2.2)."""
    key = request.headers.get("sec-websocket-key", "").strip()
    if request.headers.get("upgrade", "").lower() != "websocket" or not key:
        raise InvalidParameter("websocket: the client is not using the websocket protocol")
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


class WebSocketStream:
    """Looks like a HijackedStream to the attach relay: read() gives message payloads,
    write() sends binary messages; a close frame reads as end of input."""

    def __init__(self, raw: Any):
        self._raw = raw
        self._ws = Connection(ConnectionType.SERVER)
        self._closed = False

    async def read(self, size: int = 65536) -> bytes:
        while not self._closed:
            data = await self._raw.read(size)
            self._ws.receive_data(data or None)
            payload = bytearray()
            for event in self._ws.events():
                if isinstance(event, (BytesMessage, TextMessage)):
                    chunk = event.data
                    payload += chunk.encode() if isinstance(chunk, str) else chunk
                elif isinstance(event, Ping):
                    await self._raw.write(self._ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self._closed = True
                    try:
                        await self._raw.write(self._ws.send(event.response()))
                    except Exception:  # noqa: BLE001 - the peer may be gone already
                        pass
            if payload:
                return bytes(payload)
            if not data:
                self._closed = True
        return b""

    async def write(self, data: bytes) -> None:
        await self._raw.write(self._ws.send(BytesMessage(data=data)))
