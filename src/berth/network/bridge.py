"""Linux bridges and veth endpoints (the data path of Docker's bridge driver), via pyroute2
(``connect``, which runs on every container start, via the faster raw ``rtnl`` client).

Blocking netlink calls in the calling thread's network namespace (the host's, in the daemon).
pyroute2's sync API runs its own event loop, so call these from a worker thread
(``asyncio.to_thread``), never from the daemon's event-loop thread.

Engine use::

    name = DEFAULT_BRIDGE                      # "berth0" for the default "bridge" network
    name = bridge_name(network_id)             # "br-<12 hex>" for user networks (or -o ...name)
    ensure_bridge(name, pool.gateway_cidr, mtu=1500)   # create or adopt; idempotent
    ensure_bridge(name, pool.gateway_cidr, gateway6_cidr=pool6.gateway_cidr)   # dual stack
    ep = connect(name, netns_path, address=pool.cidr(ip), gateway=str(pool.gateway),
                 ifname="eth0", mac=None, mtu=1500, default_route=True,
                 host_ifname=host_veth_name(endpoint_id),
                 address6=pool6.cidr(ip6), gateway6=str(pool6.gateway))   # IPv6: optional
    ep.to_dict()                               # persist; Endpoint.from_dict() after a restart
    disconnect(ep.host_ifname)                 # deletes both veth ends; idempotent
    delete_bridge(name)                        # network rm; idempotent
    list_bridges()                             # startup: find bridges no network owns

``connect`` creates the veth pair with its container end directly inside the target netns
under its final name (no rename dance), sets MAC/MTU/address, brings it up, adds the default
route via the gateway (``default_route=False`` for --internal networks or second networks),
attaches the host end to the bridge and turns hairpin mode on (a container can reach itself
through its own published port). The MAC defaults to Docker's derivation 02:42:<IPv4 bytes>.

Deleting a container's netns (netns.delete) also removes its veth pairs; ``disconnect`` is for
``network disconnect`` on a running container.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Iterator

from contextlib import contextmanager

from berth.errors import Conflict, NotFound, SystemError_
from berth.network import netns, rtnl, sysctl

DEFAULT_BRIDGE = "berth0"
IFNAMSIZ = 15


def bridge_name(network_id: str) -> str:
    """Docker's name for a user network's bridge: ``br-`` + the first 12 hex of the id."""
    return f"br-{network_id[:12]}"


def host_veth_name(endpoint_id: str) -> str:
    """A stable host-side veth name for an endpoint: ``veth`` + 7 hex (Docker: random)."""
    return "veth" + hashlib.sha256(endpoint_id.encode()).hexdigest()[:7]


def mac_from_ip(ip: str | ipaddress.IPv4Address) -> str:
    """Docker's container MAC: 02:42 followed by the four bytes of the IPv4 address."""
    packed = ipaddress.IPv4Address(str(ip).split("/")[0]).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)


def _random_mac() -> str:
    raw = bytearray(secrets.token_bytes(6))
    raw[0] = (raw[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{b:02x}" for b in raw)


@contextmanager
def _iproute() -> Iterator[Any]:
    from pyroute2 import IPRoute  # lazy: heavy import, only the daemon needs it

    with IPRoute() as ipr:
        yield ipr


def _index(ipr: Any, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _netlink_error(exc: Exception) -> int:
    return getattr(exc, "code", None) or getattr(exc, "errno", None) or 0


def link_exists(name: str) -> bool:
    with _iproute() as ipr:
        return _index(ipr, name) is not None


def ensure_bridge(name: str, gateway_cidr: str | None, *, mtu: int = 1500,
                  route_localnet: bool = True, alias: str | None = None,
                  gateway6_cidr: str | None = None) -> int:
    """Create bridge ``name`` (or adopt an existing one), give it ``gateway_cidr``, MTU, up,
    and the interface alias ``alias`` if given (the engine tags its bridges with their owner).
    ``gateway6_cidr``: the IPv6 gateway address too (IPv6 enabled on the bridge, no duplicate
    address detection: the gateway works at once).

    The bridge gets a fixed random MAC at creation: otherwise Linux takes the lowest port MAC,
    and the gateway's MAC would change under the containers' ARP caches as they come and go.
    ``route_localnet`` lets DNAT'ed 127.0.0.1 traffic leave on the bridge (loopback publishing).
    Returns the ifindex.
    """
    if len(name) > IFNAMSIZ:
        raise SystemError_(f"bridge name {name!r} is longer than {IFNAMSIZ} characters")
    with _iproute() as ipr:
        index = _index(ipr, name)
        if index is None:
            try:
                ipr.link("add", ifname=name, kind="bridge", address=_random_mac(), mtu=mtu)
            except Exception as exc:  # a concurrent create is fine
                if _netlink_error(exc) != errno.EEXIST:
                    raise
            index = _index(ipr, name)
            if index is None:
                raise SystemError_(f"could not create bridge {name}")
        link = ipr.get_links(index)[0]
        if link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") != "bridge":
            raise Conflict(f"interface {name} exists and is not a bridge")
        if link.get("IFLA_MTU") != mtu:
            ipr.link("set", index=index, mtu=mtu)
        if alias is not None and link.get("IFLA_IFALIAS") != alias:
            ipr.link("set", index=index, ifalias=alias)
        if gateway_cidr:
            iface = ipaddress.IPv4Interface(gateway_cidr)
            have = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2)}
            if (str(iface.ip), iface.network.prefixlen) not in have:
                ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                         broadcast=str(iface.network.broadcast_address))
        ipr.link("set", index=index, state="up")
    if route_localnet:
        sysctl.write(f"net.ipv4.conf.{name}.route_localnet", 1)
    if gateway6_cidr:
        iface6 = ipaddress.IPv6Interface(gateway6_cidr)
        sysctl.write(f"net.ipv6.conf.{name}.disable_ipv6", 0)
        if gateway6_cidr not in [a for a in bridge_addresses(name, family=6)]:
            with rtnl.Rtnl() as nl:
                try:
                    nl.add_address(index, str(iface6.ip), iface6.network.prefixlen)
                except rtnl.NetlinkError as exc:
                    if exc.errno != errno.EEXIST:
                        raise
    return index


def bridge_addresses(name: str, family: int = 4) -> list[str]:
    """IPv4 (``family=6``: global IPv6) addresses of a link as CIDR strings ([] if it does not
    exist)."""
    with _iproute() as ipr:
        index = _index(ipr, name)
        if index is None:
            return []
        found = [f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"
                 for a in ipr.get_addr(index=index, family=2 if family == 4 else 10)]
    if family == 6:
        found = [str(ipaddress.IPv6Interface(a)) for a in found
                 if not ipaddress.IPv6Interface(a).ip.is_link_local]
    return found


def bridge_ports(name: str) -> list[str]:
    """Names of the interfaces attached to bridge ``name``."""
    with _iproute() as ipr:
        index = _index(ipr, name)
        if index is None:
            return []
        return [link.get("IFLA_IFNAME") for link in ipr.get_links() if link.get("IFLA_MASTER") == index]


def list_bridges() -> list[str]:
    """Names of every bridge on the host (startup reconcile: delete ours that no network owns)."""
    with _iproute() as ipr:
        return sorted(link.get("IFLA_IFNAME") for link in ipr.get_links()
                      if link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "bridge")


def bridge_aliases() -> dict[str, str]:
    """{bridge name: interface alias} of every bridge that has an alias."""
    with _iproute() as ipr:
        return {link.get("IFLA_IFNAME"): link.get("IFLA_IFALIAS") for link in ipr.get_links()
                if link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "bridge"
                and link.get("IFLA_IFALIAS")}


def delete_bridge(name: str) -> None:
    """Delete a bridge (its ports are detached, not deleted). Missing is fine."""
    with _iproute() as ipr:
        index = _index(ipr, name)
        if index is not None:
            try:
                ipr.link("del", index=index)
            except Exception as exc:
                if _netlink_error(exc) != errno.ENODEV:
                    raise


@dataclass
class Endpoint:
    """One container interface: what the engine keeps for NetworkSettings and for teardown."""

    bridge: str
    host_ifname: str
    ifname: str
    address: str          # CIDR, e.g. 172.18.0.2/16
    mac: str
    gateway: str | None
    mtu: int
    default_route: bool
    address6: str = ""    # CIDR, e.g. fd00:1::2/64 (IPv6 networks)
    gateway6: str | None = None

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]

    @property
    def ip6(self) -> str:
        return self.address6.split("/")[0]

    @property
    def prefixlen(self) -> int:
        return int(self.address.split("/")[1])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Endpoint":
        return cls(**data)


def _configure_inside(ifname: str, address: str, gateway: str | None, default_route: bool,
                      address6: str = "", gateway6: str | None = None) -> None:
    """Runs inside the container netns: address(es), up, default route(s) (raw rtnetlink: fast)."""
    iface = ipaddress.IPv4Interface(address)
    with rtnl.Rtnl() as nl:
        try:
            index = rtnl.index_of(ifname)
        except rtnl.NetlinkError:
            raise SystemError_(f"interface {ifname} did not appear in the container netns") from None
        nl.add_address(index, str(iface.ip), iface.network.prefixlen, str(iface.network.broadcast_address))
        if address6:
            iface6 = ipaddress.IPv6Interface(address6)
            nl.add_address(index, str(iface6.ip), iface6.network.prefixlen)
        nl.set_up(index)
        if gateway and default_route:
            nl.replace_default_route(gateway, index)
        if address6 and gateway6 and default_route:
            nl.replace_default_route(gateway6, index)


def _set_hairpin(host_ifname: str) -> None:
    """Hairpin mode on a bridge port (a container reaching itself through its published port)."""
    path = f"/sys/class/net/{host_ifname}/brport/hairpin_mode"
    try:
        with open(path, "w", encoding="ascii") as handle:
            handle.write("1")
    except OSError:  # no sysfs view of this netns: netlink instead
        with _iproute() as ipr:
            ipr.brport("set", index=_index(ipr, host_ifname), mode=1)  # IFLA_BRPORT_MODE


def connect(bridge: str, netns_path: str | os.PathLike[str], *, address: str, gateway: str | None,
            ifname: str = "eth0", mac: str | None = None, mtu: int = 1500, host_ifname: str | None = None,
            default_route: bool = True, hairpin: bool = True, address6: str = "",
            gateway6: str | None = None) -> Endpoint:
    """Plug the netns at ``netns_path`` into ``bridge`` with ``address`` (CIDR) on ``ifname``,
    and ``address6`` (IPv6 CIDR) too when given (its default route via ``gateway6``).

    The hot path of every container start, so it speaks rtnetlink directly (``rtnl``): one
    request makes the veth pair, with the container end in the netns and the host end on the
    bridge and up; three more inside the netns give address, link up and default route."""
    host_ifname = host_ifname or ("veth" + secrets.token_hex(4)[:7])
    mac = mac or mac_from_ip(address)
    try:
        br_index = rtnl.index_of(bridge)
    except rtnl.NetlinkError:
        raise NotFound(f"bridge {bridge} not found") from None
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with rtnl.Rtnl() as nl:
            try:
                nl.add_veth(host_ifname, ifname, peer_netns_fd=fd, peer_mac=mac, mtu=mtu,
                            master=br_index, up=True)
            except rtnl.NetlinkError as exc:
                if exc.errno == errno.EEXIST:
                    raise Conflict(f"interface {host_ifname} or {ifname} in the container already exists") from exc
                raise SystemError_(f"could not create veth {host_ifname}: {exc.strerror}") from exc
            try:
                if hairpin:
                    _set_hairpin(host_ifname)
                netns.run_in(netns_path, _configure_inside, ifname, address, gateway, default_route,
                             address6, gateway6)
            except BaseException:
                nl.delete_link(host_ifname)
                raise
    finally:
        os.close(fd)
    return Endpoint(bridge=bridge, host_ifname=host_ifname, ifname=ifname, address=address, mac=mac,
                    gateway=gateway, mtu=mtu, default_route=bool(gateway and default_route),
                    address6=address6, gateway6=gateway6 if address6 else None)


def _delete_link(ipr: Any, name: str) -> None:
    index = _index(ipr, name)
    if index is not None:
        try:
            ipr.link("del", index=index)
        except Exception as exc:
            if _netlink_error(exc) != errno.ENODEV:
                raise


def disconnect(host_ifname: str) -> None:
    """Delete an endpoint's veth pair by its host end (both ends go). Missing is fine."""
    with _iproute() as ipr:
        _delete_link(ipr, host_ifname)


def _set_default_route(gateway: str | None, ifname: str | None, gateway6: str | None) -> None:
    with _iproute() as ipr:
        for dst, gw, family in (("0.0.0.0/0", gateway, 2), ("::/0", gateway6, 10)):
            if gw is None:
                try:
                    ipr.route("del", dst=dst, family=family)
                except Exception as exc:
                    if _netlink_error(exc) not in (errno.ESRCH, errno.ENOENT):
                        raise
                continue
            index = _index(ipr, ifname or "eth0")
            ipr.route("replace", dst=dst, gateway=gw, oif=index, family=family)


def set_default_route(netns_path: str | os.PathLike[str], gateway: str | None, ifname: str | None = None,
                      gateway6: str | None = None) -> None:
    """Point the container's default routes at ``gateway`` (and ``gateway6``) via ``ifname``
    (None removes one): for the engine when the network that held the default route is
    disconnected."""
    netns.run_in(netns_path, _set_default_route, gateway, ifname, gateway6)


def interfaces_in(netns_path: str | os.PathLike[str], family: int = 4) -> dict[str, list[str]]:
    """{ifname: [CIDR addresses]} inside a netns (inspection, tests); ``family=6``: IPv6 ones."""
    def collect() -> dict[str, list[str]]:
        with _iproute() as ipr:
            names = {link["index"]: link.get("IFLA_IFNAME") for link in ipr.get_links()}
            out: dict[str, list[str]] = {name: [] for name in names.values()}
            for a in ipr.get_addr(family=2 if family == 4 else 10):
                out[names[a["index"]]].append(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}")
            return out
    return netns.run_in(netns_path, collect)
