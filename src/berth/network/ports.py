"""Published ports: parsing, normalising, host-port allocation.

Pure parsing (no root, no sockets):

- :func:`parse_port_bindings` - HostConfig.PortBindings from the API
  (``{"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}``) to :class:`PortRequest` objects.
- :func:`publish_all` - the requests ``-P`` makes from the image's ExposedPorts.
- :func:`ports_view` - NetworkSettings.Ports for inspect from exposed ports and mappings.

Host side:

- :func:`ephemeral_range` - /proc/sys/net/ipv4/ip_local_port_range (Docker's fallback 49153-65535).
- :func:`is_port_free` - a bind test on the host address.
- :class:`PortAllocator` - remembers which (proto, host ip, port) the engine handed out, picks
  ephemeral ports, refuses duplicates with Docker's "Bind for 0.0.0.0:8080 failed: port is
  already allocated" (:class:`PortAlreadyAllocated`; the engine prefixes it with
  "driver failed programming external connectivity on endpoint <name> (<id>): "). After a daemon
  restart the engine re-registers the mappings of running containers with :meth:`reserve`.

A :class:`PortMapping` (proto, host_ip, host_port, container_port) is what the firewall
programs (``Firewall.add_port(bridge, container_ip, mapping)``).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from berth.errors import InvalidParameter, SystemError_

PROTOCOLS = ("tcp", "udp", "sctp")
DEFAULT_EPHEMERAL = (49153, 65535)
ANY_IP = "0.0.0.0"
ANY_IP6 = "::"


def is_ipv6(host_ip: str) -> bool:
    return ":" in host_ip


def any_address(host_ip: str) -> str:
    """The unspecified address of ``host_ip``'s family (0.0.0.0 or ::)."""
    return ANY_IP6 if is_ipv6(host_ip) else ANY_IP


class PortAlreadyAllocated(SystemError_):
    """A host port is taken (by us or by another process). Docker answers 500 with this text."""

    def __init__(self, host_ip: str, port: int | str):
        super().__init__(f"Bind for {host_ip}:{port} failed: port is already allocated")


@dataclass(frozen=True)
class PortRequest:
    """One requested binding of a container port; host_port 0 means "any" (ephemeral), and
    ``host_port_end`` > host_port means "any free port in host_port..host_port_end"."""

    proto: str
    container_port: int
    host_ip: str = ANY_IP
    host_port: int = 0
    host_port_end: int = 0

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"


@dataclass(frozen=True)
class PortMapping:
    """A granted binding: host_ip:host_port -> container_port/proto."""

    proto: str
    host_ip: str
    host_port: int
    container_port: int

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"

    def to_dict(self) -> dict[str, Any]:
        return {"Proto": self.proto, "HostIp": self.host_ip, "HostPort": self.host_port,
                "ContainerPort": self.container_port}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PortMapping":
        return cls(data["Proto"], data["HostIp"], int(data["HostPort"]), int(data["ContainerPort"]))


# ---- parsing ---------------------------------------------------------------------------------

def _port_range(text: str) -> tuple[int, int]:
    """"80" or "8000-8010" to (start, end); ValueError if malformed or outside 0..65535."""
    start_s, sep, end_s = text.partition("-")
    if not start_s.isdigit() or (sep and not end_s.isdigit()):
        raise ValueError(text)
    start = int(start_s)
    end = int(end_s) if sep else start
    if end > 65535 or end < start:
        raise ValueError(text)
    return start, end


def split_port_key(key: str) -> tuple[int, int, str]:
    """"80/tcp" / "80" / "8000-8010/udp" to (start, end, proto). InvalidParameter on bad input."""
    port, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidParameter(f"invalid proto: {proto}")
    try:
        start, end = _port_range(port)
    except ValueError:
        raise InvalidParameter(f"invalid port specification: \"{port}\"") from None
    return start, end, proto


def _normalise_host_ip(ip: str) -> str:
    ip = (ip or "").strip()
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if not ip:
        return ANY_IP
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidParameter(f"invalid IP address: {ip}") from None
    return str(addr)


def parse_port_bindings(bindings: dict[str, Any] | None) -> list[PortRequest]:
    """HostConfig.PortBindings to requests, validated; a key with no bindings binds nothing."""
    requests: list[PortRequest] = []
    for key, entries in (bindings or {}).items():
        start, end, proto = split_port_key(key)
        for entry in entries or [{}]:
            entry = entry or {}
            host_ip = _normalise_host_ip(entry.get("HostIp", ""))
            host_port = str(entry.get("HostPort", "") or "")
            h_start = h_end = 0
            if host_port:
                try:
                    h_start, h_end = _port_range(host_port)
                except ValueError:
                    raise InvalidParameter(f"invalid port specification: \"{host_port}\"") from None
            for offset, cport in enumerate(range(start, end + 1)):
                if h_start and end > start:  # "80-81/tcp" -> "8080-8081": pairwise
                    if h_end - h_start != end - start:
                        raise InvalidParameter(
                            f"invalid ranges specified for container and host Ports: "
                            f"{start}-{end} and {host_port}")
                    requests.append(PortRequest(proto, cport, host_ip, h_start + offset, 0))
                else:
                    requests.append(PortRequest(proto, cport, host_ip, h_start,
                                                h_end if h_end != h_start else 0))
    return requests


def publish_all(exposed: Iterable[str]) -> list[PortRequest]:
    """``-P``: every exposed port on an ephemeral host port of every address."""
    requests = []
    for key in exposed:
        start, end, proto = split_port_key(key)
        requests += [PortRequest(proto, port) for port in range(start, end + 1)]
    return requests


def ports_view(exposed: Iterable[str], mappings: Iterable[PortMapping]) -> dict[str, Any]:
    """NetworkSettings.Ports: every exposed port, None when unpublished, else its bindings."""
    view: dict[str, Any] = {}
    for key in exposed:
        start, end, proto = split_port_key(key)
        for port in range(start, end + 1):
            view.setdefault(f"{port}/{proto}", None)
    for m in mappings:
        view[m.key] = (view.get(m.key) or []) + [{"HostIp": m.host_ip, "HostPort": str(m.host_port)}]
    return view


# ---- host side -------------------------------------------------------------------------------

def ephemeral_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    try:
        with open(path, encoding="ascii") as f:
            low, high = (int(x) for x in f.read().split())
        if 0 < low <= high <= 65535:
            return low, high
    except (OSError, ValueError):
        pass
    return DEFAULT_EPHEMERAL


def is_port_free(host_ip: str, port: int, proto: str = "tcp") -> bool:
    """Can a socket be bound on host_ip:port? (TCP: ignores TIME_WAIT, like a real listener.)
    An IPv6 address is tried IPv6-only: [::]:80 and 0.0.0.0:80 are two bindings, as in Docker."""
    kind = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM, "sctp": socket.SOCK_SEQPACKET}[proto]
    protocol = socket.IPPROTO_SCTP if proto == "sctp" else 0
    family = socket.AF_INET6 if is_ipv6(host_ip) else socket.AF_INET
    try:
        sock = socket.socket(family, kind, protocol)
    except OSError:
        return True  # e.g. no SCTP module (or no IPv6): nothing can hold the port
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host_ip, port))
        return True
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        if exc.errno == errno.EADDRNOTAVAIL:
            raise InvalidParameter(f"Bind for {host_ip}:{port} failed: "
                                   f"cannot assign requested address") from None
        raise
    finally:
        sock.close()


class PortAllocator:
    """Host ports handed out by the engine, keyed by (proto, host ip, port).

    0.0.0.0 conflicts with every IPv4 address on the same port/proto, :: with every IPv6 one,
    as in Docker. ``check_host`` (default :func:`is_port_free`) is injectable for pure tests.
    """

    def __init__(self, ephemeral: tuple[int, int] | None = None,
                 check_host: Callable[[str, int, str], bool] | None = is_port_free):
        self.low, self.high = ephemeral or ephemeral_range()
        self._check_host = check_host
        self._taken: dict[tuple[str, str, int], str] = {}
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def _clashes(self, proto: str, host_ip: str, port: int) -> bool:
        wildcard = any_address(host_ip)
        for (p, ip, hp) in self._taken:
            if p == proto and hp == port and is_ipv6(ip) == is_ipv6(host_ip) \
                    and (ip == host_ip or wildcard in (ip, host_ip)):
                return True
        return False

    def _usable(self, proto: str, host_ip: str, port: int) -> bool:
        if self._clashes(proto, host_ip, port):
            return False
        return self._check_host is None or self._check_host(host_ip, port, proto)

    def reserve(self, proto: str, host_ip: str, port: int, owner: str = "") -> None:
        """Record a port granted earlier (daemon restart); no host check, no conflict error."""
        with self._lock:
            self._taken[(proto, host_ip, port)] = owner

    def allocate(self, request: PortRequest, owner: str = "") -> PortMapping:
        """Grant a host port for ``request``; raises PortAlreadyAllocated or, when the ephemeral
        range is exhausted, SystemError_("all ports are allocated")."""
        proto, ip = request.proto, request.host_ip
        with self._lock:
            if request.host_port and not request.host_port_end:
                if not self._usable(proto, ip, request.host_port):
                    raise PortAlreadyAllocated(ip, request.host_port)
                port = request.host_port
            elif request.host_port:
                port = next((p for p in range(request.host_port, request.host_port_end + 1)
                             if self._usable(proto, ip, p)), 0)
                if not port:
                    raise PortAlreadyAllocated(ip, f"{request.host_port}-{request.host_port_end}")
            else:
                port = self._ephemeral(proto, ip)
            self._taken[(proto, ip, port)] = owner
            return PortMapping(proto, ip, port, request.container_port)

    def _ephemeral(self, proto: str, ip: str) -> int:
        # Like Docker: continue after the last port handed out, wrap around once.
        span = self.high - self.low + 1
        start = self._last.get(proto, self.low - 1) + 1
        for i in range(span):
            port = self.low + (start - self.low + i) % span
            if self._usable(proto, ip, port):
                self._last[proto] = port
                return port
        raise SystemError_("all ports are allocated")

    def release(self, mapping: PortMapping) -> None:
        with self._lock:
            self._taken.pop((mapping.proto, mapping.host_ip, mapping.host_port), None)

    def release_owner(self, owner: str) -> list[tuple[str, str, int]]:
        """Free every port of one owner (a container/endpoint id); returns what was freed."""
        with self._lock:
            freed = [k for k, v in self._taken.items() if v == owner]
            for k in freed:
                del self._taken[k]
            return freed

    def allocated(self) -> dict[tuple[str, str, int], str]:
        with self._lock:
            return dict(self._taken)
