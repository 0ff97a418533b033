"""Connection hijack: after ``101 UPGRADED`` the HTTP connection becomes a raw byte stream.

attach and exec start send ``Connection: Upgrade`` / ``Upgrade: tcp``; the daemon answers 101
(some answer 200) and from then on both directions are raw. ``HijackedSocket`` is that stream:
``recv``/``sendall`` plus ``shutdown_write()`` (half-close: stdin EOF, reading goes on).
"""

from __future__ import annotations

import socket
from email.message import Message
from typing import Any

from berth.client import errors

_MAX_HEAD = 64 * 1024


class HijackedSocket:
    """A raw bidirectional stream. ``recv`` returns b"" at EOF.

    Before select()ing on ``fileno()`` check ``pending()``: bytes read past the response
    head (or held by TLS) are not visible to select.
    """

    def __init__(self, stream: Any, leftover: bytes, *, status: int, headers: Message, closer: Any = None):
        self._stream = stream
        self._buf = bytearray(leftover)
        self._closer = closer  # the ssh process, for ssh endpoints
        self.status = status
        self.headers = headers
        self.closed = False

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "") or ""

    @property
    def multiplexed(self) -> bool | None:
        """True/False when the daemon said (API >= 1.42), else None (decide by the TTY)."""
        ct = self.content_type
        if ct.startswith("application/vnd.docker.multiplexed-stream"):
            return True
        if ct.startswith("application/vnd.docker.raw-stream"):
            return False
        return None

    def recv(self, n: int = 65536) -> bytes:
        if self._buf:
            out = bytes(self._buf[:n])
            del self._buf[:n]
            return out
        return self._stream.recv(n)

    read = recv

    def recv_exactly(self, n: int) -> bytes:
        """n bytes, or fewer only at EOF (for framed stdout/stderr headers)."""
        parts = bytearray()
        while len(parts) < n:
            chunk = self.recv(n - len(parts))
            if not chunk:
                break
            parts += chunk
        return bytes(parts)

    def sendall(self, data: bytes) -> None:
        self._stream.sendall(data)

    def send(self, data: bytes) -> int:
        self._stream.sendall(data)
        return len(data)

    write = send

    def shutdown_write(self) -> None:
        """Half-close: the daemon sees EOF on its read side (stdin EOF); we keep reading."""
        if hasattr(self._stream, "shutdown_write"):
            self._stream.shutdown_write()
        else:
            try:
                self._stream.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def pending(self) -> int:
        extra = self._stream.pending() if hasattr(self._stream, "pending") else 0
        return len(self._buf) + extra

    def fileno(self) -> int:
        return self._stream.fileno()

    def settimeout(self, timeout: float | None) -> None:
        self._stream.settimeout(timeout)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._stream.close()
        finally:
            if self._closer is not None:
                self._closer.close()

    def __enter__(self) -> "HijackedSocket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_response_head(stream: Any) -> tuple[int, str, Message, bytes, int]:
    """Read ``HTTP/1.x status reason`` + headers from a raw stream.

    Returns (status, reason, headers, bytes read past the head, http version 10/11).
    """
    buf = bytearray()
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        if len(buf) > _MAX_HEAD:
            raise errors.DaemonConnectionError("error during connect: response header too large")
        chunk = stream.recv(65536)
        if not chunk:
            if not buf:
                raise errors.DaemonConnectionError("error during connect: EOF before the response")
            raise errors.DaemonConnectionError("error during connect: truncated response header")
        buf += chunk
    head = bytes(buf[:end]).decode("iso-8859-1")
    leftover = bytes(buf[end + 4 :])
    status_line, _, header_text = head.partition("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise errors.DaemonConnectionError(f"error during connect: malformed HTTP response {status_line!r}")
    version = 10 if parts[0] == "HTTP/1.0" else 11
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = Message()
    for line in header_text.split("\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    return status, reason, headers, leftover, version


def read_error_body(stream: Any, headers: Message, leftover: bytes) -> bytes:
    """The body of a refused upgrade (Content-Length, chunked, or until EOF), capped at 1 MiB."""
    buf = bytearray(leftover)

    def more() -> bool:
        if len(buf) > (1 << 20):
            return False
        try:
            chunk = stream.recv(65536)
        except OSError:
            return False
        buf.extend(chunk)
        return bool(chunk)

    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        body = bytearray()
        pos = 0
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if not more():
                    return bytes(body)
                continue
            size = int(bytes(buf[pos:eol]).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return bytes(body)
            while len(buf) < eol + 2 + size + 2:
                if not more():
                    return bytes(body + buf[eol + 2 :])
            body += buf[eol + 2 : eol + 2 + size]
            pos = eol + 2 + size + 2
    length = headers.get("Content-Length")
    want = int(length) if length and length.isdigit() else None
    while want is None or len(buf) < want:
        if not more():
            break
    return bytes(buf if want is None else buf[:want])
