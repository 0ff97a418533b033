"""The host side of NetworkService: bridges, veth endpoints, netns handles, iptables rules and
userland port proxies. A mixin of :class:`~berth.engine.networks.service.NetworkService`.

Methods named ``*_sync`` block (netlink, iptables, mounts) and run in worker threads
(``asyncio.to_thread``), never on the daemon's loop: pyroute2's sync API runs a loop of its own.
Changes to bridges and rules happen under ``self._host_lock``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from typing import TYPE_CHECKING, Any

from berth.errors import BerthError, NotFound, SystemError_
from berth.network import bridge as brlib
from berth.network import firewall as fwlib
from berth.network import ipam as ipamlib
from berth.network import netns as nslib
from berth.network import ports as portlib
from berth.network import proxy as proxylib
from berth.network import sysctl

if TYPE_CHECKING:
    from berth.engine.networks.model import Network
    from berth.engine.networks.service import Sandbox, _Plan

log = logging.getLogger("berth.networks")


def _cfg(config: Any, name: str, default: Any) -> Any:
    try:
        value = getattr(config, name)
    except AttributeError:
        return default
    return default if value is None else value


OWNER_TAG = "berth:"   # bridge alias: berth:<daemon pid>:<exec-root>


def derived_prefix(exec_root: str) -> str | None:
    """The iptables prefix a daemon with this exec-root uses unless told otherwise."""
    import hashlib

    if os.path.abspath(exec_root) == "/run/berth":
        return None  # a real installation: never collected by another daemon
    return "BE" + hashlib.sha256(os.path.abspath(exec_root).encode()).hexdigest()[:8].upper()


def orphaned(pid: int, exec_root: str, own_exec_root: str) -> bool:
    """A bridge tag's daemon is gone for good: its process is dead and its exec-root was
    removed (all but netns handles an unclean stop left mounted), as test harnesses do."""
    if os.path.abspath(exec_root) in (os.path.abspath(own_exec_root), "/run/berth"):
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


class HostPlumbing:
    """Bridges, endpoints, rules and proxies of NetworkService (its state, its locks)."""

    def _collect_orphans_sync(self) -> list[str]:
        """Remove the bridges, rules and netns handles of daemons that died and whose exec-root
        is gone (crashed test daemons); returns the exec-roots collected."""
        roots: dict[str, list[str]] = {}
        for name, alias in brlib.bridge_aliases().items():
            if not alias.startswith(OWNER_TAG):
                continue
            pid, _, exec_root = alias[len(OWNER_TAG):].partition(":")
            if pid.isdigit() and exec_root and orphaned(int(pid), exec_root, self.engine.exec_root):
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
        return list(roots)

    def _warm_sync(self) -> None:
        import pyroute2  # noqa: F401 - import once now, not inside the first container start
        if self.ip_forward:
            try:
                sysctl.enable_ip_forward()
            except OSError as exc:
                log.warning("could not enable IPv4 forwarding: %s", exc)

    def _reconcile_host_sync(self, live: list[Sandbox]) -> None:
        """After a (re)start: keep what running containers use, remove what a crash left."""
        try:
            self._collect_orphans_sync()
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
        used = {nid for sb in live for nid in sb.endpoints}
        wanted = [n for n in self._networks.values()
                  if n.is_bridge and (n.user_defined or n.id in used)]
        default = self._default()
        with self._host_lock:
            if default is not None and default not in wanted and default.owns_bridge \
                    and brlib.link_exists(default.bridge):
                brlib.delete_bridge(default.bridge)   # a crash left it; made again on first use
                self._touched = True
            for net in wanted:
                try:
                    self._bridge_up_sync(net)
                except BerthError as exc:
                    log.warning("network %s: %s", net.name, exc.message)
            live_ifnames = {e["ep"]["host_ifname"] for sb in live for e in sb.endpoints.values() if e.get("ep")}
            for net in wanted:
                for port in brlib.bridge_ports(net.bridge):
                    if port and port.startswith("veth") and port not in live_ifnames:
                        brlib.disconnect(port)
            if self.firewall is not None:
                if wanted:
                    rules = list(self.firewall.base_rules())
                    for net in wanted:
                        if net.id in self._host_ready:
                            rules += self._network_rules(net)
                    for sb in live:
                        rules += self._port_rules(sb)
                    removed = self.firewall.reconcile(rules)
                    if removed:
                        log.info("removed %d stale iptables rules", removed)
                    self._base_ready = True
                    self._touched = True
                else:
                    self.firewall.cleanup_all()

    def _cleanup_host_sync(self) -> None:
        with self._host_lock:
            for net in self._networks.values():
                if net.is_bridge and net.bridge and net.owns_bridge:
                    try:
                        brlib.delete_bridge(net.bridge)
                    except Exception as exc:  # noqa: BLE001
                        log.warning("deleting bridge %s: %s", net.bridge, exc)
            if self.firewall is not None:
                try:
                    self.firewall.cleanup_all()
                except BerthError as exc:
                    log.warning("removing iptables chains: %s", exc.message)
            try:
                nslib.release_dir(self.netns_dir)
            except OSError as exc:
                log.warning("releasing %s: %s", self.netns_dir, exc)
            self._host_ready.clear()
            self._base_ready = False

    def _network_rules(self, net: Network) -> list[fwlib.Rule]:
        assert self.firewall is not None
        pool = self.ipam.network(net.id)
        return self.firewall.network_rules(net.bridge, str(pool.subnet), internal=net.internal,
                                           icc=net.icc, masquerade=net.masquerade)

    def _port_rules(self, sb: Sandbox) -> list[fwlib.Rule]:
        if self.firewall is None or not sb.gateway or not sb.ports:
            return []
        ep = sb.endpoint(sb.gateway)
        if ep is None:
            return []
        return [r for m in sb.mappings() for r in self.firewall.port_rules(ep.bridge, ep.ip, m)]

    def _ensure_base_sync(self) -> None:
        if self.firewall is not None and not self._base_ready:
            self.firewall.setup()
            self._base_ready = True

    def _default_pool_sync(self, net: Network) -> bool:
        """Choose the default bridge's subnet; True if it was picked from the pools."""
        try:
            pool = self.ipam.network(net.id)
        except NotFound:
            pool = None
        bip = _cfg(self.config, "bip", "") or ""
        fixed = _cfg(self.config, "fixed_cidr", "") or None
        if bip:
            subnet, gateway = ipamlib.parse_bip(bip)
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
                                   ip_range=fixed)
        return False

    def _bridge_up_sync(self, net: Network) -> None:
        """Make the bridge of ``net`` (and, if it chose its subnet, check no other interface
        took an overlapping one meanwhile: another daemon starting at the same moment)."""
        self._touched = True
        dynamic = self._default_pool_sync(net) if net.name == "bridge" else \
            not self.ipam.network(net.id).user_subnet
        for _attempt in range(8):
            pool = self.ipam.network(net.id)
            existed = brlib.link_exists(net.bridge)
            if not existed:
                net.owns_bridge = True
            brlib.ensure_bridge(net.bridge, pool.gateway_cidr, mtu=net.mtu,
                                alias=f"{OWNER_TAG}{os.getpid()}:{self.engine.exec_root}")
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
        self._persist_network(net)
        if net.user_defined:
            self._dns_add_network(net)
        self._host_ready.add(net.id)

    def _ensure_network_sync(self, net: Network) -> None:
        with self._host_lock:
            if net.id in self._host_ready:
                return
            self._ensure_base_sync()
            self._bridge_up_sync(net)
            if self.firewall is not None:
                self.firewall.add(self._network_rules(net))

    def _prepare_netns_dir_sync(self) -> None:
        if not self._netns_dir_ready:
            nslib.prepare_dir(self.netns_dir)
            self._netns_dir_ready = True
            self._touched = True

    def _plumb_sync(self, container_id: str, path: str, fresh: bool, plans: list[_Plan],
                    requests: list[portlib.PortRequest], gateway: _Plan | None,
                    endpoint_name: str) -> tuple[list[brlib.Endpoint], list[portlib.PortMapping]]:
        """Make the netns (if ``fresh``), plug every endpoint, publish the ports."""
        if fresh:
            with self._host_lock:
                self._prepare_netns_dir_sync()
            if os.path.lexists(path):
                nslib.delete(path)
            nslib.create(path)
        done: list[brlib.Endpoint] = []
        mappings: list[portlib.PortMapping] = []
        try:
            for plan in plans:
                done.append(brlib.connect(
                    plan.network.bridge, path, address=plan.cidr, gateway=plan.gateway,
                    ifname=plan.ifname, mac=plan.mac, mtu=plan.network.mtu,
                    host_ifname=plan.host_ifname, default_route=plan.default_route))
            if requests and gateway is not None:
                mappings = self._publish_sync(container_id, gateway.network.bridge, gateway.ip,
                                              requests, endpoint_name, gateway.endpoint_id)
        except BaseException:
            for ep in done:
                try:
                    brlib.disconnect(ep.host_ifname)
                except Exception:  # noqa: BLE001
                    log.exception("rollback of %s", ep.host_ifname)
            if fresh:
                nslib.delete(path)
            raise
        return done, mappings

    def _publish_sync(self, owner: str, bridge: str, ip: str, requests: list[portlib.PortRequest],
                      endpoint_name: str, endpoint_id: str) -> list[portlib.PortMapping]:
        mappings: list[portlib.PortMapping] = []
        try:
            for request in requests:
                mappings.append(self.ports.allocate(request, owner=owner))
            if self.firewall is not None:
                self.firewall.add_ports(bridge, ip, mappings)
        except BaseException as exc:
            for m in mappings:
                self.ports.release(m)
            if isinstance(exc, portlib.PortAlreadyAllocated):
                raise SystemError_(f"driver failed programming external connectivity on endpoint "
                                   f"{endpoint_name} ({endpoint_id}): {exc.message}") from None
            raise
        return mappings

    def _unpublish_sync(self, bridge: str, ip: str, mappings: list[portlib.PortMapping],
                        release: bool = True) -> None:
        try:
            if self.firewall is not None and mappings:
                self.firewall.remove_ports(bridge, ip, mappings)
        finally:
            if release:
                for m in mappings:
                    self.ports.release(m)

    async def _start_proxies(self, container: Any, sb: Sandbox, ip: str, endpoint_id: str) -> None:
        """--iptables=false: relay the published ports in the daemon (docker-proxy's job)."""
        if self.firewall is not None or not sb.ports:
            return
        started: list[Any] = []
        try:
            for mapping in sb.mappings():
                started.append(await proxylib.start_proxy(mapping, ip))
        except portlib.PortAlreadyAllocated as exc:
            for proxy in started:
                await proxy.close()
            raise SystemError_(f"driver failed programming external connectivity on endpoint "
                               f"{container.name} ({endpoint_id}): {exc.message}") from None
        except BaseException:
            for proxy in started:
                await proxy.close()
            raise
        self._proxies[container.id] = started

    async def _stop_proxies(self, container_id: str) -> None:
        for proxy in self._proxies.pop(container_id, []):
            try:
                await proxy.close()
            except Exception:  # noqa: BLE001
                log.exception("closing a port proxy of %s", container_id[:12])

    def _unplumb_sync(self, sb: Sandbox, explicit: bool) -> None:
        gw = sb.endpoint(sb.gateway) if sb.gateway else None
        if gw is not None:
            try:
                self._unpublish_sync(gw.bridge, gw.ip, sb.mappings())
            except BerthError as exc:
                log.warning("removing port rules of %s: %s", sb.container_id[:12], exc.message)
        else:
            for m in sb.mappings():
                self.ports.release(m)
        if explicit:
            for nid in list(sb.endpoints):
                ep = sb.endpoint(nid)
                if ep is not None:
                    brlib.disconnect(ep.host_ifname)
        if sb.netns:
            nslib.delete(sb.netns)

    def _remove_network_host_sync(self, net: Network) -> None:
        with self._host_lock:
            if self.firewall is not None and net.id in self._host_ready:
                try:
                    self.firewall.remove(self._network_rules(net))
                except NotFound:
                    pass
            if net.owns_bridge:
                brlib.delete_bridge(net.bridge)
            self._host_ready.discard(net.id)
