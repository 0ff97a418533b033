"""Userland port proxies (docker-proxy's job), for published ports when iptables is off.

With ``--iptables=false`` no DNAT rule exists, so the daemon listens on the host side of each
published port and relays to the container, like dockerd's docker-proxy. Runs on the daemon's
event loop; the ports die with the daemon (as Docker's do). With iptables on, the firewall's
kernel rules are used instead, but for IPv6 ports on [::1] and [::]: a packet from ::1 cannot
be DNAT'ed off the host, so those are relayed here (the target may be the container's IPv6
or, on an IPv4-only network, its IPv4 address). IPv6 listeners are IPv6-only.

    proxy = await start_proxy(mapping, "172.18.0.2")     # ports.PortMapping; tcp or udp
    await proxy.close()

A failed bind raises ``ports.PortAlreadyAllocated`` (Docker's "port is already allocated").
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

from berth.errors import SystemError_
from berth.network.ports import PortAlreadyAllocated, PortMapping

log = logging.getLogger(__name__)
UDP_IDLE = 90.0   # seconds a UDP flow is kept without traffic (docker-proxy's UDPConnTrackTimeout)
CHUNK = 1 << 16


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class TcpProxy:
    def __init__(self, mapping: PortMapping, target_ip: str):
        self.mapping, self.target = mapping, (target_ip, mapping.container_port)
        self.server: asyncio.AbstractServer | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        try:
            self.server = await asyncio.start_server(self._client, self.mapping.host_ip,
                                                     self.mapping.host_port, reuse_address=True)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortAlreadyAllocated(self.mapping.host_ip, self.mapping.host_port) from None
            raise

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError as exc:
            log.debug("proxy %s: %s", self.target, exc)
            writer.close()
            return
        self._conns.update((writer, up_writer))
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._conns.discard(w)
                w.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self._conns):
                writer.close()
            await self.server.wait_closed()


class _UdpFlow(asyncio.DatagramProtocol):
    def __init__(self, front: "_UdpFront", client: tuple[str, int]):
        self.front, self.client = front, client
        self.transport: Any = None
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.front.transport is not None:
            self.front.transport.sendto(data, self.client)
        self.front.touch(self)


class _UdpFront(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.transport: Any = None
        self.flows: dict[tuple[str, int], _UdpFlow] = {}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        flow = self.flows.get(addr)
        if flow is not None and flow.transport is not None:
            flow.transport.sendto(data)
            self.touch(flow)
            return
        asyncio.ensure_future(self._open(addr, data))

    async def _open(self, addr: tuple[str, int], data: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, flow = await loop.create_datagram_endpoint(lambda: _UdpFlow(self, addr),
                                                          remote_addr=self.target)
        except OSError as exc:
            log.debug("udp proxy %s: %s", self.target, exc)
            return
        self.flows[addr] = flow
        flow.transport.sendto(data)
        self.touch(flow)

    def touch(self, flow: _UdpFlow) -> None:
        if flow.idle is not None:
            flow.idle.cancel()
        flow.idle = asyncio.get_running_loop().call_later(UDP_IDLE, self.drop, flow)

    def drop(self, flow: _UdpFlow) -> None:
        if flow.idle is not None:
            flow.idle.cancel()
        if flow.transport is not None:
            flow.transport.close()
        self.flows.pop(flow.client, None)


class UdpProxy:
    def __init__(self, mapping: PortMapping, target_ip: str):
        self.mapping, self.front = mapping, _UdpFront((target_ip, mapping.container_port))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        v6 = ":" in self.mapping.host_ip
        sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if v6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setblocking(False)
            sock.bind((self.mapping.host_ip, self.mapping.host_port))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortAlreadyAllocated(self.mapping.host_ip, self.mapping.host_port) from None
            raise
        await loop.create_datagram_endpoint(lambda: self.front, sock=sock)

    async def close(self) -> None:
        for flow in list(self.front.flows.values()):
            self.front.drop(flow)
        if self.front.transport is not None:
            self.front.transport.close()


async def start_proxy(mapping: PortMapping, target_ip: str) -> TcpProxy | UdpProxy:
    if mapping.proto == "tcp":
        proxy: TcpProxy | UdpProxy = TcpProxy(mapping, target_ip)
    elif mapping.proto == "udp":
        proxy = UdpProxy(mapping, target_ip)
    else:
        raise SystemError_(f"{mapping.proto} ports can only be published with iptables enabled")
    await proxy.start()
    return proxy
