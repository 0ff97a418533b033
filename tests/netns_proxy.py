"""An HTTP proxy for apt in another network namespace: it listens on 127.0.0.1 inside that
namespace and connects out from this process's, to one host only (tests/debian_harness.py)."""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from urllib.parse import urlsplit

CLONE_NEWNET = 0x40000000


def listen_in_netns(netns_path: str) -> socket.socket:
    """A listening socket on 127.0.0.1 of another network namespace. A socket belongs to the
    namespace it was made in; a thread that entered the namespace makes it, then ends (the
    namespace is a per-thread attribute: the rest of this process never leaves the host's)."""
    made: list[socket.socket | BaseException] = []

    def make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns_path}")
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
            made.append(sock)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            made.append(exc)

    thread = threading.Thread(target=make, name="netns-listener")
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


class AptProxy:
    """An HTTP proxy for one host (the mirror): apt sends ``GET http://host/path``, which is
    passed on as it is (servers take the absolute form), and the two streams are spliced."""

    def __init__(self, listener: socket.socket, allowed_host: str):
        self.listener = listener
        self.allowed_host = allowed_host
        self.port = listener.getsockname()[1]
        self.closed = False
        self.refused: list[str] = []
        self.thread = threading.Thread(target=self._accept, name="apt-proxy", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self.thread.join(5)

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split()
            target = urlsplit(parts[1]) if len(parts) == 3 else None
            if target is None or target.scheme != "http" or target.hostname != self.allowed_host:
                self.refused.append(request_line)
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            try:
                upstream = socket.create_connection((target.hostname, target.port or 80), timeout=60)
            except OSError as exc:
                conn.sendall(f"HTTP/1.1 502 Bad Gateway\r\nContent-Length: {len(str(exc))}\r\n"
                             f"Connection: close\r\n\r\n{exc}".encode())
                return
            with upstream:
                upstream.settimeout(None)
                upstream.sendall(head)
                back = threading.Thread(target=_pump, args=(upstream, conn), daemon=True)
                back.start()
                _pump(conn, upstream)
                back.join(120)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass
