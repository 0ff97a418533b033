"""Embedded DNS: wire codec and records (pure), server with a fake upstream on 127.0.0.1."""

import asyncio
import socket
import struct

import pytest

from berth.network import dnswire, resolvconf
from berth.network.dns import DnsServer, Records, answer_locally
from nethelpers import needs_root

# ---- wire format ---------------------------------------------------------------------------------


def test_query_round_trip_and_compression_pointer():
    raw = dnswire.build_query("Web.MyNet.", dnswire.TYPE_A, ident=7)
    q = dnswire.parse_query(raw)
    assert (q.id, q.questions) == (7, [dnswire.Question("web.mynet", 1, 1)])
    # a question whose name is a pointer back to the first one
    second = raw[:12] + raw[12:] + b"\xc0\x0c" + struct.pack("!HH", 28, 1)
    second = struct.pack("!HHHHHH", 7, 0x0100, 2, 0, 0, 0) + second[12:]
    q2 = dnswire.parse_query(second)
    assert [x.name for x in q2.questions] == ["web.mynet", "web.mynet"]
    assert q2.questions[1].qtype == dnswire.TYPE_AAAA


ONE_QUESTION = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)


@pytest.mark.parametrize("bad", [
    b"\x00\x01",                               # shorter than a header
    ONE_QUESTION + b"\x05ab",                   # label runs past the end
    ONE_QUESTION + b"\xc0\x0c",                 # pointer to itself: a loop
    ONE_QUESTION + b"\x03web\x00\x00",          # question without type/class
])
def test_malformed_queries_raise_format_error(bad):
    with pytest.raises(dnswire.DnsFormatError):
        dnswire.parse_query(bad)


def test_response_with_answers_and_truncation():
    q = dnswire.parse_query(dnswire.build_query("svc", ident=9))
    answers = [dnswire.a_answer("svc", f"10.0.{i // 250}.{i % 250 + 1}") for i in range(40)]
    full = dnswire.parse_response(dnswire.build_response(q, answers, limit=None))
    assert full.id == 9 and len(full.answers) == 40 and not full.flags & dnswire.FLAG_TC
    assert full.flags & dnswire.FLAG_QR and full.flags & dnswire.FLAG_RD  # RD echoed
    small = dnswire.parse_response(dnswire.build_response(q, answers))
    assert small.flags & dnswire.FLAG_TC and 0 < len(small.answers) < 40
    assert small.answers[0] == ("svc", dnswire.TYPE_A, bytes([10, 0, 0, 1]))


def test_reverse_names():
    assert dnswire.reverse_name("10.0.0.2") == "2.0.0.10.in-addr.arpa"
    assert dnswire.ip_from_reverse("2.0.0.10.in-addr.arpa") == "10.0.0.2"
    assert dnswire.ip_from_reverse("0.10.in-addr.arpa") is None


# ---- records ------------------------------------------------------------------------------------


def make_records():
    r = Records()
    r.add_network("n1", "front", "10.1.0.0/24")
    r.add_network("n2", "back", "10.2.0.0/24")
    r.register("n1", ["web", "www", "abcdef123456"], "10.1.0.2")
    r.register("n1", ["www"], "10.1.0.3")
    r.register("n2", ["db"], "10.2.0.2")
    return r


def test_lookup_is_per_network_and_knows_network_suffix():
    r = make_records()
    assert r.lookup(["n1"], "WEB.") == ["10.1.0.2"]
    assert r.lookup(["n1"], "web.front") == ["10.1.0.2"]
    assert sorted(r.lookup(["n1"], "www")) == ["10.1.0.2", "10.1.0.3"]
    assert r.lookup(["n1"], "db") == []  # other network: not visible
    assert r.lookup(["n1", "n2"], "db") == ["10.2.0.2"]
    assert r.networks_of("10.2.0.9") == ["n2"] and r.networks_of("127.0.0.1") == []
    assert r.reverse(["n1"], "10.1.0.2") == "web.front"
    r.unregister("n1", "10.1.0.2")
    assert r.lookup(["n1"], "web") == [] and r.lookup(["n1"], "www") == ["10.1.0.3"]
    r.unregister("n1", "10.1.0.2")  # idempotent
    r.remove_network("n2")
    assert r.lookup(["n2"], "db") == []


def test_answer_locally_decides_what_to_forward():
    r = make_records()

    def ask(name, qtype):
        return answer_locally(r, ["n1"], dnswire.parse_query(dnswire.build_query(name, qtype)))

    a = dnswire.parse_response(ask("abcdef123456", dnswire.TYPE_A))
    assert a.rcode == 0 and a.answers == [("abcdef123456", 1, bytes([10, 1, 0, 2]))]
    assert a.flags & dnswire.FLAG_AA
    aaaa = dnswire.parse_response(ask("web", dnswire.TYPE_AAAA))
    assert aaaa.rcode == 0 and aaaa.answers == []
    ptr = dnswire.parse_response(ask("2.0.1.10.in-addr.arpa", dnswire.TYPE_PTR))
    assert ptr.answers[0][2] == dnswire.encode_name("web.front")
    assert ask("example.org", dnswire.TYPE_A) is None
    assert ask("web", 15) is None  # MX: forwarded
    assert ask("db", dnswire.TYPE_A) is None


def test_resolv_conf_rules():
    host = "nameserver 127.0.0.53\nnameserver 10.0.0.53\nsearch corp.example\noptions edns0\n"
    plain = resolvconf.parse(resolvconf.container_resolv_conf(host))
    assert plain.nameservers == ["10.0.0.53"] and plain.search == ["corp.example"] and plain.options == ["edns0"]
    only_local = resolvconf.parse(resolvconf.container_resolv_conf("nameserver 127.0.0.53\n"))
    assert only_local.nameservers == ["8.8.8.8", "8.8.4.4"]
    embedded = resolvconf.parse(resolvconf.container_resolv_conf(host, embedded="127.0.0.11", dns_search=["."]))
    assert embedded.nameservers == ["127.0.0.11"] and embedded.search == [] and embedded.options == ["ndots:0", "edns0"]
    on_host = resolvconf.parse(resolvconf.container_resolv_conf(host, host_network=True))
    assert on_host.nameservers == ["127.0.0.53", "10.0.0.53"]  # the host's own resolver reaches
    assert resolvconf.parse(resolvconf.container_resolv_conf(
        host, host_network=True, dns=["10.9.9.9"])).nameservers == ["10.9.9.9"]
    assert resolvconf.upstreams(host) == [("127.0.0.53", 53), ("10.0.0.53", 53)]
    assert resolvconf.upstreams(host, dns=["127.0.0.1", "::1"]) == [("127.0.0.1", 53)]


def test_host_resolv_conf_skips_systemd_resolveds_stub(tmp_path, monkeypatch):
    etc, upstream = tmp_path / "resolv.conf", tmp_path / "upstream.conf"
    monkeypatch.setattr(resolvconf, "HOST_FILE", str(etc))
    monkeypatch.setattr(resolvconf, "RESOLVED_UPSTREAM_FILE", str(upstream))
    assert resolvconf.read_host() == ""                        # unreadable: nothing
    etc.write_text("nameserver 127.0.0.53\n")
    assert resolvconf.read_host() == "nameserver 127.0.0.53\n"  # no upstream file: as it is
    upstream.write_text("nameserver 10.0.0.53\n")
    assert resolvconf.read_host() == "nameserver 10.0.0.53\n"
    etc.write_text("nameserver 10.1.1.1\n")
    assert resolvconf.read_host() == "nameserver 10.1.1.1\n"


# ---- server -------------------------------------------------------------------------------------


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers every A query with 192.0.2.53 and counts what it saw."""

    def __init__(self):
        self.seen = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        q = dnswire.parse_query(data)
        self.seen.append(q.questions[0].name)
        self.transport.sendto(dnswire.build_response(q, [dnswire.a_answer(q.questions[0].name, "192.0.2.53")],
                                                     authoritative=False), addr)


async def fake_upstream():
    loop = asyncio.get_running_loop()
    udp, proto = await loop.create_datagram_endpoint(FakeUpstream, local_addr=("127.0.0.1", 0))

    async def on_tcp(reader, writer):
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        q = dnswire.parse_query(await reader.readexactly(size))
        proto.seen.append("tcp:" + q.questions[0].name)
        reply = dnswire.build_response(q, [dnswire.a_answer(q.questions[0].name, "192.0.2.54")])
        writer.write(struct.pack("!H", len(reply)) + reply)
        await writer.drain()
        writer.close()

    port = udp.get_extra_info("sockname")[1]
    tcp = await asyncio.start_server(on_tcp, "127.0.0.1", port)
    return udp, tcp, proto, port


async def udp_ask(addr, name, qtype=dnswire.TYPE_A, sock=None):
    loop = asyncio.get_running_loop()
    own = sock is None
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        await loop.sock_sendto(sock, dnswire.build_query(name, qtype), addr)
        data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        return dnswire.parse_response(data)
    finally:
        if own:
            sock.close()


async def tcp_ask(addr, name):
    reader, writer = await asyncio.open_connection(*addr)
    q = dnswire.build_query(name)
    writer.write(struct.pack("!H", len(q)) + q)
    size = struct.unpack("!H", await reader.readexactly(2))[0]
    data = await reader.readexactly(size)
    writer.close()
    return dnswire.parse_response(data)


def test_server_answers_local_names_and_forwards_the_rest():
    async def scenario():
        udp, tcp, upstream, port = await fake_upstream()
        server = DnsServer(upstreams=[("127.0.0.1", port)], timeout=2)
        server.add_network("n1", "front", "10.1.0.0/24")
        server.register("n1", ["web"], "10.1.0.2")
        try:
            # a gateway-style listener on 127.0.0.1: the source is in no subnet -> its own network
            await server.listen_gateway("n1", "127.0.0.1", 0)
            addr = server.listener_address("n1")
            local = await udp_ask(addr, "web")
            assert local.answers == [("web", 1, bytes([10, 1, 0, 2]))] and upstream.seen == []
            fwd = await udp_ask(addr, "example.test")
            assert fwd.answers == [("example.test", 1, bytes([192, 0, 2, 53]))]
            assert upstream.seen == ["example.test"]
            over_tcp = await tcp_ask(addr, "other.test")
            assert over_tcp.answers[0][2] == bytes([192, 0, 2, 54]) and upstream.seen[-1] == "tcp:other.test"
            assert (await tcp_ask(addr, "web")).answers[0][2] == bytes([10, 1, 0, 2])
            server.unregister("n1", "10.1.0.2")
            assert (await udp_ask(addr, "web")).answers[0][2] == bytes([192, 0, 2, 53])  # now forwarded
        finally:
            await server.close()
            udp.close()
            tcp.close()

    asyncio.run(scenario())


def test_server_servfail_when_no_upstream_answers():
    async def scenario():
        # a bound but silent UDP socket on 127.0.0.1 stands in for a dead upstream
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead:
            dead.bind(("127.0.0.1", 0))
            server = DnsServer(upstreams=[dead.getsockname()], timeout=0.3)
            server.add_network("n1", "front", "10.1.0.0/24")
            await server.listen_gateway("n1", "127.0.0.1", 0)
            try:
                reply = await udp_ask(server.listener_address("n1"), "nowhere.test")
                assert reply.rcode == dnswire.RCODE_SERVFAIL
            finally:
                await server.close()

    asyncio.run(scenario())


@needs_root
def test_listener_inside_a_netns_at_127_0_0_11(nsdir):
    """Docker's nameserver 127.0.0.11, served by this process's loop from inside a netns."""
    from berth.network import netns

    async def scenario():
        udp, tcp, upstream, port = await fake_upstream()
        path = netns.create(nsdir / "c1")
        server = DnsServer(upstreams=[("127.0.0.1", port)])
        server.add_network("n1", "front", "10.1.0.0/24")
        server.add_network("n2", "back", "10.2.0.0/24")
        server.register("n1", ["web"], "10.1.0.2")
        server.register("n2", ["db"], "10.2.0.2")
        try:
            await server.listen_in_netns("c1", path, ["n1"])
            client = await netns.run_in_async(path, socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
            with client:
                web = await udp_ask(("127.0.0.11", 53), "web", sock=client)
                assert web.answers == [("web", 1, bytes([10, 1, 0, 2]))]
                db = await udp_ask(("127.0.0.11", 53), "db", sock=client)
                assert db.answers[0][2] == bytes([192, 0, 2, 53])  # not on n1: forwarded
                server.set_listener_networks("c1", ["n1", "n2"])  # network connect
                db = await udp_ask(("127.0.0.11", 53), "db", sock=client)
                assert db.answers == [("db", 1, bytes([10, 2, 0, 2]))]
            # from the host, 127.0.0.11:53 is someone else's (or nobody's) address: not ours
            assert server.listener_address("c1") == ("127.0.0.11", 53)
        finally:
            await server.close()
            udp.close()
            tcp.close()
            netns.delete(path)

    asyncio.run(scenario())


@needs_root
def test_gateway_listener_attributes_queries_by_source_address(nsdir, test_bridge):
    """A container on a test bridge asks the gateway listener: it sees its network's names only."""
    from berth.network import bridge, netns
    from berth.network.ipam import Ipam
    from nethelpers import free_test_subnets

    sub1, sub2 = free_test_subnets(2)
    ipam = Ipam()
    pool = ipam.allocate_network("n1", subnet=sub1)
    bridge.ensure_bridge(test_bridge, pool.gateway_cidr)
    path = netns.create(nsdir / "c1")
    ip = str(ipam.allocate_address("n1"))
    bridge.connect(test_bridge, path, address=pool.cidr(ip), gateway=str(pool.gateway))

    async def scenario():
        udp, tcp, upstream, port = await fake_upstream()
        server = DnsServer(upstreams=[("127.0.0.1", port)])
        server.add_network("n1", "front", sub1)
        server.add_network("n2", "back", sub2)
        server.register("n1", ["web"], ip)
        server.register("n2", ["db"], "10.0.0.9")
        try:
            await server.listen_gateway("n2", str(pool.gateway), 0)  # even n2's listener...
            addr = server.listener_address("n2")
            client = await netns.run_in_async(path, socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
            with client:
                web = await udp_ask(addr, "web", sock=client)  # ...answers for the asker's n1
                assert web.answers == [("web", 1, socket.inet_aton(ip))]
                db = await udp_ask(addr, "db", sock=client)
                assert db.answers[0][2] == bytes([192, 0, 2, 53]) and upstream.seen == ["db"]
        finally:
            await server.close()
            udp.close()
            tcp.close()

    asyncio.run(scenario())
