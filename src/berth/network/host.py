"""The host side of one daemon's bridge networking: its bridges, its containers' netns handles
and veth endpoints, its iptables rules, its userland port proxies, and what dead daemons left.

:class:`HostNetwork` owns that state (the firewall, the lock under which bridges and rules
change, which networks have their bridge and rules, the netns directory, the host-port
allocator, the proxies). The engine keeps the records (networks, sandboxes, IPAM pools) and
hands this class plain data: :class:`BridgeNetwork`, :class:`EndpointPlan`,
:class:`LiveSandbox`, ``ports.PortRequest``/``PortMapping``, ``bridge.Endpoint``.

Host objects are named so that a daemon never touches another's: the default bridge is
``berth0`` for the default exec-root (``/run/berth``) and ``berth-<8 hex of the exec-root>``
otherwise (so test daemons and a real installation never share a bridge); the iptables chain
prefix is ``BERTH`` or ``BE<8 HEX>`` by the same rule. Every bridge a daemon makes carries the
alias ``berth:<daemon pid>:<exec-root>``: a daemon starting up removes the bridges, rules and
netns handles of daemons that died and whose exec-root is gone (crashed test daemons).

Engine use::

    host = HostNetwork(exec_root, ipam, iptables=True, ip_forward=True, on_bridge_up=persist)
    host.warm_sync()                                  # startup
    host.reconcile_sync(wanted, live, unused=[...])   # startup: keep what live containers use
    host.ensure_network_sync(net)                     # bridge + rules, on first use; idempotent
    eps, maps = host.plumb_sync(cid, host.netns_path(cid), plans, requests, name, fresh=True)
    await host.start_proxies(cid, ip, maps, name, endpoint_id)     # --iptables=false only
    host.unplumb_sync(cid, path, eps, gateway_ep, maps, explicit=False)
    host.remove_network_sync(net)
    host.cleanup_sync(networks)                       # stop with no running container

IPv6: a network with ``ipv6`` set has an IPv6 pool in the IPAM too (``ipam.network6``); its
bridge gets the IPv6 gateway, its endpoints an IPv6 address and default route, and its rules
and IPv6 port mappings go to a second firewall on ``ip6tables`` (same chain names), unless
``ip6tables=False``. IPv6 ports on [::] and [::1] are also relayed by a userland proxy, for
the host's own connections over ::1 (see ``proxy``).

Methods named ``*_sync`` block (netlink, iptables, mounts) and belong in worker threads
(``asyncio.to_thread``), never on the daemon's loop: pyroute2's sync API runs a loop of its own.
The proxies run on the daemon's loop.
"""

from __future__ import annotations

import hashlib
import importlib
import ipaddress
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from berth.errors import BerthError, NotFound, SystemError_
from berth.network import bridge as brlib
from berth.network import firewall as fwlib
from berth.network import ipam as ipamlib
from berth.network import netns as nslib
from berth.network import ports as portlib
from berth.network import proxy as proxylib
from berth.network import sysctl

log = logging.getLogger("berth.networks")

DEFAULT_EXEC_ROOT = "/run/berth"
DEFAULT_PREFIX = "BERTH"
OWNER_TAG = "berth:"   # bridge alias: berth:<daemon pid>:<exec-root>


# ---- naming -------------------------------------------------------------------------------------

def _is_default_root(exec_root: str) -> bool:
    return os.path.abspath(exec_root) == DEFAULT_EXEC_ROOT


def _root_tag(exec_root: str) -> str:
    return hashlib.sha256(os.path.abspath(exec_root).encode()).hexdigest()[:8]


def derived_prefix(exec_root: str) -> str | None:
    """The iptables prefix a daemon with this exec-root uses unless told otherwise; None for
    the default exec-root (a real installation: never collected by another daemon)."""
    if _is_default_root(exec_root):
        return None
    return "BE" + _root_tag(exec_root).upper()


def iptables_prefix(exec_root: str) -> str:
    """``BERTH`` for the default exec-root, ``BE<8 HEX of the exec-root>`` otherwise."""
    return derived_prefix(exec_root) or DEFAULT_PREFIX


def default_bridge_name(exec_root: str) -> str:
    """The default network's bridge (unless ``--bridge`` names one): ``berth0`` for the default
    exec-root, ``berth-<8 hex of the exec-root>`` otherwise."""
    return brlib.DEFAULT_BRIDGE if _is_default_root(exec_root) else f"berth-{_root_tag(exec_root)}"


def orphaned(pid: int, exec_root: str, own_exec_root: str) -> bool:
    """A bridge tag's daemon is gone for good: its process is dead and its exec-root was
    removed (all but netns handles an unclean stop left mounted), as test harnesses do."""
    if os.path.abspath(exec_root) in (os.path.abspath(own_exec_root), DEFAULT_EXEC_ROOT):
        return False
    if os.path.exists(f"/proc/{pid}"):
        return False
    if os.path.isdir(exec_root):
        try:
            if set(os.listdir(exec_root)) - {"netns"}:
                return False
        except OSError:
            return False
    return True


def connectivity_error(endpoint_name: str, endpoint_id: str, exc: BerthError) -> SystemError_:
    """Docker's error for a published port that cannot be had."""
    return SystemError_(f"driver failed programming external connectivity on endpoint "
                        f"{endpoint_name} ({endpoint_id}): {exc.message}")


# ---- what the engine hands over -------------------------------------------------------------------

@dataclass
class BridgeNetwork:
    """One bridge network, as the host side needs it. ``id`` keys the network's IPAM pool (its
    subnet and gateway) and this host's record of it. ``owns_bridge`` is set when this host
    makes the bridge (the engine keeps it: an adopted bridge is never deleted)."""

    id: str
    name: str
    bridge: str
    mtu: int = 1500
    internal: bool = False
    icc: bool = True
    masquerade: bool = True
    owns_bridge: bool = True
    default: bool = False   # the default bridge: subnet from --bip/--fixed-cidr or its address
    ipv6: bool = False      # an IPv6 pool too (the default bridge: from --fixed-cidr-v6)


@dataclass(frozen=True)
class EndpointPlan:
    """One endpoint to plug into a container's netns (its address already allocated)."""

    endpoint_id: str
    bridge: str
    address: str              # CIDR
    gateway: str | None       # None: no route out (--internal)
    ifname: str
    mac: str
    mtu: int
    host_ifname: str
    default_route: bool       # the container's way out: its ports are published here
    address6: str = ""        # IPv6 CIDR on IPv6 networks
    gateway6: str | None = None

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]


@dataclass(frozen=True)
class LiveSandbox:
    """What a running container has on the host (for the startup reconcile)."""

    netns: str
    host_ifnames: Sequence[str] = ()
    gateway: brlib.Endpoint | None = None       # the endpoint its ports are published on
    mappings: Sequence[portlib.PortMapping] = ()


class HostNetwork:
    """Bridges, endpoints, rules and proxies of one daemon (its state, its lock).

    ``ipam`` is the engine's address bookkeeping: the host reads a network's subnet and gateway
    from it and, when a bridge's subnet was chosen from the pools and another interface took an
    overlapping one meanwhile, chooses another there. ``on_bridge_up(net)`` is called (in the
    worker thread, under the lock) once a bridge is up with its final subnet: the engine
    persists the pool. ``bip``/``fixed_cidr`` are the daemon's ``--bip``/``--fixed-cidr``, for
    the default bridge. ``prefix`` overrides the derived iptables prefix.
    """

    def __init__(self, exec_root: str, ipam: ipamlib.Ipam, *, iptables: bool = True,
                 ip_forward: bool = True, prefix: str | None = None, bip: str = "",
                 fixed_cidr: str | None = None, ip6tables: bool = True,
                 fixed_cidr_v6: str | None = None,
                 on_bridge_up: Callable[[BridgeNetwork], None] | None = None):
        self.exec_root = os.path.abspath(exec_root)
        self.netns_dir = os.path.join(self.exec_root, "netns")
        self.ipam = ipam
        self.ip_forward = ip_forward
        self.bip = bip
        self.fixed_cidr = fixed_cidr
        self.fixed_cidr_v6 = fixed_cidr_v6
        self.on_bridge_up = on_bridge_up
        self.prefix = prefix or iptables_prefix(self.exec_root)
        self.firewall: fwlib.Firewall | None = None
        self.firewall6: fwlib.Firewall | None = None
        if iptables:
            if fwlib.iptables_available():
                self.firewall = fwlib.Firewall(self.prefix)
            else:
                log.warning("iptables is not installed: published ports and NAT are unavailable")
            if ip6tables and fwlib.iptables_available("ip6tables"):
                self.firewall6 = fwlib.Firewall(self.prefix, family=6)
        self.ports = portlib.PortAllocator()
        self._lock = threading.RLock()         # bridges and rules change under it
        self._ready: set[str] = set()          # network ids whose bridge and rules exist
        self._base_ready = False
        self._base6_ready = False
        self._ip6_forward_ready = False
        self._netns_dir_ready = False
        self._touched = False                  # anything made on the host this run
        self._proxies: dict[str, list[Any]] = {}   # --iptables=false: userland proxies per owner

    # ---- state ------------------------------------------------------------------------------------
    @property
    def touched(self) -> bool:
        """Whether this daemon made anything on the host this run (then stop cleans up)."""
        return self._touched

    def ready(self, network_id: str) -> bool:
        """The network's bridge and rules exist (made or checked this run)."""
        return network_id in self._ready

    def netns_path(self, name: str) -> str:
        """Where a container's netns handle lives."""
        return os.path.join(self.netns_dir, name)

    # ---- pure rule planning -----------------------------------------------------------------------
    def network_rules(self, net: BridgeNetwork) -> list[fwlib.Rule]:
        """The iptables rules of one bridge network (its subnet from IPAM)."""
        assert self.firewall is not None
        pool = self.ipam.network(net.id)
        return self.firewall.network_rules(net.bridge, str(pool.subnet), internal=net.internal,
                                           icc=net.icc, masquerade=net.masquerade)

    def network_rules6(self, net: BridgeNetwork) -> list[fwlib.Rule]:
        """The ip6tables rules of an IPv6 network ([] without IPv6 or an IPv6 firewall)."""
        if self.firewall6 is None or not net.ipv6 or not self.ipam.has_ipv6(net.id):
            return []
        pool = self.ipam.network6(net.id)
        return self.firewall6.network_rules(net.bridge, str(pool.subnet), internal=net.internal,
                                            icc=net.icc, masquerade=net.masquerade)

    def port_rules(self, sandbox: LiveSandbox) -> list[fwlib.Rule]:
        """The iptables rules of a container's published IPv4 ports (none without a firewall)."""
        ep = sandbox.gateway
        if self.firewall is None or ep is None or not sandbox.mappings:
            return []
        return [r for m in sandbox.mappings if not portlib.is_ipv6(m.host_ip)
                for r in self.firewall.port_rules(ep.bridge, ep.ip, m)]

    def port_rules6(self, sandbox: LiveSandbox) -> list[fwlib.Rule]:
        """The ip6tables rules of a container's published IPv6 ports (to its IPv6 address)."""
        ep = sandbox.gateway
        if self.firewall6 is None or ep is None or not ep.address6 or not sandbox.mappings:
            return []
        return [r for m in sandbox.mappings if portlib.is_ipv6(m.host_ip)
                for r in self.firewall6.port_rules(ep.bridge, ep.ip6, m)]

    # ---- daemon start / stop ----------------------------------------------------------------------
    def warm_sync(self) -> None:
        """Import pyroute2 now, not inside the first container start; enable IPv4 forwarding."""
        importlib.import_module("pyroute2")
        if self.ip_forward:
            try:
                sysctl.enable_ip_forward()
            except OSError as exc:
                log.warning("could not enable IPv4 forwarding: %s", exc)

    def collect_orphans_sync(self) -> list[str]:
        """Remove the bridges, rules and netns handles of daemons that died and whose exec-root
        is gone (crashed test daemons); returns the exec-roots collected."""
        roots: dict[str, list[str]] = {}
        for name, alias in brlib.bridge_aliases().items():
            if not alias.startswith(OWNER_TAG):
                continue
            pid, _, exec_root = alias[len(OWNER_TAG):].partition(":")
            if pid.isdigit() and exec_root and orphaned(int(pid), exec_root, self.exec_root):
                roots.setdefault(exec_root, []).append(name)
        for exec_root, bridges in roots.items():
            log.info("removing what a dead daemon (exec-root %s) left: %s", exec_root, ", ".join(bridges))
            netns_dir = os.path.join(exec_root, "netns")
            try:
                nslib.release_dir(netns_dir)
                for path in (netns_dir, exec_root):
                    if os.path.isdir(path) and not os.listdir(path):
                        os.rmdir(path)
            except OSError as exc:
                log.warning("netns handles under %s: %s", netns_dir, exc)
            for name in bridges:
                brlib.delete_bridge(name)
            prefix = derived_prefix(exec_root)
            if prefix and self.firewall is not None:
                fwlib.Firewall(prefix, iptables=self.firewall.iptables).cleanup_all()
            if prefix and self.firewall6 is not None:
                fwlib.Firewall(prefix, iptables=self.firewall6.iptables, family=6).cleanup_all()
        return list(roots)

    def reconcile_sync(self, wanted: Sequence[BridgeNetwork], live: Sequence[LiveSandbox],
                       unused: Iterable[BridgeNetwork] = ()) -> None:
        """After a (re)start: keep what running containers use, remove what a crash left.

        ``wanted``: the networks whose bridges must exist (user networks, and networks live
        containers are on); ``live``: the running containers' sandboxes; ``unused``: bridges no
        container needs now (the default bridge): deleted if ours, made again on first use.
        """
        try:
            self.collect_orphans_sync()
        except Exception:  # noqa: BLE001 - other daemons' leftovers must not stop this one
            log.exception("collecting leftovers of dead daemons")
        live_paths = {os.path.abspath(sb.netns) for sb in live}
        for entry in nslib.list_dir(self.netns_dir):
            if os.path.abspath(entry) not in live_paths:
                self._touched = True
                try:
                    nslib.delete(entry)
                except OSError as exc:
                    log.warning("removing stale netns %s: %s", entry, exc)
        with self._lock:
            for net in unused:
                if net.owns_bridge and brlib.link_exists(net.bridge):
                    brlib.delete_bridge(net.bridge)   # a crash left it; made again on first use
                    self._touched = True
            for net in wanted:
                try:
                    self._bridge_up(net)
                except BerthError as exc:
                    log.warning("network %s: %s", net.name, exc.message)
            live_ifnames = {name for sb in live for name in sb.host_ifnames}
            for net in wanted:
                for port in brlib.bridge_ports(net.bridge):
                    if port and port.startswith("veth") and port not in live_ifnames:
                        brlib.disconnect(port)
            if self.firewall is not None:
                if wanted:
                    rules = list(self.firewall.base_rules())
                    for net in wanted:
                        if net.id in self._ready:
                            rules += self.network_rules(net)
                    for sb in live:
                        rules += self.port_rules(sb)
                    removed = self.firewall.reconcile(rules)
                    if removed:
                        log.info("removed %d stale iptables rules", removed)
                    self._base_ready = True
                    self._touched = True
                else:
                    self.firewall.cleanup_all()
            if self.firewall6 is not None:
                wanted6 = [net for net in wanted if net.ipv6 and net.id in self._ready]
                if wanted6:
                    rules = list(self.firewall6.base_rules())
                    for net in wanted6:
                        rules += self.network_rules6(net)
                    for sb in live:
                        rules += self.port_rules6(sb)
                    removed = self.firewall6.reconcile(rules)
                    if removed:
                        log.info("removed %d stale ip6tables rules", removed)
                    self._base6_ready = True
                    self._touched = True
                else:
                    self.firewall6.cleanup_all()

    def cleanup_sync(self, networks: Iterable[BridgeNetwork]) -> None:
        """Daemon stop with no running container: delete the bridges of ``networks`` that are
        ours, every rule of this prefix, and the netns directory's mount."""
        with self._lock:
            for net in networks:
                if net.bridge and net.owns_bridge:
                    try:
                        brlib.delete_bridge(net.bridge)
                    except Exception as exc:  # noqa: BLE001
                        log.warning("deleting bridge %s: %s", net.bridge, exc)
            for firewall in (self.firewall, self.firewall6):
                if firewall is not None:
                    try:
                        firewall.cleanup_all()
                    except BerthError as exc:
                        log.warning("removing %s chains: %s", firewall.iptables, exc.message)
            try:
                nslib.release_dir(self.netns_dir)
            except OSError as exc:
                log.warning("releasing %s: %s", self.netns_dir, exc)
            self._ready.clear()
            self._base_ready = self._base6_ready = False

    # ---- networks ---------------------------------------------------------------------------------
    def bridge_exists_sync(self, name: str) -> bool:
        return brlib.link_exists(name)

    def ensure_network_sync(self, net: BridgeNetwork) -> None:
        """The network's bridge and rules (and our base chains), unless already made this run."""
        with self._lock:
            if net.id in self._ready:
                return
            self._ensure_base()
            self._bridge_up(net)
            if self.firewall is not None:
                self.firewall.add(self.network_rules(net))
            rules6 = self.network_rules6(net)
            if rules6:
                self._ensure_base6()
                assert self.firewall6 is not None
                self.firewall6.add(rules6)

    def remove_network_sync(self, net: BridgeNetwork) -> None:
        """The network's rules, and its bridge if ours."""
        with self._lock:
            if self.firewall is not None and net.id in self._ready:
                try:
                    self.firewall.remove(self.network_rules(net))
                except NotFound:
                    pass
            if self.firewall6 is not None and net.id in self._ready:
                try:
                    self.firewall6.remove(self.network_rules6(net))
                except NotFound:
                    pass
            if net.owns_bridge:
                brlib.delete_bridge(net.bridge)
            self._ready.discard(net.id)

    def _ensure_base(self) -> None:
        if self.firewall is not None and not self._base_ready:
            self.firewall.setup()
            self._base_ready = True

    def _ensure_base6(self) -> None:
        """Our ip6tables chains: made with the first IPv6 network, not before."""
        if self.firewall6 is not None and not self._base6_ready:
            self.firewall6.setup()
            self._base6_ready = True

    def _default_pool6(self, net: BridgeNetwork) -> None:
        """The default bridge's IPv6 pool: ``--fixed-cidr-v6`` (gateway its ::1), else one
        from the IPv6 pools; none without ``--ipv6``."""
        have = self.ipam.network6(net.id) if self.ipam.has_ipv6(net.id) else None
        if not net.ipv6:
            if have is not None:
                self.ipam.release_network6(net.id)
            return
        if self.fixed_cidr_v6:
            subnet = ipaddress.IPv6Network(self.fixed_cidr_v6, strict=False)
            if have is not None and have.subnet == subnet:
                return
            if have is not None:
                self.ipam.release_network6(net.id)
            self.ipam.allocate_network6(net.id, name=net.name, subnet=str(subnet))
        elif have is None:
            self.ipam.allocate_network6(net.id, name=net.name)

    def _default_pool(self, net: BridgeNetwork) -> bool:
        """Choose the default bridge's subnet; True if it was picked from the pools."""
        try:
            pool = self.ipam.network(net.id)
        except NotFound:
            pool = None
        if self.bip:
            subnet, gateway = ipamlib.parse_bip(self.bip)
        else:
            existing = [a for a in brlib.bridge_addresses(net.bridge)]
            if existing:
                iface = ipaddress.IPv4Interface(existing[0])
                subnet, gateway = iface.network, iface.ip
            elif pool is not None and pool.allocated:
                return not pool.user_subnet
            else:
                if pool is not None:
                    self.ipam.release_network(net.id)
                self.ipam.allocate_network(net.id, name=net.name, ip_range=None)
                return True
        if pool is not None and pool.subnet == subnet and pool.gateway == gateway:
            return False
        if pool is not None:
            self.ipam.release_network(net.id)
        self.ipam.allocate_network(net.id, name=net.name, subnet=str(subnet), gateway=str(gateway),
                                   ip_range=self.fixed_cidr)
        return False

    def _bridge_up(self, net: BridgeNetwork) -> None:
        """Make the bridge of ``net`` (and, if it chose its subnet, check no other interface
        took an overlapping one meanwhile: another daemon starting at the same moment)."""
        self._touched = True
        dynamic = self._default_pool(net) if net.default else \
            not self.ipam.network(net.id).user_subnet
        if net.default:
            self._default_pool6(net)
        gateway6 = self.ipam.network6(net.id).gateway_cidr if net.ipv6 and self.ipam.has_ipv6(net.id) \
            else None
        if gateway6 and self.ip_forward and not self._ip6_forward_ready:
            try:
                sysctl.enable_ipv6_forward()
            except OSError as exc:
                log.warning("could not enable IPv6 forwarding: %s", exc)
            self._ip6_forward_ready = True
        for _attempt in range(8):
            pool = self.ipam.network(net.id)
            existed = brlib.link_exists(net.bridge)
            if not existed:
                net.owns_bridge = True
            brlib.ensure_bridge(net.bridge, pool.gateway_cidr, mtu=net.mtu,
                                alias=f"{OWNER_TAG}{os.getpid()}:{self.exec_root}",
                                gateway6_cidr=gateway6)
            if existed or not dynamic:
                break
            others = ipamlib.read_host_networks(exclude_ifnames=[net.bridge])
            clash = next((o for o in others if o.overlaps(pool.subnet)), None)
            if clash is None:
                break
            log.info("subnet %s of %s overlaps %s on the host: choosing another", pool.subnet,
                     net.name, clash)
            brlib.delete_bridge(net.bridge)
            self.ipam.release_network(net.id)
            self.ipam.allocate_network(net.id, name=net.name, exclude=[clash, pool.subnet])
        if self.on_bridge_up is not None:
            self.on_bridge_up(net)
        self._ready.add(net.id)

    # ---- containers -------------------------------------------------------------------------------
    def is_netns(self, path: str) -> bool:
        """``path`` is a live netns handle (one ioctl: fine on the loop)."""
        return nslib.is_netns(path)

    def _prepare_netns_dir(self) -> None:
        if not self._netns_dir_ready:
            nslib.prepare_dir(self.netns_dir)
            self._netns_dir_ready = True
            self._touched = True

    def plumb_sync(self, owner: str, netns_path: str, endpoints: Sequence[EndpointPlan],
                   requests: Sequence[portlib.PortRequest], endpoint_name: str, *,
                   fresh: bool) -> tuple[list[brlib.Endpoint], list[portlib.PortMapping]]:
        """Make the netns (if ``fresh``), plug every endpoint, publish ``requests`` on the
        endpoint with the default route. All or nothing: on error what was done is undone."""
        if fresh:
            with self._lock:
                self._prepare_netns_dir()
            if os.path.lexists(netns_path):
                nslib.delete(netns_path)
            nslib.create(netns_path)
        gateway = next((p for p in endpoints if p.default_route), None)
        done: list[brlib.Endpoint] = []
        mappings: list[portlib.PortMapping] = []
        try:
            for plan in endpoints:
                done.append(brlib.connect(
                    plan.bridge, netns_path, address=plan.address, gateway=plan.gateway,
                    ifname=plan.ifname, mac=plan.mac, mtu=plan.mtu,
                    host_ifname=plan.host_ifname, default_route=plan.default_route,
                    address6=plan.address6, gateway6=plan.gateway6))
            if requests and gateway is not None:
                mappings = self._publish(owner, gateway.bridge, gateway.ip, requests, endpoint_name,
                                         gateway.endpoint_id, ip6=gateway.address6.split("/")[0])
        except BaseException:
            for ep in done:
                try:
                    brlib.disconnect(ep.host_ifname)
                except Exception:  # noqa: BLE001
                    log.exception("rollback of %s", ep.host_ifname)
            if fresh:
                nslib.delete(netns_path)
            raise
        return done, mappings

    def _publish(self, owner: str, bridge: str, ip: str, requests: Sequence[portlib.PortRequest],
                 endpoint_name: str, endpoint_id: str, ip6: str = "") -> list[portlib.PortMapping]:
        """Host ports for ``requests`` and their rules. A request for :: that follows one
        for 0.0.0.0 of the same container port and an ephemeral host port gets the same host
        port (dockerd publishes -p 80 on both families with one port)."""
        mappings: list[portlib.PortMapping] = []
        try:
            for request in requests:
                if portlib.is_ipv6(request.host_ip) and not request.host_port:
                    twin = next((m for m in mappings if m.host_ip == portlib.ANY_IP
                                 and m.container_port == request.container_port
                                 and m.proto == request.proto
                                 and request.host_ip == portlib.ANY_IP6), None)
                    if twin is not None:
                        request = portlib.PortRequest(request.proto, request.container_port,
                                                      request.host_ip, twin.host_port)
                mappings.append(self.ports.allocate(request, owner=owner))
            self._add_port_rules(bridge, ip, ip6, mappings)
        except BaseException as exc:
            for m in mappings:
                self.ports.release(m)
            if isinstance(exc, portlib.PortAlreadyAllocated):
                raise connectivity_error(endpoint_name, endpoint_id, exc) from None
            raise
        return mappings

    def _add_port_rules(self, bridge: str, ip: str, ip6: str,
                        mappings: Sequence[portlib.PortMapping]) -> None:
        v4 = [m for m in mappings if not portlib.is_ipv6(m.host_ip)]
        v6 = [m for m in mappings if portlib.is_ipv6(m.host_ip)]
        if self.firewall is not None and v4:
            self.firewall.add_ports(bridge, ip, v4)
        if self.firewall6 is not None and v6 and ip6:
            self._ensure_base6()
            self.firewall6.add_ports(bridge, ip6, v6)

    def _unpublish(self, bridge: str, ip: str, mappings: Sequence[portlib.PortMapping],
                   release: bool = True, ip6: str = "") -> None:
        try:
            v4 = [m for m in mappings if not portlib.is_ipv6(m.host_ip)]
            v6 = [m for m in mappings if portlib.is_ipv6(m.host_ip)]
            if self.firewall is not None and v4:
                self.firewall.remove_ports(bridge, ip, v4)
            if self.firewall6 is not None and v6 and ip6:
                self.firewall6.remove_ports(bridge, ip6, v6)
        finally:
            if release:
                for m in mappings:
                    self.ports.release(m)

    def unplumb_sync(self, owner: str, netns_path: str, endpoints: Sequence[brlib.Endpoint],
                     gateway: brlib.Endpoint | None, mappings: Sequence[portlib.PortMapping], *,
                     explicit: bool) -> None:
        """A container stops: its port rules and ports go, and its netns handle (which takes
        its veths along). ``explicit``: other containers share the netns, so the veths are
        deleted one by one (the netns lives on while they run)."""
        if gateway is not None:
            try:
                self._unpublish(gateway.bridge, gateway.ip, mappings, ip6=gateway.ip6)
            except BerthError as exc:
                log.warning("removing port rules of %s: %s", owner[:12], exc.message)
        else:
            for m in mappings:
                self.ports.release(m)
        if explicit:
            for ep in endpoints:
                brlib.disconnect(ep.host_ifname)
        if netns_path:
            nslib.delete(netns_path)

    def disconnect_sync(self, netns_path: str, endpoint: brlib.Endpoint | None, *,
                        was_gateway: bool, mappings: Sequence[portlib.PortMapping] = (),
                        successor: brlib.Endpoint | None = None) -> None:
        """A running container leaves one network. If that endpoint had the default route and
        the published ports (``was_gateway``), ``successor`` (if any) takes both over, keeping
        the host ports; without one the ports are released."""
        if endpoint is not None:
            if was_gateway:
                self._unpublish(endpoint.bridge, endpoint.ip, mappings, release=successor is None,
                                ip6=endpoint.ip6)
            brlib.disconnect(endpoint.host_ifname)
        if was_gateway:
            if successor is not None:
                brlib.set_default_route(netns_path, successor.gateway, successor.ifname,
                                        successor.gateway6 if successor.address6 else None)
                if mappings:
                    self._add_port_rules(successor.bridge, successor.ip, successor.ip6, mappings)
            else:
                brlib.set_default_route(netns_path, None)

    def reserve_ports(self, owner: str, mappings: Iterable[portlib.PortMapping]) -> None:
        """After a daemon restart: the host ports a running container still holds."""
        for m in mappings:
            self.ports.reserve(m.proto, m.host_ip, m.host_port, owner=owner)

    def release_ports(self, owner: str) -> None:
        self.ports.release_owner(owner)

    # ---- userland proxies (--iptables=false), on the daemon's loop --------------------------------
    def needs_proxy(self, mapping: portlib.PortMapping, ip6: str = "") -> bool:
        """A published port the kernel rules do not (fully) serve: every port without
        iptables; IPv6 ports on [::] and [::1] (the host's own ::1 connections), and IPv6
        ports of a container without an IPv6 address or without ip6tables."""
        if not portlib.is_ipv6(mapping.host_ip):
            return self.firewall is None
        if self.firewall6 is None or not ip6:
            return True
        addr = ipaddress.IPv6Address(mapping.host_ip)
        return addr.is_unspecified or addr.is_loopback

    async def start_proxies(self, owner: str, ip: str, mappings: Sequence[portlib.PortMapping],
                            endpoint_name: str, endpoint_id: str, ip6: str = "") -> None:
        """Relay the published ports the kernel rules do not serve (``needs_proxy``) to the
        container (``ip``, or ``ip6`` for IPv6 ports when it has one) in the daemon:
        docker-proxy's job."""
        wanted = [m for m in mappings if self.needs_proxy(m, ip6)]
        if not wanted:
            return
        started: list[Any] = []
        try:
            for mapping in wanted:
                target = ip6 if portlib.is_ipv6(mapping.host_ip) and ip6 else ip
                started.append(await proxylib.start_proxy(mapping, target))
        except portlib.PortAlreadyAllocated as exc:
            for proxy in started:
                await proxy.close()
            raise connectivity_error(endpoint_name, endpoint_id, exc) from None
        except BaseException:
            for proxy in started:
                await proxy.close()
            raise
        self._proxies[owner] = started

    async def stop_proxies(self, owner: str) -> None:
        for proxy in self._proxies.pop(owner, []):
            try:
                await proxy.close()
            except Exception:  # noqa: BLE001
                log.exception("closing a port proxy of %s", owner[:12])
