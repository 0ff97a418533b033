"""A tiny fake Docker Engine API server for client and CLI tests.

Serves a few Engine API routes with Docker's shapes (``/_ping``, ``/version``, ``/info``,
``/events`` as a chunked JSON stream, an attach-like hijacked echo) on a unix socket or on
127.0.0.1 TCP, optionally TLS. It records requests and counts connections so tests can check
paths, headers and keep-alive.
"""

from __future__ import annotations

import json
import os
import re
import socket
import socketserver
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

VERSION_BODY = {
    "Platform": {"Name": "Fake Engine"},
    "Components": [
        {
            "Name": "Engine",
            "Version": "27.0.0-fake",
            "Details": {
                "ApiVersion": "1.47",
                "Arch": "amd64",
                "BuildTime": "2026-11-27T22:43:22.000000000+00:00",
                "Experimental": "false",
                "GitCommit": "abc1234",
                "GoVersion": "go1.22.5",
                "KernelVersion": "6.1.0",
                "MinAPIVersion": "1.24",
                "Os": "linux",
            },
        },
        {"Name": "runc", "Version": "1.1.12", "Details": {"GitCommit": "v1.1.12-0-g51d5e94"}},
    ],
    "Version": "27.0.0-fake",
    "ApiVersion": "1.47",
    "MinAPIVersion": "1.24",
    "GitCommit": "abc1234",
    "GoVersion": "go1.22.5",
    "Os": "linux",
    "Arch": "amd64",
    "KernelVersion": "6.1.0",
    "BuildTime": "2026-11-27T22:43:22.000000000+00:00",
}

INFO_BODY = {
    "ID": "7TRN:IPZB:QYBB:VPBQ:UWYO:TEST",
    "Containers": 3,
    "ContainersRunning": 1,
    "ContainersPaused": 0,
    "ContainersStopped": 2,
    "Images": 5,
    "Driver": "overlay2",
    "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
    "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Log": ["json-file", "local"]},
    "MemTotal": 2147483648,
    "NCPU": 4,
    "OSType": "linux",
    "Architecture": "x86_64",
    "KernelVersion": "6.1.0",
    "OperatingSystem": "Debian GNU/Linux 12 (bookworm)",
    "Name": "fakehost",
    "ServerVersion": "27.0.0-fake",
    "LoggingDriver": "json-file",
    "CgroupDriver": "cgroupfs",
    "CgroupVersion": "2",
    "DockerRootDir": "/var/lib/berth",
    "Debug": False,
    "Swarm": {"LocalNodeState": "inactive"},
    "Runtimes": {"runc": {"path": "runc"}},
    "DefaultRuntime": "runc",
    "InitBinary": "docker-init",
    "ContainerdCommit": {"ID": ""},
    "RuncCommit": {"ID": "v1.1.12"},
    "InitCommit": {"ID": ""},
    "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
    "ExperimentalBuild": False,
    "LiveRestoreEnabled": True,
    "Warnings": ["WARNING: fake warning"],
}

EVENTS = [
    {
        "Type": "container",
        "Action": "start",
        "Actor": {"ID": "a" * 64, "Attributes": {"name": "web", "image": "busybox"}},
        "scope": "local",
        "time": 1795819402,
        "timeNano": 1795819402123456789,
    },
    {
        "Type": "network",
        "Action": "connect",
        "Actor": {"ID": "b" * 64, "Attributes": {"container": "a" * 64, "name": "bridge", "type": "bridge"}},
        "scope": "local",
        "time": 1795819403,
        "timeNano": 1795819403000000001,
    },
]

_VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Unbuffered reads: a hijacked connection must not lose bytes sent right after the head.
    rbufsize = 0
    server: "_Server"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.fake.lock:
            self.server.fake.connections += 1

    # every method goes through one dispatcher
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_DELETE = do_HEAD = do_PUT = do_GET

    def _dispatch(self) -> None:
        fake = self.server.fake
        raw_path, _, query = self.path.partition("?")
        m = _VERSIONED.match(raw_path)
        version, path = (m.group(1), m.group(2)) if m else (None, raw_path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
            body = self._read_chunked()
        record = {
            "method": self.command,
            "path": raw_path,
            "api_path": path,
            "version": version,
            "query": query,
            "headers": dict(self.headers.items()),
            "body": body,
        }
        with fake.lock:
            fake.requests.append(record)
        handler = fake.routes.get((self.command, path)) or fake.routes.get(("*", path))
        if handler is None:
            self.send_json(404, {"message": f"page not found: {path}"})
            return
        handler(self, record)

    def _read_chunked(self) -> bytes:
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    # -- helpers for routes -------------------------------------------------------------------
    def common_headers(self) -> None:
        fake = self.server.fake
        self.send_header("Api-Version", fake.api_version)
        self.send_header("Server", "Docker/27.0.0-fake (linux)")
        self.send_header("Ostype", "linux")

    def send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.common_headers()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_text(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
        data = text.encode()
        self.send_response(status)
        self.common_headers()
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def start_chunked(self, content_type: str = "application/json") -> None:
        self.send_response(200)
        self.common_headers()
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(socketserver.ThreadingMixIn, socketserver.BaseServer):
    daemon_threads = True
    fake: "FakeDaemon"


class _UnixServer(_Server, socketserver.UnixStreamServer):
    pass


class _TCPServer(_Server, socketserver.TCPServer):
    allow_reuse_address = True
    ssl_context: ssl.SSLContext | None = None

    def get_request(self):  # type: ignore[override]
        sock, addr = super().get_request()
        if self.ssl_context is None:
            return sock, addr
        sock.settimeout(5)
        try:
            tls = self.ssl_context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.fake.tls_errors.append(str(e))
            sock.close()
            raise
        tls.settimeout(None)
        return tls, addr


# -- default routes ---------------------------------------------------------------------------


def _ping(h: _Handler, req: dict) -> None:
    h.send_response(200)
    h.common_headers()
    h.send_header("Builder-Version", "1")
    h.send_header("Docker-Experimental", "false")
    h.send_header("Swarm", "inactive")
    h.send_header("Cache-Control", "no-cache, no-store, must-revalidate")
    h.send_header("Pragma", "no-cache")
    h.send_header("Content-Type", "text/plain; charset=utf-8")
    h.send_header("Content-Length", "2")
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(b"OK")


def _events(h: _Handler, req: dict) -> None:
    fake = h.server.fake
    h.start_chunked()
    for event in fake.events:
        h.chunk(json.dumps(event).encode() + b"\n")
        if fake.event_delay:
            time.sleep(fake.event_delay)
    h.end_chunked()


def _attach(h: _Handler, req: dict) -> None:
    """Hijack: 101, then echo everything read until the client's half-close, then close."""
    h.wfile.write(
        b"HTTP/1.1 101 UPGRADED\r\n"
        b"Content-Type: application/vnd.docker.raw-stream\r\n"
        b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        b"hello from daemon\n"
    )
    h.wfile.flush()
    received = b""
    while True:
        data = h.connection.recv(65536)
        if not data:
            break
        received += data
    h.connection.sendall(b"echo:" + received)
    h.close_connection = True
    try:
        h.connection.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class FakeDaemon:
    def __init__(
        self,
        *,
        unix_path: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        api_version: str = "1.47",
    ):
        self.api_version = api_version
        self.requests: list[dict] = []
        self.connections = 0
        self.tls_errors: list[str] = []
        self.lock = threading.Lock()
        self.events = list(EVENTS)
        self.event_delay = 0.0
        self.routes: dict[tuple[str, str], Callable[[_Handler, dict], None]] = {
            ("*", "/_ping"): _ping,
            ("GET", "/version"): lambda h, r: h.send_json(200, VERSION_BODY),
            ("GET", "/info"): lambda h, r: h.send_json(200, INFO_BODY),
            ("GET", "/events"): _events,
            ("POST", "/containers/web/attach"): _attach,
            ("GET", "/containers/missing/json"): lambda h, r: h.send_json(404, {"message": "No such container: missing"}),
            ("POST", "/containers/web/start"): lambda h, r: h.send_json(409, {"message": "container already started"}),
            ("POST", "/echo"): lambda h, r: h.send_json(200, {"body": r["body"].decode(), "query": r["query"]}),
        }
        if unix_path:
            self.server: _Server = _UnixServer(unix_path, _Handler)
            self.url = "unix://" + unix_path
        else:
            tcp = _TCPServer(("127.0.0.1", 0), _Handler)
            tcp.ssl_context = ssl_context
            self.server = tcp
            self.port = tcp.server_address[1]
            self.url = f"tcp://127.0.0.1:{self.port}"
        self.server.fake = self
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FakeDaemon":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
        path = getattr(self.server, "server_address", None)
        if isinstance(path, str) and os.path.exists(path):
            os.unlink(path)

    def api_requests(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["api_path"] == path]
