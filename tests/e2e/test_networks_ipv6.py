"""IPv6 end to end: dual-stack user networks (``--ipv6 --subnet``, ``--ip6``), the default
bridge with daemon.json ``ipv6`` and ``fixed-cidr-v6``, published ports on [::1] and [::]
reached from the host over ::1, AAAA answers of the embedded DNS, and ip6tables rules made
and removed like the IPv4 ones. Driven with the docker CLI and docker-py.

Only unique local prefixes (fd00::/8) that no host route overlaps are used; traffic goes to
::1, 127.0.0.1 and the test's own containers. The daemon has a test-unique bridge and chain
prefix, and a fake DNS upstream on 127.0.0.1 (see test_networks)."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import socket

import docker
import pytest

from daemon_harness import remove_root, start_daemon
from images_harness import import_busybox
from test_networks import (FakeResolver, daemon_env, docker_cli, endpoint_ids, fails, free_port,
                           host_links, netns_mounts, ok, read_banner, rules6_of, sweep, veth_of)
from test_networks import leakcheck  # noqa: F401 - the fixture: daemons restarted on one root

__all__ = ["leakcheck"]   # fixtures shared with test_networks

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.path.exists("/proc/net/if_inet6"), reason="no IPv6 in this kernel"),
    pytest.mark.skipif(not shutil.which("ip6tables-save"), reason="ip6tables is not installed"),
]


def free_ula_subnets(count: int) -> list[str]:
    """/64s of a random unique local /48 (fdXX:XXXX:XXXX::/48) that no host route overlaps."""
    from berth.network.ipam import read_host_networks

    taken = read_host_networks(family=6)
    while True:
        base = ipaddress.IPv6Network((0xFD << 120 | secrets.randbits(40) << 80, 48))
        if not any(base.overlaps(t) for t in taken):
            return [str(s) for _, s in zip(range(count), base.subnets(new_prefix=64))]


def nslookup(daemon, container: str, name: str, qtype: str) -> list[str]:
    result = docker_cli(daemon, "exec", container, "nslookup", f"-type={qtype}", name)
    answer = result.stdout.split("Name:", 1)[1] if "Name:" in result.stdout else ""
    return re.findall(r"Address:\s*([0-9a-f.:]+)", answer)


@pytest.fixture(scope="module")
def resolver():
    fake = FakeResolver()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def six(resolver):
    """A daemon whose default bridge is dual-stack (daemon.json ipv6 + fixed-cidr-v6)."""
    mp = pytest.MonkeyPatch()
    host = daemon_env(mp, resolver)
    default6, *subnets = free_ula_subnets(6)
    try:
        daemon = start_daemon(args=["--bridge", host.bridge],
                              config={"ipv6": True, "fixed-cidr-v6": default6, "ip6tables": True})
    finally:
        mp.undo()
    daemon.host_names = host
    daemon.default6 = default6
    daemon.subnets = subnets
    try:
        import_busybox(daemon.env())
        yield daemon
    finally:
        for cid in docker_cli(daemon, "ps", "-aq").stdout.split():
            docker_cli(daemon, "rm", "-f", cid)
        docker_cli(daemon, "network", "prune", "-f")
        daemon.stop()
        sweep(daemon)
        left = host.leftovers(daemon.root)
        host.scrub(daemon.root)
        remove_root(daemon.root)
        assert not left, f"left on the host after the daemon stopped: {left}\n{daemon.log()[-3000:]}"


@pytest.fixture
def made(six):
    """Containers and networks of one test, removed afterwards."""
    containers: list[str] = []
    networks: list[str] = []

    class Made:
        def name(self, prefix: str) -> str:
            containers.append(f"{prefix}-{secrets.token_hex(4)}")
            return containers[-1]

        def network(self, *options: str) -> str:
            name = f"n6-{secrets.token_hex(4)}"
            networks.append(name)
            network_id = ok(six, "network", "create", *options, name)
            six.host_names.bridges.add(f"br-{network_id[:12]}")
            return name

    yield Made()
    for name in containers:
        for eid in docker_cli(six, "inspect", "-f",
                              "{{range .NetworkSettings.Networks}}{{.EndpointID}} {{end}}", name).stdout.split():
            six.host_names.veths.add(veth_of(eid))
        docker_cli(six, "rm", "-f", name)
    for name in networks:
        docker_cli(six, "network", "rm", name)


def test_dual_stack_user_network_with_the_cli(six, made):
    subnet = six.subnets[0]
    prefix = ipaddress.IPv6Network(subnet)
    fixed, gateway = str(prefix[0x99]), str(prefix[1])
    name = made.network("--ipv6", "--subnet", subnet)
    data = json.loads(ok(six, "network", "inspect", name))[0]
    assert (data["EnableIPv6"], data["EnableIPv4"]) == (True, True)
    assert data["IPAM"]["Config"][1] == {"Subnet": subnet, "Gateway": gateway}
    assert ipaddress.IPv4Network(data["IPAM"]["Config"][0]["Subnet"])   # IPv4 chosen as well
    bridge = f"br-{data['Id'][:12]}"
    assert f"-A {six.host_names.prefix}-POSTROUTING -s {subnet} ! -o {bridge} -j MASQUERADE" in \
        rules6_of(six.host_names.prefix)

    a, b = made.name("a"), made.name("b")
    a_id = ok(six, "run", "-d", "--name", a, "--network", name, "--ip6", fixed, "busybox", "sleep", "300")
    ok(six, "run", "-d", "--name", b, "--network", name, "busybox", "sleep", "300")
    es = json.loads(ok(six, "inspect", a))[0]["NetworkSettings"]["Networks"][name]
    assert (es["GlobalIPv6Address"], es["GlobalIPv6PrefixLen"], es["IPv6Gateway"]) == (fixed, 64, gateway)
    assert es["IPAMConfig"] == {"IPv6Address": fixed}
    b_es = json.loads(ok(six, "inspect", b))[0]["NetworkSettings"]["Networks"][name]
    assert b_es["GlobalIPv6Address"] == str(prefix[2])   # the first free one after the gateway
    members = json.loads(ok(six, "network", "inspect", name))[0]["Containers"]
    assert members[a_id]["IPv6Address"] == f"{fixed}/64"

    assert "inet6 " + f"{fixed}/64" in ok(six, "exec", a, "ip", "-6", "addr", "show", "eth0")
    assert f"default via {gateway}" in ok(six, "exec", a, "ip", "-6", "route")
    assert "1 packets received" in ok(six, "exec", b, "ping", "-6", "-c1", "-W2", fixed)
    assert f"{fixed}\t{a_id[:12]}" in ok(six, "exec", a, "cat", "/etc/hosts").splitlines()
    # the embedded DNS: AAAA with the IPv6 address, A with the IPv4 one
    assert nslookup(six, b, a, "aaaa") == [fixed]
    assert nslookup(six, b, f"{a}.{name}", "aaaa") == [fixed]
    assert nslookup(six, b, a, "a") == [es["IPAddress"]]
    # the container reaches its gateway, the bridge's IPv6 address on the host
    assert "1 packets received" in ok(six, "exec", a, "ping", "-6", "-c1", "-W2", gateway)

    taken = fails(six, "run", "-d", "--name", made.name("c"), "--network", name, "--ip6", fixed,
                  "busybox", "true")
    assert "Address already in use" in taken
    wrong = fails(six, "run", "-d", "--name", made.name("c"), "--network", name, "--ip6",
                  six.subnets[1].replace("::/64", "::5"), "busybox", "true")
    assert "no configured subnet contains IP address" in wrong

    # a network with --ipv6 and no subnet of its own gets a /64 of the unique local pool, and
    # --ip6 on it is refused as dockerd does
    auto = made.network("--ipv6")
    auto_config = json.loads(ok(six, "network", "inspect", auto))[0]["IPAM"]["Config"]
    auto6 = ipaddress.IPv6Network(auto_config[1]["Subnet"])
    assert auto6.prefixlen == 64 and auto6.subnet_of(ipaddress.IPv6Network("fd00::/8"))
    refused = fails(six, "run", "--rm", "--network", auto, "--ip6", str(auto6[7]), "busybox", "true")
    assert ("user specified IP address is supported only when connecting to networks with user "
            "configured subnets") in refused

    ok(six, "rm", "-f", a, b)
    ok(six, "network", "rm", name)
    assert not [r for r in rules6_of(six.host_names.prefix) if bridge in r or subnet in r]


def test_dual_stack_with_docker_py(six, made):
    subnet = six.subnets[2]
    prefix = ipaddress.IPv6Network(subnet)
    name = f"n6py-{secrets.token_hex(4)}"
    client = docker.DockerClient(base_url=six.host, version="auto", timeout=60)
    try:
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet,
                                                                            gateway=str(prefix[0xfe]))])
        network = client.networks.create(name, driver="bridge", enable_ipv6=True, ipam=ipam)
        six.host_names.bridges.add(f"br-{network.id[:12]}")
        try:
            attrs = client.api.inspect_network(network.id)
            assert attrs["EnableIPv6"] is True and attrs["IPAM"]["Options"] is None
            assert {"Subnet": subnet, "Gateway": str(prefix[0xfe])} in attrs["IPAM"]["Config"]
            box = made.name("py")
            created = client.api.create_container(
                "busybox", ["sleep", "300"], name=box,
                host_config=client.api.create_host_config(network_mode=name),
                networking_config=client.api.create_networking_config({
                    name: client.api.create_endpoint_config(ipv6_address=str(prefix[0x42]))}))
            client.api.start(created["Id"])
            settings = client.api.inspect_container(box)["NetworkSettings"]["Networks"][name]
            assert settings["GlobalIPv6Address"] == str(prefix[0x42])
            assert settings["IPv6Gateway"] == str(prefix[0xfe])
            # a second one connected while running gets the next free address
            other = made.name("py")
            client.containers.run("busybox", ["sleep", "300"], name=other, detach=True)
            client.api.connect_container_to_network(other, name, ipv6_address=str(prefix[0x43]))
            joined = client.api.inspect_container(other)["NetworkSettings"]["Networks"][name]
            assert joined["GlobalIPv6Address"] == str(prefix[0x43])
            assert "1 packets received" in ok(six, "exec", other, "ping", "-6", "-c1", "-W2",
                                              str(prefix[0x42]))
            client.api.remove_container(box, force=True)
            client.api.remove_container(other, force=True)
        finally:
            client.api.remove_network(network.id)
    finally:
        client.close()


def test_default_bridge_ipv6_and_ports_on_loopback(six, made):
    default6 = ipaddress.IPv6Network(six.default6)
    bridge = json.loads(ok(six, "network", "inspect", "bridge"))[0]
    assert bridge["EnableIPv6"] is True
    assert {"Subnet": six.default6, "Gateway": str(default6[1])} in bridge["IPAM"]["Config"]

    loop6, both = free_port(), free_port()
    web = made.name("web")
    ok(six, "run", "-d", "--name", web, "-p", f"[::1]:{loop6}:80", "-p", f"{both}:80", "busybox",
       "nc", "-ll", "-p", "80", "-e", "echo", "hello-six")
    settings = json.loads(ok(six, "inspect", web))[0]["NetworkSettings"]
    assert ipaddress.IPv6Address(settings["GlobalIPv6Address"]) in default6   # the legacy fields
    assert (settings["GlobalIPv6PrefixLen"], settings["IPv6Gateway"]) == (64, str(default6[1]))
    assert settings["Networks"]["bridge"]["GlobalIPv6Address"] == settings["GlobalIPv6Address"]
    assert settings["Ports"]["80/tcp"] == [{"HostIp": "::1", "HostPort": str(loop6)},
                                           {"HostIp": "0.0.0.0", "HostPort": str(both)},
                                           {"HostIp": "::", "HostPort": str(both)}]
    assert sorted(ok(six, "port", web).splitlines()) == sorted([
        f"80/tcp -> [::1]:{loop6}", f"80/tcp -> 0.0.0.0:{both}", f"80/tcp -> [::]:{both}"])
    assert read_banner(loop6, host="::1") == "hello-six"
    assert read_banner(both, host="::1") == "hello-six"
    assert read_banner(both, host="127.0.0.1") == "hello-six"
    ours = [r for r in rules6_of(six.host_names.prefix) if f":{both}/tcp" in r]
    assert any("DNAT" in r and f"[{settings['GlobalIPv6Address']}]:80" in r for r in ours)

    ok(six, "rm", "-f", web)
    assert not [r for r in rules6_of(six.host_names.prefix) if f":{both}/tcp" in r or f":{loop6}/tcp" in r]
    with socket.socket(socket.AF_INET6) as again:   # the daemon's proxy let go of [::1]
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("::1", loop6))
        again.listen(1)


def test_live_restore_keeps_ipv6_ports_and_rules(leakcheck):
    """A daemon restart under live-restore: the IPv6 rules are reconciled, not lost, and the
    userland proxy of [::1] comes back; the stop after removes every ip6tables rule."""
    start, host = leakcheck
    subnet, = free_ula_subnets(1)
    d = start("--live-restore")
    import_busybox(d.env())
    network_id = ok(d, "network", "create", "--ipv6", "--subnet", subnet, f"lr6-{secrets.token_hex(3)}")
    host.bridges.add(f"br-{network_id[:12]}")
    loop6, both = free_port(), free_port()
    ok(d, "run", "-d", "--name", "web", "--network", network_id, "-p", f"[::1]:{loop6}:80",
       "-p", f"{both}:80", "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "still-six")
    host.veths.update(veth_of(e) for e in endpoint_ids(d, "web"))
    assert read_banner(loop6, host="::1") == "still-six"
    rules = sorted(rules6_of(host.prefix))
    assert d.stop() == 0
    assert read_banner(both, host="127.0.0.1") == "still-six"   # kernel rules: no daemon needed
    assert sorted(rules6_of(host.prefix)) == rules and netns_mounts(d.root)
    d2 = start("--live-restore", root=d.root)
    assert read_banner(loop6, host="::1") == "still-six"         # the proxy is back
    assert read_banner(both, host="::1") == "still-six"
    assert sorted(rules6_of(host.prefix)) == rules
    ok(d2, "rm", "-f", "web")
    ok(d2, "network", "rm", network_id)
    assert f"br-{network_id[:12]}" not in host_links()
    assert d2.stop() == 0
    assert host.leftovers(d.root) == [], d2.log()[-3000:]
