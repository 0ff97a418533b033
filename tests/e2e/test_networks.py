"""Networking end to end: published ports, user networks with embedded DNS, isolation,
``network`` commands, hot connect/disconnect, and no leaks across daemon restarts.

Every daemon here gets a test-unique default bridge (``--bridge bn-<hex>``) and iptables chain
prefix (``BERTH_IPTABLES_PREFIX``), and an embedded-DNS upstream that is a fake resolver on
127.0.0.1 (``BERTH_DNS_UPSTREAMS``): the host's resolver is never asked. Traffic goes only to
127.0.0.1 and to containers of the test's own daemon. Whatever happens, containers, networks,
bridges, veths, netns handles and iptables chains of a test are removed afterwards.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

import docker
import pytest

from daemon_harness import remove_root, start_daemon
from images_harness import import_busybox

pytestmark = pytest.mark.e2e

OUTSIDE_NAME = "outside.example.test"
OUTSIDE_IP = "198.51.100.7"  # what the fake upstream answers; never contacted


# ---- helpers ---------------------------------------------------------------------------------

def docker_cli(daemon, *args, timeout=60, input=None):
    return subprocess.run(["docker", *args], env=daemon.env(), capture_output=True, text=True,
                          timeout=timeout, input=input)


def ok(daemon, *args, timeout=60) -> str:
    result = docker_cli(daemon, *args, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def fails(daemon, *args, timeout=60) -> str:
    result = docker_cli(daemon, *args, timeout=timeout)
    assert result.returncode != 0, f"docker {' '.join(args)} succeeded: {result.stdout}"
    return result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_banner(port: int, host: str = "127.0.0.1", timeout: float = 8.0) -> str:
    """Connect until a listener answers (the container may still be starting); its text."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2) as conn:
                conn.settimeout(2)
                data = b""
                while True:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if data:
                    return data.decode().strip()
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"nothing answered on {host}:{port}: {last!r}")


def free_subnets(count: int) -> list[str]:
    """/24s in 10.214.0.0/16 that no host route or address overlaps (checked now)."""
    from berth.network.ipam import read_host_networks

    taken = read_host_networks()
    out = []
    for candidate in ipaddress.IPv4Network("10.214.0.0/16").subnets(new_prefix=24):
        if not any(candidate.overlaps(t) for t in taken):
            out.append(str(candidate))
            if len(out) == count:
                return out
    raise RuntimeError("no free test subnet")


def host_links() -> set[str]:
    out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout
    return {link["ifname"] for link in json.loads(out)}


def rules_of(prefix: str, tool: str = "iptables-save") -> list[str]:
    out = subprocess.run([tool], capture_output=True, text=True, check=True).stdout
    return [ln for ln in out.splitlines() if prefix in ln]


def rules6_of(prefix: str) -> list[str]:
    """The ip6tables rules and chains of a prefix ([] where ip6tables is missing)."""
    if not shutil.which("ip6tables-save"):
        return []
    return rules_of(prefix, "ip6tables-save")


def netns_mounts(root: str) -> list[str]:
    with open("/proc/mounts", encoding="utf-8") as handle:
        return [ln for ln in handle if ln.split()[1].startswith(root) and ln.split()[2] == "nsfs"]


def veth_of(endpoint_id: str) -> str:
    from berth.network.bridge import host_veth_name

    return host_veth_name(endpoint_id)


def wait_for(check, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class FakeResolver:
    """A DNS upstream on 127.0.0.1 (UDP and TCP): answers OUTSIDE_NAME, NXDOMAIN otherwise,
    and records every name it was asked."""

    def __init__(self) -> None:
        from berth.network import dnswire

        self.dnswire = dnswire
        self.asked: list[str] = []
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(8)
        for s in (self.udp, self.tcp):
            s.settimeout(0.2)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self._threads:
            t.start()

    def answer(self, data: bytes) -> bytes:
        wire = self.dnswire
        try:
            query = wire.parse_query(data)
        except wire.DnsFormatError:
            return wire.error_response(data, wire.RCODE_FORMERR)
        q = query.questions[0]
        self.asked.append(q.name.rstrip(".").lower())
        if q.name.rstrip(".").lower() == OUTSIDE_NAME:
            if q.qtype == wire.TYPE_A:
                return wire.build_response(query, [wire.a_answer(q.name, OUTSIDE_IP, 60)])
            return wire.build_response(query, [])
        return wire.build_response(query, [], rcode=wire.RCODE_NXDOMAIN)

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.udp.recvfrom(4096)
            except OSError:
                continue
            self.udp.sendto(self.answer(data), peer)

    def _serve_tcp(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                continue
            with conn:
                try:
                    size = int.from_bytes(conn.recv(2), "big")
                    reply = self.answer(conn.recv(size))
                    conn.sendall(len(reply).to_bytes(2, "big") + reply)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self.udp.close()
        self.tcp.close()


@dataclass
class Host:
    """Names of what one test daemon may create on the host, to check for and to scrub."""

    prefix: str
    bridge: str
    bridges: set[str] = field(default_factory=set)
    veths: set[str] = field(default_factory=set)

    def scrub(self, root: str | None = None) -> None:
        from berth.network import bridge as brlib
        from berth.network import netns as nslib
        from berth.network.firewall import Firewall

        Firewall(prefix=self.prefix).cleanup_all()
        if shutil.which("ip6tables-save"):
            Firewall(prefix=self.prefix, family=6).cleanup_all()
        for name in {self.bridge, *self.bridges, *self.veths}:
            brlib.delete_bridge(name)  # deletes any link of that name
        if root:
            nslib.release_dir(os.path.join(root, "exec", "netns"))

    def leftovers(self, root: str) -> list[str]:
        links = host_links()
        found = [f"link {n}" for n in sorted({self.bridge, *self.bridges, *self.veths} & links)]
        found += [f"rule {r}" for r in rules_of(self.prefix)]
        found += [f"ip6tables rule {r}" for r in rules6_of(self.prefix)]
        found += [f"netns {m.split()[1]}" for m in netns_mounts(root)]
        return found


def sweep(daemon) -> None:
    """Remove every container of a test daemon whatever state it is in: through the daemon if
    it still runs, then with runc on the daemon's own runtime root (live-restore leftovers)."""
    if daemon.process.poll() is None:
        ids = docker_cli(daemon, "ps", "-aq").stdout.split()
        if ids:
            docker_cli(daemon, "rm", "-f", *ids)
        daemon.stop()
    root = os.path.join(daemon.root, "exec", "runc")
    if os.path.isdir(root):
        listed = subprocess.run(["runc", "--root", root, "list", "-q"], capture_output=True, text=True)
        for cid in listed.stdout.split():
            subprocess.run(["runc", "--root", root, "delete", "-f", cid], capture_output=True)


def daemon_env(monkeypatch, resolver: FakeResolver) -> Host:
    uid = secrets.token_hex(3)
    host = Host(prefix=f"BN{uid.upper()}", bridge=f"bn-{uid}")
    monkeypatch.setenv("BERTH_IPTABLES_PREFIX", host.prefix)
    monkeypatch.setenv("BERTH_DNS_UPSTREAMS", f"127.0.0.1:{resolver.port}")
    return host


# ---- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resolver():
    fake = FakeResolver()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def netd(resolver):
    """One daemon for the tests that clean up after themselves."""
    mp = pytest.MonkeyPatch()
    host = daemon_env(mp, resolver)
    try:
        daemon = start_daemon(args=["--bridge", host.bridge])
    finally:
        mp.undo()
    daemon.host_names = host
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
def net(netd):
    """Names for containers and networks of one test; all removed afterwards."""

    class Tracker:
        def __init__(self) -> None:
            self.containers: list[str] = []
            self.networks: list[str] = []
            self.daemon = netd

        def name(self, prefix: str = "c") -> str:
            self.containers.append(f"{prefix}-{secrets.token_hex(4)}")
            return self.containers[-1]

        def network(self, *options: str, prefix: str = "n") -> str:
            name = f"{prefix}-{secrets.token_hex(4)}"
            self.networks.append(name)
            network_id = ok(netd, "network", "create", *options, name)
            netd.host_names.bridges.add(f"br-{network_id[:12]}")
            return name

        def run(self, *args: str, name: str | None = None) -> str:
            name = name or self.name()
            return ok(netd, "run", "-d", "--name", name, *args)

        def ip(self, container: str, network: str) -> str:
            return ok(netd, "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}',
                      container)

    tracker = Tracker()
    yield tracker
    for name in tracker.containers:
        for eid in docker_cli(netd, "inspect", "-f",
                              "{{range .NetworkSettings.Networks}}{{.EndpointID}} {{end}}",
                              name).stdout.split():
            netd.host_names.veths.add(veth_of(eid))
        docker_cli(netd, "rm", "-f", name)
    for name in tracker.networks:
        docker_cli(netd, "network", "rm", name)


# ---- published ports -------------------------------------------------------------------------

def test_loopback_published_port_answers(netd, net):
    port = free_port()
    name = net.name("web")
    net.run("-p", f"127.0.0.1:{port}:80", "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "hello",
            name=name)
    assert read_banner(port) == "hello"
    assert read_banner(port) == "hello"  # a second connection too
    assert ok(netd, "port", name) == f"80/tcp -> 127.0.0.1:{port}"
    assert ok(netd, "port", name, "80") == f"127.0.0.1:{port}"
    ps = ok(netd, "ps", "--filter", f"name={name}", "--format", "{{.Ports}}")
    assert ps == f"127.0.0.1:{port}->80/tcp"


def test_all_addresses_ephemeral_udp_and_publish_all(netd, net):
    port, uport = free_port(), free_port()
    name = net.name("web")
    net.run("-p", f"{port}:80", "-p", "80", "-p", f"{uport}:5353/udp", "busybox",
            "nc", "-ll", "-p", "80", "-e", "echo", "hi-all", name=name)
    lines = ok(netd, "port", name).splitlines()
    assert f"80/tcp -> 0.0.0.0:{port}" in lines
    assert f"5353/udp -> 0.0.0.0:{uport}" in lines
    ephemeral = [int(ln.rsplit(":", 1)[1]) for ln in lines
                 if ln.startswith("80/tcp") and not ln.endswith(f":{port}")]
    assert len(ephemeral) == 1
    low, high = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    assert low <= ephemeral[0] <= high
    assert read_banner(port) == "hi-all"
    assert read_banner(ephemeral[0]) == "hi-all"

    client = docker.DockerClient(base_url=netd.host, version="auto", timeout=60)
    try:
        ports = client.containers.get(name).attrs["NetworkSettings"]["Ports"]
    finally:
        client.close()
    assert {"HostIp": "0.0.0.0", "HostPort": str(port)} in ports["80/tcp"]
    assert ports["5353/udp"] == [{"HostIp": "0.0.0.0", "HostPort": str(uport)}]

    pname = net.name("pall")
    net.run("-P", "--expose", "8080", "busybox", "nc", "-ll", "-p", "8080", "-e", "echo", "pub-all",
            name=pname)
    published = ok(netd, "port", pname, "8080/tcp")
    assert published.startswith("0.0.0.0:")
    assert read_banner(int(published.rsplit(":", 1)[1])) == "pub-all"


def test_port_already_allocated(netd, net):
    port = free_port()
    first = net.name("first")
    net.run("-p", f"127.0.0.1:{port}:80", "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "one",
            name=first)
    second = net.name("second")
    err = fails(netd, "run", "-d", "--name", second, "-p", f"127.0.0.1:{port}:80", "busybox", "true")
    assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in err
    assert f"driver failed programming external connectivity on endpoint {second}" in err
    # 0.0.0.0 clashes with every address on the same port
    err = fails(netd, "run", "-d", "-p", f"{port}:80", "--name", net.name("third"), "busybox", "true")
    assert f"Bind for 0.0.0.0:{port} failed: port is already allocated" in err
    # a port some host process holds is refused too
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        hport = held.getsockname()[1]
        err = fails(netd, "run", "-d", "--name", net.name("fourth"), "-p", f"127.0.0.1:{hport}:80",
                    "busybox", "true")
        assert f"Bind for 127.0.0.1:{hport} failed: port is already allocated" in err
    assert read_banner(port) == "one"  # the first is untouched
    assert ok(netd, "inspect", "-f", "{{.State.Status}}", second) == "created"


# ---- user networks, DNS, isolation -----------------------------------------------------------

def nslookup(daemon, container: str, name: str) -> tuple[int, list[str]]:
    """(exit code, addresses answered) of busybox nslookup inside ``container``."""
    result = docker_cli(daemon, "exec", container, "nslookup", "-type=a", name)
    answer = result.stdout.split("Name:", 1)[1] if "Name:" in result.stdout else ""
    return result.returncode, re.findall(r"Address:\s*([0-9.]+)", answer)


def test_user_network_dns_names_aliases_and_forwarding(netd, net, resolver):
    n1, n2 = net.network(), net.network()
    a = net.name("alpha")
    a_id = net.run("--network", n1, "--network-alias", "web-alias", "busybox", "sleep", "300", name=a)
    other = net.name("other")
    net.run("--network", n2, "busybox", "sleep", "300", name=other)
    client = net.name("client")
    net.run("--network", n1, "busybox", "sleep", "300", name=client)
    a_ip = net.ip(a, n1)

    resolv = ok(netd, "exec", client, "cat", "/etc/resolv.conf")
    assert "nameserver 127.0.0.11" in resolv and "options ndots:0" in resolv
    for name in (a, "web-alias", a_id[:12], f"{a}.{n1}"):
        code, addresses = nslookup(netd, client, name)
        assert (code, addresses) == (0, [a_ip]), name
    assert ok(netd, "exec", client, "ping", "-c1", "-W2", a).count("1 packets received") == 1
    assert ok(netd, "exec", client, "ping", "-c1", "-W2", "web-alias").count("1 packets received") == 1

    # a name on another network is not ours to answer: forwarded to the upstream, NXDOMAIN
    before = len(resolver.asked)
    code, addresses = nslookup(netd, client, other)
    assert code != 0 and addresses == []
    assert other.lower() in resolver.asked[before:]
    assert a.lower() not in resolver.asked  # names of the network itself never leave the daemon
    # other names go to the (fake) upstream
    code, addresses = nslookup(netd, client, OUTSIDE_NAME)
    assert (code, addresses) == (0, [OUTSIDE_IP])

    info = json.loads(ok(netd, "inspect", a))[0]["NetworkSettings"]["Networks"][n1]
    assert info["Aliases"] == ["web-alias"]
    assert info["DNSNames"][:3] == [a, "web-alias", a_id[:12]]

    # after a rename the new name answers and the old one no longer does
    renamed = net.name("renamed")
    ok(netd, "rename", a, renamed)
    assert nslookup(netd, client, renamed) == (0, [a_ip])
    assert nslookup(netd, client, a)[1] == []


def test_isolation_between_user_networks(netd, net):
    n1, n2 = net.network(), net.network()
    server = net.name("server")
    net.run("--network", n1, "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "same-net", name=server)
    ip = net.ip(server, n1)
    peer = net.name("peer")
    net.run("--network", n1, "busybox", "sleep", "300", name=peer)
    stranger = net.name("stranger")
    net.run("--network", n2, "busybox", "sleep", "300", name=stranger)
    default = net.name("default")
    net.run("busybox", "sleep", "300", name=default)

    wait_for(lambda: "same-net" in docker_cli(netd, "exec", peer, "nc", "-w", "2", ip, "80").stdout,
             what="the server on the same network")
    for outsider in (stranger, default):
        result = docker_cli(netd, "exec", outsider, "nc", "-w", "2", ip, "80")
        assert "same-net" not in result.stdout, outsider
        result = docker_cli(netd, "exec", outsider, "ping", "-c1", "-W1", ip)
        assert result.returncode != 0, outsider


def test_internal_network_has_no_outbound_route(netd, net):
    internal = net.network("--internal")
    outside = net.network()
    target = net.name("target")
    net.run("--network", outside, "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "x", name=target)
    target_ip = net.ip(target, outside)
    inner = net.name("inner")
    net.run("--network", internal, "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "inner", name=inner)
    probe = net.name("probe")
    net.run("--network", internal, "busybox", "sleep", "300", name=probe)

    routes = ok(netd, "exec", probe, "ip", "route")
    assert "default" not in routes
    result = docker_cli(netd, "exec", probe, "ping", "-c1", "-W1", target_ip)
    assert result.returncode != 0 and "unreachable" in (result.stdout + result.stderr).lower()
    assert ok(netd, "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{internal}").Gateway}}}}',
              probe) == ""
    # containers on the internal network still reach each other
    inner_ip = net.ip(inner, internal)
    wait_for(lambda: "inner" in docker_cli(netd, "exec", probe, "nc", "-w", "2", inner_ip, "80").stdout,
             what="a peer on the internal network")
    assert json.loads(ok(netd, "network", "inspect", internal))[0]["Internal"] is True


# ---- network commands ------------------------------------------------------------------------

def test_network_create_inspect_ls_rm_prune_and_events(netd, net):
    since = str(int(time.time()) - 1)
    subnet, = free_subnets(1)
    sub = ipaddress.IPv4Network(subnet)
    gateway = str(sub.network_address + 1)
    ip_range = str(list(sub.subnets(new_prefix=26))[1])
    brname = f"bt{secrets.token_hex(4)}"
    netd.host_names.bridges.add(brname)
    name = net.network("--subnet", subnet, "--gateway", gateway, "--ip-range", ip_range,
                       "--label", "com.example.team=net", "--attachable",
                       "-o", f"com.docker.network.bridge.name={brname}",
                       "-o", "com.docker.network.driver.mtu=1400")
    data = json.loads(ok(netd, "network", "inspect", name))[0]
    assert data["Name"] == name and len(data["Id"]) == 64
    assert (data["Scope"], data["Driver"], data["EnableIPv6"], data["Internal"]) == ("local", "bridge", False, False)
    assert (data["Attachable"], data["Ingress"], data["ConfigOnly"]) == (True, False, False)
    assert data["ConfigFrom"] == {"Network": ""}
    assert data["IPAM"]["Driver"] == "default"
    assert data["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": gateway, "IPRange": ip_range}]
    assert data["Options"]["com.docker.network.bridge.name"] == brname
    assert data["Labels"] == {"com.example.team": "net"}
    assert data["Containers"] == {} and re.match(r"\d{4}-\d\d-\d\dT", data["Created"])
    link = json.loads(subprocess.run(["ip", "-j", "addr", "show", brname], capture_output=True,
                                     text=True, check=True).stdout)[0]
    assert link["mtu"] == 1400
    assert any(a["local"] == gateway and a["prefixlen"] == 24 for a in link["addr_info"])

    def names(*filters: str) -> set[str]:
        return set(ok(netd, "network", "ls", *filters, "--format", "{{.Name}}").split())

    assert names("--filter", "label=com.example.team=net") == {name}
    assert names("--filter", "label=com.example.team=other") == set()
    assert name in names("--filter", "type=custom") and "bridge" not in names("--filter", "type=custom")
    assert {"bridge", "host", "none"} == names("--filter", "type=builtin")
    assert names("--filter", "driver=null") == {"none"}
    assert name in names("--filter", f"name={name[:6]}")
    assert name in names("--filter", "dangling=true")
    assert data["Id"][:12] in ok(netd, "network", "ls", "-q").split()
    table = ok(netd, "network", "ls", "--filter", f"name={name}", "--format", "{{.Name}}\t{{.Driver}}\t{{.Scope}}")
    assert table == f"{name}\tbridge\tlocal"

    c = net.name("member")
    fixed = str(ipaddress.IPv4Network(ip_range).network_address + 5)
    cid = net.run("--network", name, "--ip", fixed, "busybox", "sleep", "300", name=c)
    members = json.loads(ok(netd, "network", "inspect", name))[0]["Containers"]
    assert members[cid]["Name"] == c and members[cid]["IPv4Address"] == f"{fixed}/24"
    assert members[cid]["MacAddress"] == "02:42:" + ":".join(f"{int(x):02x}" for x in fixed.split("."))
    assert name not in names("--filter", "dangling=true") and name in names("--filter", "dangling=false")
    eid = members[cid]["EndpointID"]
    assert veth_of(eid) in host_links()

    err = fails(netd, "network", "rm", name)
    assert (f"Error response from daemon: error while removing network: network {name} id "
            f"{data['Id']} has active endpoints") in err
    assert name in names()
    ok(netd, "rm", "-f", c)
    wait_for(lambda: veth_of(eid) not in host_links(), what="the veth to go")
    ok(netd, "network", "rm", name)
    assert name not in names() and brname not in host_links()

    dangling = net.network("--label", "prune=me")
    keep = net.network("--label", "prune=no")
    report = ok(netd, "network", "prune", "-f", "--filter", "label=prune=me")
    assert dangling in report and keep not in report
    assert dangling not in names() and keep in names()

    events = ok(netd, "events", "--since", since, "--until", str(int(time.time()) + 1),
                "--filter", "type=network", "--format", "{{.Action}} {{.Actor.Attributes.name}} "
                "{{.Actor.Attributes.type}} {{.Actor.Attributes.container}}")
    lines = events.splitlines()
    assert f"create {name} bridge <no value>" in lines
    assert f"connect {name} bridge {cid}" in lines
    assert f"disconnect {name} bridge {cid}" in lines
    assert f"destroy {name} bridge <no value>" in lines
    assert f"destroy {dangling} bridge <no value>" in lines
    assert any(ln.startswith("prune ") for ln in lines)


def test_network_errors(netd, net):
    name = net.network()
    assert f"network with name {name} already exists" in fails(netd, "network", "create", name)
    assert "operation is not permitted on predefined bridge network" in fails(netd, "network", "create", "bridge")
    assert "bridge is a pre-defined network and cannot be removed" in fails(netd, "network", "rm", "bridge")
    assert "invalid subnet fd00:b3e7::1/64: it should be fd00:b3e7::/64" in fails(
        netd, "network", "create", "--ipv6", "--subnet", "fd00:b3e7::1/64", f"v6-{secrets.token_hex(3)}")
    assert "invalid subnet 10.214.0.1/24: it should be 10.214.0.0/24" in fails(
        netd, "network", "create", "--subnet", "10.214.0.1/24", f"bad-{secrets.token_hex(3)}")
    assert "network nosuch-net not found" in fails(netd, "network", "inspect", "nosuch-net")
    assert "network nosuch-net not found" in fails(
        netd, "run", "--rm", "--network", "nosuch-net", "busybox", "true")
    assert "user specified IP address is supported on user defined networks only" in fails(
        netd, "run", "--rm", "--ip", "172.30.0.9", "busybox", "true")
    assert "user specified IP address is supported only when connecting to networks with user " \
           "configured subnets" in fails(netd, "run", "--rm", "--network", name, "--ip", "10.0.0.9",
                                         "busybox", "true")
    api = docker.APIClient(base_url=netd.host, version="auto", timeout=60)
    try:  # the CLI refuses this one itself; the daemon must too
        with pytest.raises(docker.errors.APIError) as excinfo:
            api.create_container("busybox", "true", host_config=api.create_host_config(network_mode="bridge"),
                                 networking_config=api.create_networking_config(
                                     {"bridge": api.create_endpoint_config(aliases=["x"])}))
    finally:
        api.close()
    assert excinfo.value.status_code == 400
    assert "network-scoped alias is supported only for containers in user defined networks" in str(excinfo.value)
    assert "No such container: nosuch-ctr" in fails(
        netd, "run", "--rm", "--network", "container:nosuch-ctr", "busybox", "true")
    assert "conflicting options: port publishing and the container type network mode" in fails(
        netd, "run", "--rm", "--network", "container:x", "-p", "80", "busybox", "true")


def test_connect_and_disconnect_running_container(netd, net):
    subnet, = free_subnets(1)
    n1 = net.network()
    n2 = net.network("--subnet", subnet)
    fixed = str(ipaddress.IPv4Network(subnet).network_address + 50)
    c = net.name("hot")
    cid = net.run("--network", n1, "busybox", "sleep", "300", name=c)
    peer = net.name("peer")
    net.run("--network", n2, "busybox", "sleep", "300", name=peer)

    ok(netd, "network", "connect", "--ip", fixed, "--alias", "hot-alias", n2, c)
    es = json.loads(ok(netd, "inspect", c))[0]["NetworkSettings"]["Networks"][n2]
    assert es["IPAddress"] == fixed and es["Aliases"] == ["hot-alias"]
    assert es["IPAMConfig"] == {"IPv4Address": fixed}
    assert es["DNSNames"][:3] == [c, "hot-alias", cid[:12]]
    assert f"inet {fixed}/24" in ok(netd, "exec", c, "ip", "addr", "show", "eth1")
    assert fixed in ok(netd, "exec", c, "cat", "/etc/hosts")
    for name in ("hot-alias", c):
        assert nslookup(netd, peer, name) == (0, [fixed])
    assert "1 packets received" in ok(netd, "exec", peer, "ping", "-c1", "-W2", c)
    err = fails(netd, "network", "connect", n2, c)
    assert f"endpoint with name {c} already exists in network {n2}" in err
    assert "user specified IP address is supported on user defined networks only" in fails(
        netd, "network", "connect", "--ip", "172.30.0.9", "bridge", c)

    ok(netd, "network", "disconnect", n2, c)
    assert fixed not in ok(netd, "exec", c, "ip", "addr")
    assert nslookup(netd, peer, "hot-alias")[1] == []
    assert n2 not in json.loads(ok(netd, "inspect", c))[0]["NetworkSettings"]["Networks"]
    assert f"container {cid} is not connected to network {n2}" in fails(netd, "network", "disconnect", n2, c)
    reuse = net.name("reuse")  # the address is free again
    net.run("--network", n2, "--ip", fixed, "busybox", "sleep", "300", name=reuse)
    assert net.ip(reuse, n2) == fixed

    # a created container: remembered, plugged at start
    later = net.name("later")
    ok(netd, "create", "--name", later, "--network", n1, "busybox", "sleep", "300")
    ok(netd, "network", "connect", "--alias", "later-alias", n2, later)
    ok(netd, "start", later)
    assert len(re.findall(r"scope global eth", ok(netd, "exec", later, "ip", "-4", "addr"))) == 2
    assert nslookup(netd, peer, "later-alias")[1] == [net.ip(later, n2)]
    # disconnecting the network that holds the default route moves it to the other one
    ok(netd, "network", "disconnect", n1, later)
    assert "default via" in ok(netd, "exec", later, "ip", "route")
    ok(netd, "network", "disconnect", "-f", n1, c)
    assert "default via" not in ok(netd, "exec", c, "ip", "route")


def test_default_bridge_subnet_overlaps_no_other_host_route(netd, net):
    from berth.network.ipam import read_host_networks

    subnet = ipaddress.IPv4Network(
        json.loads(ok(netd, "network", "inspect", "bridge"))[0]["IPAM"]["Config"][0]["Subnet"])
    others = read_host_networks(exclude_ifnames=[netd.host_names.bridge])
    assert not [o for o in others if o.overlaps(subnet)], (subnet, others)
    name = net.network()  # a user network's pool skips the host's routes too
    user = ipaddress.IPv4Network(json.loads(ok(netd, "network", "inspect", name))[0]["IPAM"]["Config"][0]["Subnet"])
    network_id = ok(netd, "network", "inspect", "-f", "{{.Id}}", name)
    assert not [o for o in read_host_networks(exclude_ifnames=[f"br-{network_id[:12]}"]) if o.overlaps(user)]


def test_host_none_container_modes_and_host_gateway(netd, net):
    out = ok(netd, "run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert [ln.split(":")[1].strip() for ln in out.splitlines()] == ["lo"]
    settings = json.loads(ok(netd, "network", "inspect", "bridge"))[0]
    gateway = settings["IPAM"]["Config"][0]["Gateway"]
    resolv = ok(netd, "run", "--rm", "--dns", "10.9.9.9", "--dns-search", "example.test", "busybox",
                "cat", "/etc/resolv.conf")  # written, never asked
    assert "nameserver 10.9.9.9" in resolv and "search example.test" in resolv
    hosts = ok(netd, "run", "--rm", "--add-host", "gw.test:host-gateway", "busybox", "cat", "/etc/hosts")
    assert f"{gateway}\tgw.test" in hosts
    host_mode = ok(netd, "run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
    assert netd.host_names.bridge in host_mode  # the host's links, our bridge among them

    n1 = net.network()
    target = net.name("target")
    net.run("--network", n1, "busybox", "sleep", "300", name=target)
    target_ip = net.ip(target, n1)
    joined = ok(netd, "run", "--rm", "--network", f"container:{target}", "busybox", "sh", "-c",
                "ip -4 -o addr; hostname; nslookup -type=a " + target)
    assert target_ip in joined
    assert ok(netd, "inspect", "-f", "{{.Config.Hostname}}", target) in joined
    stopped = net.name("stopped")
    ok(netd, "create", "--name", stopped, "busybox", "true")
    err = fails(netd, "run", "--rm", "--network", f"container:{stopped}", "busybox", "true")
    assert f"cannot join network namespace of a non running container: container {stopped} is created" in err


def test_docker_py_networks(netd, net):
    client = docker.DockerClient(base_url=netd.host, version="auto", timeout=60)
    subnet, = free_subnets(1)
    gateway = str(ipaddress.IPv4Network(subnet).network_address + 1)
    name = f"py-{secrets.token_hex(4)}"
    other_name = f"py-{secrets.token_hex(4)}"
    net.networks += [name, other_name]
    try:
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet, gateway=gateway)])
        network = client.networks.create(name, driver="bridge", ipam=ipam, labels={"py": "1"})
        netd.host_names.bridges.add(f"br-{network.id[:12]}")
        assert network.attrs["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": gateway}]
        cname = net.name("py")
        container = client.containers.run("busybox", ["sleep", "300"], detach=True, name=cname,
                                          network=name)
        network.reload()
        assert [c.id for c in network.containers] == [container.id]
        other = client.networks.create(other_name)
        netd.host_names.bridges.add(f"br-{other.id[:12]}")
        with pytest.raises(docker.errors.APIError) as excinfo:
            other.connect(container, ipv4_address="10.1.2.3")
        assert excinfo.value.status_code == 400
        other.connect(container, aliases=["py-alias"])
        container.reload()
        assert set(container.attrs["NetworkSettings"]["Networks"]) == {name, other_name}
        assert container.attrs["NetworkSettings"]["Networks"][other_name]["Aliases"] == ["py-alias"]
        other.disconnect(container)
        with pytest.raises(docker.errors.APIError) as excinfo:
            network.remove()
        assert excinfo.value.status_code == 403 and "has active endpoints" in str(excinfo.value)
        container.remove(force=True)
        network.remove()
        assert other_name in client.networks.prune()["NetworksDeleted"]
        with pytest.raises(docker.errors.NotFound):
            client.networks.get(name)
        assert {n.name for n in client.networks.list()} >= {"bridge", "host", "none"}
    finally:
        client.close()


# ---- daemon restarts -------------------------------------------------------------------------

@pytest.fixture
def leakcheck(fresh_berthd, monkeypatch, resolver):
    """Start (and restart) daemons on one root with test-unique host names; afterwards scrub
    whatever is left and report it."""
    host = daemon_env(monkeypatch, resolver)
    daemons: list = []

    def start(*extra: str, root: str | None = None, bridge: str | None = None):
        args = ["--bridge", bridge or host.bridge, *extra]
        daemon = fresh_berthd(root=root, args=args) if root else fresh_berthd(args=args)
        daemon.host_names = host
        daemons.append(daemon)
        return daemon

    yield start, host
    for daemon in daemons:
        sweep(daemon)
    for root in dict.fromkeys(d.root for d in daemons):
        host.scrub(root)


def endpoint_ids(daemon, *containers: str) -> list[str]:
    out = ok(daemon, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.EndpointID}} {{end}}", *containers)
    return out.split()


def test_daemon_restart_leaves_no_leaks(leakcheck):
    start, host = leakcheck
    d = start()
    import_busybox(d.env())
    network_id = ok(d, "network", "create", f"rs-{secrets.token_hex(3)}")
    host.bridges.add(f"br-{network_id[:12]}")
    port = free_port()
    ok(d, "run", "-d", "--name", "web", "--stop-timeout", "1", "-p", f"127.0.0.1:{port}:80",
       "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "up")
    ok(d, "run", "-d", "--name", "member", "--stop-timeout", "1", "--network", network_id,
       "busybox", "sleep", "300")
    assert read_banner(port) == "up"
    host.veths.update(veth_of(e) for e in endpoint_ids(d, "web", "member"))
    assert host.bridge in host_links() and f"br-{network_id[:12]}" in host_links()
    assert rules_of(host.prefix) and netns_mounts(d.root)

    assert d.stop() == 0  # stops the containers (no live-restore), then removes everything
    assert host.leftovers(d.root) == [], d.log()[-3000:]

    d2 = start(root=d.root)
    assert ok(d2, "network", "inspect", "-f", "{{.Id}}", network_id) == network_id
    assert f"br-{network_id[:12]}" in host_links()  # user networks come back
    ok(d2, "start", "web", "member")
    assert read_banner(port) == "up"
    out = ok(d2, "run", "--rm", "--network", network_id, "busybox", "nslookup", "-type=a", "member")
    assert ok(d2, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "member") in out
    host.veths.update(veth_of(e) for e in endpoint_ids(d2, "web", "member"))
    ok(d2, "rm", "-f", "web", "member")
    ok(d2, "network", "rm", network_id)
    assert d2.stop() == 0
    assert host.leftovers(d.root) == [], d2.log()[-3000:]


def test_crash_is_cleaned_up_at_next_start(leakcheck):
    start, host = leakcheck
    d = start()
    import_busybox(d.env())
    port = free_port()
    ok(d, "run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "busybox",
       "nc", "-ll", "-p", "80", "-e", "echo", "crash")
    assert read_banner(port) == "crash"
    host.veths.update(veth_of(e) for e in endpoint_ids(d, "web"))
    pid = int(ok(d, "inspect", "-f", "{{.State.Pid}}", "web"))
    d.stop(signal.SIGKILL)          # the daemon dies ...
    os.kill(pid, signal.SIGKILL)    # ... and its container while it is away
    assert any(f":{port}" in r for r in rules_of(host.prefix))  # what the crash left

    d2 = start(root=d.root)
    wait_for(lambda: ok(d2, "inspect", "-f", "{{.State.Status}}", "web") == "exited", what="exit record")
    wait_for(lambda: not any(f":{port}" in r for r in rules_of(host.prefix)), what="stale port rules to go")
    wait_for(lambda: not netns_mounts(d.root), what="the stale netns to go")
    assert not (host.veths & host_links())
    ok(d2, "rm", "web")
    assert d2.stop() == 0
    assert host.leftovers(d.root) == [], d2.log()[-3000:]


def test_live_restore_keeps_ports_and_dns_working(leakcheck):
    start, host = leakcheck
    d = start("--live-restore")
    import_busybox(d.env())
    network_id = ok(d, "network", "create", f"lr-{secrets.token_hex(3)}")
    host.bridges.add(f"br-{network_id[:12]}")
    port = free_port()
    ok(d, "run", "-d", "--name", "web", "--network", network_id, "-p", f"127.0.0.1:{port}:80",
       "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "alive")
    ok(d, "run", "-d", "--name", "client", "--network", network_id, "busybox", "sleep", "300")
    host.veths.update(veth_of(e) for e in endpoint_ids(d, "web", "client"))
    assert read_banner(port) == "alive"
    assert d.stop() == 0
    assert read_banner(port) == "alive"  # kernel rules: no daemon needed
    assert f"br-{network_id[:12]}" in host_links() and netns_mounts(d.root)
    d2 = start("--live-restore", root=d.root)
    assert read_banner(port) == "alive"
    web_ip = ok(d2, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "web")
    assert nslookup(d2, "client", "web") == (0, [web_ip])
    ok(d2, "rm", "-f", "web", "client")
    assert not any(f":{port}" in r for r in rules_of(host.prefix))
    ok(d2, "network", "rm", network_id)
    assert d2.stop() == 0
    assert host.leftovers(d.root) == [], d2.log()[-3000:]


def test_bip_sets_the_default_bridge(leakcheck):
    start, host = leakcheck
    subnet, = free_subnets(1)
    gateway = str(ipaddress.IPv4Network(subnet).network_address + 1)
    d = start("--bip", f"{gateway}/24")
    import_busybox(d.env())
    config = json.loads(ok(d, "network", "inspect", "bridge"))[0]["IPAM"]["Config"]
    assert config == [{"Subnet": subnet, "Gateway": gateway}]
    out = ok(d, "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0")
    assert f"inet {ipaddress.IPv4Network(subnet).network_address + 2}/24" in out
    assert d.stop() == 0
    assert host.leftovers(d.root) == []


def test_iptables_false_and_bridge_none(leakcheck):
    start, host = leakcheck
    d = start("--iptables=false")
    import_busybox(d.env())
    out = ok(d, "run", "--rm", "busybox", "ip", "-4", "-o", "addr")
    assert "eth0" in out and "172." in out
    assert host.bridge in host_links()
    port = free_port()  # published ports go through the daemon's userland proxy instead
    ok(d, "run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "busybox",
       "nc", "-ll", "-p", "80", "-e", "echo", "proxied")
    host.veths.update(veth_of(e) for e in endpoint_ids(d, "web"))
    assert read_banner(port) == "proxied"
    err = fails(d, "run", "-d", "--name", "clash", "-p", f"127.0.0.1:{port}:80", "busybox", "true")
    assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in err
    assert rules_of(host.prefix) == []  # nothing written to iptables
    ok(d, "rm", "-f", "web", "clash")
    with socket.socket() as probe:  # the proxy let go of the port
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen(1)
    assert d.stop() == 0
    assert host.leftovers(d.root) == []

    d2 = start(root=d.root, bridge="none")
    assert "bridge" not in ok(d2, "network", "ls", "--format", "{{.Name}}").split()
    out = ok(d2, "run", "--rm", "busybox", "ip", "-o", "link")
    assert [ln.split(":")[1].strip() for ln in out.splitlines()] == ["lo"]
    assert host.bridge not in host_links()
    assert d2.stop() == 0
    assert host.leftovers(d.root) == []


def test_leftovers_of_dead_daemons_are_collected(leakcheck, tmp_path):
    """A daemon killed outright, whose exec-root a harness then removed, leaves a tagged bridge
    and chains: the next daemon to start removes them, and nothing of live or restartable ones."""
    from berth.network.host import derived_prefix
    from berth.network import bridge as brlib
    from berth.network.firewall import Firewall

    start, host = leakcheck
    dead = subprocess.Popen(["true"])
    dead.wait()
    tag = secrets.token_hex(3)
    gone_root = str(tmp_path / "gone" / "exec")          # never made: removed by its harness
    kept_root = tmp_path / "restartable" / "exec"         # still has its state: may come back
    (kept_root / "containers").mkdir(parents=True)
    cases = {f"bg-{tag}": (dead.pid, gone_root), f"bk-{tag}": (dead.pid, str(kept_root)),
             f"bl-{tag}": (os.getpid(), str(tmp_path / "alive" / "exec"))}
    prefix = derived_prefix(gone_root)
    try:
        for name, (pid, root) in cases.items():
            brlib.ensure_bridge(name, None, route_localnet=False, alias=f"berth:{pid}:{root}")
        Firewall(prefix).setup()
        assert rules_of(prefix)
        d = start()
        ok(d, "network", "ls")  # waits for the daemon's startup reconcile
        wait_for(lambda: f"bg-{tag}" not in host_links(), what="the dead daemon's bridge to go")
        assert rules_of(prefix) == []
        assert {f"bk-{tag}", f"bl-{tag}"} <= host_links()
        assert d.stop() == 0
    finally:
        for name in cases:
            brlib.delete_bridge(name)
        Firewall(prefix).cleanup_all()
