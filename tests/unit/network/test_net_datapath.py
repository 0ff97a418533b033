"""Bridges, veths, published ports and isolation with real traffic (root).

Traffic goes only to 127.0.0.1 and to addresses inside namespaces created here. The first two
tests run in the host netns on a test bridge ``bt-<hex>`` with a 10.213.x.0/24 subnet that no
host route overlaps; the third needs ip_forward, so it runs in a sandbox netns standing in for
the host (its own sysctls and nf tables).
"""

import time

from berth.network import bridge, netns, sysctl
from berth.network.firewall import Firewall
from berth.network.ipam import Ipam
from berth.network.ports import PortAllocator, PortRequest
from nethelpers import Echo, free_test_subnets, listen, needs_iptables, needs_root, reach

pytestmark = [needs_root]


def test_two_containers_on_a_bridge_reach_each_other_and_the_gateway(nsdir, test_bridge):
    subnet = free_test_subnets(1)[0]
    ipam = Ipam()
    pool = ipam.allocate_network("n", subnet=subnet)
    bridge.ensure_bridge(test_bridge, pool.gateway_cidr)
    bridge.ensure_bridge(test_bridge, pool.gateway_cidr)  # idempotent: adopts it
    assert bridge.bridge_addresses(test_bridge) == [pool.gateway_cidr]
    assert sysctl.read(f"net.ipv4.conf.{test_bridge}.route_localnet") == "1"

    a, b = netns.create(nsdir / "a"), netns.create(nsdir / "b")
    ip_a, ip_b = ipam.allocate_address("n"), ipam.allocate_address("n")
    ep_a = bridge.connect(test_bridge, a, address=pool.cidr(ip_a), gateway=str(pool.gateway),
                          host_ifname=bridge.host_veth_name("ep-a-" + test_bridge))
    ep_b = bridge.connect(test_bridge, b, address=pool.cidr(ip_b), gateway=str(pool.gateway))
    assert ep_a.mac == bridge.mac_from_ip(ip_a) and ep_a.mac.startswith("02:42:")
    assert bridge.interfaces_in(a) == {"lo": ["127.0.0.1/8"], "eth0": [pool.cidr(ip_a)]}
    assert sorted(bridge.bridge_ports(test_bridge)) == sorted([ep_a.host_ifname, ep_b.host_ifname])
    assert bridge.Endpoint.from_dict(ep_a.to_dict()) == ep_a

    server_b = Echo(netns.run_in(b, listen, str(ip_b), 7000))
    server_gw = Echo(listen(str(pool.gateway), 0))
    try:
        assert reach((str(ip_b), 7000), a) == str(ip_a)
        assert reach((str(pool.gateway), server_gw.sock.getsockname()[1]), a) == str(ip_a)
        assert reach((str(ip_b), 7000)) == str(pool.gateway)  # host -> container
        bridge.disconnect(ep_a.host_ifname)
        assert bridge.interfaces_in(a) == {"lo": ["127.0.0.1/8"]}
        assert reach((str(ip_b), 7000), a, timeout=0.3) is None
        bridge.disconnect(ep_a.host_ifname)  # idempotent
    finally:
        server_b.close()
        server_gw.close()
    netns.delete(b)  # the veth pair goes with the namespace
    for _ in range(50):
        if not bridge.bridge_ports(test_bridge):
            break
        time.sleep(0.02)
    assert bridge.bridge_ports(test_bridge) == []
    bridge.delete_bridge(test_bridge)
    assert not bridge.link_exists(test_bridge)


@needs_iptables
def test_published_port_on_127_0_0_1_reaches_a_listener_in_a_netns(nsdir, test_bridge, firewall):
    subnet = free_test_subnets(1)[0]
    ipam = Ipam()
    pool = ipam.allocate_network("n", subnet=subnet)
    firewall.setup()
    bridge.ensure_bridge(test_bridge, pool.gateway_cidr)
    firewall.add_network(test_bridge, str(pool.subnet))
    c = netns.create(nsdir / "c")
    ip = str(ipam.allocate_address("n"))
    bridge.connect(test_bridge, c, address=pool.cidr(ip), gateway=str(pool.gateway))
    server = Echo(netns.run_in(c, listen, ip, 80))
    try:
        alloc = PortAllocator()  # real ephemeral range, real bind test
        loop = alloc.allocate(PortRequest("tcp", 80, "127.0.0.1"), owner="c")
        anyaddr = alloc.allocate(PortRequest("tcp", 80, "0.0.0.0"), owner="c")
        assert reach(("127.0.0.1", loop.host_port), timeout=0.5) is None  # nothing there yet
        firewall.add_ports(test_bridge, ip, [loop, anyaddr])
        # the container sees the bridge address: 127.0.0.1 was masqueraded on the way out
        assert reach(("127.0.0.1", loop.host_port)) == str(pool.gateway)
        assert reach(("127.0.0.1", anyaddr.host_port)) == str(pool.gateway)
        firewall.remove_port(test_bridge, ip, loop)
        assert reach(("127.0.0.1", loop.host_port), timeout=0.5) is None
        assert reach(("127.0.0.1", anyaddr.host_port)) == str(pool.gateway)
    finally:
        server.close()
    firewall.cleanup_all()
    assert firewall.rules("filter") == firewall.rules("nat") == firewall.rules("raw") == []


@needs_iptables
def test_masquerade_isolation_internal_and_hairpin_in_a_sandbox(sandbox, nsdir):
    """Sandbox = the host: an uplink to an 'outside' netns, three bridges, one container each."""

    def scenario():
        sysctl.enable_ip_forward()  # the sandbox's, not the host's
        outside = netns.create(nsdir / "outside")
        from pyroute2 import IPRoute

        with IPRoute() as ipr:  # uplink: sandbox 198.51.100.1 <-> outside 198.51.100.2
            ipr.link("add", ifname="bt-up", kind="veth", peer={"ifname": "eth0", "net_ns_fd": str(outside)})
            idx = ipr.link_lookup(ifname="bt-up")[0]
            ipr.addr("add", index=idx, address="198.51.100.1", prefixlen=24)
            ipr.link("set", index=idx, state="up")

        def outside_up():
            with IPRoute() as ipr:
                idx = ipr.link_lookup(ifname="eth0")[0]
                ipr.addr("add", index=idx, address="198.51.100.2", prefixlen=24)
                ipr.link("set", index=idx, state="up")
        netns.run_in(outside, outside_up)  # no route back to the container subnets: needs NAT
        far = Echo(netns.run_in(outside, listen, "198.51.100.2", 9000))

        ipam = Ipam()
        nets = {}
        for name, subnet in (("one", "10.10.1.0/24"), ("two", "10.10.2.0/24"), ("int", "10.10.3.0/24")):
            pool = ipam.allocate_network(name, name=name, subnet=subnet)
            bridge.ensure_bridge(f"bt-{name}", pool.gateway_cidr)
            path = netns.create(nsdir / f"c-{name}")
            ip = str(ipam.allocate_address(name))
            bridge.connect(f"bt-{name}", path, address=pool.cidr(ip), gateway=str(pool.gateway))
            nets[name] = (path, ip, pool)
        a, ip_a, pool_a = nets["one"]
        b, ip_b, _ = nets["two"]
        i, _, _ = nets["int"]
        echo_a = Echo(netns.run_in(a, listen, ip_a, 80))
        echo_b = Echo(netns.run_in(b, listen, ip_b, 80))
        try:
            # without rules: everything routes (so the checks below can fail)
            assert reach((ip_b, 80), a) == ip_a
            assert reach(("198.51.100.2", 9000), a, timeout=0.5) is None  # no NAT: no reply path
            assert reach(("198.51.100.2", 9000), i, timeout=0.5) is None

            fw = Firewall(prefix="BTS")
            fw.setup()
            fw.add_network("bt-one", "10.10.1.0/24")
            fw.add_network("bt-two", "10.10.2.0/24")
            fw.add_network("bt-int", "10.10.3.0/24", internal=True)
            assert reach(("198.51.100.2", 9000), a) == "198.51.100.1"  # masqueraded
            assert reach((ip_b, 80), a, timeout=0.5) is None  # isolated networks
            assert reach((ip_a, 80), b, timeout=0.5) is None
            assert reach(("198.51.100.2", 9000), i, timeout=0.5) is None  # internal: no way out
            # published port, reached from the outside and by the container itself (hairpin)
            mapping = PortAllocator(ephemeral=(30000, 30010), check_host=None).allocate(
                PortRequest("tcp", 80, "0.0.0.0", 8080))
            fw.add_port("bt-one", ip_a, mapping)
            seen = reach(("198.51.100.1", 8080), outside)
            assert seen == "198.51.100.2"
            assert reach((str(pool_a.gateway), 8080), a) == str(pool_a.gateway)  # hairpin NAT
            fw.cleanup_all()
            assert reach(("198.51.100.2", 9000), a, timeout=0.5) is None
        finally:
            echo_a.close()
            echo_b.close()
            far.close()

    netns.run_in(sandbox, scenario)


def test_second_interface_default_route_and_name_clash(nsdir, test_bridge):
    import subprocess

    import pytest

    from berth.errors import Conflict

    subnet = free_test_subnets(1)[0]
    ipam = Ipam()
    pool = ipam.allocate_network("n", subnet=subnet)
    bridge.ensure_bridge(test_bridge, pool.gateway_cidr, mtu=1400)
    assert test_bridge in bridge.list_bridges()
    c = netns.create(nsdir / "c")

    def routes():
        return netns.run_in(c, lambda: subprocess.run(["ip", "-4", "route"], capture_output=True,
                                                      text=True, check=True).stdout)

    ep = bridge.connect(test_bridge, c, address=pool.cidr(ipam.allocate_address("n")),
                        gateway=str(pool.gateway), default_route=False, mtu=1400)
    assert not ep.default_route and "default" not in routes()
    with pytest.raises(Conflict):
        bridge.connect(test_bridge, c, address=pool.cidr(ipam.allocate_address("n")), gateway=None)
    ep2 = bridge.connect(test_bridge, c, ifname="eth1", address=pool.cidr(ipam.allocate_address("n")),
                         gateway=None, mtu=1400)
    assert set(bridge.interfaces_in(c)) == {"lo", "eth0", "eth1"}
    bridge.set_default_route(c, str(pool.gateway), "eth1")
    assert f"default via {pool.gateway} dev eth1" in routes()
    bridge.set_default_route(c, None)
    assert "default" not in routes()
    bridge.set_default_route(c, None)  # no route to delete: fine
    bridge.disconnect(ep.host_ifname)
    bridge.disconnect(ep2.host_ifname)
    assert bridge.bridge_ports(test_bridge) == []
