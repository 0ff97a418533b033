"""Connections to a daemon: unix socket, tcp, tcp+TLS and ssh, with keep-alive.

``Transport`` speaks HTTP/1.1 through ``http.client`` and knows nothing of the Engine API:
it opens connections, keeps idle ones for reuse, runs one exchange (request -> response head)
and turns socket/TLS/ssh failures into the docker CLI's error texts. ``open_raw`` gives a
fresh unpooled stream for connection hijacking (attach, exec, dial-stdio).
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from typing import Any, Iterable

from berth.client import errors
from berth.client.hosts import HostURL, join_host_port, parse_host_url
from berth.client.tlsconfig import TLSConfig
from berth.client.trace import WireTrace

# Docker's placeholder Host header for sockets and ssh (there is no real host name).
DUMMY_HOST = "api.moby.localhost"


class _TracedConnection:
    """Mixin recording what http.client sends, to print it when tracing is on."""

    trace: WireTrace | None = None
    endpoint: str = ""

    def putrequest(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:
        self._sent_lines = [f"{method} {url} HTTP/1.1"]
        super().putrequest(method, url, *args, **kwargs)  # type: ignore[misc]

    def putheader(self, header: str, *values: Any) -> None:
        text = ", ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in values)
        name = header.decode("latin-1") if isinstance(header, bytes) else header
        self._sent_lines.append(f"{name}: {text}")
        super().putheader(header, *values)  # type: ignore[misc]

    def endheaders(self, *args: Any, **kwargs: Any) -> None:
        if self.trace is not None:
            self.trace.request(self.endpoint, self._sent_lines)
        super().endheaders(*args, **kwargs)  # type: ignore[misc]


class UnixConnection(_TracedConnection, http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None):
        super().__init__(DUMMY_HOST, timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class TCPConnection(_TracedConnection, http.client.HTTPConnection):
    pass


class TLSConnection(_TracedConnection, http.client.HTTPSConnection):
    pass


class SSHConnection(_TracedConnection, http.client.HTTPConnection):
    def __init__(self, argv: list[str], timeout: float | None):
        super().__init__(DUMMY_HOST, timeout=timeout)
        self.argv = argv
        self.process: Any = None  # berth.client.ssh.SSHProcess
        self.last_process: Any = None

    def connect(self) -> None:
        from berth.client.ssh import SSHProcess

        self.process = SSHProcess(self.argv)
        self.sock = self.process.sock

    def close(self) -> None:
        super().close()
        if self.process is not None:
            self.process.close()
            # kept for the error text: http.client closes a connection before we see its error
            self.last_process, self.process = self.process, None


Connection = http.client.HTTPConnection
_RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Transport:
    """One daemon endpoint. Thread-safe; keeps up to ``max_idle`` idle connections."""

    def __init__(
        self,
        host: str,
        *,
        tls: TLSConfig | None = None,
        timeout: float | None = None,
        ssh_remote_command: str | None = None,
        trace: WireTrace | None = None,
        max_idle: int = 4,
    ):
        self.host = host
        self.url: HostURL = parse_host_url(host)
        self.tls = tls if self.url.scheme == "tcp" else None  # sockets and ssh ignore TLS
        self.timeout = timeout
        self.trace = trace
        self.max_idle = max_idle
        self._ssh_remote = ssh_remote_command
        self._ssl_context = None
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    # -- addressing ---------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        """URL scheme of requests: https when TLS is on."""
        return "https" if self.tls else "http"

    @property
    def base_path(self) -> str:
        """A tcp URL's path (``tcp://h:2375/prefix``) is prefixed to every request path."""
        return self.url.path if self.url.scheme == "tcp" else ""

    @property
    def host_header(self) -> str:
        if self.url.scheme == "tcp":
            return join_host_port(self.url.address, self.url.port)
        return DUMMY_HOST

    def url_for(self, target: str) -> str:
        """A printable URL for error texts, as Go's client shows it."""
        host = self.host_header
        return f"{self.scheme}://{host}{target}"

    def ssl_context(self):
        if self._ssl_context is None and self.tls is not None:
            self._ssl_context = self.tls.ssl_context()
        return self._ssl_context

    # -- connections ----------------------------------------------------------------------------
    def new_connection(self) -> Connection:
        u = self.url
        conn: Connection
        if u.scheme == "unix":
            conn = UnixConnection(u.address, self.timeout)
        elif u.scheme == "ssh":
            from berth.client.ssh import remote_command, ssh_argv  # subprocess: only for ssh

            conn = SSHConnection(ssh_argv(u, remote_command(u, self._ssh_remote)), self.timeout)
        elif self.tls is not None:
            conn = TLSConnection(u.address, u.port, timeout=self.timeout, context=self.ssl_context())
        else:
            conn = TCPConnection(u.address, u.port, timeout=self.timeout)
        conn.trace = self.trace  # type: ignore[attr-defined]
        conn.endpoint = self.host  # type: ignore[attr-defined]
        return conn

    def connect(self, conn: Connection) -> None:
        try:
            conn.connect()
        except Exception as e:
            conn.close()
            raise self.map_error(e, connecting=True) from e

    def acquire(self) -> tuple[Connection, bool]:
        """An idle live connection (reused=True) or a new connected one."""
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if _idle_alive(conn):
                    return conn, True
                conn.close()
        conn = self.new_connection()
        self.connect(conn)
        return conn, False

    def release(self, conn: Connection) -> None:
        """Give back a connection whose response was read to the end."""
        if conn.sock is None:
            return
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- one exchange --------------------------------------------------------------------------
    def exchange(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | Iterable[bytes] | None = None,
        *,
        chunked: bool = False,
    ) -> tuple[Connection, http.client.HTTPResponse]:
        """Send a request, read the response head. The caller reads the body, then
        ``release()``s the connection (or closes it)."""
        replayable = body is None or isinstance(body, (bytes, bytearray))
        for attempt in (0, 1):
            conn, reused = self.acquire()
            try:
                conn.request(method, target, body=body, headers=headers, encode_chunked=chunked)
                resp = conn.getresponse()
            except _RETRYABLE as e:
                # A kept-alive connection the server closed meanwhile: one fresh try.
                if reused and replayable and attempt == 0:
                    conn.close()
                    continue
                raise self._fail(e, conn, method, target) from e
            except Exception as e:
                raise self._fail(e, conn, method, target) from e
            if self.trace is not None:
                self.trace.response(resp.version, resp.status, resp.reason, resp.getheaders())
            return conn, resp
        raise AssertionError("unreachable")

    def _fail(self, e: BaseException, conn: Connection, method: str, target: str) -> errors.ClientError:
        try:  # map first: an ssh connection's error text needs its process
            return self.map_error(e, method=method, target=target, conn=conn)
        finally:
            conn.close()

    # -- raw streams for hijack -----------------------------------------------------------------
    def open_raw(self):
        """A new connected byte stream (socket, TLSStream or ssh socket) plus a closer."""
        u = self.url
        if u.scheme == "ssh":
            from berth.client.ssh import SSHProcess, remote_command, ssh_argv

            proc = SSHProcess(ssh_argv(u, remote_command(u, self._ssh_remote)))
            return proc.sock, proc
        try:
            if u.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(self.timeout)
                    sock.connect(u.address)
                except BaseException:
                    sock.close()
                    raise
                return sock, None
            sock = socket.create_connection((u.address, u.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is None:
                return sock, None
            from berth.client.tlsstream import TLSStream

            try:
                return TLSStream(sock, self.ssl_context(), u.address), None
            except BaseException:
                sock.close()
                raise
        except Exception as e:
            raise self.map_error(e, connecting=True) from e

    # -- errors ---------------------------------------------------------------------------------
    def map_error(
        self,
        e: BaseException,
        *,
        connecting: bool = False,
        method: str = "",
        target: str = "",
        conn: Connection | None = None,
    ) -> errors.ClientError:
        """Docker CLI texts for a failed connect or exchange."""
        import ssl

        if isinstance(e, errors.ClientError):
            return e
        host = self.host
        if isinstance(conn, SSHConnection) and (conn.process or conn.last_process) is not None:
            return (conn.process or conn.last_process).failure(method, self.url_for(target))
        if self.tls is not None and not connecting and isinstance(
            e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLError)
        ):
            # TLS 1.3 reports a refused client certificate only on the first read.
            return errors.TLSError(
                f"error during connect: TLS connection to {host} failed: the server probably has client "
                "authentication (--tlsverify) enabled; check your TLS client certification settings: "
                f"{e or type(e).__name__}",
                host,
            )
        if isinstance(e, ssl.SSLError):
            text = str(e)
            hint = ""
            if any(s in text.upper() for s in ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "HANDSHAKE_FAILURE")):
                hint = (
                    "the server probably has client authentication (--tlsverify) enabled; "
                    "check your TLS client certification settings: "
                )
            return errors.TLSError(f"error during connect: TLS handshake with {host} failed: {hint}{text}", host)
        if isinstance(e, (FileNotFoundError, ConnectionRefusedError, socket.timeout)):
            return errors.connection_failed(host)
        if isinstance(e, PermissionError):
            return errors.DaemonConnectionError(
                f"permission denied while trying to connect to the Docker daemon socket at {host}: "
                f"dial {self.url.scheme} {self.url.address}: connect: permission denied",
                host,
            )
        if isinstance(e, socket.gaierror):
            return errors.DaemonConnectionError(
                f"error during connect: failed to connect to the docker API at {host}: "
                f"lookup {self.url.address}: {e.strerror}",
                host,
            )
        where = f'{method} "{self.url_for(target)}": ' if method else ""
        hint = ""
        if self.tls is None and self.url.scheme == "tcp" and isinstance(
            e, (http.client.BadStatusLine, http.client.RemoteDisconnected, ConnectionResetError)
        ):
            hint = ".\n* Are you trying to connect to a TLS-enabled daemon without TLS?"
        detail = str(e) or type(e).__name__
        return errors.DaemonConnectionError(f"error during connect: {where}{detail}{hint}", host)


def _idle_alive(conn: Connection) -> bool:
    """An idle kept-alive connection is readable only if the server closed it (or misbehaved)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
