"""Daemon addresses: parsing and defaults, as the docker CLI does (opts.ParseHost).

Berth's own default, when nothing (flag, env, context) names a daemon, is
``unix:///run/berth.sock``, berthd's default socket. With TLS requested and no host the
default is docker's ``tcp://localhost:2376``.
"""

from __future__ import annotations

from typing import NamedTuple

from berth.client.errors import InvalidHost

DEFAULT_UNIX_SOCKET = "/run/berth.sock"
DEFAULT_HOST = "unix://" + DEFAULT_UNIX_SOCKET
DEFAULT_TCP_HOST = "tcp://localhost:2375"
DEFAULT_TLS_HOST = "tcp://localhost:2376"


def parse_host(value: str | None, default_to_tls: bool = False) -> str:
    """Normalise a daemon address; empty means the default one."""
    host = (value or "").strip()
    if not host:
        return DEFAULT_TLS_HOST if default_to_tls else DEFAULT_HOST
    proto, sep, rest = host.partition("://")
    if not sep:
        proto, rest = "tcp", host
    if proto == "tcp":
        return _parse_tcp(rest, host)
    if proto == "unix":
        if "://" in rest:
            raise InvalidHost(f"invalid proto, expected unix: {rest}")
        return "unix://" + (rest or DEFAULT_UNIX_SOCKET)
    if proto in ("ssh", "fd", "npipe"):
        return host
    raise InvalidHost(f"invalid bind address format: {host}")


def _parse_tcp(addr: str, original: str) -> str:
    if not addr:
        return DEFAULT_TCP_HOST
    if "://" in addr:
        raise InvalidHost(f"invalid proto, expected tcp: {original}")
    hostport, slash, path = addr.partition("/")
    hostname, port = split_host_port(hostport, default_port="2375")
    if not hostname:
        hostname = "localhost"
    if not port.isdigit():
        raise InvalidHost(f"invalid bind address format: {original}")
    return f"tcp://{join_host_port(hostname, int(port))}{slash}{path}"


def split_host_port(hostport: str, default_port: str = "") -> tuple[str, str]:
    """``host:port`` / ``[v6]:port`` / ``host`` into (host, port)."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise InvalidHost(f"invalid bind address format: {hostport}")
        host = hostport[1:end]
        rest = hostport[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
        return host, port or default_port
    if hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
        return host, port or default_port
    return hostport, default_port


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HostURL(NamedTuple):
    """A parsed daemon address. ``address`` is a path (unix) or host (tcp/ssh)."""

    scheme: str  # unix | tcp | ssh
    address: str
    port: int = 0
    user: str = ""
    path: str = ""  # tcp: base path prefix; ssh: remote socket path

    @property
    def is_socket(self) -> bool:
        return self.scheme == "unix"


def parse_host_url(host: str) -> HostURL:
    """Split a normalised address (``parse_host`` output, or a context's Host)."""
    proto, sep, rest = host.partition("://")
    if not sep:
        raise InvalidHost(f"unable to parse docker host `{host}`")
    if proto == "unix":
        if not rest:
            raise InvalidHost(f"unable to parse docker host `{host}`")
        return HostURL("unix", rest)
    if proto in ("tcp", "http", "https"):
        hostport, slash, path = rest.partition("/")
        name, port = split_host_port(hostport, "2376" if proto == "https" else "2375")
        if not name or not port.isdigit():
            raise InvalidHost(f"unable to parse docker host `{host}`")
        return HostURL("tcp", name, int(port), path=(slash + path).rstrip("/"))
    if proto == "ssh":
        return _parse_ssh(host, rest)
    raise InvalidHost(f"protocol not available: {proto}")


def _parse_ssh(host: str, rest: str) -> HostURL:
    if "?" in rest:
        raise InvalidHost(f"invalid SSH URL: query parameters are not allowed: {rest.split('?', 1)[1]!r}")
    if "#" in rest:
        raise InvalidHost(f"invalid SSH URL: fragments are not allowed: {rest.split('#', 1)[1]!r}")
    authority, slash, path = rest.partition("/")
    user = ""
    if "@" in authority:
        user, _, authority = authority.rpartition("@")
        if ":" in user:
            raise InvalidHost("invalid SSH URL: plain-text password is not supported")
    name, port = split_host_port(authority)
    if not name:
        raise InvalidHost("invalid SSH URL: hostname is empty")
    if port and not port.isdigit():
        raise InvalidHost(f"invalid SSH URL: invalid port {port!r}")
    return HostURL("ssh", name, int(port) if port else 0, user=user, path=slash + path)
