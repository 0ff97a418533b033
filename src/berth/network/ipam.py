"""IP address management for bridge networks: subnets per network, addresses per endpoint.

Pure: no root, no sockets. The only view of the host is an injectable callable that lists the
networks the host already routes (``host_networks``; :func:`read_host_networks` is the real one,
via pyroute2), so that a dynamically chosen subnet never collides with, say, an installed
Docker's docker0 on 172.17.0.0/16. ``read_host_networks(exclude_ifnames=[br])`` lets the engine
check, right after making a bridge, that no *other* interface took an overlapping subnet
meanwhile (then it calls ``allocate_network(..., exclude=[that subnet])`` for another one).

Engine use::

    ipam = Ipam(pools=parse_address_pools(cfg["default-address-pools"]),
                host_networks=read_host_networks)            # or Ipam.from_dict(saved, ...)
    pool = ipam.allocate_network(net_id, name="mynet", subnet=None, ip_range=None,
                                 gateway=None, aux_addresses={})
    pool.subnet, pool.gateway, pool.ipam_config()            # inspect's IPAM.Config entry
    ip = ipam.allocate_address(net_id)                       # or preferred="172.18.0.9" (--ip)
    ipam.release_address(net_id, ip); ipam.release_network(net_id)
    saved = ipam.to_dict()                                   # JSON-serialisable, persist it

Default bridge: ``parse_bip("172.17.0.1/16")`` gives (subnet, gateway) for ``--bip``; without it
the engine calls ``allocate_network("bridge-id", ...)`` with no subnet and gets the first default
pool that the host does not route.

IPv6 (``--ipv6``): each network may have one IPv6 pool besides its IPv4 one, kept apart::

    pool6 = ipam.allocate_network6(net_id, name="mynet", subnet="fd00:1::/64")   # or None
    ip6 = ipam.allocate_address6(net_id)                     # or preferred="fd00:1::9" (--ip6)
    ipam.network6(net_id); ipam.has_ipv6(net_id)
    ipam.release_address(net_id, ip6)                        # either family, by the address

Without a subnet an IPv6 network gets the next /64 of the ``default-address-pools`` entries
that are IPv6, else of a unique local /48 derived from ``ula_seed`` (dockerd 27+ derives its
/48 from the engine), skipping prefixes the host routes (``host_networks6``).

Behaviour follows libnetwork's default IPAM: the first free address is handed out (network,
broadcast and gateway excluded); a gateway that is not given is the first free address of the
ip-range (or subnet); a static subnet overlapping another network's is refused; dynamic subnets
are carved from the predefined pools in order, skipping allocated and host-routed prefixes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Callable, Iterable, Union

Address = Union[IPv4Address, IPv6Address]
Subnet = Union[IPv4Network, IPv6Network]

from berth.errors import Conflict, Forbidden, InvalidParameter, NotFound, SystemError_


@dataclass(frozen=True)
class PoolSpec:
    """One entry of daemon.json ``default-address-pools``: carve ``base`` into /``size`` subnets."""

    base: Subnet
    size: int


def _default_pools() -> list[PoolSpec]:
    pools = [PoolSpec(IPv4Network(f"172.{n}.0.0/16"), 16) for n in range(17, 32)]
    pools.append(PoolSpec(IPv4Network("192.168.0.0/16"), 20))
    return pools


DEFAULT_POOLS: tuple[PoolSpec, ...] = tuple(_default_pools())


def parse_address_pools(entries: Iterable[Any], *, version: int = 4) -> list[PoolSpec]:
    """daemon.json ``default-address-pools`` ([{"base": "10.10.0.0/16", "size": 24}] or the CLI's
    "base=10.10.0.0/16,size=24" strings) to the PoolSpecs of one IP version; an empty result
    means the defaults (Docker's for IPv4; for IPv6 the caller's unique local /48)."""
    pools: list[PoolSpec] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = dict(part.split("=", 1) for part in entry.split(",") if "=" in part)
        try:
            base = ipaddress.ip_network(str(entry["base"]), strict=False)
            size = int(entry["size"])
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidParameter(f"invalid default address pool at index {index}: {entry!r}") from exc
        if base.version != version:
            continue
        if not base.prefixlen <= size <= base.max_prefixlen:
            raise InvalidParameter(
                f"network at index {index} ({base}) has a smaller prefix (/{base.prefixlen}) "
                f"than the target size of that pool (/{size})"
                if size < base.prefixlen else f"invalid pool size /{size} for {base}")
        pools.append(PoolSpec(base, size))
    if version == 6:
        return pools
    return pools or list(DEFAULT_POOLS)


def ula_pool(seed: str) -> PoolSpec:
    """A unique local /48 (RFC 4193: fd + 40 bits) derived from ``seed``, carved into /64s."""
    digest = hashlib.sha256(seed.encode()).digest()[:5]
    value = (0xFD << 120) | (int.from_bytes(digest, "big") << 80)
    return PoolSpec(IPv6Network((value, 48)), 64)


def parse_bip(bip: str) -> tuple[IPv4Network, IPv4Address]:
    """``--bip 172.17.0.1/16`` to (172.17.0.0/16, 172.17.0.1)."""
    try:
        iface = ipaddress.IPv4Interface(bip)
    except ValueError as exc:
        raise InvalidParameter(f"invalid bip: {bip}") from exc
    return iface.network, iface.ip


def read_host_networks(exclude_ifnames: Iterable[str] = (), family: int = 4) -> list[Any]:
    """IPv4 (``family=6``: IPv6) prefixes the host routes or has addresses in (main table, no
    default route; no loopback, link-local or multicast ones).

    Routes and addresses of the interfaces named in ``exclude_ifnames`` are left out (the
    engine's own bridge, when it checks that no *other* interface overlaps it)."""
    from pyroute2 import IPRoute  # lazy: heavy import, only the daemon needs it

    netlink_family = 2 if family == 4 else 10
    found: set[Any] = set()

    def keep(net: Any) -> None:
        if not (net.is_loopback or net.is_link_local or net.is_multicast):
            found.add(net)

    with IPRoute() as ipr:
        skip: set[int] = set()
        for name in exclude_ifnames:
            skip.update(ipr.link_lookup(ifname=name))
        for route in ipr.route("dump", family=netlink_family):
            length = route.get("dst_len") or 0
            dst = route.get("dst")
            if length and dst and route.get("table") == 254 and route.get("oif") not in skip:
                keep(ipaddress.ip_network(f"{dst}/{length}", strict=False))
        for addr in ipr.get_addr(family=netlink_family):
            ip = addr.get("address")
            if ip and addr.get("index") not in skip:
                keep(ipaddress.ip_network(f"{ip}/{addr['prefixlen']}", strict=False))
    return sorted(found)


def _join_errors(errors: list[str]) -> str:
    return "invalid network config:\n* " + "\n* ".join(errors)


def validate_ipam_config(subnet: str | None, ip_range: str | None = None, gateway: str | None = None,
                         aux_addresses: dict[str, str] | None = None, *, version: int = 4) -> None:
    """Docker's API-side checks of one IPAM.Config entry; raises InvalidParameter with its text.
    ``version``: the pool's IP family (that of the subnet when one is given)."""
    if not subnet:
        if ip_range or gateway or aux_addresses:
            raise InvalidParameter("invalid pool request: subnet is required with ip-range, gateway or aux-address")
        return
    try:
        iface = ipaddress.ip_interface(subnet)
    except ValueError:
        raise InvalidParameter(_join_errors([f"invalid subnet {subnet}: invalid CIDR block notation"]))
    if iface.version != version:
        raise InvalidParameter(f"invalid subnet {subnet}: not an IPv{version} block")
    family = f"IPv{version}"
    net = iface.network
    errors: list[str] = []
    if iface.ip != net.network_address:
        errors.append(f"invalid subnet {subnet}: it should be {net}")
    if ip_range:
        try:
            r_iface = ipaddress.ip_interface(ip_range)
        except ValueError:
            errors.append(f"invalid ip-range {ip_range}: invalid CIDR block notation")
        else:
            if r_iface.version != version:
                errors.append(f"invalid ip-range {ip_range}: parent subnet is an {family} block")
            else:
                if r_iface.network.prefixlen < net.prefixlen:
                    errors.append(f"invalid ip-range {ip_range}: CIDR block is bigger than its parent subnet {net}")
                if r_iface.ip != r_iface.network.network_address:
                    errors.append(f"invalid ip-range {ip_range}: it should be {r_iface.network}")
                if not net.overlaps(r_iface.network):
                    errors.append(f"invalid ip-range {ip_range}: parent subnet {net} doesn't contain ip-range")
    for label, value in ([("gateway", gateway)] if gateway else []) + [
            (f"auxiliary address {k}", v) for k, v in (aux_addresses or {}).items() if v]:
        what = label if label != "gateway" else f"gateway {value}"
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            errors.append(f"invalid {what}: invalid address")
            continue
        if addr.version != version:
            errors.append(f"invalid {what}: parent subnet is an {family} block")
        elif addr not in net:
            errors.append(f"invalid {what}: parent subnet {net} doesn't contain this address")
    if errors:
        raise InvalidParameter(_join_errors(errors))


@dataclass
class NetworkPool:
    """The addresses of one network in one IP family. ``allocated`` holds endpoint addresses
    (not the gateway)."""

    network_id: str
    name: str
    subnet: Subnet
    gateway: Address
    ip_range: Subnet | None = None
    aux_addresses: dict[str, Address] = field(default_factory=dict)
    user_subnet: bool = False
    allocated: set[int] = field(default_factory=set)

    @property
    def version(self) -> int:
        return self.subnet.version

    # ---- views the engine needs -------------------------------------------------------------
    def ipam_config(self) -> dict[str, Any]:
        """The entry of ``IPAM.Config`` in network inspect (Docker's field names)."""
        cfg: dict[str, Any] = {"Subnet": str(self.subnet), "Gateway": str(self.gateway)}
        if self.ip_range is not None:
            cfg["IPRange"] = str(self.ip_range)
        if self.aux_addresses:
            cfg["AuxiliaryAddresses"] = {k: str(v) for k, v in self.aux_addresses.items()}
        return cfg

    def cidr(self, ip: Address | str) -> str:
        """``172.18.0.2`` to ``172.18.0.2/16`` (EndpointSettings.IPAddress + IPPrefixLen)."""
        return f"{ip}/{self.subnet.prefixlen}"

    @property
    def gateway_cidr(self) -> str:
        return self.cidr(self.gateway)

    # ---- address bookkeeping ------------------------------------------------------------------
    def _reserved(self) -> set[int]:
        reserved = {int(self.gateway)} | {int(a) for a in self.aux_addresses.values()}
        if self.version == 6:  # the subnet-router anycast address; IPv6 has no broadcast
            if self.subnet.prefixlen < 127:
                reserved.add(int(self.subnet.network_address))
        elif self.subnet.prefixlen < 31:  # /31 and /32 have no network/broadcast address
            reserved |= {int(self.subnet.network_address), int(self.subnet.broadcast_address)}
        return reserved

    def in_use(self, ip: Address) -> bool:
        return int(ip) in self.allocated or int(ip) in self._reserved()

    def first_free(self) -> Address | None:
        """The lowest address of the ip-range (or subnet) that is neither reserved nor allocated."""
        span = self.ip_range or self.subnet
        taken = self.allocated | self._reserved()
        for value in range(int(span.network_address), int(span.broadcast_address) + 1):
            if value not in taken:
                return ipaddress.ip_address(value) if self.version == 4 else IPv6Address(value)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "NetworkID": self.network_id,
            "Name": self.name,
            "Subnet": str(self.subnet),
            "Gateway": str(self.gateway),
            "IPRange": str(self.ip_range) if self.ip_range else None,
            "AuxAddresses": {k: str(v) for k, v in self.aux_addresses.items()},
            "UserSubnet": self.user_subnet,
            "Allocated": [str(_address(v, self.version)) for v in sorted(self.allocated)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NetworkPool":
        return cls(
            network_id=data["NetworkID"],
            name=data.get("Name", ""),
            subnet=ipaddress.ip_network(data["Subnet"]),
            gateway=ipaddress.ip_address(data["Gateway"]),
            ip_range=ipaddress.ip_network(data["IPRange"]) if data.get("IPRange") else None,
            aux_addresses={k: ipaddress.ip_address(v) for k, v in (data.get("AuxAddresses") or {}).items()},
            user_subnet=bool(data.get("UserSubnet")),
            allocated={int(ipaddress.ip_address(v)) for v in data.get("Allocated", [])},
        )


def _address(value: int, version: int) -> Address:
    return IPv4Address(value) if version == 4 else IPv6Address(value)


def _next_aligned(value: int, size: int, bits: int = 32) -> int:
    """The first address after ``value`` that starts a /size block."""
    block = 1 << (bits - size)
    return (value // block + 1) * block


class Ipam:
    """IPv4 pools (one per network), IPv6 pools (one per IPv6 network) and their addresses for
    every local network. Thread-safe."""

    def __init__(self, pools: Iterable[PoolSpec] | None = None,
                 host_networks: Callable[[], Iterable[IPv4Network]] | None = None, *,
                 pools6: Iterable[PoolSpec] | None = None, ula_seed: str = "berth",
                 host_networks6: Callable[[], Iterable[IPv6Network]] | None = None):
        order = lambda p: (int(p.base.network_address), p.base.prefixlen)  # noqa: E731
        self.pools: list[PoolSpec] = sorted(pools or DEFAULT_POOLS, key=order)
        self.pools6: list[PoolSpec] = sorted(pools6 or [ula_pool(ula_seed)], key=order)
        self._host_networks = host_networks or (lambda: [])
        self._host_networks6 = host_networks6 or (lambda: [])
        self._networks: dict[str, NetworkPool] = {}
        self._networks6: dict[str, NetworkPool] = {}
        self._lock = threading.RLock()

    def _table(self, version: int) -> dict[str, NetworkPool]:
        return self._networks if version == 4 else self._networks6

    # ---- pools --------------------------------------------------------------------------------
    def networks(self) -> list[NetworkPool]:
        """The IPv4 pools."""
        with self._lock:
            return list(self._networks.values())

    def network(self, network_id: str) -> NetworkPool:
        """A network's IPv4 pool (NotFound if it has none)."""
        with self._lock:
            try:
                return self._networks[network_id]
            except KeyError:
                raise NotFound(f"network {network_id} not found") from None

    def network6(self, network_id: str) -> NetworkPool:
        """A network's IPv6 pool (NotFound if it has none)."""
        with self._lock:
            try:
                return self._networks6[network_id]
            except KeyError:
                raise NotFound(f"network {network_id} has no IPv6 pool") from None

    def has_ipv6(self, network_id: str) -> bool:
        with self._lock:
            return network_id in self._networks6

    def _overlapping(self, subnet: Subnet) -> NetworkPool | None:
        for pool in self._table(subnet.version).values():
            if pool.subnet.overlaps(subnet):
                return pool
        return None

    def choose_subnet(self, exclude: Iterable[Subnet] = (), *, version: int = 4) -> Subnet:
        """The first predefined subnet overlapping no network of ours, no host route, nothing in
        ``exclude``. Raises InvalidParameter with Docker's text when all are used."""
        with self._lock:
            host = self._host_networks() if version == 4 else self._host_networks6()
            taken = [p.subnet for p in self._table(version).values()]
            taken += [ipaddress.ip_network(n) for n in host]
            taken += [ipaddress.ip_network(n) for n in exclude]
            taken = [t for t in taken if t.version == version]
            bits = 32 if version == 4 else 128
            for spec in (self.pools if version == 4 else self.pools6):
                start = int(spec.base.network_address)
                end = int(spec.base.broadcast_address)
                while start <= end:
                    candidate = ipaddress.ip_network((start, spec.size)) if version == 4 \
                        else IPv6Network((start, spec.size))
                    clash = next((t for t in taken if t.overlaps(candidate)), None)
                    if clash is None:
                        return candidate
                    # skip past the clashing prefix (or this candidate, whichever ends later)
                    start = _next_aligned(max(int(clash.broadcast_address),
                                              int(candidate.broadcast_address)), spec.size, bits)
        raise InvalidParameter("all predefined address pools have been fully subnetted")

    def allocate_network(self, network_id: str, *, name: str = "", subnet: str | None = None,
                         ip_range: str | None = None, gateway: str | None = None,
                         aux_addresses: dict[str, str] | None = None,
                         exclude: Iterable[IPv4Network] = ()) -> NetworkPool:
        """Reserve an IPv4 subnet for a network (given, or chosen from the default pools,
        skipping ``exclude`` too) and its gateway."""
        return self._allocate(4, network_id, name, subnet, ip_range, gateway, aux_addresses, exclude)

    def allocate_network6(self, network_id: str, *, name: str = "", subnet: str | None = None,
                          ip_range: str | None = None, gateway: str | None = None,
                          aux_addresses: dict[str, str] | None = None) -> NetworkPool:
        """Reserve an IPv6 subnet for a network (given, or the next /64 of the IPv6 pools) and
        its gateway (the first free address, ``::1`` of the subnet, unless given)."""
        return self._allocate(6, network_id, name, subnet, ip_range, gateway, aux_addresses, ())

    def _allocate(self, version: int, network_id: str, name: str, subnet: str | None,
                  ip_range: str | None, gateway: str | None, aux_addresses: dict[str, str] | None,
                  exclude: Iterable[Subnet]) -> NetworkPool:
        validate_ipam_config(subnet, ip_range, gateway, aux_addresses, version=version)
        table = self._table(version)
        with self._lock:
            if network_id in table:
                raise Conflict(f"network {network_id} already has an address pool")
            if subnet:
                net = ipaddress.ip_interface(subnet).network
                clash = self._overlapping(net)
                if clash is not None:
                    raise Forbidden("invalid pool request: Pool overlaps with other one on this address space")
            else:
                net = self.choose_subnet(exclude, version=version)
            rng = ipaddress.ip_interface(ip_range).network if ip_range else None
            if rng is not None and not rng.subnet_of(net):  # type: ignore[arg-type]
                raise InvalidParameter(f"invalid pool request: ip-range {rng} is not inside subnet {net}")
            pool = NetworkPool(network_id=network_id, name=name, subnet=net, gateway=net.network_address,
                               ip_range=rng, user_subnet=bool(subnet))
            for key, value in (aux_addresses or {}).items():
                if value:
                    pool.aux_addresses[key] = ipaddress.ip_address(value)
            if gateway:
                gw = ipaddress.ip_address(gateway)
                if gw in pool.aux_addresses.values() or gw == net.network_address or (
                        version == 4 and net.prefixlen < 31 and gw == net.broadcast_address):
                    raise Forbidden(f"failed to allocate gateway ({gateway}): Address already in use")
            else:
                found = pool.first_free()  # network address stands in as gateway: reserved anyway
                if found is None:
                    raise SystemError_("failed to allocate gateway (): no available addresses on this pool")
                gw = found
            pool.gateway = gw
            table[network_id] = pool
            return pool

    def restore_network(self, pool: NetworkPool) -> None:
        """Put back a pool the engine persisted elsewhere (no overlap check: it was valid)."""
        with self._lock:
            self._table(pool.version)[pool.network_id] = pool

    def release_network(self, network_id: str) -> None:
        """Forget both pools of a network."""
        with self._lock:
            self._networks.pop(network_id, None)
            self._networks6.pop(network_id, None)

    def release_network6(self, network_id: str) -> None:
        with self._lock:
            self._networks6.pop(network_id, None)

    # ---- addresses ----------------------------------------------------------------------------
    def allocate_address(self, network_id: str, preferred: str | None = None) -> IPv4Address:
        """An address for an endpoint: ``preferred`` (``--ip``) if free, else the first free one."""
        return self._allocate_address(self.network(network_id), preferred)  # type: ignore[return-value]

    def allocate_address6(self, network_id: str, preferred: str | None = None) -> IPv6Address:
        """An IPv6 address for an endpoint: ``preferred`` (``--ip6``) if free, else the first
        free one."""
        return self._allocate_address(self.network6(network_id), preferred)  # type: ignore[return-value]

    def _allocate_address(self, pool: NetworkPool, preferred: str | None) -> Address:
        family = f"IPv{pool.version}"
        with self._lock:
            if preferred:
                try:
                    ip = ipaddress.ip_address(preferred)
                    if ip.version != pool.version:
                        raise ValueError(preferred)
                except ValueError:
                    raise InvalidParameter(f"invalid {family} address: {preferred}") from None
                if ip not in pool.subnet:
                    raise InvalidParameter(
                        f"invalid address {ip}: It does not belong to any of this network's subnets")
                if pool.in_use(ip):
                    raise Forbidden("Address already in use")
            else:
                found = pool.first_free()
                if found is None:
                    raise SystemError_(f"no available {family} addresses on this network's address "
                                       f"pools: {pool.name} ({pool.network_id})")
                ip = found
            pool.allocated.add(int(ip))
            return ip

    def release_address(self, network_id: str, address: Address | str) -> None:
        """Give an address (of either family, CIDR or not) back; unknown networks or addresses
        are ignored (idempotent)."""
        ip = ipaddress.ip_address(str(address).split("/")[0])
        with self._lock:
            pool = self._table(ip.version).get(network_id)
            if pool is not None:
                pool.allocated.discard(int(ip))

    # ---- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"Networks": [p.to_dict() for p in self._networks.values()],
                    "Networks6": [p.to_dict() for p in self._networks6.values()]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, pools: Iterable[PoolSpec] | None = None,
                  host_networks: Callable[[], Iterable[IPv4Network]] | None = None) -> "Ipam":
        ipam = cls(pools=pools, host_networks=host_networks)
        for entry in data.get("Networks", []) + data.get("Networks6", []):
            ipam.restore_network(NetworkPool.from_dict(entry))
        return ipam
