"""IPv6 in the network library: IPv6 pools (pure), ip6tables rule sets (pure, then applied in a
sandbox netns), AAAA/PTR answers and per-container link aliases of the embedded DNS (pure),
port mappings on [::] and [::1] in HostNetwork (faked host), and a dual-stack bridge with two
containers inside a sandbox netns (root). Only unique local prefixes (fd00::/8)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess

import pytest

from berth.errors import Conflict, Forbidden, InvalidParameter
from berth.network import bridge, dnswire, netns
from berth.network import host as hostlib
from berth.network.dns import Records, answer_locally
from berth.network.firewall import Firewall
from berth.network.ipam import Ipam, NetworkPool, PoolSpec, parse_address_pools, ula_pool
from berth.network.ports import PortAllocator, PortMapping, PortRequest
from nethelpers import needs_root

HAS_IPV6 = os.path.exists("/proc/net/if_inet6")
needs_ip6tables = pytest.mark.skipif(shutil.which("ip6tables-restore") is None,
                                     reason="ip6tables is not installed")
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 in this kernel")


# ---- IPAM ----------------------------------------------------------------------------------------

def test_ipv6_pools_beside_ipv4_ones():
    ipam = Ipam(pools6=[PoolSpec(ipaddress.IPv6Network("fd00:aa::/48"), 64)],
                host_networks6=lambda: [ipaddress.IPv6Network("fd00:aa::/64")])
    v4 = ipam.allocate_network("n1")
    v6 = ipam.allocate_network6("n1")
    assert (v4.version, v6.version) == (4, 6)
    assert str(v6.subnet) == "fd00:aa:0:1::/64"          # the host's route is skipped
    assert str(v6.gateway) == "fd00:aa:0:1::1" and v6.gateway_cidr == "fd00:aa:0:1::1/64"
    assert ipam.network6("n1") is v6 and ipam.network("n1") is v4 and ipam.has_ipv6("n1")
    assert str(ipam.allocate_network6("n2").subnet) == "fd00:aa:0:2::/64"
    assert str(ipam.allocate_address6("n1")) == "fd00:aa:0:1::2"
    assert str(ipam.allocate_address6("n1", preferred="fd00:aa:0:1::99")) == "fd00:aa:0:1::99"
    with pytest.raises(Forbidden):
        ipam.allocate_address6("n1", preferred="fd00:aa:0:1::99")
    with pytest.raises(InvalidParameter) as excinfo:
        ipam.allocate_address6("n1", preferred="10.0.0.1")
    assert excinfo.value.message == "invalid IPv6 address: 10.0.0.1"
    with pytest.raises(InvalidParameter, match="does not belong to any of this network's subnets"):
        ipam.allocate_address6("n1", preferred="fd00:bb::1")
    ipam.release_address("n1", "fd00:aa:0:1::2/64")      # by family, CIDR or not
    assert str(ipam.allocate_address6("n1")) == "fd00:aa:0:1::2"
    with pytest.raises(Conflict):
        ipam.allocate_network6("n1")
    with pytest.raises(Forbidden, match="Pool overlaps"):
        ipam.allocate_network6("n3", subnet="fd00:aa:0:2::/80")
    saved = ipam.to_dict()
    again = Ipam.from_dict(saved)
    assert str(again.network6("n1").subnet) == "fd00:aa:0:1::/64"
    assert again.network6("n1").allocated == ipam.network6("n1").allocated
    assert NetworkPool.from_dict(v6.to_dict()).gateway == v6.gateway
    ipam.release_network("n1")
    assert not ipam.has_ipv6("n1")


def test_ipv6_subnets_given_or_from_the_pools():
    ipam = Ipam(ula_seed="/var/lib/berth")
    pool = ipam.allocate_network6("n", subnet="fd00:1::/64", gateway="fd00:1::fe",
                                  aux_addresses={"r": "fd00:1::2"})
    assert str(pool.gateway) == "fd00:1::fe" and pool.user_subnet
    assert str(ipam.allocate_address6("n")) == "fd00:1::1"   # ::2 is an aux address
    assert pool.ipam_config() == {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::fe",
                                  "AuxiliaryAddresses": {"r": "fd00:1::2"}}
    with pytest.raises(InvalidParameter) as excinfo:
        ipam.allocate_network6("m", subnet="fd00:2::1/64")
    assert "invalid subnet fd00:2::1/64: it should be fd00:2::/64" in excinfo.value.message
    with pytest.raises(InvalidParameter, match="parent subnet is an IPv6 block"):
        ipam.allocate_network6("m", subnet="fd00:2::/64", gateway="10.0.0.1")
    # the default /48 is derived from the seed: stable, unique local, /64 each
    first = ula_pool("/var/lib/berth")
    assert first == ula_pool("/var/lib/berth") and first != ula_pool("/other")
    assert first.base.prefixlen == 48 and first.size == 64
    assert first.base.subnet_of(ipaddress.IPv6Network("fd00::/8"))
    auto = ipam.allocate_network6("auto")
    assert auto.subnet.subnet_of(first.base) and not auto.user_subnet
    # daemon.json default-address-pools: each family takes its own entries
    entries = [{"base": "10.50.0.0/16", "size": 24}, "base=fd00:77::/56,size=64"]
    assert [str(p.base) for p in parse_address_pools(entries)] == ["10.50.0.0/16"]
    assert [(str(p.base), p.size) for p in parse_address_pools(entries, version=6)] == [("fd00:77::/56", 64)]


# ---- ip6tables -----------------------------------------------------------------------------------

def test_ipv6_rule_sets():
    fw = Firewall("BT6", family=6)
    assert fw.iptables == "ip6tables" and "raw" not in fw.chains()
    base = [r.line for r in fw.base_rules()]
    assert "-A OUTPUT ! -d ::1/128 -m addrtype --dst-type LOCAL -j BT6" in base
    assert not [line for line in base if "PREROUTING -j BT6-PREROUTING" in line]
    lines = [r.line for r in fw.network_rules("br-x", "fd00:1::/64")]
    assert "-A BT6-POSTROUTING -s fd00:1::/64 ! -o br-x -j MASQUERADE" in lines
    assert not [line for line in lines if "127.0.0.0/8" in line]
    ports = [r.line for r in fw.port_rules("br-x", "fd00:1::2", PortMapping("tcp", "::", 8080, 80))]
    assert ('-A BT6 -p tcp -m tcp --dport 8080 -m comment --comment "[::]:8080/tcp" -j DNAT '
            "--to-destination [fd00:1::2]:80") in ports
    assert any(line.startswith("-A BT6 -d fd00:1::2/128 ! -i br-x -o br-x") for line in ports)
    # [::1] is the userland proxy's: no kernel rule can serve it
    assert fw.port_rules("br-x", "fd00:1::2", PortMapping("tcp", "::1", 8081, 80)) == []


@needs_root
@needs_ip6tables
@needs_ipv6
def test_ipv6_rules_applied_and_removed_in_a_sandbox(sandbox):
    def scenario():
        fw = Firewall(prefix="BTS6", family=6)
        fw.setup()
        rules = fw.network_rules("br-y", "fd00:9::/64") + fw.port_rules(
            "br-y", "fd00:9::2", PortMapping("udp", "fd00:9::1", 5353, 53))
        fw.add(rules)
        fw.add(rules)   # idempotent: ip6tables-save's canonical forms are ours
        count = len(fw.rules("nat")) + len(fw.rules("filter"))
        saved = subprocess.run(["ip6tables-save"], capture_output=True, text=True).stdout
        fw.remove(rules)
        left = fw.rules("nat") + fw.rules("filter")
        fw.cleanup_all()
        gone = [ln for ln in subprocess.run(["ip6tables-save"], capture_output=True,
                                             text=True).stdout.splitlines() if "BTS6" in ln]
        return count, saved, left, gone

    count, saved, left, gone = netns.run_in(sandbox, scenario)
    assert count == len([ln for ln in saved.splitlines() if "BTS6" in ln and ln.startswith("-A")])
    assert "--to-destination [fd00:9::2]:53" in saved
    assert len(left) == 6 and all("fd00:9" not in line for line in left)   # the base jumps
    assert gone == []


# ---- embedded DNS --------------------------------------------------------------------------------

def records():
    r = Records()
    r.add_network("n1", "front", "10.1.0.0/24")
    r.register("n1", ["web", "abcdef123456"], "10.1.0.2")
    r.register("n1", ["web", "abcdef123456"], "fd00:1::2")
    r.register("n1", ["db"], "10.1.0.3")
    r.register("n1", ["v6only"], "fd00:1::9")
    return r


def ask(r, name, qtype, aliases=None):
    query = dnswire.parse_query(dnswire.build_query(name, qtype))
    reply = answer_locally(r, ["n1"], query, aliases=aliases)
    return None if reply is None else dnswire.parse_response(reply)


def test_aaaa_and_a_answers_by_family():
    r = records()
    aaaa = ask(r, "web", dnswire.TYPE_AAAA)
    assert [(t, ipaddress.ip_address(data)) for _, t, data in aaaa.answers] == \
        [(dnswire.TYPE_AAAA, ipaddress.IPv6Address("fd00:1::2"))]
    assert [ipaddress.ip_address(d) for _, _, d in ask(r, "web.front", dnswire.TYPE_A).answers] == \
        [ipaddress.IPv4Address("10.1.0.2")]
    nodata = ask(r, "db", dnswire.TYPE_AAAA)   # a name without IPv6: empty NOERROR
    assert (nodata.rcode, nodata.answers) == (0, [])
    assert ask(r, "v6only", dnswire.TYPE_A).answers == []
    assert ask(r, "nobody", dnswire.TYPE_AAAA) is None    # not ours: forwarded
    ptr = ask(r, dnswire.reverse_name("fd00:1::2"), dnswire.TYPE_PTR)
    assert ptr.answers and ptr.answers[0][1] == dnswire.TYPE_PTR
    assert dnswire.ip_from_reverse(dnswire.reverse_name("fd00:1::2")) == "fd00:1::2"
    assert dnswire.ip_from_reverse("1.0.ip6.arpa") is None
    r.unregister("n1", "fd00:1::2")
    assert ask(r, "web", dnswire.TYPE_AAAA).answers == []


def test_link_aliases_are_the_asking_containers_own():
    r = records()
    own = {"n1": {"data": "db", "web": "db"}}
    assert r.lookup(["n1"], "data", aliases=own) == ["10.1.0.3"]
    assert r.lookup(["n1"], "data.front", aliases=own) == ["10.1.0.3"]
    assert r.lookup(["n1"], "data") == []                  # someone else asking
    assert r.lookup(["n1"], "web", aliases=own) == ["10.1.0.3"]   # an alias hides the name
    assert r.lookup(["n1"], "web", version=6) == ["fd00:1::2"]
    assert r.lookup(["n1"], "data.other", aliases=own) == []      # another network's name


# ---- HostNetwork: IPv6 ports ---------------------------------------------------------------------

class FakeIptables:
    def __init__(self):
        self.restored: list[str] = []

    def __call__(self, argv, stdin=None):
        if argv[0].endswith("-save"):
            return ""
        if argv[0].endswith("-restore"):
            self.restored.append(stdin or "")
        return ""


def test_ipv6_ports_get_ip6tables_rules_and_a_proxy_where_needed(tmp_path):
    host = hostlib.HostNetwork(str(tmp_path / "exec"), Ipam(), iptables=False)
    v4, v6 = FakeIptables(), FakeIptables()
    host.firewall = Firewall("BTH", runner=v4)
    host.firewall6 = Firewall("BTH", runner=v6, family=6)
    host.ports = PortAllocator(ephemeral=(41000, 41010), check_host=None)
    requests = [PortRequest("tcp", 80, "0.0.0.0", 0), PortRequest("tcp", 80, "::", 0),
                PortRequest("tcp", 81, "::1", 41005)]
    mappings = host._publish("c1", "br-x", "10.0.0.2", requests, "web", "e1", ip6="fd00:1::2")
    assert [(m.host_ip, m.host_port) for m in mappings] == [("0.0.0.0", 41000), ("::", 41000),
                                                            ("::1", 41005)]   # one port, both families
    assert "--to-destination 10.0.0.2:80" in v4.restored[0] and "::" not in v4.restored[0]
    assert "--to-destination [fd00:1::2]:80" in "".join(v6.restored)
    assert [host.needs_proxy(m, "fd00:1::2") for m in mappings] == [False, True, True]
    assert host.needs_proxy(mappings[1], "") and not host.needs_proxy(mappings[0], "")
    ep = bridge.Endpoint("br-x", "veth1", "eth0", "10.0.0.2/24", "02:42:0a:00:00:02", "10.0.0.1",
                         1500, True, "fd00:1::2/64", "fd00:1::1")
    live = hostlib.LiveSandbox(netns="/x", gateway=ep, mappings=tuple(mappings))
    assert [r.chain for r in host.port_rules(live)] == ["BTH", "BTH", "BTH-POSTROUTING"]
    assert len(host.port_rules6(live)) == 3    # [::]; [::1] has none
    host._unpublish("br-x", "10.0.0.2", mappings, ip6="fd00:1::2")
    assert host.ports.allocated() == {}
    assert bridge.Endpoint.from_dict(ep.to_dict()) == ep
    old = {k: v for k, v in ep.to_dict().items() if k not in ("address6", "gateway6")}
    assert bridge.Endpoint.from_dict(old).address6 == ""   # endpoints saved before IPv6


def test_without_ip6tables_ipv6_ports_are_proxied(tmp_path):
    host = hostlib.HostNetwork(str(tmp_path / "exec"), Ipam(), iptables=True, ip6tables=False)
    assert host.firewall6 is None
    mapping = PortMapping("tcp", "fd00::5", 8080, 80)
    assert host.needs_proxy(mapping, "fd00:1::2")      # no kernel rule serves it
    ep = bridge.Endpoint("br-x", "veth1", "eth0", "10.0.0.2/24", "02:42:0a:00:00:02", "10.0.0.1",
                         1500, True, "fd00:1::2/64", "fd00:1::1")
    assert host.port_rules6(hostlib.LiveSandbox(netns="/x", gateway=ep, mappings=(mapping,))) == []
    net = hostlib.BridgeNetwork(id="n", name="n", bridge="br-x", ipv6=True)
    host.ipam.allocate_network("n")
    host.ipam.allocate_network6("n", subnet="fd00:1::/64")
    assert host.network_rules6(net) == []


# ---- a dual-stack bridge, inside a sandbox netns -------------------------------------------------

def _listen6(ip: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, port))
    sock.listen(4)
    return sock


def _reach6(ip: str, port: int) -> str | None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        try:
            s.connect((ip, port))
            return "ok"
        except OSError:
            return None


@needs_root
@needs_ipv6
def test_dual_stack_bridge_and_endpoints_in_a_sandbox(sandbox, nsdir):
    ipam = Ipam()
    pool = ipam.allocate_network("n", subnet="10.77.0.0/24")
    pool6 = ipam.allocate_network6("n", subnet="fd00:77::/64")
    a, b = netns.create(nsdir / "a"), netns.create(nsdir / "b")

    def plumb():
        bridge.ensure_bridge("bt6", pool.gateway_cidr, gateway6_cidr=pool6.gateway_cidr)
        bridge.ensure_bridge("bt6", pool.gateway_cidr, gateway6_cidr=pool6.gateway_cidr)  # idempotent
        eps = []
        for path in (a, b):
            ip, ip6 = ipam.allocate_address("n"), ipam.allocate_address6("n")
            eps.append(bridge.connect("bt6", path, address=pool.cidr(ip), gateway=str(pool.gateway),
                                      address6=pool6.cidr(ip6), gateway6=str(pool6.gateway)))
        return bridge.bridge_addresses("bt6", family=6), eps

    addresses6, (ep_a, ep_b) = netns.run_in(sandbox, plumb)
    assert addresses6 == ["fd00:77::1/64"]
    assert (ep_a.address6, ep_a.gateway6, ep_b.ip6) == ("fd00:77::2/64", "fd00:77::1", "fd00:77::3")
    assert bridge.interfaces_in(a, family=6)["eth0"][0] == "fd00:77::2/64"
    routes = netns.run_in(a, lambda: subprocess.run(["ip", "-6", "route"], capture_output=True,
                                                    text=True).stdout)
    assert "default via fd00:77::1 dev eth0" in routes
    server = netns.run_in(b, _listen6, ep_b.ip6, 7001)
    gateway_server = netns.run_in(sandbox, _listen6, "fd00:77::1", 7002)
    try:
        assert netns.run_in(a, _reach6, ep_b.ip6, 7001) == "ok"        # no DAD wait: at once
        assert netns.run_in(a, _reach6, "fd00:77::1", 7002) == "ok"    # the bridge's address
    finally:
        server.close()
        gateway_server.close()

    def default_routes() -> str:
        return netns.run_in(a, lambda: subprocess.run(["ip", "route", "show", "default"], capture_output=True,
                                                      text=True).stdout + subprocess.run(
            ["ip", "-6", "route", "show", "default"], capture_output=True, text=True).stdout)

    bridge.set_default_route(a, None)                       # both families go
    assert "default" not in default_routes()
    bridge.set_default_route(a, str(pool.gateway), "eth0", gateway6="fd00:77::1")
    routes = default_routes()
    assert f"default via {pool.gateway} dev eth0" in routes and "default via fd00:77::1 dev eth0" in routes
