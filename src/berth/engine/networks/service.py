"""Networks: the predefined ``bridge``/``host``/``none``, user-defined bridge networks, and each
container's network sandbox (its netns, veth endpoints, published ports and DNS names).

State: SQLite tables ``networks`` (one JSON document per network, with its address pool) and
``network_sandboxes`` (one per container that has run: its live endpoints and ports, and the
MAC addresses the user asked for). IPAM state is the pools in the network documents plus the
endpoint addresses of live sandboxes; both are persisted on every change.

The host side (bridges, veths, netns handles, iptables rules, port proxies) is
``berth.network.host.HostNetwork``: this service holds one and translates its records into its
calls. Host objects are named so that a daemon never touches another's: the default bridge is
``--bridge`` if given, else ``berth0`` for the default exec-root and ``berth-<8 hex of the
exec-root>`` otherwise (so test daemons and a real installation never share a bridge); the
iptables chain prefix is ``BERTH`` or ``BE<8 HEX>`` by the same rule. For tests,
``BERTH_IPTABLES_PREFIX`` overrides the prefix and ``BERTH_DNS_UPSTREAMS`` (``ip:port,...``)
the embedded resolver's upstreams.

Collaborators: the daemon config, the store, the event bus, the exec-root, and the container
records (``records.ContainerRecords``: get, all, save, lock).

Threads: every netlink/iptables/netns call runs in a worker thread (pyroute2's sync API runs
its own loop); the DNS server and all bookkeeping run on the daemon's loop. Bridges and rules
of the default network are made on first use; everything of this daemon is removed when it
stops with no running container (under live-restore, running containers keep theirs).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from berth.engine import ids
from berth.engine.events import EventBus
from berth.engine.networks import model
from berth.engine.networks import settings as nset
from berth.engine.networks.model import Network
from berth.engine.networks.records import ContainerRecords
from berth.engine.store import Store, register_schema
from berth.errors import BerthError, Conflict, Forbidden, InvalidParameter, NotFound, SystemError_
from berth.network import bridge as brlib
from berth.network import dns as dnslib
from berth.network import hostfiles
from berth.network import host as hostlib
from berth.network import ipam as ipamlib
from berth.network import ports as portlib
from berth.network import resolvconf
from berth.timeutil import parse_time_value, rfc3339_nano

log = logging.getLogger("berth.networks")

register_schema("""
CREATE TABLE IF NOT EXISTS networks (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    doc  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS network_sandboxes (
    container_id TEXT PRIMARY KEY,
    doc          TEXT NOT NULL
);
""")

ENV_PREFIX = "BERTH_IPTABLES_PREFIX"
ENV_UPSTREAMS = "BERTH_DNS_UPSTREAMS"
EMBEDDED_DNS = dnslib.DOCKER_DNS_IP


def _cfg(config: Any, name: str, default: Any) -> Any:
    try:
        value = getattr(config, name)
    except AttributeError:
        return default
    return default if value is None else value


def parse_upstreams(text: str) -> list[tuple[str, int]]:
    """``"127.0.0.1:5353, 10.0.0.1"`` to [("127.0.0.1", 5353), ("10.0.0.1", 53)]."""
    out = []
    for item in text.replace(",", " ").split():
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, "53"
        ipaddress.IPv4Address(host)
        out.append((host, int(port)))
    return out


@dataclass
class Sandbox:
    """A container's network sandbox. ``netns`` is empty when nothing is plumbed."""

    container_id: str
    netns: str = ""
    sandbox_id: str = ""
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)  # network id -> endpoint
    gateway: str = ""                     # network id of the endpoint with route and ports
    ports: list[dict[str, Any]] = field(default_factory=list)           # PortMapping dicts
    dns: bool = False                     # an embedded DNS listener is open in the netns
    desired_macs: dict[str, str] = field(default_factory=dict)          # network name -> MAC

    @property
    def live(self) -> bool:
        return bool(self.netns)

    def endpoint(self, network_id: str) -> brlib.Endpoint | None:
        entry = self.endpoints.get(network_id)
        return brlib.Endpoint.from_dict(entry["ep"]) if entry and entry.get("ep") else None

    def mappings(self) -> list[portlib.PortMapping]:
        return [portlib.PortMapping.from_dict(m) for m in self.ports]

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Sandbox":
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})


@dataclass
class _Plan:
    """One endpoint to plumb."""

    network: Network
    settings: dict[str, Any]
    endpoint_id: str
    ip: str
    cidr: str
    gateway: str | None
    ifname: str
    mac: str
    host_ifname: str
    default_route: bool
    ip6: str = ""              # IPv6 networks: the endpoint's IPv6 address and its CIDR
    cidr6: str = ""
    gateway6: str | None = None

    def host_plan(self) -> hostlib.EndpointPlan:
        return hostlib.EndpointPlan(
            endpoint_id=self.endpoint_id, bridge=self.network.bridge, address=self.cidr,
            gateway=self.gateway, ifname=self.ifname, mac=self.mac, mtu=self.network.mtu,
            host_ifname=self.host_ifname, default_route=self.default_route,
            address6=self.cidr6, gateway6=self.gateway6)


def _bridge_of(net: Network) -> hostlib.BridgeNetwork:
    """What the host side needs of a bridge network record."""
    return hostlib.BridgeNetwork(id=net.id, name=net.name, bridge=net.bridge, mtu=net.mtu,
                                 internal=net.internal, icc=net.icc, masquerade=net.masquerade,
                                 owns_bridge=net.owns_bridge, default=net.name == "bridge",
                                 ipv6=net.enable_ipv6)


def _legacy_links_mode(mode: str) -> bool:
    """Legacy ``--link`` applies to this network mode (not a user-defined network: there a
    link is a DNS alias of the endpoint, as in dockerd)."""
    return mode in ("", "default", "bridge", "host", "none") or mode.startswith("container:")


def _ips_of(entry: dict[str, Any]) -> list[str]:
    """The addresses (IPv4, then IPv6) of a sandbox's endpoint entry."""
    ep = entry.get("ep") or {}
    return [a.split("/")[0] for a in (ep.get("address"), ep.get("address6")) if a]


def _live_of(sb: Sandbox) -> hostlib.LiveSandbox:
    """What the host side needs of a running container's sandbox."""
    return hostlib.LiveSandbox(
        netns=sb.netns,
        host_ifnames=tuple(e["ep"]["host_ifname"] for e in sb.endpoints.values() if e.get("ep")),
        gateway=sb.endpoint(sb.gateway) if sb.gateway else None, mappings=tuple(sb.mappings()))


class NetworkService:
    def __init__(self, config: Any, store: Store, events: EventBus, exec_root: str,
                 containers: ContainerRecords):
        self.config = config
        self.store = store
        self.events = events
        self.containers = containers
        requested = _cfg(config, "bridge", "") or ""
        self.bridge_disabled = requested == "none"
        self.bridge_given = bool(requested) and not self.bridge_disabled
        self.default_bridge = requested if self.bridge_given else hostlib.default_bridge_name(exec_root)
        pools = _cfg(config, "default_address_pools", []) or []
        self.ipam = ipamlib.Ipam(
            pools=ipamlib.parse_address_pools(pools),
            host_networks=ipamlib.read_host_networks,
            pools6=ipamlib.parse_address_pools(pools, version=6),
            ula_seed=str(_cfg(config, "data_root", "") or os.path.abspath(exec_root)),
            host_networks6=lambda: ipamlib.read_host_networks(family=6))
        self.default_ipv6 = bool(_cfg(config, "ipv6", False))
        self.host = hostlib.HostNetwork(
            exec_root, self.ipam, iptables=bool(_cfg(config, "iptables", True)),
            ip_forward=bool(_cfg(config, "ip_forward", True)),
            prefix=os.environ.get(ENV_PREFIX) or None, bip=_cfg(config, "bip", "") or "",
            fixed_cidr=_cfg(config, "fixed_cidr", "") or None,
            ip6tables=bool(_cfg(config, "ip6tables", True)),
            fixed_cidr_v6=_cfg(config, "fixed_cidr_v6", "") or None,
            on_bridge_up=self._bridge_came_up)
        self.dns = dnslib.DnsServer(self._upstreams())
        self._networks: dict[str, Network] = {}
        self._sandboxes: dict[str, Sandbox] = {}
        self._lock = asyncio.Lock()
        self._init_task: asyncio.Future | None = None
        self._load()

    # ---- configuration ---------------------------------------------------------------------
    def _upstreams(self, dns: list[str] | None = None) -> list[tuple[str, int]]:
        override = os.environ.get(ENV_UPSTREAMS)
        if override:
            return parse_upstreams(override)
        servers = list(dns or []) or list(_cfg(self.config, "dns", []) or [])
        return resolvconf.upstreams(resolvconf.read_host(), dns=servers or None)

    def _default_options(self) -> dict[str, str]:
        return {
            model.OPT_DEFAULT_BRIDGE: "true",
            model.OPT_ICC: str(bool(_cfg(self.config, "icc", True))).lower(),
            model.OPT_MASQ: str(bool(_cfg(self.config, "ip_masq", True))).lower(),
            model.OPT_HOST_IP: str(_cfg(self.config, "ip", "0.0.0.0") or "0.0.0.0"),
            model.OPT_BRIDGE_NAME: self.default_bridge,
            model.OPT_MTU: str(int(_cfg(self.config, "mtu", 1500) or 1500)),
        }

    # ---- persistence -----------------------------------------------------------------------
    def _names_not_unique(self) -> None:
        """Databases of earlier versions made network names UNIQUE; two networks may share
        a name (a create with CheckDuplicate false, API < 1.44): rebuild the table once."""
        rows = self.store.query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'networks'")
        if not rows or "UNIQUE" not in (rows[0]["sql"] or "").upper():
            return
        with self.store.transaction() as db:
            db.execute("CREATE TABLE networks_rebuilt (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
                       "doc TEXT NOT NULL)")
            db.execute("INSERT INTO networks_rebuilt (id, name, doc) SELECT id, name, doc FROM networks")
            db.execute("DROP TABLE networks")
            db.execute("ALTER TABLE networks_rebuilt RENAME TO networks")

    def _load(self) -> None:
        store = self.store
        self._names_not_unique()
        for row in store.query("SELECT doc FROM networks"):
            net = Network.from_doc(json.loads(row["doc"]))
            self._networks[net.id] = net
        for row in store.query("SELECT doc FROM network_sandboxes"):
            sb = Sandbox.from_doc(json.loads(row["doc"]))
            self._sandboxes[sb.container_id] = sb
        by_name = {n.name: n for n in self._networks.values()}
        for name in model.PREDEFINED:
            if name not in by_name:
                net = Network(id=ids.new_id(), name=name, driver=model.DRIVER_OF_PREDEFINED[name],
                              created=rfc3339_nano())
                self._networks[net.id] = net
                self._persist_network(net)
                by_name[name] = net
        default = by_name["bridge"]
        default.options = self._default_options()
        if default.bridge != self.default_bridge:
            default.owns_bridge = not self.bridge_given  # -b: ours only once we made it
        default.bridge = self.default_bridge
        default.mtu = int(_cfg(self.config, "mtu", 1500) or 1500)
        default.icc = bool(_cfg(self.config, "icc", True))
        default.masquerade = bool(_cfg(self.config, "ip_masq", True))
        default.host_binding_ipv4 = str(_cfg(self.config, "ip", "0.0.0.0") or "0.0.0.0")
        default.enable_ipv6 = self.default_ipv6   # daemon.json ipv6 (+ fixed-cidr-v6)
        if self.bridge_disabled:
            del self._networks[default.id]  # the row stays for a later run with a bridge
        live_ips: dict[str, list[str]] = {}
        for sb in self._sandboxes.values():
            if sb.live:
                for nid, entry in sb.endpoints.items():
                    live_ips.setdefault(nid, []).extend(_ips_of(entry))
        for row in store.query("SELECT id, doc FROM networks"):
            doc = json.loads(row["doc"])
            if row["id"] not in self._networks:
                continue
            for key, version in (("pool", 4), ("pool6", 6)):
                pool = doc.get(key)
                if pool:
                    used = [ip for ip in live_ips.get(row["id"], []) if (":" in ip) == (version == 6)]
                    self.ipam.restore_network(ipamlib.NetworkPool.from_dict(dict(pool, Allocated=used)))
        for net in self._networks.values():
            if net.user_defined and net.is_bridge:
                self._dns_add_network(net)

    def _pool_doc(self, network_id: str, version: int = 4) -> dict[str, Any] | None:
        try:
            pool = self.ipam.network(network_id) if version == 4 else self.ipam.network6(network_id)
        except NotFound:
            return None
        doc = pool.to_dict()
        doc.pop("Allocated", None)
        return doc

    def _persist_network(self, net: Network) -> None:
        doc = net.to_doc()
        doc["pool"] = self._pool_doc(net.id)
        doc["pool6"] = self._pool_doc(net.id, 6)
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO networks (id, name, doc) VALUES (?, ?, ?)",
                       (net.id, net.name, json.dumps(doc)))

    def _persist_sandbox(self, sb: Sandbox) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO network_sandboxes (container_id, doc) VALUES (?, ?)",
                       (sb.container_id, json.dumps(sb.to_doc())))

    def _forget_sandbox(self, container_id: str) -> None:
        self._sandboxes.pop(container_id, None)
        with self.store.transaction() as db:
            db.execute("DELETE FROM network_sandboxes WHERE container_id = ?", (container_id,))

    def _save_container(self, container: Any) -> None:
        """Persist the record's NetworkSettings, unless the container is gone meanwhile."""
        if self._container(container.id) is not None:
            self.containers.save(container)

    def _container(self, container_id: str) -> Any | None:
        try:
            container = self.containers.get(container_id)
        except (NotFound, InvalidParameter):
            return None
        return container if container.id == container_id else None

    def _bridge_came_up(self, bridge: hostlib.BridgeNetwork) -> None:
        """HostNetwork's hook (its worker thread, its lock held): the bridge is up with its
        final subnet; persist the pool and tell the DNS server the subnet."""
        net = self._networks.get(bridge.id)
        if net is None:
            return
        net.owns_bridge = bridge.owns_bridge
        self._persist_network(net)
        if net.user_defined:
            self._dns_add_network(net)

    def _dns_add_network(self, net: Network) -> None:
        try:
            subnet = str(self.ipam.network(net.id).subnet)
        except NotFound:
            subnet = None
        self.dns.add_network(net.id, net.name, subnet)

    # ---- lookup ----------------------------------------------------------------------------
    def all(self) -> list[Network]:
        return sorted(self._networks.values(), key=lambda n: (n.created, n.name))

    def find(self, ref: str) -> Network:
        """By full ID, then exact name, then unique ID prefix (moby's FindNetwork)."""
        if ref in self._networks:
            return self._networks[ref]
        by_name = [n for n in self._networks.values() if n.name == ref]
        if len(by_name) == 1:
            return by_name[0]
        if len(by_name) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(by_name)} matches found on name)")
        by_prefix = [n for n in self._networks.values() if ref and n.id.startswith(ref)]
        if len(by_prefix) == 1:
            return by_prefix[0]
        if len(by_prefix) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(by_prefix)} matches found "
                                   "based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    def _default(self) -> Network | None:
        return next((n for n in self._networks.values() if n.name == "bridge"), None)

    def _in_use(self, net: Network) -> bool:
        return any(net.id in sb.endpoints for sb in self._sandboxes.values() if sb.live)

    # ---- daemon start / stop ---------------------------------------------------------------
    async def start(self) -> None:
        """Reconcile with the kernel in the background; every operation waits for it."""
        self._init_task = asyncio.ensure_future(self._init())

    async def _ready(self) -> None:
        if self._init_task is not None and not self._init_task.done():
            await asyncio.shield(self._init_task)

    async def _init(self) -> None:
        try:
            await asyncio.to_thread(self.host.warm_sync)
            live, dead = [], []
            for sb in list(self._sandboxes.values()):
                if not sb.live:
                    continue
                container = self._container(sb.container_id)
                if container is not None and container.running and self.host.is_netns(sb.netns):
                    live.append(sb)
                else:
                    dead.append((container, sb))
            for container, sb in dead:
                await self._teardown_sandbox(container, sb, events=False)
                if container is None:
                    self._forget_sandbox(sb.container_id)
            await asyncio.to_thread(self._reconcile_host_sync, live)
            for sb in live:
                await self._restore_sandbox(sb)
        except Exception:  # noqa: BLE001 - the daemon runs on; operations report their own errors
            log.exception("network startup reconcile failed")

    async def _restore_sandbox(self, sb: Sandbox) -> None:
        """A running container's sandbox after a daemon restart: ports, DNS names, listener."""
        self.host.reserve_ports(sb.container_id, sb.mappings())
        container = self._container(sb.container_id)
        gateway = sb.endpoint(sb.gateway) if sb.gateway else None
        if container is not None and gateway is not None:
            try:
                await self._start_proxies(container, sb, gateway.ip, sb.endpoints[sb.gateway]["endpoint_id"],
                                          gateway.ip6)
            except BerthError as exc:
                log.warning("ports of %s: %s", sb.container_id[:12], exc.message)
        user = [nid for nid in sb.endpoints if nid in self._networks and self._networks[nid].user_defined]
        for nid in user:
            entry = sb.endpoints[nid]
            for ip in _ips_of(entry):
                self.dns.register(nid, entry.get("dns_names") or [], ip)
        if sb.dns and container is not None:
            try:
                await self.dns.listen_in_netns(sb.container_id, sb.netns, user,
                                               upstreams=self._container_upstreams(container),
                                               aliases=self._link_aliases(container))
            except OSError as exc:
                log.warning("DNS listener of %s: %s", sb.container_id[:12], exc)

    async def shutdown(self, live_restore: bool = False) -> None:
        if self._init_task is not None and not self._init_task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._init_task), 30)
            except asyncio.TimeoutError:
                log.warning("network reconcile still running at shutdown")
        for sb in [sb for sb in self._sandboxes.values() if sb.live]:
            container = self._container(sb.container_id)
            pid = int((container.state.get("Pid") if container is not None else 0) or 0)
            alive = container is not None and container.running and pid and os.path.exists(f"/proc/{pid}")
            if not live_restore or not alive:
                # without live-restore every container was stopped; a sandbox left is stale
                # (a container whose stop failed, or whose exit went unnoticed)
                await self._teardown_sandbox(container, sb, events=False)
        await self.dns.close()
        if any(sb.live for sb in self._sandboxes.values()):
            return  # running containers (live-restore) keep their bridges, rules and netns
        if self.host.touched:
            bridges = [_bridge_of(n) for n in self._networks.values() if n.is_bridge]
            await asyncio.to_thread(self.host.cleanup_sync, bridges)

    # ---- host plumbing: berth.network.host.HostNetwork (worker threads) ----------------------
    async def _ensure(self, net: Network) -> None:
        if net.is_bridge and not self.host.ready(net.id):
            await asyncio.to_thread(self._ensure_network_sync, net)

    def _ensure_network_sync(self, net: Network) -> None:
        bridge = _bridge_of(net)
        try:
            self.host.ensure_network_sync(bridge)
        finally:
            net.owns_bridge = bridge.owns_bridge

    def _reconcile_host_sync(self, live: list[Sandbox]) -> None:
        """After a (re)start: keep what running containers use, remove what a crash left."""
        used = {nid for sb in live for nid in sb.endpoints}
        wanted = [n for n in self._networks.values()
                  if n.is_bridge and (n.user_defined or n.id in used)]
        default = self._default()
        unused = [default] if default is not None and default not in wanted else []
        bridges = [_bridge_of(n) for n in wanted]
        try:
            self.host.reconcile_sync(bridges, [_live_of(sb) for sb in live],
                                     [_bridge_of(n) for n in unused])
        finally:
            for net, bridge in zip(wanted, bridges):
                net.owns_bridge = bridge.owns_bridge

    # ---- create-time validation --------------------------------------------------------------
    def prepare_create(self, config: dict[str, Any], host_config: dict[str, Any],
                       networking: dict[str, Any] | None) -> dict[str, Any]:
        """Validate a create request's networking and return the container's initial
        NetworkSettings (which keep the EndpointsConfig until start)."""
        out = nset.empty_settings()
        endpoints = dict((networking or {}).get("EndpointsConfig") or {})
        mode = host_config.get("NetworkMode") or "bridge"
        if mode == "default":
            mode = "bridge"
        if "default" in endpoints and mode in ("bridge", "host", "none"):
            endpoints.setdefault(mode, endpoints.pop("default"))  # the CLI's name for NetworkMode
        legacy_mac = config.get("MacAddress") or ""
        portlib.parse_port_bindings(host_config.get("PortBindings"))  # refuse bad specs now
        if config.get("NetworkDisabled"):
            return out
        if nset.check_container_mode(config, host_config):
            if endpoints:
                raise InvalidParameter(nset.ERR_SHARED_NS)
            if legacy_mac:
                raise InvalidParameter("conflicting options: mac-address and the network mode")
            return out
        if _legacy_links_mode(mode):
            for link in host_config.get("Links") or []:
                self._link_child(nset.parse_link(link)[0])   # dockerd's registerLinks checks
        if mode in ("host", "none"):
            others = [k for k in endpoints if k != mode]
            if others:
                raise InvalidParameter(nset.ERR_SHARED_NS if mode == "host" else nset.ERR_PRIVATE_NS)
            if legacy_mac:
                raise InvalidParameter("conflicting options: mac-address and the network mode")
            net = self.find(mode)
            out["Networks"][mode] = nset.endpoint_settings(endpoints.get(mode), net.id)
            return out
        disabled = mode == "bridge" and self.bridge_disabled  # --bridge=none: as "none" for it
        if disabled:
            endpoints.pop("bridge", None)
            if not endpoints:
                return out
            mode = next(iter(endpoints))
        # As in Docker, a network may not exist yet at create: it is looked up at start
        # ("network x not found" then); what can be checked without it is checked now.
        def lookup(ref: str) -> Network | None:
            try:
                net = self.find(ref)
            except NotFound:
                return None
            if not net.is_bridge:
                raise InvalidParameter(nset.ERR_SHARED_NS if net.driver == "host" else nset.ERR_PRIVATE_NS)
            return net

        primary = lookup(mode)
        names = (mode, primary.name, primary.id) if primary is not None else (mode,)
        key = next((k for k in endpoints if k in names), None)
        ordered = [(primary.name if primary is not None else mode, primary,
                    endpoints.pop(key) if key is not None else None)]
        for ref, cfg in endpoints.items():
            net = lookup(ref)
            ordered.append((net.name if net is not None else ref, net, cfg))
        for index, (name, net, cfg) in enumerate(ordered):
            if name in out["Networks"]:
                continue
            es = nset.endpoint_settings(cfg, net.id if net is not None else "")
            if index == 0 and legacy_mac and not es["MacAddress"]:
                es["MacAddress"] = legacy_mac
            if net is not None:
                self._validate_endpoint(net, es)
            else:
                nset.validate_endpoint(es, user_defined=name not in model.PREDEFINED,
                                       user_subnet=True, subnet=None, user_subnet6=True)
            if es["MacAddress"]:
                es["MacAddress"] = nset.normalise_mac(es["MacAddress"])
            out["Networks"][name] = es
        return out

    def _validate_endpoint(self, net: Network, es: dict[str, Any]) -> None:
        try:
            pool = self.ipam.network(net.id)
            subnet, user_subnet = str(pool.subnet), pool.user_subnet
        except NotFound:
            subnet, user_subnet = None, False
        subnet6, user_subnet6 = None, False
        if self.ipam.has_ipv6(net.id):
            pool6 = self.ipam.network6(net.id)
            subnet6, user_subnet6 = str(pool6.subnet), pool6.user_subnet
        nset.validate_endpoint(es, user_defined=net.user_defined, user_subnet=user_subnet, subnet=subnet,
                               user_subnet6=user_subnet6, subnet6=subnet6)

    # ---- container lifecycle -----------------------------------------------------------------
    def _mode(self, container: Any) -> str:
        mode = container.host_config.get("NetworkMode") or "bridge"
        return "bridge" if mode == "default" else mode

    def _new_sandbox(self, container: Any) -> Sandbox:
        sb = self._sandboxes.get(container.id)
        if sb is None:
            sb = Sandbox(container.id)
            for name, es in (container.network_settings.get("Networks") or {}).items():
                if es.get("MacAddress"):
                    sb.desired_macs[name] = es["MacAddress"]
            self._sandboxes[container.id] = sb
        return sb

    async def setup_container(self, container: Any) -> str | None:
        """Start: the container's netns (path for the OCI spec; None: none/host mode) with an
        endpoint on every network it is on, its published ports and DNS names."""
        await self._ready()
        mode = self._mode(container)
        settings = container.network_settings
        if not settings:
            container.network_settings = settings = nset.empty_settings()
        if container.config.get("NetworkDisabled"):
            return None
        extra_hosts = container.host_config.get("ExtraHosts") or []
        if any(str(h).endswith("host-gateway") for h in extra_hosts):
            default = self._default()
            if default is None:
                raise InvalidParameter("unable to derive the IP value for host-gateway: "
                                       "the default bridge network is disabled")
            await self._ensure(default)
        if mode.startswith("container:"):
            return self._joined_netns(container, mode.partition(":")[2])
        if mode in ("host", "none"):
            net = self.find(mode)
            es = (settings.setdefault("Networks", {})).setdefault(mode, nset.endpoint_settings(None, net.id))
            es.update(NetworkID=net.id, EndpointID=ids.new_id())
            path = await self._private_netns(container) if mode == "none" else None
            self._event(net, "connect", container.id)
            return path
        if "bridge" in (settings.get("Networks") or {}):
            self._check_links(container)
        wanted = list((settings.get("Networks") or {}).items())
        if not wanted:
            return None
        path = self.host.netns_path(container.id)
        async with self._lock:
            resolved: list[tuple[Network, dict[str, Any]]] = []
            for name, es in wanted:
                resolved.append((self._network_of(name, es), es))
            for net, _ in resolved:
                await self._ensure(net)
            sb = self._new_sandbox(container)
            plans = self._plan_endpoints(container, sb, resolved, first=True)
            sb.netns, sb.sandbox_id = path, secrets.token_hex(32)
            sb.endpoints = {p.network.id: {"endpoint_id": p.endpoint_id, "network_name": p.network.name,
                                           "ep": None, "dns_names": []} for p in plans}
        gateway = next((p for p in plans if p.default_route), None)
        requests = self._port_requests(container, gateway.network if gateway else None)
        try:
            try:
                eps, mappings = await asyncio.to_thread(
                    self.host.plumb_sync, container.id, path, [p.host_plan() for p in plans],
                    requests, container.name, fresh=True)
            except BerthError:
                raise
            except Exception as exc:
                raise SystemError_(f"failed to set up container networking: {exc}") from exc
            for plan, ep in zip(plans, eps):
                sb.endpoints[plan.network.id]["ep"] = ep.to_dict()
            sb.gateway = gateway.network.id if gateway else ""
            sb.ports = [m.to_dict() for m in mappings]
            if gateway is not None:
                await self._start_proxies(container, sb, gateway.ip, gateway.endpoint_id, gateway.ip6)
            user = [p.network.id for p in plans if p.network.user_defined]
            if user:
                await self.dns.listen_in_netns(container.id, path, user,
                                               upstreams=self._container_upstreams(container),
                                               aliases=self._link_aliases(container))
                sb.dns = True
            for plan in plans:
                self._fill_endpoint(container, sb, plan)
            settings.update(SandboxID=sb.sandbox_id, SandboxKey=path,
                            Ports=self._ports_view(container, mappings))
            self._persist_sandbox(sb)
        except BaseException:
            await self._teardown_sandbox(container, sb, events=False)
            raise
        for plan in plans:
            self._event(plan.network, "connect", container.id)
        if any(p.network.name == "bridge" for p in plans):
            await self._update_link_parents(container)
        return path

    async def _private_netns(self, container: Any) -> str:
        """``--network none``: a namespace with only loopback, at ``<exec-root>/netns/<id>``
        as dockerd's SandboxKey, so that an orchestrator (Nomad, through CNI) can join it
        from outside and plumb interfaces of its own."""
        path = self.host.netns_path(container.id)
        async with self._lock:
            sb = self._new_sandbox(container)
        await asyncio.to_thread(self.host.plumb_sync, container.id, path, [], [], container.name,
                                fresh=True)
        sb.netns, sb.sandbox_id, sb.endpoints, sb.gateway, sb.ports = \
            path, secrets.token_hex(32), {}, "", []
        self._persist_sandbox(sb)
        container.network_settings.update(SandboxID=sb.sandbox_id, SandboxKey=path)
        return path

    def _network_of(self, name: str, es: dict[str, Any]) -> Network:
        nid = es.get("NetworkID") or ""
        if nid and nid in self._networks and self._networks[nid].user_defined:
            return self._networks[nid]
        try:
            net = self.find(name)
        except NotFound:
            raise NotFound(f"network {name} not found") from None
        if not net.is_bridge:
            raise InvalidParameter(nset.ERR_PRIVATE_NS)
        return net

    def _plan_endpoints(self, container: Any, sb: Sandbox, resolved: list[tuple[Network, dict]],
                        first: bool) -> list[_Plan]:
        """Addresses and names for new endpoints (IPs are allocated here; released on error)."""
        taken = {e["ep"]["ifname"] for e in sb.endpoints.values() if e.get("ep")} if not first else set()
        has_gateway = bool(sb.gateway) and not first
        plans: list[_Plan] = []
        try:
            for net, es in resolved:
                self._validate_endpoint(net, es)
                ip = self.ipam.allocate_address(net.id, preferred=nset.requested_ipv4(es))
                pool = self.ipam.network(net.id)
                index = 0
                while f"eth{index}" in taken:
                    index += 1
                ifname = f"eth{index}"
                taken.add(ifname)
                endpoint_id = ids.new_id()
                mac = sb.desired_macs.get(net.name) or brlib.mac_from_ip(ip)
                route = not net.internal and not has_gateway
                has_gateway = has_gateway or route
                plan = _Plan(net, es, endpoint_id, str(ip), pool.cidr(ip),
                             None if net.internal else str(pool.gateway), ifname,
                             nset.normalise_mac(mac), brlib.host_veth_name(endpoint_id), route)
                plans.append(plan)
                if self.ipam.has_ipv6(net.id):
                    ip6 = self.ipam.allocate_address6(net.id, preferred=nset.requested_ipv6(es))
                    pool6 = self.ipam.network6(net.id)
                    plan.ip6, plan.cidr6 = str(ip6), pool6.cidr(ip6)
                    plan.gateway6 = None if net.internal else str(pool6.gateway)
        except BaseException:
            for plan in plans:
                self.ipam.release_address(plan.network.id, plan.ip)
                if plan.ip6:
                    self.ipam.release_address(plan.network.id, plan.ip6)
            raise
        return plans

    def _fill_endpoint(self, container: Any, sb: Sandbox, plan: _Plan) -> None:
        net, es = plan.network, plan.settings
        entry = sb.endpoints[net.id]
        pool = self.ipam.network(net.id)
        es.update(NetworkID=net.id, EndpointID=plan.endpoint_id, IPAddress=plan.ip,
                  IPPrefixLen=pool.subnet.prefixlen, MacAddress=plan.mac,
                  Gateway="" if net.internal else str(pool.gateway),
                  IPv6Gateway=plan.gateway6 or "", GlobalIPv6Address=plan.ip6,
                  GlobalIPv6PrefixLen=int(plan.cidr6.split("/")[1]) if plan.cidr6 else 0)
        if net.user_defined:
            names = nset.dns_names(container.name, es.get("Aliases"), container.id,
                                   container.config.get("Hostname") or "")
            es["DNSNames"] = names
            entry["dns_names"] = names
            for ip in (plan.ip, plan.ip6):
                if ip:
                    self.dns.register(net.id, names, ip)
        networks = container.network_settings.setdefault("Networks", {})
        networks[net.name] = es
        if net.name == "bridge":
            for key in nset.LEGACY_FIELDS:
                container.network_settings[key] = es.get(key, "")

    def _port_requests(self, container: Any, gateway: Network | None) -> list[portlib.PortRequest]:
        """The container's published ports on the network with its default route. On an IPv6
        network a binding without a host address is made on 0.0.0.0 and on :: (with one host
        port), as dockerd does; an explicit address is that family only."""
        if gateway is None:
            return []
        hc = container.host_config
        bindings = nset.port_bindings_with_default_ip(hc.get("PortBindings"), gateway.host_binding_ipv4)
        requests = portlib.parse_port_bindings(bindings)
        if hc.get("PublishAllPorts"):
            bound = {r.key for r in requests}
            requests += [r for r in portlib.publish_all((container.config.get("ExposedPorts") or {}).keys())
                         if r.key not in bound]
        for i, r in enumerate(requests):
            if r.host_ip == portlib.ANY_IP and gateway.host_binding_ipv4 != portlib.ANY_IP \
                    and not r.host_port:
                requests[i] = portlib.PortRequest(r.proto, r.container_port, gateway.host_binding_ipv4,
                                                  r.host_port, r.host_port_end)
        if gateway.enable_ipv6 and self.ipam.has_ipv6(gateway.id) \
                and gateway.host_binding_ipv4 == portlib.ANY_IP:
            unspecified = {key: [e for e in (entries or [{}]) if not ((e or {}).get("HostIp") or "").strip()]
                           for key, entries in (hc.get("PortBindings") or {}).items()}
            twins = portlib.parse_port_bindings(
                {key: [dict(e or {}, HostIp=portlib.ANY_IP6) for e in entries]
                 for key, entries in unspecified.items() if entries})
            if hc.get("PublishAllPorts"):
                bound = {r.key for r in portlib.parse_port_bindings(hc.get("PortBindings"))}
                twins += [portlib.PortRequest(r.proto, r.container_port, portlib.ANY_IP6)
                          for r in portlib.publish_all((container.config.get("ExposedPorts") or {}).keys())
                          if r.key not in bound]
            requests += twins
        return requests

    def _ports_view(self, container: Any, mappings: Iterable[portlib.PortMapping]) -> dict[str, Any]:
        exposed = list((container.config.get("ExposedPorts") or {}).keys())
        exposed += [k for k in (container.host_config.get("PortBindings") or {}) if k not in exposed]
        return portlib.ports_view(exposed, mappings)

    def _joined_netns(self, container: Any, ref: str) -> str:
        try:
            target = self.containers.get(ref)
        except NotFound as exc:
            raise SystemError_(f"joining network namespace of container: {exc.message}") from None
        if target.id == container.id:
            raise SystemError_("cannot join own network namespace")
        if not target.running:
            raise Conflict(f"cannot join network namespace of a non running container: container "
                           f"{target.name} is {target.status}")
        container.config["Hostname"] = target.config.get("Hostname") or target.id[:12]
        sb = self._sandboxes.get(target.id)
        if sb is not None and sb.live:
            return sb.netns
        pid = int(target.state.get("Pid") or 0)
        if not pid:
            raise Conflict(f"cannot join network namespace of a non running container: container "
                           f"{target.name} is {target.status}")
        return f"/proc/{pid}/ns/net"

    def _joiners(self, container_id: str) -> list[Any]:
        out = []
        for other in self.containers.all():
            mode = other.host_config.get("NetworkMode") or ""
            if other.running and mode.startswith("container:"):
                ref = mode.partition(":")[2]
                if ref in (container_id, other.name) or container_id.startswith(ref):
                    out.append(other)
                else:
                    try:
                        if self.containers.get(ref).id == container_id:
                            out.append(other)
                    except BerthError:
                        pass
        return out

    async def teardown_container(self, container: Any) -> None:
        """Stop: endpoints, port rules, DNS names, addresses and the netns go."""
        await self._ready()
        mode = self._mode(container)
        if mode in ("host", "none"):
            es = (container.network_settings.get("Networks") or {}).get(mode)
            if es and es.get("EndpointID"):
                es["EndpointID"] = ""
                net = next((n for n in self._networks.values() if n.name == mode), None)
                if net is not None:
                    self._event(net, "disconnect", container.id)
            sb = self._sandboxes.get(container.id)
            if sb is not None and sb.live:   # none: its private namespace goes
                await self._teardown_sandbox(container, sb, events=False)
            return
        sb = self._sandboxes.get(container.id)
        if sb is None or not sb.live:
            self._clean_settings(container, sb)
            return
        await self._teardown_sandbox(container, sb, events=True)

    def rename_container(self, container: Any, old_name: str) -> None:
        """After `docker rename`: the embedded DNS answers to the new name, not the old one,
        and legacy links name it anew (as child, ``/new:/web/db``, and as parent,
        ``/db:/new/db``)."""
        self._rename_in_links(container, old_name)
        sb = self._sandboxes.get(container.id)
        for net in self._networks.values():
            settings = (container.network_settings.get("Networks") or {}).get(net.name)
            if not net.user_defined or settings is None:
                continue
            names = [container.name if n == old_name else n for n in settings.get("DNSNames") or []]
            settings["DNSNames"] = names
            entry = sb.endpoints.get(net.id) if sb is not None and sb.live else None
            if entry and entry.get("ep"):
                entry["dns_names"] = names
                for address in _ips_of(entry):   # IPv4 and IPv6
                    self.dns.unregister(net.id, address)
                    self.dns.register(net.id, names, address)

    async def _start_proxies(self, container: Any, sb: Sandbox, ip: str, endpoint_id: str,
                             ip6: str = "") -> None:
        """Relay in the daemon the published ports the kernel rules do not serve (all with
        --iptables=false; IPv6 ones on [::] and [::1]): docker-proxy's job."""
        await self.host.start_proxies(container.id, ip, sb.mappings(), container.name, endpoint_id,
                                      ip6=ip6)

    async def _teardown_sandbox(self, container: Any | None, sb: Sandbox, events: bool) -> None:
        await self.host.stop_proxies(sb.container_id)
        if sb.dns:
            await self.dns.close_listener(sb.container_id)
            sb.dns = False
        for nid, entry in sb.endpoints.items():
            if nid in self._networks and self._networks[nid].user_defined:
                for ip in _ips_of(entry):
                    self.dns.unregister(nid, ip)
        explicit = bool(self._joiners(sb.container_id))
        try:
            endpoints = [ep for ep in map(sb.endpoint, list(sb.endpoints)) if ep is not None]
            gateway = sb.endpoint(sb.gateway) if sb.gateway else None
            await asyncio.to_thread(self.host.unplumb_sync, sb.container_id, sb.netns, endpoints,
                                    gateway, sb.mappings(), explicit=explicit)
        except Exception:  # noqa: BLE001 - release the bookkeeping whatever the kernel said
            log.exception("network teardown of %s", sb.container_id[:12])
        for nid, entry in sb.endpoints.items():
            for ip in _ips_of(entry):
                self.ipam.release_address(nid, ip)
        self.host.release_ports(sb.container_id)
        left = list(sb.endpoints)
        sb.netns, sb.sandbox_id, sb.endpoints, sb.gateway, sb.ports = "", "", {}, "", []
        self._persist_sandbox(sb)
        if container is not None:
            self._clean_settings(container, sb)
        if events and container is not None:
            for nid in left:
                if nid in self._networks:
                    self._event(self._networks[nid], "disconnect", sb.container_id)

    def _clean_settings(self, container: Any, sb: Sandbox | None) -> None:
        settings = container.network_settings
        if not settings:
            return
        for name, es in (settings.get("Networks") or {}).items():
            nset.clean_operational(es, (sb.desired_macs.get(name, "") if sb else "") or "")
        for key in nset.LEGACY_FIELDS:
            settings[key] = 0 if key.endswith("PrefixLen") else ""
        settings.update(SandboxID="", SandboxKey="", Ports={})

    async def remove_container(self, container: Any) -> None:
        """rm: forget the container's sandbox (tearing down whatever is still plumbed)."""
        await self._ready()
        sb = self._sandboxes.get(container.id)
        if sb is not None and sb.live:
            await self._teardown_sandbox(container, sb, events=True)
        if sb is not None:
            self._forget_sandbox(container.id)

    # ---- legacy links (--link on the default bridge) and links on user networks ------------
    def _link_child(self, name: str) -> Any:
        """The container a link names (through ``container:`` network modes, as dockerd's
        registerLinks); InvalidParameter with dockerd's words otherwise."""
        try:
            child = self.containers.get(name)
        except NotFound as exc:
            raise InvalidParameter(f"could not get container for {name}: {exc.message}") from None
        seen = {child.id}
        while self._mode(child).startswith("container:"):
            ref = self._mode(child).partition(":")[2]
            try:
                child = self.containers.get(ref)
            except NotFound as exc:
                raise InvalidParameter(f"could not get container for {ref}: {exc.message}") from None
            if child.id in seen:
                break
            seen.add(child.id)
        if self._mode(child) == "host":
            raise InvalidParameter("conflicting options: host type networking can't be used with links. "
                                   "This would result in undefined behavior")
        return child

    def register_links(self, container: Any) -> None:
        """At create: a legacy link is kept in the form inspect shows, ``/db:/web/dbalias``
        (child name, link name). On a user-defined network ``HostConfig.Links`` means
        nothing (the endpoint's ``Links`` are its DNS aliases) and inspect shows null, as
        dockerd's."""
        links = container.host_config.get("Links") or []
        if not links:
            return
        if not _legacy_links_mode(self._mode(container)):
            container.host_config["Links"] = None
            return
        out: list[str] = []
        aliases: set[str] = set()
        for link in links:
            name, alias = nset.parse_link(link)
            try:
                child = self._link_child(name)
            except BerthError:
                continue   # checked by prepare_create: removed meanwhile
            if alias in aliases:
                continue   # dockerd: a second link of a name is ignored
            aliases.add(alias)
            out.append(f"/{child.name}:/{container.name}/{alias}")
        container.host_config["Links"] = out or None

    def _children(self, container: Any) -> list[tuple[str, str, Any | None]]:
        """(link name ``/web/db``, child name, the child or None) of each legacy link."""
        out = []
        for link in container.host_config.get("Links") or []:
            try:
                name, alias = nset.parse_link(link)
            except InvalidParameter:
                continue
            full = link.partition(":")[2] if link.startswith("/") else f"/{container.name}/{alias}"
            out.append((full, name, self._container_named(name)))
        return out

    def _container_named(self, name: str) -> Any | None:
        try:
            return self.containers.get(name)
        except (NotFound, InvalidParameter):
            return None

    def _check_links(self, container: Any) -> None:
        """A start on the default bridge: every linked container runs there (dockerd's words)."""
        if not _legacy_links_mode(self._mode(container)):
            return
        for full, name, child in self._children(container):
            if child is None or not child.running:
                raise SystemError_(f"Cannot link to a non running container: /{name} AS {full}")
            if "bridge" not in (child.network_settings.get("Networks") or {}):
                raise SystemError_(f"Cannot link to /{child.name}, as it does not belong to the default network")

    def _bridge_settings(self, container: Any) -> dict[str, Any] | None:
        es = (container.network_settings.get("Networks") or {}).get("bridge")
        return es if es and es.get("IPAddress") else None

    def _link_hosts(self, container: Any) -> list[tuple[str, str]]:
        """/etc/hosts entries of legacy links: the child's addresses with ``alias hostname
        [name]``, as dockerd's addLegacyLinks."""
        if not _legacy_links_mode(self._mode(container)) or self._bridge_settings(container) is None:
            return []
        out = []
        for full, _name, child in self._children(container):
            es = self._bridge_settings(child) if child is not None else None
            if es is None:
                continue
            alias = full.rpartition("/")[2]
            names = f"{alias} {child.config.get('Hostname') or child.id[:12]}"
            if alias != child.name:
                names += f" {child.name}"
            out += [(ip, names) for ip in (es.get("IPAddress"), es.get("GlobalIPv6Address")) if ip]
        return out

    def link_environment(self, container: Any) -> list[str]:
        """The variables legacy links give a container on the default bridge (dockerd 28's
        links.EnvVars: ``DB_PORT_5432_TCP_ADDR``, ``DB_NAME``, ``DB_ENV_...``)."""
        if not _legacy_links_mode(self._mode(container)) or self._bridge_settings(container) is None:
            return []
        env: list[str] = []
        for full, _name, child in self._children(container):
            es = self._bridge_settings(child) if child is not None and child.running else None
            if es is None:
                continue
            env += nset.link_env(full, es["IPAddress"], child.config.get("Env") or [],
                                 list((child.config.get("ExposedPorts") or {}).keys()))
        return env

    def _parents(self, child: Any) -> list[Any]:
        """Running containers with a legacy link to ``child``."""
        out = []
        for other in self.containers.all():
            if other.id == child.id or not other.running:
                continue
            for link in other.host_config.get("Links") or []:
                try:
                    name = nset.parse_link(link)[0]
                except InvalidParameter:
                    continue
                if name in (child.name, child.id) or (len(name) >= 12 and child.id.startswith(name)):
                    out.append(other)
                    break
        return out

    async def _update_link_parents(self, child: Any) -> None:
        """A linked container (re)started on the default bridge: the /etc/hosts of the
        containers linking to it get its new address (dockerd's UpdateHostsEntry)."""
        for parent in self._parents(child):
            try:
                await asyncio.to_thread(self._rewrite_files, parent, False)
            except OSError as exc:
                log.warning("updating /etc/hosts of %s: %s", parent.id[:12], exc)

    async def remove_link(self, name: str) -> None:
        """``DELETE /containers/{parent}/{alias}?link=1`` (``docker rm --link /web/db``): the
        parent forgets the link; the containers stay."""
        await self._ready()
        full = name if name.startswith("/") else "/" + name
        parent_name, _, alias = full.rpartition("/")
        if not parent_name:
            self.containers.get(full[1:])   # dockerd looks the name up first: 404 if unknown
            raise SystemError_("Conflict, cannot remove the default link name of the container")
        parent = self._container_named(parent_name[1:])
        if parent is None:
            raise NotFound(f"No such container: {name}")
        async with self.containers.lock(parent.id):
            links = list(parent.host_config.get("Links") or [])
            kept = [link for link in links if link.partition(":")[2] != f"/{parent.name}/{alias}"]
            if len(kept) == len(links):
                raise NotFound(f"No such container: {name}")
            parent.host_config["Links"] = kept or None
            self._save_container(parent)
            if parent.running:
                try:
                    await asyncio.to_thread(self._rewrite_files, parent, False)
                except OSError as exc:
                    log.warning("updating /etc/hosts of %s: %s", parent.id[:12], exc)

    def _rename_in_links(self, container: Any, old_name: str) -> None:
        for other in self.containers.all():
            links = other.host_config.get("Links") or []
            renamed = []
            for link in links:
                child, sep, full = link.partition(":")
                if child == f"/{old_name}":
                    child = f"/{container.name}"
                if other.id == container.id and full.startswith(f"/{old_name}/"):
                    full = f"/{container.name}/{full[len(old_name) + 2:]}"
                renamed.append(f"{child}{sep}{full}")
            if renamed != links:
                other.host_config["Links"] = renamed
                if other.id != container.id:
                    self._save_container(other)

    def _link_aliases(self, container: Any) -> dnslib.Aliases:
        """On user networks, ``--link name:alias`` is the container's own DNS alias of
        ``name`` (libnetwork's endpoint aliases): {network id: {alias: name}}."""
        out: dnslib.Aliases = {}
        for name, es in (container.network_settings.get("Networks") or {}).items():
            net = self._networks.get(es.get("NetworkID") or "") or \
                next((n for n in self._networks.values() if n.name == name), None)
            if net is None or not net.user_defined:
                continue
            own = {}
            for link in es.get("Links") or []:
                try:
                    target, alias = nset.parse_link(link)
                except InvalidParameter:
                    continue
                own[alias.strip(".").lower()] = target.lstrip("/")
            if own:
                out[net.id] = own
        return out

    # ---- container files ---------------------------------------------------------------------
    def host_gateway_ip(self) -> str | None:
        default = self._default()
        if default is None:
            return None
        try:
            return str(self.ipam.network(default.id).gateway)
        except NotFound:
            return None

    def _container_upstreams(self, container: Any) -> list[tuple[str, int]] | None:
        dns = container.host_config.get("Dns") or []
        if os.environ.get(ENV_UPSTREAMS) or not dns:
            return None
        return self._upstreams(dns)

    def joined_files(self, container: Any) -> dict[str, str] | None:
        """``--network container:<x>``: the paths of x's own hostname, hosts and resolv.conf,
        which the container bind-mounts (dockerd points its HostsPath and ResolvConfPath at
        them): a later rewrite of x's files, cri-dockerd's DNS one, reaches every container
        of the pod. None for other modes (or if x has no files yet)."""
        mode = self._mode(container)
        if not mode.startswith("container:"):
            return None
        target = self._container_named(mode.partition(":")[2])
        if target is None:
            return None
        paths = {"hostname": target.hostname_path, "hosts": target.hosts_path,
                 "resolv.conf": target.resolv_conf_path}
        if not all(p and os.path.exists(p) for p in paths.values()):
            return None
        container.config["Domainname"] = target.config.get("Domainname") or ""
        return paths

    def host_files(self, container: Any) -> dict[str, str]:
        """The texts of the container's /etc/hosts and /etc/resolv.conf (the container service
        writes them at start): a ``container:<id>`` container shares its target's; the others
        get theirs from their networks (the embedded DNS on user networks) or, on the host's
        network, from the host's."""
        mode = self._mode(container)
        out: dict[str, str] = {}
        if mode.startswith("container:"):
            try:
                target = self.containers.get(mode.partition(":")[2])
                for key, path in (("resolv.conf", target.resolv_conf_path), ("hosts", target.hosts_path)):
                    if path and os.path.exists(path):
                        with open(path, encoding="utf-8") as handle:
                            out[key] = handle.read()
            except (BerthError, OSError):
                pass
        host_network = mode == "host"
        if "hosts" not in out:
            out["hosts"] = self._hosts_text(container, host_network)
        if "resolv.conf" not in out:
            out["resolv.conf"] = self._resolv_text(container, host_network)
        return out

    def _hosts_text(self, container: Any, host_network: bool = False) -> str:
        networks = (container.network_settings or {}).get("Networks") or {}
        addresses = [n["IPAddress"] for n in networks.values() if n.get("IPAddress")]
        addresses += [n["GlobalIPv6Address"] for n in networks.values() if n.get("GlobalIPv6Address")]
        hostname = container.config.get("Hostname") or container.id[:12]
        return hostfiles.hosts_file(hostname, container.config.get("Domainname") or "", addresses,
                                    container.host_config.get("ExtraHosts"),
                                    host_gateway=self.host_gateway_ip(), host_network=host_network,
                                    links=self._link_hosts(container))

    def _resolv_text(self, container: Any, host_network: bool = False) -> str:
        hc = container.host_config
        dns = list(hc.get("Dns") or []) or list(_cfg(self.config, "dns", []) or [])
        search = list(hc.get("DnsSearch") or []) or list(_cfg(self.config, "dns_search", []) or [])
        options = list(hc.get("DnsOptions") or []) or list(_cfg(self.config, "dns_opts", []) or [])
        sb = self._sandboxes.get(container.id)
        embedded = EMBEDDED_DNS if sb is not None and sb.dns else None
        return resolvconf.container_resolv_conf(resolvconf.read_host(), embedded=embedded,
                                                 dns=dns or None, dns_search=search or None,
                                                 dns_options=options or None,
                                                 host_network=host_network)

    def _rewrite_files(self, container: Any, resolv: bool) -> None:
        """After a hot connect/disconnect: /etc/hosts (and resolv.conf), in place (they are
        bind-mounted: a rename would not reach the container)."""
        def overwrite(path: str, text: str) -> None:
            if path and os.path.exists(path):
                with open(path, "r+", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.truncate()
        overwrite(container.hosts_path, self._hosts_text(container))
        if resolv:
            overwrite(container.resolv_conf_path, self._resolv_text(container))

    # ---- network API -------------------------------------------------------------------------
    def _event(self, net: Network, action: str, container_id: str | None = None) -> None:
        attributes = {"name": net.name, "type": net.driver}
        if container_id:
            attributes["container"] = container_id
        self.events.publish("network", action, net.id, attributes)

    def _endpoint_views(self, net: Network) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for cid, sb in self._sandboxes.items():
            entry = sb.endpoints.get(net.id)
            if not sb.live or not entry or not entry.get("ep"):
                continue
            container = self._container(cid)
            out[cid] = {"Name": container.name if container else "", "EndpointID": entry["endpoint_id"],
                        "MacAddress": entry["ep"]["mac"], "IPv4Address": entry["ep"]["address"],
                        "IPv6Address": entry["ep"].get("address6") or ""}
        if net.driver in ("host", "null"):
            for container in self.containers.all():
                es = (container.network_settings.get("Networks") or {}).get(net.name) or {}
                if container.running and es.get("EndpointID"):
                    out[container.id] = {"Name": container.name, "EndpointID": es["EndpointID"],
                                         "MacAddress": "", "IPv4Address": "", "IPv6Address": ""}
        return out

    def _view(self, net: Network, containers: bool) -> dict[str, Any]:
        try:
            ipam_config = [self.ipam.network(net.id).ipam_config()]
        except NotFound:
            ipam_config = []
        if net.enable_ipv6 and self.ipam.has_ipv6(net.id):
            ipam_config.append(self.ipam.network6(net.id).ipam_config())
        return net.inspect(ipam_config, self._endpoint_views(net) if containers else {})

    async def _ensure_default_view(self) -> None:
        default = self._default()
        if default is not None and not self.host.ready(default.id):
            try:
                await self._ensure(default)
            except BerthError as exc:
                log.warning("default bridge: %s", exc.message)

    async def list_networks(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        await self._ready()
        await self._ensure_default_view()
        chosen = model.NetworkFilter(filters or {})
        return [self._view(n, False) for n in self.all() if chosen.matches(n, self._in_use(n))]

    async def inspect(self, ref: str, verbose: bool = False, scope: str = "") -> dict[str, Any]:
        await self._ready()
        net = self.find(ref)
        if scope and scope != net.scope:
            raise NotFound(f"network {ref} not found")
        if net.name == "bridge":
            await self._ensure_default_view()
        return self._view(net, True)

    async def create(self, body: Any, check_duplicate: bool = True) -> dict[str, Any]:
        """POST /networks/create. ``check_duplicate`` False (API < 1.44 without
        CheckDuplicate, as dockerd before 25) allows a second network of a name; such
        names are then ambiguous for ``find``, as in Docker."""
        await self._ready()
        request = model.parse_create(body)
        await self._ensure_default_view()   # the default bridge takes the first pool, as in Docker
        async with self._lock:
            if check_duplicate and any(n.name == request.name for n in self._networks.values()):
                raise Conflict(f"network with name {request.name} already exists")
            network_id = ids.new_id()
            bridge_name = request.bridge_name or brlib.bridge_name(network_id)
            for other in self._networks.values():
                if other.bridge == bridge_name:
                    raise Conflict(f"bridge name {bridge_name} is already in use by network {other.name}")
            cfg = request.ipam_config[0] if request.ipam_config else {}
            await asyncio.to_thread(
                self.ipam.allocate_network, network_id, name=request.name,
                subnet=cfg.get("Subnet") or None, ip_range=cfg.get("IPRange") or None,
                gateway=cfg.get("Gateway") or None, aux_addresses=cfg.get("AuxiliaryAddresses") or None)
            if request.enable_ipv6:
                cfg6 = request.ipam_config6[0] if request.ipam_config6 else {}
                try:
                    await asyncio.to_thread(
                        self.ipam.allocate_network6, network_id, name=request.name,
                        subnet=cfg6.get("Subnet") or None, ip_range=cfg6.get("IPRange") or None,
                        gateway=cfg6.get("Gateway") or None,
                        aux_addresses=cfg6.get("AuxiliaryAddresses") or None)
                except BaseException:
                    self.ipam.release_network(network_id)
                    raise
            try:
                exists = await asyncio.to_thread(self.host.bridge_exists_sync, bridge_name)
            except BaseException:
                self.ipam.release_network(network_id)
                raise
            net = Network(id=network_id, name=request.name, driver=request.driver,
                          created=rfc3339_nano(), internal=request.internal,
                          attachable=request.attachable, options=request.options,
                          labels=request.labels, ipam_driver=request.ipam_driver,
                          ipam_options=request.ipam_options,
                          bridge=bridge_name, owns_bridge=not exists, mtu=request.mtu,
                          icc=request.icc, masquerade=request.masquerade,
                          host_binding_ipv4=request.host_binding_ipv4,
                          enable_ipv6=request.enable_ipv6)
            self._networks[net.id] = net
            try:
                self._persist_network(net)
                await asyncio.to_thread(self._ensure_network_sync, net)
            except BaseException:
                self._networks.pop(net.id, None)
                await asyncio.to_thread(self.host.remove_network_sync, _bridge_of(net))
                self.ipam.release_network(net.id)
                with self.store.transaction() as db:
                    db.execute("DELETE FROM networks WHERE id = ?", (net.id,))
                raise
        self._event(net, "create")
        return {"Id": net.id, "Warning": ""}

    async def remove(self, ref: str) -> None:
        await self._ready()
        net = self.find(ref)
        if net.predefined:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        async with self._lock:
            await self._remove_locked(net)
        self._event(net, "destroy")

    async def _remove_locked(self, net: Network) -> None:
        if self._in_use(net):
            raise Forbidden(f"error while removing network: network {net.name} id {net.id} has "
                            "active endpoints")
        await asyncio.to_thread(self.host.remove_network_sync, _bridge_of(net))
        self.ipam.release_network(net.id)
        self.dns.remove_network(net.id)
        self._networks.pop(net.id, None)
        with self.store.transaction() as db:
            db.execute("DELETE FROM networks WHERE id = ?", (net.id,))

    async def prune(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        await self._ready()
        chosen = model.NetworkFilter(filters or {}, prune=True,
                                     parse_time=lambda v: parse_time_value(v, "until"))
        deleted: list[str] = []
        async with self._lock:
            for net in self.all():
                created = parse_time_value(net.created) if net.created else 0
                if net.predefined or not chosen.matches(net, self._in_use(net), created):
                    continue
                try:
                    await self._remove_locked(net)
                except BerthError as exc:
                    log.warning("prune of network %s: %s", net.name, exc.message)
                    continue
                deleted.append(net.name)
                self._event(net, "destroy")
        self.events.publish("network", "prune", "", {"reclaimed": "0"})
        return {"NetworksDeleted": deleted or None}

    # ---- connect / disconnect ----------------------------------------------------------------
    async def connect(self, ref: str, container_ref: str, endpoint_config: dict[str, Any] | None) -> None:
        await self._ready()
        container = self.containers.get(container_ref)
        net = self.find(ref)
        mode = self._mode(container)
        es = nset.endpoint_settings(endpoint_config, net.id)
        if es["MacAddress"]:
            es["MacAddress"] = nset.normalise_mac(es["MacAddress"])
        networks = container.network_settings.setdefault("Networks", {})
        if mode.startswith("container:"):
            raise InvalidParameter(nset.ERR_SHARED_NS)
        if net.driver == "host" and mode != "host":
            raise InvalidParameter("cannot connect container to host network - container must be "
                                   "created in host network mode")
        async with self.containers.lock(container.id):
            live = container.running and self._sandboxes.get(container.id) is not None \
                and self._sandboxes[container.id].live
            if net.name in networks and (not container.running or live and
                                         net.id in self._sandboxes[container.id].endpoints):
                if container.running:
                    raise Forbidden(f"endpoint with name {container.name} already exists in network "
                                    f"{net.name}")
                return
            if mode == "host":
                raise InvalidParameter(nset.ERR_SHARED_NS)
            if mode == "none" or net.driver == "null":
                raise InvalidParameter(nset.ERR_PRIVATE_NS)
            self._validate_endpoint(net, es)
            if not container.running:
                if container.removal_in_progress:
                    raise Conflict(f"Container {container.id} is marked for removal and cannot be "
                                   "connected or disconnected to the network")
                networks[net.name] = es
                if es["MacAddress"]:
                    self._new_sandbox(container).desired_macs[net.name] = es["MacAddress"]
                    self._persist_sandbox(self._sandboxes[container.id])
                self._save_container(container)
                return
            sb = self._sandboxes.get(container.id)
            if sb is None or not sb.live:
                raise Conflict(f"container {container.id} has no network namespace of its own to "
                               "connect (it runs with the default bridge disabled)")
            await self._hot_connect(container, sb, net, es)
        self._event(net, "connect", container.id)

    async def _hot_connect(self, container: Any, sb: Sandbox, net: Network, es: dict[str, Any]) -> None:
        async with self._lock:
            if net.id not in self._networks:
                raise NotFound(f"network {net.name} not found")
            await self._ensure(net)
            if es.get("MacAddress"):
                sb.desired_macs[net.name] = es["MacAddress"]
            plan = self._plan_endpoints(container, sb, [(net, es)], first=False)[0]
            sb.endpoints[net.id] = {"endpoint_id": plan.endpoint_id, "network_name": net.name,
                                    "ep": None, "dns_names": []}
        requests = self._port_requests(container, net) if plan.default_route else []
        try:
            try:
                eps, mappings = await asyncio.to_thread(
                    self.host.plumb_sync, container.id, sb.netns, [plan.host_plan()], requests,
                    container.name, fresh=False)
            except BerthError:
                raise
            except Exception as exc:
                raise SystemError_(f"failed to connect container to network {net.name}: {exc}") from exc
        except BaseException:
            sb.endpoints.pop(net.id, None)
            self.ipam.release_address(net.id, plan.ip)
            if plan.ip6:
                self.ipam.release_address(net.id, plan.ip6)
            raise
        sb.endpoints[net.id]["ep"] = eps[0].to_dict()
        if plan.default_route:
            sb.gateway = net.id
            sb.ports = [m.to_dict() for m in mappings]
            container.network_settings["Ports"] = self._ports_view(container, mappings)
            try:
                await self._start_proxies(container, sb, plan.ip, plan.endpoint_id, plan.ip6)
            except BerthError as exc:
                log.warning("ports of %s: %s", container.id[:12], exc.message)
        resolv = False
        user = [nid for nid in sb.endpoints if nid in self._networks and self._networks[nid].user_defined]
        self._fill_endpoint(container, sb, plan)
        if net.user_defined:
            if sb.dns:
                self.dns.set_listener_networks(container.id, user)
                self.dns.set_listener_aliases(container.id, self._link_aliases(container))
            else:
                await self.dns.listen_in_netns(container.id, sb.netns, user,
                                               upstreams=self._container_upstreams(container),
                                               aliases=self._link_aliases(container))
                sb.dns = resolv = True
        self._persist_sandbox(sb)
        self._save_container(container)
        try:
            await asyncio.to_thread(self._rewrite_files, container, resolv)
        except OSError as exc:
            log.warning("updating /etc files of %s: %s", container.id[:12], exc)

    async def disconnect(self, ref: str, container_ref: str, force: bool = False) -> None:
        await self._ready()
        container = self.containers.get(container_ref)
        try:
            net: Network | None = self.find(ref)
        except NotFound:
            if not force:
                raise
            net = None
        mode = self._mode(container)
        networks = container.network_settings.setdefault("Networks", {})
        if net is not None and net.driver == "host" and mode == "host":
            raise InvalidParameter("cannot disconnect container from host network - container was "
                                   "created in host network mode")
        name = net.name if net is not None else ref
        async with self.containers.lock(container.id):
            sb = self._sandboxes.get(container.id)
            live = container.running and sb is not None and sb.live
            if not live:
                if container.removal_in_progress:
                    raise Conflict(f"Container {container.id} is marked for removal and cannot be "
                                   "connected or disconnected to the network")
                if name not in networks:
                    raise SystemError_(f"container {container.id} is not connected to the network {name}")
                del networks[name]
                if sb is not None and sb.desired_macs.pop(name, None) is not None:
                    self._persist_sandbox(sb)
                self._save_container(container)
                return
            assert sb is not None
            if net is None or net.id not in sb.endpoints:
                if force and name in networks:
                    del networks[name]
                    self._save_container(container)
                    return
                raise SystemError_(f"container {container.id} is not connected to network {name}")
            await self._hot_disconnect(container, sb, net)
        self._event(net, "disconnect", container.id)

    async def _hot_disconnect(self, container: Any, sb: Sandbox, net: Network) -> None:
        entry = sb.endpoints[net.id]
        ep = sb.endpoint(net.id)
        if net.user_defined:
            for ip in _ips_of(entry):
                self.dns.unregister(net.id, ip)
        was_gateway = sb.gateway == net.id
        mappings = sb.mappings() if was_gateway else []
        successor = None
        if was_gateway:
            successor = next((nid for nid in sb.endpoints if nid != net.id and nid in self._networks
                              and not self._networks[nid].internal and sb.endpoint(nid)), None)

        successor_ep = sb.endpoint(successor) if successor is not None else None
        if was_gateway:
            await self.host.stop_proxies(container.id)
        try:
            await asyncio.to_thread(self.host.disconnect_sync, sb.netns, ep, was_gateway=was_gateway,
                                    mappings=mappings, successor=successor_ep)
        except Exception as exc:  # noqa: BLE001
            raise SystemError_(f"container {container.id} failed to leave network {net.name}: {exc}") from exc
        for ip in _ips_of(entry):
            self.ipam.release_address(net.id, ip)
        del sb.endpoints[net.id]
        del entry
        if was_gateway:
            sb.gateway = successor or ""
            if successor is None:
                sb.ports = []
                container.network_settings["Ports"] = self._ports_view(container, [])
            else:
                new = sb.endpoint(successor)
                if new is not None:
                    try:
                        await self._start_proxies(container, sb, new.ip, sb.endpoints[successor]["endpoint_id"],
                                                  new.ip6)
                    except BerthError as exc:
                        log.warning("ports of %s: %s", container.id[:12], exc.message)
        if sb.dns:
            self.dns.set_listener_networks(
                container.id, [nid for nid in sb.endpoints if self._networks.get(nid) and
                               self._networks[nid].user_defined])
        settings = container.network_settings
        settings.get("Networks", {}).pop(net.name, None)
        if net.name == "bridge":
            for key in nset.LEGACY_FIELDS:
                settings[key] = 0 if key.endswith("PrefixLen") else ""
        self._persist_sandbox(sb)
        self._save_container(container)
        try:
            await asyncio.to_thread(self._rewrite_files, container, False)
        except OSError as exc:
            log.warning("updating /etc files of %s: %s", container.id[:12], exc)
