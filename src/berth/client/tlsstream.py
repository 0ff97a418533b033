"""A TLS client stream over a connected socket, with a real half-close.

``ssl.SSLSocket.shutdown(SHUT_WR)`` drops the TLS layer altogether, so a hijacked attach/exec
stream could not signal stdin EOF and keep reading. This drives an ``ssl.SSLObject`` over
memory BIOs instead: ``shutdown_write()`` sends TLS close_notify (what Go's
``tls.Conn.CloseWrite`` does) and reading goes on until the server closes.
"""

from __future__ import annotations

import socket
import ssl


class TLSStream:
    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str | None):
        self._sock = sock
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_side=False, server_hostname=server_hostname)
        self._plain = bytearray()  # decrypted bytes saved before a half-close
        self._eof = False
        self._write_closed = False
        self._handshake()

    # -- plumbing ---------------------------------------------------------------------------
    def _flush(self) -> None:
        data = self._out.read()
        if data:
            self._sock.sendall(data)

    def _fill(self) -> None:
        data = self._sock.recv(65536)
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()

    def _handshake(self) -> None:
        while True:
            try:
                self._obj.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()

    # -- socket-like API ----------------------------------------------------------------------
    def recv(self, n: int = 65536) -> bytes:
        if self._plain:
            out = bytes(self._plain[:n])
            del self._plain[:n]
            return out
        if self._eof:
            return b""
        while True:
            try:
                return self._obj.read(n)
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._eof = True  # close_notify, or a ragged TCP close: both mean EOF here
                return b""

    def sendall(self, data: bytes) -> None:
        if self._write_closed:
            raise BrokenPipeError("write side of the TLS stream is closed")
        view = memoryview(data)
        while view:
            n = self._obj.write(view)
            view = view[n:]
        self._flush()

    def send(self, data: bytes) -> int:
        self.sendall(data)
        return len(data)

    def pending(self) -> int:
        """Decrypted or received bytes that a select() on fileno() would not see."""
        return len(self._plain) + self._obj.pending() + self._in.pending

    def shutdown_write(self) -> None:
        if self._write_closed:
            return
        self._write_closed = True
        # Decrypt what is buffered first: the second SSL_shutdown() inside unwrap() would
        # otherwise read (and lose) records already in the incoming BIO.
        while self._in.pending or self._obj.pending():
            try:
                chunk = self._obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._eof = True
                break
            if not chunk:
                break
            self._plain += chunk
        try:
            self._obj.unwrap()  # queues close_notify; then wants the peer's, which we skip
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        self._flush()

    def shutdown(self, how: int) -> None:
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self.shutdown_write()
        if how in (socket.SHUT_RD, socket.SHUT_RDWR):
            self._sock.shutdown(socket.SHUT_RD)

    def fileno(self) -> int:
        return self._sock.fileno()

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def close(self) -> None:
        self._sock.close()
