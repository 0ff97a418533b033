"""The embedded DNS resolver of user-defined networks (asyncio, UDP and TCP, in the daemon).

Containers on a user network resolve each other by name, alias and short ID; only names
registered on a network the asking container is on are answered, everything else is forwarded
to the upstream resolvers (``--dns``, or the host's resolv.conf: see ``resolvconf``).

Two ways to listen, both served by the same records; the engine picks one per network or
per container:

- ``await server.listen_gateway(network_id, gateway_ip)``: UDP+TCP on the network's gateway
  address, port 53, in the host netns. Container resolv.conf then says ``nameserver <gateway>``.
  The asking network is found from the source address (the container's IP). Bound with
  IP_FREEBIND, so it can be set up before the bridge has its address.
- ``await server.listen_in_netns(container_id, netns_path, [network_ids])``: UDP+TCP on
  127.0.0.11:53 *inside* the container's netns (sockets created there, served by the daemon's
  loop), exactly Docker's ``nameserver 127.0.0.11``. The asking networks are the listener's;
  update them on connect/disconnect with ``set_listener_networks``. ``aliases``
  ({network id: {alias: name}}) are the container's own names for others (``--link
  name:alias`` on a user network): only that container resolves them (libnetwork's
  endpoint aliases); ``set_listener_aliases`` replaces them. Caveat: port 53 on
  127.0.0.11 is taken inside the container, so a container process binding 0.0.0.0:53 fails
  (Docker avoids that with a random port and an iptables DNAT inside the netns).
  The listener's sockets hold the netns: ``close_listener(container_id)`` when the container
  stops, or the namespace (and its veth) outlives ``netns.delete``.

Records (the engine keeps them in step with endpoints)::

    server.add_network(network_id, "mynet", "172.18.0.0/16")
    server.register(network_id, ["web", "web-alias", "3f2a1b4c5d6e"], "172.18.0.2")
    server.unregister(network_id, "172.18.0.2")        # every name of that address
    server.remove_network(network_id)

A name also answers with the network name appended ("web.mynet"), as Docker. A and AAAA
records are answered from the IPv4 and IPv6 addresses registered (shuffled, for round-robin
over aliases); a known name without an address of the asked family gets an empty answer
(NODATA); PTR of a known address (in-addr.arpa or ip6.arpa) gets "<first name>.<network>";
other types and unknown names are forwarded. Without upstreams, or when all fail, the answer
is SERVFAIL.

Tests must use a fake upstream on 127.0.0.1 (``upstreams=[("127.0.0.1", port)]``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import random
import socket
import struct
from dataclasses import dataclass, field
from typing import Iterable

from berth.network import dnswire, netns

log = logging.getLogger(__name__)

DOCKER_DNS_IP = "127.0.0.11"
IP_FREEBIND = 15
TTL = 600


# ---- records (pure) ---------------------------------------------------------------------------

@dataclass
class _NetworkRecords:
    name: str
    subnet: ipaddress.IPv4Network | None
    names: dict[str, list[str]] = field(default_factory=dict)   # lower name -> IPs (both families)
    by_ip: dict[str, list[str]] = field(default_factory=dict)   # IP -> names, registration order


Aliases = dict[str, dict[str, str]]   # network id -> {alias: name}, one container's own


def _candidates(qname: str) -> list[tuple[str, str | None]]:
    """libnetwork's split of a.b.c: (a.b.c, any network), (a.b, network c), (a, network b.c)."""
    out: list[tuple[str, str | None]] = [(qname, None)]
    rest = qname
    while "." in rest:
        rest = rest.rpartition(".")[0]
        out.append((rest, qname[len(rest) + 1:]))
    return out


class Records:
    """Names per network. Pure and synchronous; the server only reads it."""

    def __init__(self) -> None:
        self._networks: dict[str, _NetworkRecords] = {}

    def add_network(self, network_id: str, name: str, subnet: str | None) -> None:
        current = self._networks.get(network_id)
        net = ipaddress.IPv4Network(subnet) if subnet else None
        if current is None:
            self._networks[network_id] = _NetworkRecords(name.lower(), net)
        else:
            current.name, current.subnet = name.lower(), net

    def remove_network(self, network_id: str) -> None:
        self._networks.pop(network_id, None)

    def register(self, network_id: str, names: Iterable[str], ip: str) -> None:
        """``names`` answer ``ip`` (IPv4 or IPv6) on a network."""
        net = self._networks.get(network_id)
        if net is None:
            raise KeyError(f"DNS: network {network_id} was not added")
        ip = str(ipaddress.ip_address(ip))
        for name in names:
            key = name.strip(".").lower()
            if not key:
                continue
            ips = net.names.setdefault(key, [])
            if ip not in ips:
                ips.append(ip)
            owned = net.by_ip.setdefault(ip, [])
            if key not in owned:
                owned.append(key)

    def unregister(self, network_id: str, ip: str, names: Iterable[str] | None = None) -> None:
        """Forget ``names`` (default: all names) of ``ip`` on a network. Idempotent."""
        net = self._networks.get(network_id)
        if net is None:
            return
        ip = str(ipaddress.ip_address(ip))
        owned = net.by_ip.get(ip, [])
        drop = [n.strip(".").lower() for n in names] if names is not None else list(owned)
        for key in drop:
            ips = net.names.get(key)
            if ips and ip in ips:
                ips.remove(ip)
                if not ips:
                    del net.names[key]
            if key in owned:
                owned.remove(key)
        if not owned:
            net.by_ip.pop(ip, None)

    def networks_of(self, source_ip: str) -> list[str]:
        """Networks whose subnet holds ``source_ip`` (who is asking)."""
        try:
            addr = ipaddress.IPv4Address(source_ip)
        except ValueError:
            return []
        return [nid for nid, net in self._networks.items() if net.subnet is not None and addr in net.subnet]

    def resolve(self, network_ids: Iterable[str], qname: str, aliases: Aliases | None = None) -> list[str]:
        """Every IP (both families) of ``qname`` ("web" or "web.mynet") on the given networks,
        [] if unknown. As libnetwork's sandbox: for each split of the name, the asking
        container's own ``aliases`` first, then the names registered on the networks."""
        qname = qname.strip(".").lower()
        aliases = aliases or {}
        networks = [(nid, self._networks[nid]) for nid in network_ids if nid in self._networks]
        for name, netname in _candidates(qname):
            for alias_pass in (True, False):
                found: list[str] = []
                for nid, net in networks:
                    if netname is not None and net.name != netname:
                        continue
                    own = aliases.get(nid) or {}
                    if alias_pass:
                        if name not in own:
                            continue
                        key = own[name].strip(".").lower()
                    elif name in own:
                        continue   # an alias of this container's is not looked up as a name
                    else:
                        key = name
                    for ip in net.names.get(key, []):
                        if ip not in found:
                            found.append(ip)
                if found:
                    return found
        return []

    def lookup(self, network_ids: Iterable[str], qname: str, version: int = 4,
               aliases: Aliases | None = None) -> list[str]:
        """The IPv4 (``version=6``: IPv6) addresses of ``qname`` (see :meth:`resolve`)."""
        return [ip for ip in self.resolve(network_ids, qname, aliases)
                if (":" in ip) == (version == 6)]

    def reverse(self, network_ids: Iterable[str], ip: str) -> str | None:
        ip = str(ipaddress.ip_address(ip))
        for nid in network_ids:
            net = self._networks.get(nid)
            if net is not None and net.by_ip.get(ip):
                first = net.by_ip[ip][0]
                return f"{first}.{net.name}" if net.name else first
        return None


def answer_locally(records: Records, network_ids: list[str], query: dnswire.Query,
                   limit: int | None = dnswire.UDP_LIMIT, aliases: Aliases | None = None) -> bytes | None:
    """The response to ``query`` if it is ours to answer, else None (forward it)."""
    if query.is_response or query.opcode != 0 or len(query.questions) != 1:
        return None
    q = query.questions[0]
    if q.qclass != dnswire.CLASS_IN:
        return None
    if q.qtype in (dnswire.TYPE_A, dnswire.TYPE_AAAA):
        known = records.resolve(network_ids, q.name, aliases)
        if not known:
            return None
        v6 = q.qtype == dnswire.TYPE_AAAA
        ips = [ip for ip in known if (":" in ip) == v6]
        random.shuffle(ips)
        make = dnswire.aaaa_answer if v6 else dnswire.a_answer
        # a known name without an address of this family: NODATA (empty NOERROR), as Docker
        return dnswire.build_response(query, [make(q.name, ip, TTL) for ip in ips], limit=limit)
    if q.qtype == dnswire.TYPE_PTR:
        ip = dnswire.ip_from_reverse(q.name)
        target = records.reverse(network_ids, ip) if ip else None
        if target is None:
            return None
        return dnswire.build_response(query, [dnswire.ptr_answer(q.name, target, TTL)], limit=limit)
    return None


# ---- the server ---------------------------------------------------------------------------------

class _UdpListener(asyncio.DatagramProtocol):
    def __init__(self, server: "DnsServer", key: str):
        self.server, self.key = server, key
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.ensure_future(self._answer(data, addr))
        self.server._tasks.add(task)
        task.add_done_callback(self.server._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.server.handle(self.key, data, addr[0], tcp=False)
        if reply and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


@dataclass
class _Listener:
    key: str
    networks: list[str] | None          # None: attribute by source address
    default_network: str | None
    udp: asyncio.DatagramTransport
    tcp: asyncio.AbstractServer
    upstreams: list[tuple[str, int]] | None = None   # None: the server's
    aliases: Aliases = field(default_factory=dict)   # the container's own (links)


class DnsServer:
    """Embedded resolver: answers from :class:`Records`, forwards the rest to ``upstreams``."""

    def __init__(self, upstreams: Iterable[tuple[str, int] | str] = (), *, timeout: float = 2.0,
                 records: Records | None = None):
        self.upstreams: list[tuple[str, int]] = [
            (u, 53) if isinstance(u, str) else (u[0], int(u[1])) for u in upstreams]
        self.timeout = timeout
        self.records = records or Records()
        self._listeners: dict[str, _Listener] = {}
        self._tasks: set[asyncio.Future] = set()

    # records, as the engine calls them
    def add_network(self, network_id: str, name: str, subnet: str | None) -> None:
        self.records.add_network(network_id, name, subnet)

    def remove_network(self, network_id: str) -> None:
        self.records.remove_network(network_id)

    def register(self, network_id: str, names: Iterable[str], ip: str) -> None:
        self.records.register(network_id, names, ip)

    def unregister(self, network_id: str, ip: str, names: Iterable[str] | None = None) -> None:
        self.records.unregister(network_id, ip, names)

    # ---- answering ----
    def _networks_for(self, key: str, source_ip: str) -> list[str]:
        listener = self._listeners.get(key)
        if listener is None:
            return []
        if listener.networks is not None:
            return list(listener.networks)
        return self.records.networks_of(source_ip) or (
            [listener.default_network] if listener.default_network else [])

    async def handle(self, key: str, data: bytes, source_ip: str, *, tcp: bool) -> bytes:
        """One query in, one response out (b"" to stay silent). Never raises."""
        try:
            return await self._handle(key, data, source_ip, tcp=tcp)
        except Exception:  # noqa: BLE001 - a resolver bug must not kill the listener
            log.exception("DNS: failed to answer a query from %s", source_ip)
            return dnswire.error_response(data, dnswire.RCODE_SERVFAIL)

    async def _handle(self, key: str, data: bytes, source_ip: str, *, tcp: bool) -> bytes:
        try:
            query = dnswire.parse_query(data)
        except dnswire.DnsFormatError:
            return dnswire.error_response(data, dnswire.RCODE_FORMERR)
        if query.is_response:
            return b""
        listener = self._listeners.get(key)
        local = answer_locally(self.records, self._networks_for(key, source_ip), query,
                               limit=None if tcp else dnswire.UDP_LIMIT,
                               aliases=listener.aliases if listener is not None else None)
        if local is not None:
            return local
        reply = await self.forward(data, tcp=tcp,
                                   upstreams=listener.upstreams if listener is not None else None)
        return reply if reply else dnswire.error_response(data, dnswire.RCODE_SERVFAIL)

    async def forward(self, data: bytes, *, tcp: bool,
                      upstreams: list[tuple[str, int]] | None = None) -> bytes | None:
        """Ask each upstream in turn (``upstreams``, default the server's); the first answer
        wins. None if none answered."""
        for host, port in (self.upstreams if upstreams is None else upstreams):
            try:
                if tcp:
                    return await asyncio.wait_for(_ask_tcp(host, port, data), self.timeout)
                return await asyncio.wait_for(_ask_udp(host, port, data), self.timeout)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                log.debug("DNS upstream %s:%s failed: %r", host, port, exc)
        return None

    # ---- listening ----
    async def _serve(self, key: str, udp_sock: socket.socket, tcp_sock: socket.socket,
                     networks: list[str] | None, default_network: str | None,
                     upstreams: list[tuple[str, int]] | None = None,
                     aliases: Aliases | None = None) -> None:
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(lambda: _UdpListener(self, key), sock=udp_sock)

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername") or ("", 0)
            try:
                while True:
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                    reply = await self.handle(key, await reader.readexactly(size), peer[0], tcp=True)
                    if not reply:
                        break
                    writer.write(struct.pack("!H", len(reply)) + reply)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        tcp = await asyncio.start_server(on_client, sock=tcp_sock)
        self._listeners[key] = _Listener(key, networks, default_network, udp, tcp, upstreams,
                                         dict(aliases or {}))

    async def listen_gateway(self, network_id: str, ip: str, port: int = 53) -> None:
        """Serve on ip:port of the host netns for one network (key: the network id)."""
        await self.close_listener(network_id)
        udp_sock, tcp_sock = _bound_pair(ip, port)
        await self._serve(network_id, udp_sock, tcp_sock, None, network_id)

    async def listen_in_netns(self, key: str, netns_path: str | os.PathLike[str], network_ids: list[str],
                              ip: str = DOCKER_DNS_IP, port: int = 53,
                              upstreams: Iterable[tuple[str, int] | str] | None = None,
                              aliases: Aliases | None = None) -> None:
        """Serve on ip:port inside a container's netns (key: the container id). ``upstreams``
        replaces the server's for this listener (a container's ``--dns``); ``aliases`` are
        the container's own names for others."""
        await self.close_listener(key)
        udp_sock, tcp_sock = await netns.run_in_async(netns_path, _bound_pair, ip, port)
        own = None if upstreams is None else [
            (u, 53) if isinstance(u, str) else (u[0], int(u[1])) for u in upstreams]
        await self._serve(key, udp_sock, tcp_sock, list(network_ids), None, own, aliases)

    def set_listener_networks(self, key: str, network_ids: list[str]) -> None:
        listener = self._listeners.get(key)
        if listener is not None:
            listener.networks = list(network_ids)

    def set_listener_aliases(self, key: str, aliases: Aliases) -> None:
        listener = self._listeners.get(key)
        if listener is not None:
            listener.aliases = dict(aliases)

    def listener_address(self, key: str) -> tuple[str, int] | None:
        listener = self._listeners.get(key)
        return listener.udp.get_extra_info("sockname") if listener else None

    async def close_listener(self, key: str) -> None:
        listener = self._listeners.pop(key, None)
        if listener is not None:
            listener.udp.close()
            listener.tcp.close()
            await listener.tcp.wait_closed()

    async def close(self) -> None:
        for key in list(self._listeners):
            await self.close_listener(key)
        for task in list(self._tasks):
            task.cancel()


def _bound_pair(ip: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket on ip:port (same port; port 0 picks one for both)."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        for s in (udp, tcp):
            s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            s.setblocking(False)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        udp.bind((ip, port))
        tcp.bind((ip, udp.getsockname()[1]))
        tcp.listen(64)
        return udp, tcp
    except BaseException:
        udp.close()
        tcp.close()
        raise


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self, ident: bytes) -> None:
        self.ident = ident
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[:2] == self.ident and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def _ask_udp(host: str, port: int, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(lambda: _UdpClient(data[:2]),
                                                               remote_addr=(host, port))
    try:
        transport.sendto(data)
        return await protocol.answer
    finally:
        transport.close()


async def _ask_tcp(host: str, port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        return await reader.readexactly(size)
    finally:
        writer.close()
