"""berth.network.host.HostNetwork: naming, orphan detection and rule planning are checked pure
(bridges and iptables faked); one root test runs the whole host side in a sandbox netns."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import subprocess

import pytest

from berth.errors import SystemError_
from berth.network import host as hostlib
from berth.network import netns
from berth.network.bridge import Endpoint
from berth.network.firewall import Firewall
from berth.network.ipam import Ipam, PoolSpec
from berth.network.ports import PortMapping, PortRequest
from nethelpers import free_test_subnets, needs_iptables, needs_root


# ---- naming -------------------------------------------------------------------------------------

def test_names_derive_from_the_exec_root(tmp_path):
    root = str(tmp_path / "exec")
    tag = hashlib.sha256(root.encode()).hexdigest()[:8]
    assert hostlib.derived_prefix(root) == "BE" + tag.upper()
    assert hostlib.iptables_prefix(root) == "BE" + tag.upper()
    assert hostlib.default_bridge_name(root) == f"berth-{tag}"
    Firewall(hostlib.iptables_prefix(root))  # a valid chain prefix
    # a real installation: fixed names, never collected by another daemon
    assert hostlib.derived_prefix("/run/berth") is None
    assert hostlib.iptables_prefix("/run/berth/") == "BERTH"
    assert hostlib.default_bridge_name("/run/berth") == "berth0"


def test_host_network_state_lives_under_its_exec_root(tmp_path):
    host = hostlib.HostNetwork(str(tmp_path / "exec"), Ipam(), iptables=False)
    assert host.firewall is None and not host.touched and not host.ready("n1")
    assert host.netns_dir == str(tmp_path / "exec" / "netns")
    assert host.netns_path("c1") == str(tmp_path / "exec" / "netns" / "c1")
    assert host.prefix == hostlib.iptables_prefix(str(tmp_path / "exec"))
    assert hostlib.HostNetwork(str(tmp_path), Ipam(), iptables=False, prefix="BTQ").prefix == "BTQ"


def test_orphaned_means_dead_daemon_and_exec_root_gone(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    own = str(tmp_path / "own")
    gone = str(tmp_path / "gone")
    only_netns = tmp_path / "crashed"
    (only_netns / "netns").mkdir(parents=True)
    kept = tmp_path / "kept"
    (kept / "containers").mkdir(parents=True)
    assert hostlib.orphaned(dead.pid, gone, own)
    assert hostlib.orphaned(dead.pid, str(only_netns), own)
    assert not hostlib.orphaned(dead.pid, str(kept), own)          # may come back
    assert not hostlib.orphaned(os.getpid(), gone, own)            # alive
    assert not hostlib.orphaned(dead.pid, own, own)                # ourselves
    assert not hostlib.orphaned(dead.pid, "/run/berth", own)       # a real installation


# ---- rule planning and bridge bookkeeping, with the host faked ----------------------------------

class FakeIptables:
    """A runner for Firewall: empty tables, records what would be restored."""

    def __init__(self):
        self.restored: list[str] = []

    def __call__(self, argv, stdin=None):
        if argv[0].endswith("-save"):
            return "".join(f"*{t}\nCOMMIT\n" for t in ("filter", "nat", "raw"))
        if argv[0].endswith("-restore"):
            self.restored.append(stdin or "")
        return ""


@pytest.fixture
def fake_links(monkeypatch):
    """bridge/ipam host calls replaced: a dict of links (name -> addresses)."""
    links: dict[str, list[str]] = {}
    calls: list[tuple] = []

    def ensure_bridge(name, gateway_cidr, *, mtu=1500, alias=None, route_localnet=True,
                      gateway6_cidr=None):
        calls.append(("ensure", name, gateway_cidr, mtu, alias) + ((gateway6_cidr,) if gateway6_cidr else ()))
        links.setdefault(name, []).append(gateway_cidr)

    def delete_bridge(name):
        calls.append(("delete", name))
        links.pop(name, None)

    monkeypatch.setattr(hostlib.brlib, "link_exists", lambda name: name in links)
    monkeypatch.setattr(hostlib.brlib, "ensure_bridge", ensure_bridge)
    monkeypatch.setattr(hostlib.brlib, "delete_bridge", delete_bridge)
    monkeypatch.setattr(hostlib.brlib, "bridge_addresses",
                        lambda name, family=4: list(links.get(name, [])) if family == 4 else [])
    return links, calls


def faked_host(tmp_path, **kw):
    ipam = Ipam(pools=[PoolSpec(ipaddress.IPv4Network("10.240.0.0/16"), 24)])
    up: list[hostlib.BridgeNetwork] = []
    host = hostlib.HostNetwork(str(tmp_path / "exec"), ipam, iptables=False,
                               on_bridge_up=up.append, **kw)
    runner = FakeIptables()
    host.firewall = Firewall("BTH", runner=runner)
    return host, ipam, up, runner


def test_network_and_port_rules_are_the_firewalls_for_the_pool(tmp_path):
    host, ipam, _, _ = faked_host(tmp_path)
    ipam.allocate_network("n1", name="web", subnet="10.9.0.0/24")
    net = hostlib.BridgeNetwork(id="n1", name="web", bridge="br-web", internal=True, icc=False)
    assert host.network_rules(net) == host.firewall.network_rules(
        "br-web", "10.9.0.0/24", internal=True, icc=False, masquerade=True)
    ep = Endpoint("br-web", "veth1234567", "eth0", "10.9.0.2/24", "02:42:0a:09:00:02", "10.9.0.1",
                  1500, True)
    m = PortMapping("tcp", "127.0.0.1", 8080, 80)
    live = hostlib.LiveSandbox(netns="/x", host_ifnames=("veth1234567",), gateway=ep, mappings=(m,))
    assert host.port_rules(live) == host.firewall.port_rules("br-web", "10.9.0.2", m)
    assert host.port_rules(hostlib.LiveSandbox(netns="/x", gateway=None, mappings=(m,))) == []
    assert host.port_rules(hostlib.LiveSandbox(netns="/x", gateway=ep)) == []
    host.firewall = None
    assert host.port_rules(live) == []


def test_ensure_network_makes_bridge_and_rules_once(tmp_path, fake_links):
    links, calls = fake_links
    host, ipam, up, runner = faked_host(tmp_path)
    ipam.allocate_network("n1", name="web", subnet="10.9.0.0/24")
    net = hostlib.BridgeNetwork(id="n1", name="web", bridge="br-web", mtu=1400, owns_bridge=False)
    host.ensure_network_sync(net)
    assert host.ready("n1") and host.touched and net.owns_bridge    # we made it
    assert up == [net]
    assert calls == [("ensure", "br-web", "10.9.0.1/24", 1400,
                      f"berth:{os.getpid()}:{tmp_path / 'exec'}")]
    assert "BTH-FORWARD" in runner.restored[0]              # base chains first
    assert "-o br-web" in runner.restored[1]                 # then the network's rules
    host.ensure_network_sync(net)                            # idempotent
    assert len(calls) == 1 and len(up) == 1 and len(runner.restored) == 2
    host.remove_network_sync(net)
    assert not host.ready("n1") and "br-web" not in links


def test_an_adopted_bridge_is_not_ours(tmp_path, fake_links):
    links, calls = fake_links
    links["br-x"] = []
    host, ipam, up, _ = faked_host(tmp_path)
    ipam.allocate_network("n1", name="x", subnet="10.9.0.0/24")
    net = hostlib.BridgeNetwork(id="n1", name="x", bridge="br-x", owns_bridge=False)
    host.ensure_network_sync(net)
    assert not net.owns_bridge
    host.remove_network_sync(net)
    assert "br-x" in links and ("delete", "br-x") not in calls
    host.cleanup_sync([net])
    assert "br-x" in links


def test_a_chosen_subnet_another_interface_took_is_chosen_again(tmp_path, fake_links, monkeypatch):
    links, calls = fake_links
    host, ipam, up, _ = faked_host(tmp_path)
    ipam.allocate_network("n1", name="web")                  # from the pools: 10.240.0.0/24
    first = ipam.network("n1").subnet
    taken = ipaddress.IPv4Network("10.240.0.0/23")           # another daemon got there first
    monkeypatch.setattr(hostlib.ipamlib, "read_host_networks", lambda exclude_ifnames=(): [taken])
    net = hostlib.BridgeNetwork(id="n1", name="web", bridge="br-web")
    host.ensure_network_sync(net)
    now = ipam.network("n1").subnet
    assert now != first and not now.overlaps(taken)
    assert [c[0] for c in calls] == ["ensure", "delete", "ensure"]
    assert links["br-web"] == [ipam.network("n1").gateway_cidr]
    assert up == [net]                                       # reported once, with the final pool


def test_default_bridge_takes_bip_then_its_existing_address(tmp_path, fake_links):
    links, _ = fake_links
    host, ipam, _, _ = faked_host(tmp_path, bip="10.66.0.1/24", fixed_cidr="10.66.0.128/25")
    default = hostlib.BridgeNetwork(id="d", name="bridge", bridge="bt-def", default=True)
    host.ensure_network_sync(default)
    pool = ipam.network("d")
    assert (str(pool.subnet), str(pool.gateway), str(pool.ip_range)) == \
        ("10.66.0.0/24", "10.66.0.1", "10.66.0.128/25")
    # no --bip: a bridge that exists keeps its address
    links.clear()
    links["bt-def2"] = ["10.77.0.1/16"]
    host2, ipam2, _, _ = faked_host(tmp_path)
    host2.ensure_network_sync(hostlib.BridgeNetwork(id="d", name="bridge", bridge="bt-def2", default=True))
    assert (str(ipam2.network("d").subnet), str(ipam2.network("d").gateway)) == ("10.77.0.0/16", "10.77.0.1")


def test_unplumb_releases_the_ports_and_the_netns(tmp_path, monkeypatch):
    deleted, disconnected = [], []
    monkeypatch.setattr(hostlib.nslib, "delete", deleted.append)
    monkeypatch.setattr(hostlib.brlib, "disconnect", disconnected.append)
    host, _, _, runner = faked_host(tmp_path)
    host.ports = type(host.ports)(ephemeral=(40000, 40010), check_host=None)
    m = host.ports.allocate(PortRequest("tcp", 80, "127.0.0.1", 8080), owner="c1")
    ep = Endpoint("br-a", "vethaaaaaaa", "eth0", "10.9.0.2/24", "02:42:0a:09:00:02", "10.9.0.1", 1500, True)
    other = Endpoint("br-b", "vethbbbbbbb", "eth1", "10.8.0.2/24", "02:42:0a:08:00:02", "10.8.0.1", 1500, False)
    host.unplumb_sync("c1", "/ns/c1", [ep, other], ep, [m], explicit=True)
    assert host.ports.allocated() == {}
    assert disconnected == ["vethaaaaaaa", "vethbbbbbbb"] and deleted == ["/ns/c1"]
    host.reserve_ports("c2", [m])
    assert host.ports.allocated() == {("tcp", "127.0.0.1", 8080): "c2"}
    host.release_ports("c2")
    assert host.ports.allocated() == {}


def test_proxies_only_without_a_firewall_and_their_errors_are_dockers(tmp_path):
    host, _, _, _ = faked_host(tmp_path)
    m = PortMapping("tcp", "127.0.0.1", 1, 80)

    async def scenario():
        await host.start_proxies("c1", "10.9.0.2", [m], "web", "e" * 64)   # the firewall does it
        assert host._proxies == {}
        await host.stop_proxies("c1")

    asyncio.run(scenario())
    exc = hostlib.connectivity_error("web", "abc", SystemError_("Bind for 0.0.0.0:80 failed"))
    assert exc.message == ("driver failed programming external connectivity on endpoint web (abc): "
                           "Bind for 0.0.0.0:80 failed")


# ---- the real thing, in a sandbox netns ---------------------------------------------------------

def iptables_save():
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout


@needs_root
@needs_iptables
def test_a_container_is_plumbed_and_everything_goes_again(sandbox, tmp_path, uid):
    subnet = ipaddress.IPv4Network(free_test_subnets(1)[0])
    exec_root = str(tmp_path / "exec")
    ipam = Ipam()
    ipam.allocate_network("n1", name="web", subnet=str(subnet))
    pool = ipam.network("n1")
    net = hostlib.BridgeNetwork(id="n1", name="web", bridge=f"bt-{uid}")
    host = hostlib.HostNetwork(exec_root, ipam, ip_forward=False, prefix=f"BT{uid.upper()}")
    ip = ipam.allocate_address("n1")
    plan = hostlib.EndpointPlan(endpoint_id="e" * 64, bridge=net.bridge, address=pool.cidr(ip),
                                gateway=str(pool.gateway), ifname="eth0", mac="02:42:00:00:00:09",
                                mtu=1500, host_ifname=f"vt{uid}", default_route=True)

    def scenario():
        from berth.network import bridge as brlib

        host.ensure_network_sync(net)
        path = host.netns_path("c1")
        try:
            eps, maps = host.plumb_sync("c1", path, [plan], [PortRequest("tcp", 80, "127.0.0.1", 0)],
                                        "web", fresh=True)
            assert [e.host_ifname for e in eps] == [f"vt{uid}"] and maps[0].host_ip == "127.0.0.1"
            assert f"vt{uid}" in brlib.bridge_ports(net.bridge)
            rules = iptables_save()
            assert f"--to-destination {ip}:80" in rules and f"-o {net.bridge}" in rules
            host.unplumb_sync("c1", path, eps, eps[0], maps, explicit=False)
            assert f"--to-destination {ip}:80" not in iptables_save()
            assert not os.path.exists(path) and host.ports.allocated() == {}
        finally:
            host.cleanup_sync([net])
        assert not brlib.link_exists(net.bridge)
        assert f"BT{uid.upper()}" not in iptables_save()

    netns.run_in(sandbox, scenario)
    assert netns.list_dir(host.netns_dir) == []
