"""A minimal rtnetlink client for the container-start hot path. Pure stdlib (socket + struct).

pyroute2 (used everywhere else in this package) costs 0.3-0.7 ms per request and more to open
and close its socket wrapper; a container start on a bridge needs six requests (veth pair,
then address, link up and default route inside the netns). Here each is one ``sendto`` and one
``recv`` of an ACK (~20-50 us), which keeps the bridge network's cost per ``docker run`` small.

Only what ``bridge.connect`` needs::

    with Rtnl() as nl:                         # in the calling thread's netns
        nl.add_veth("vethab12cd3", "eth0", peer_netns_fd=fd, peer_mac="02:42:..", mtu=1500,
                    master=bridge_index, up=True)
        nl.add_address(index, "172.18.0.2", 16, broadcast="172.18.255.255")
        nl.set_up(index)
        nl.replace_default_route("172.18.0.1", index)
        nl.add_address(index, "fd00:1::2", 64)               # IPv6: no DAD (IFA_F_NODAD)
        nl.replace_default_route("fd00:1::1", index)

Errors raise :class:`NetlinkError` (an OSError with the kernel's errno).
"""

from __future__ import annotations

import errno as errnos
import ipaddress
import os
import socket
import struct
from typing import Iterable

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_REPLACE = 0x1, 0x4, 0x200, 0x400, 0x100
NLMSG_ERROR = 2
IFF_UP = 0x1

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 4, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
IFA_F_NODAD = 0x02
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
NLA_F_NESTED = 0x8000

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")


class NetlinkError(OSError):
    pass


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _nested(kind: int, parts: Iterable[bytes]) -> bytes:
    return _attr(kind | NLA_F_NESTED, b"".join(parts))


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


def _mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.replace("-", ":").split(":"))


def _string(text: str) -> bytes:
    return text.encode() + b"\0"


class Rtnl:
    """One NETLINK_ROUTE socket of the calling thread's network namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, kind: int, flags: int, body: bytes) -> None:
        """Send one request and wait for its ACK; NetlinkError on a negative one."""
        self._seq += 1
        seq = self._seq
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0)
        self.sock.send(header + body)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                length, mtype, _flags, mseq, _pid = _NLMSGHDR.unpack_from(data, offset)
                if mtype == NLMSG_ERROR and mseq == seq:
                    code = -struct.unpack_from("=i", data, offset + _NLMSGHDR.size)[0]
                    if code:
                        raise NetlinkError(code, os.strerror(code))
                    return
                offset += max((length + 3) & ~3, _NLMSGHDR.size)

    # ---- links ----------------------------------------------------------------------------
    def add_veth(self, name: str, peer: str, *, peer_netns_fd: int | None = None,
                 peer_mac: str | None = None, mtu: int = 1500, master: int | None = None,
                 up: bool = False) -> None:
        """A veth pair: ``name`` here (optionally enslaved to ``master`` and up), ``peer``
        created directly in the namespace of ``peer_netns_fd`` (down, no address)."""
        peer_attrs = [_attr(IFLA_IFNAME, _string(peer)), _attr(IFLA_MTU, struct.pack("=I", mtu))]
        if peer_netns_fd is not None:
            peer_attrs.append(_attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd)))
        if peer_mac:
            peer_attrs.append(_attr(IFLA_ADDRESS, _mac(peer_mac)))
        info = _nested(IFLA_LINKINFO, [
            _attr(IFLA_INFO_KIND, _string("veth")),
            _nested(IFLA_INFO_DATA, [_nested(VETH_INFO_PEER, [_ifinfo(), *peer_attrs])]),
        ])
        attrs = [_attr(IFLA_IFNAME, _string(name)), _attr(IFLA_MTU, struct.pack("=I", mtu))]
        if master is not None:
            attrs.append(_attr(IFLA_MASTER, struct.pack("=I", master)))
        flags = IFF_UP if up else 0
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                     _ifinfo(0, flags, flags) + b"".join(attrs) + info)

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, 0, _ifinfo(index, IFF_UP, IFF_UP))

    def delete_link(self, name: str) -> None:
        """Delete a link by name (a veth takes its peer along); missing is fine."""
        try:
            self.request(RTM_DELLINK, 0, _ifinfo() + _attr(IFLA_IFNAME, _string(name)))
        except NetlinkError as exc:
            if exc.errno != errnos.ENODEV:
                raise

    # ---- addresses and routes -------------------------------------------------------------
    def add_address(self, index: int, ip: str, prefixlen: int, broadcast: str | None = None) -> None:
        """An IPv4 or IPv6 address; an IPv6 one skips duplicate address detection, so it is
        usable at once (as dockerd's container addresses are)."""
        addr = ipaddress.ip_address(ip)
        if addr.version == 6:
            attrs = [_attr(IFA_ADDRESS, addr.packed)]
            header = _IFADDRMSG.pack(socket.AF_INET6, prefixlen, IFA_F_NODAD, RT_SCOPE_UNIVERSE, index)
        else:
            attrs = [_attr(IFA_LOCAL, addr.packed), _attr(IFA_ADDRESS, addr.packed)]
            if broadcast:
                attrs.append(_attr(IFA_BROADCAST, ipaddress.IPv4Address(broadcast).packed))
            header = _IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, header + b"".join(attrs))

    def replace_default_route(self, gateway: str, index: int) -> None:
        """The default route (of the gateway's family) via ``gateway`` on link ``index``."""
        addr = ipaddress.ip_address(gateway)
        family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
        body = _RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                           RTN_UNICAST, 0)
        body += _attr(RTA_GATEWAY, addr.packed)
        body += _attr(RTA_OIF, struct.pack("=I", index))
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body)


def index_of(name: str) -> int:
    """ifindex of ``name`` in the calling thread's netns (ENODEV as NetlinkError)."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise NetlinkError(errnos.ENODEV, f"no such interface: {name}") from None
