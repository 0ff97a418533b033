"""The engine side of networking without a daemon: create-request parsing, list/prune filters,
endpoint checks, NetworkService.prepare_create on a real store; and the library additions it
uses (Firewall.reconcile, read_host_networks(exclude_ifnames), per-listener DNS upstreams),
those in sandbox network namespaces."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from types import SimpleNamespace

import pytest

from berth.engine.events import EventBus
from berth.engine.networks import model
from berth.engine.networks import settings as nset
from berth.engine.store import Store
from berth.errors import Forbidden, InvalidParameter, NotFound
from berth.network import dnswire, netns
from nethelpers import needs_iptables, needs_root


# ---- create requests --------------------------------------------------------------------------

def test_parse_create_defaults_and_options():
    req = model.parse_create({"Name": "web", "Options": {
        model.OPT_BRIDGE_NAME: "br-web", model.OPT_MTU: "1400", model.OPT_ICC: "false",
        model.OPT_MASQ: "0", model.OPT_HOST_IP: "127.0.0.1"},
        "IPAM": {"Config": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.254"}]},
        "Internal": True, "Labels": {"a": "b"}})
    assert (req.driver, req.bridge_name, req.mtu, req.icc, req.masquerade) == ("bridge", "br-web", 1400, False, False)
    assert req.host_binding_ipv4 == "127.0.0.1" and req.internal and req.labels == {"a": "b"}
    assert req.ipam_config == [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.254"}]


@pytest.mark.parametrize("body,error,text", [
    ({"Name": ""}, InvalidParameter, "invalid name: name is empty"),
    ({"Name": "bridge"}, Forbidden, "operation is not permitted on predefined bridge network "),
    ({"Name": "x", "Driver": "overlay"}, Forbidden, "not a swarm manager"),
    ({"Name": "x", "Driver": "host"}, Forbidden, 'only one instance of "host" network is allowed'),
    ({"Name": "x", "Driver": "macvlan"}, NotFound, 'plugin "macvlan" not found'),
    ({"Name": "x", "EnableIPv6": True, "IPAM": {"Config": [{"Subnet": "fd00:1::/64"},
                                                           {"Subnet": "fd00:2::/64"}]}},
     InvalidParameter, "only one IPv6 subnet per network"),
    ({"Name": "x", "Options": {model.OPT_ENABLE_IPV6: "maybe"}}, InvalidParameter,
     'driver-opt "com.docker.network.enable_ipv6" is not a valid bool'),
    ({"Name": "x", "Options": {model.OPT_MTU: "nine"}}, InvalidParameter, "invalid MTU"),
    ({"Name": "x", "Options": {model.OPT_BRIDGE_NAME: "a-much-too-long-name"}}, InvalidParameter,
     "invalid bridge name"),
    ({"Name": "x", "Options": {model.OPT_ICC: "maybe"}}, InvalidParameter, "enable_icc"),
    ({"Name": "x", "IPAM": {"Driver": "other"}}, NotFound, 'plugin "other" not found'),
])
def test_parse_create_refusals(body, error, text):
    with pytest.raises(error) as excinfo:
        model.parse_create(body)
    assert text in excinfo.value.message


def test_parse_create_ipv6():
    req = model.parse_create({"Name": "six", "EnableIPv6": True, "IPAM": {"Config": [
        {"Subnet": "fd00:1::/64", "Gateway": "fd00:1::fe"}, {"Subnet": "10.9.0.0/24"}]}})
    assert req.enable_ipv6 and req.ipam_config == [{"Subnet": "10.9.0.0/24"}]
    assert req.ipam_config6 == [{"Subnet": "fd00:1::/64", "Gateway": "fd00:1::fe"}]
    # the driver option when the field is absent; an IPv6 subnet of an IPv4-only network is
    # ignored, as dockerd does
    assert model.parse_create({"Name": "o", "Options": {model.OPT_ENABLE_IPV6: "true"}}).enable_ipv6
    plain = model.parse_create({"Name": "v4", "IPAM": {"Config": [{"Subnet": "fd00:1::/64"}]}})
    assert not plain.enable_ipv6 and plain.ipam_config6 == [] and plain.ipam_config == []
    assert model.parse_create({"Name": "f", "EnableIPv6": False,
                               "Options": {model.OPT_ENABLE_IPV6: "true"}}).enable_ipv6 is False


# ---- filters ------------------------------------------------------------------------------------

def net(name, **kw):
    return model.Network(id=kw.pop("id", "ab" * 32), name=name, driver=kw.pop("driver", "bridge"),
                         created="2026-01-01T00:00:00Z", **kw)


def test_list_filters():
    web = net("web-front", labels={"tier": "web", "x": ""})
    builtin = net("bridge")
    f = model.NetworkFilter
    assert f({"name": ["front"]}).matches(web, False)             # regex search, as Docker
    assert not f({"name": ["^front"]}).matches(web, False)
    assert f({"id": ["abab"]}).matches(web, False)
    assert f({"label": ["tier=web"]}).matches(web, False) and f({"label": ["x"]}).matches(web, False)
    assert not f({"label": ["tier=db"]}).matches(web, False)
    assert f({"type": ["custom"]}).matches(web, False) and not f({"type": ["custom"]}).matches(builtin, False)
    assert f({"type": ["builtin"]}).matches(builtin, False)
    assert f({"dangling": ["true"]}).matches(web, False) and not f({"dangling": ["1"]}).matches(web, True)
    assert not f({"dangling": ["true"]}).matches(builtin, False)   # predefined never dangle
    assert f({"dangling": ["false"]}).matches(builtin, False) and f({"dangling": ["0"]}).matches(web, True)
    assert f({"driver": ["bridge"]}).matches(web, False) and not f({"driver": ["null"]}).matches(web, False)
    for bad, text in (({"nope": ["1"]}, "invalid filter 'nope'"),
                      ({"type": ["odd"]}, "invalid filter: 'type'='odd'"),
                      ({"dangling": ["maybe"]}, "invalid value for filter 'dangling'"),
                      ({"until": ["1h"]}, "invalid filter 'until'")):
        with pytest.raises(InvalidParameter) as excinfo:
            f(bad)
        assert text in excinfo.value.message


def test_prune_filter_takes_dangling_custom_networks_before_until():
    f = model.NetworkFilter({"label!": ["keep"], "until": ["100"]}, prune=True,
                            parse_time=lambda v: int(v) * 10**9)
    assert f.matches(net("old"), in_use=False, created_ns=50 * 10**9)
    assert not f.matches(net("new"), in_use=False, created_ns=150 * 10**9)
    assert not f.matches(net("busy"), in_use=True, created_ns=50 * 10**9)
    assert not f.matches(net("kept", labels={"keep": "1"}), in_use=False, created_ns=0)
    assert not f.matches(net("none"), in_use=False, created_ns=0)
    with pytest.raises(InvalidParameter):
        model.NetworkFilter({"name": ["x"]}, prune=True)


# ---- endpoint settings --------------------------------------------------------------------------

def test_endpoint_checks_use_dockers_texts():
    es = nset.endpoint_settings({"IPAMConfig": {"IPv4Address": "10.0.0.5"}, "Aliases": ["a"]})
    with pytest.raises(InvalidParameter) as excinfo:
        nset.validate_endpoint(es, user_defined=False, user_subnet=False, subnet="172.17.0.0/16")
    assert excinfo.value.message == ("invalid endpoint settings:\n* " + nset.ERR_IP_PREDEFINED
                                     + "\n* " + nset.ERR_ALIAS_PREDEFINED)
    with pytest.raises(InvalidParameter) as excinfo:
        nset.validate_endpoint(es, user_defined=True, user_subnet=False, subnet="172.18.0.0/16")
    assert excinfo.value.message == "invalid endpoint settings:\n" + nset.ERR_IP_NO_SUBNET
    with pytest.raises(InvalidParameter) as excinfo:
        nset.validate_endpoint(es, user_defined=True, user_subnet=True, subnet="10.1.0.0/24")
    assert "no configured subnet contains IP address 10.0.0.5" in excinfo.value.message
    nset.validate_endpoint(es, user_defined=True, user_subnet=True, subnet="10.0.0.0/24")
    with pytest.raises(InvalidParameter):
        nset.validate_endpoint({"MacAddress": "zz:00"}, user_defined=True, user_subnet=True, subnet=None)
    assert nset.dns_names("web", ["w", "web"], "0123456789abcdef", "0123456789ab") == ["web", "w", "0123456789ab"]


def test_container_mode_conflicts():
    assert nset.check_container_mode({}, {"NetworkMode": "container:db"}) == "db"
    assert nset.check_container_mode({}, {"NetworkMode": "bridge"}) == ""
    for config, hc, text in (
            ({}, {"NetworkMode": "container:"}, "invalid container format"),
            ({"Hostname": "h"}, {"NetworkMode": "container:db"}, "hostname and the network mode"),
            ({}, {"NetworkMode": "container:db", "Dns": ["1.1.1.1"]}, "dns and the network mode"),
            ({}, {"NetworkMode": "container:db", "ExtraHosts": ["a:1.2.3.4"]}, "host-to-IP mapping"),
            ({}, {"NetworkMode": "container:db", "PublishAllPorts": True}, "port publishing"),
            ({"ExposedPorts": {"80/tcp": {}}}, {"NetworkMode": "container:db"}, "port exposing")):
        with pytest.raises(InvalidParameter) as excinfo:
            nset.check_container_mode(config, hc)
        assert text in excinfo.value.message


def test_port_bindings_get_the_networks_default_address():
    fixed = nset.port_bindings_with_default_ip(
        {"80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "10.0.0.1", "HostPort": ""}],
         "53/udp": None}, "127.0.0.1")
    assert fixed == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"},
                                {"HostIp": "10.0.0.1", "HostPort": ""}],
                     "53/udp": [{"HostIp": "127.0.0.1"}]}


# ---- NetworkService.prepare_create on a real store ----------------------------------------------

class NoContainers:
    """ContainerRecords with no container in them (or with those a test puts in ``records``)."""

    def __init__(self):
        self.records = {}
        self.saved = []

    def get(self, ref):
        if ref in self.records:
            return self.records[ref]
        raise NotFound(f"No such container: {ref}")

    def all(self):
        return list(self.records.values())

    def save(self, container):
        self.saved.append(container)

    def lock(self, container_id):
        return asyncio.Lock()


def make_service(tmp_path, store, **config):
    from berth.engine.networks.service import NetworkService

    defaults = dict(bridge=None, iptables=False, ip_forward=False, default_address_pools=[],
                    dns=[], mtu=1500, icc=True, ip_masq=True, ip="0.0.0.0", bip=None)
    return NetworkService(SimpleNamespace(**{**defaults, **config}), store, EventBus(),
                          str(tmp_path / "exec"), NoContainers())


@pytest.fixture
def service(tmp_path, monkeypatch):
    """A NetworkService over a real SQLite store; nothing touches the host (no start())."""
    monkeypatch.setenv("BERTH_DNS_UPSTREAMS", "127.0.0.1:53535")
    store = Store(str(tmp_path / "berth.db"))
    yield make_service(tmp_path, store)
    store.close()


def test_container_records_protocol_is_what_the_record_owner_offers():
    from berth.engine.containers.records import ContainerRecords as Owner
    from berth.engine.networks.records import ContainerRecords

    for name in ("get", "all", "save", "lock"):
        assert callable(getattr(Owner, name)) and hasattr(ContainerRecords, name)
        assert callable(getattr(NoContainers, name))


def test_predefined_networks_persist_with_their_ids(service, tmp_path):
    ids = {n.name: n.id for n in service.all()}
    assert set(ids) == {"bridge", "host", "none"}
    again = make_service(tmp_path, service.store)
    assert {n.name: n.id for n in again.all()} == ids
    assert service.find("bridge").options[model.OPT_BRIDGE_NAME].startswith("berth-")
    assert service.find(ids["host"][:10]).name == "host"
    with pytest.raises(NotFound) as excinfo:
        service.find("nope")
    assert excinfo.value.message == "network nope not found"
    assert service.ipam.pools[0].base.with_prefixlen == "172.17.0.0/16"
    assert service.host.firewall is None  # --iptables=false
    assert service.host.netns_path("c1") == str(tmp_path / "exec" / "netns" / "c1")


def test_prepare_create_keeps_endpoint_configs_until_start(service):
    hc = {"NetworkMode": "default"}
    out = service.prepare_create({}, hc, {"EndpointsConfig": {"default": {"MacAddress": "02:42:AA:00:00:01"}}})
    assert list(out["Networks"]) == ["bridge"]
    assert out["Networks"]["bridge"]["MacAddress"] == "02:42:aa:00:00:01"
    assert out["Networks"]["bridge"]["NetworkID"] == service.find("bridge").id
    # an unknown network is Docker's start-time error, not a create-time one
    out = service.prepare_create({}, {"NetworkMode": "later"},
                                 {"EndpointsConfig": {"later": {"Aliases": ["x"]}}})
    assert out["Networks"]["later"]["Aliases"] == ["x"] and out["Networks"]["later"]["NetworkID"] == ""
    for hc, networking, text in (
            ({"NetworkMode": "bridge"}, {"EndpointsConfig": {"bridge": {"IPAMConfig": {"IPv4Address": "172.17.0.9"}}}},
             nset.ERR_IP_PREDEFINED),
            ({"NetworkMode": "host"}, {"EndpointsConfig": {"bridge": {}}}, nset.ERR_SHARED_NS),
            ({"NetworkMode": "none"}, {"EndpointsConfig": {"bridge": {}}}, nset.ERR_PRIVATE_NS),
            ({"NetworkMode": "bridge", "PortBindings": {"80/tcp": [{"HostPort": "x"}]}}, None,
             "invalid port specification")):
        with pytest.raises(InvalidParameter) as excinfo:
            service.prepare_create({}, hc, networking)
        assert text in excinfo.value.message
    with pytest.raises(InvalidParameter) as excinfo:
        service.prepare_create({"MacAddress": "02:42:00:00:00:01"}, {"NetworkMode": "host"}, None)
    assert "mac-address and the network mode" in excinfo.value.message
    out = service.prepare_create({"MacAddress": "02:42:00:00:00:01"}, {"NetworkMode": "bridge"}, None)
    assert out["Networks"]["bridge"]["MacAddress"] == "02:42:00:00:00:01"  # the deprecated field
    assert service.prepare_create({"NetworkDisabled": True}, {"NetworkMode": "bridge"}, None)["Networks"] == {}
    assert service.prepare_create({}, {"NetworkMode": "container:x"}, None)["Networks"] == {}


def test_startup_reconcile_drops_sandboxes_whose_netns_is_gone(service, tmp_path, monkeypatch, caplog):
    """start() and shutdown() through HostNetwork, with the host's bridges faked: a vanished
    container's sandbox is forgotten, a running one's without its netns is emptied."""
    from berth.engine.networks.service import Sandbox
    from berth.network import host as hostmod

    monkeypatch.setattr(hostmod.brlib, "link_exists", lambda name: False)
    monkeypatch.setattr(service.host, "collect_orphans_sync", lambda: [])
    running = SimpleNamespace(id="e" * 64, name="web", running=True, network_settings={},
                              host_config={}, state={})
    service.containers.records[running.id] = running
    ports = [{"Proto": "tcp", "HostIp": "127.0.0.1", "HostPort": 8080, "ContainerPort": 80}]
    for cid in ("f" * 64, running.id):
        sb = Sandbox(cid, netns=str(tmp_path / cid[:4]), sandbox_id="s", ports=ports)
        service._sandboxes[cid] = sb
        service._persist_sandbox(sb)

    async def scenario():
        await service.start()
        await service._ready()
        await service.shutdown()

    asyncio.run(scenario())
    assert "network startup reconcile failed" not in caplog.text
    assert list(service._sandboxes) == [running.id] and not service._sandboxes[running.id].live
    assert len(service.store.query("SELECT doc FROM network_sandboxes")) == 1
    assert not service.host.touched


def test_address_pools_and_ip_forward_follow_the_config(tmp_path, monkeypatch):
    from berth.engine.networks.service import NetworkService
    from berth.network import host as hostmod

    calls = []
    monkeypatch.setattr(hostmod.sysctl, "enable_ip_forward", lambda: calls.append(1))
    for forward in (False, True):
        config = SimpleNamespace(iptables=False, ip_forward=forward, bridge="none",
                                 default_address_pools=[{"base": "10.220.0.0/16", "size": 24}])
        store = Store(str(tmp_path / f"db-{forward}"))
        svc = NetworkService(config, store, EventBus(), str(tmp_path / "exec"), NoContainers())
        assert [(p.base.with_prefixlen, p.size) for p in svc.ipam.pools] == [("10.220.0.0/16", 24)]
        assert "bridge" not in {n.name for n in svc.all()}  # --bridge=none
        svc.host.warm_sync()
        assert calls == ([1] if forward else [])
        store.close()


# ---- library additions, in sandbox namespaces ---------------------------------------------------

def iptables_save(table):
    return subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True, check=True).stdout


@needs_root
@needs_iptables
def test_firewall_reconcile_removes_what_is_not_desired(sandbox):
    from berth.network.firewall import Firewall
    from berth.network.ports import PortMapping

    def scenario():
        fw = Firewall(prefix="BTR")
        fw.setup()
        fw.add_network("br-a", "10.1.0.0/24")
        fw.add_network("br-b", "10.2.0.0/24")
        stale = PortMapping("tcp", "127.0.0.1", 8080, 80)
        fw.add_ports("br-b", "10.2.0.2", [stale])
        subprocess.run(["iptables", "-A", "BTR-FORWARD", "-s", "10.9.9.9/32", "-j", "DROP"], check=True)
        subprocess.run(["iptables", "-A", "FORWARD", "-s", "10.99.0.0/16", "-j", "ACCEPT"], check=True)
        subprocess.run(["iptables", "-A", "FORWARD", "-j", "BTR-USER"], check=True)  # a stray jump
        keep = PortMapping("tcp", "0.0.0.0", 9090, 80)
        desired = fw.base_rules() + fw.network_rules("br-a", "10.1.0.0/24") \
            + fw.port_rules("br-a", "10.1.0.2", keep)
        removed = fw.reconcile(desired)
        everything = iptables_save("filter") + iptables_save("nat") + iptables_save("raw")
        assert "br-b" not in everything and "8080" not in everything and "10.9.9.9" not in everything
        assert "-A FORWARD -j BTR-USER" not in everything
        assert "-A FORWARD -s 10.99.0.0/16 -j ACCEPT" in everything   # not ours: kept
        assert "0.0.0.0:9090/tcp" in everything
        for table in ("filter", "nat", "raw"):
            assert len(fw.rules(table)) == len([r for r in desired if r.table == table]), table
        assert removed >= 10
        assert fw.reconcile(desired) == 0  # idempotent
        fw.cleanup_all()

    netns.run_in(sandbox, scenario)


@needs_root
def test_read_host_networks_can_leave_out_interfaces(sandbox):
    from berth.network import bridge
    from berth.network.ipam import read_host_networks
    from ipaddress import IPv4Network

    def scenario():
        bridge.ensure_bridge("bt-own", "10.77.0.1/24", route_localnet=False)
        bridge.ensure_bridge("bt-other", "10.78.0.1/24", route_localnet=False)
        everything = read_host_networks()
        assert IPv4Network("10.77.0.0/24") in everything and IPv4Network("10.78.0.0/24") in everything
        others = read_host_networks(exclude_ifnames=["bt-own"])
        assert IPv4Network("10.77.0.0/24") not in others and IPv4Network("10.78.0.0/24") in others

    netns.run_in(sandbox, scenario)


@needs_root
def test_listener_upstreams_override_the_servers(nsdir):
    from berth.network.dns import DnsServer

    def serve():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        return sock

    async def scenario():
        loop = asyncio.get_running_loop()
        default_up, own_up = serve(), serve()

        async def answer(sock, ip):
            data, peer = await loop.sock_recvfrom(sock, 4096)
            q = dnswire.parse_query(data)
            await loop.sock_sendto(sock, dnswire.build_response(q, [dnswire.a_answer(q.questions[0].name, ip)]), peer)

        path = netns.create(nsdir / "c1")
        server = DnsServer(upstreams=[default_up.getsockname()], timeout=2)
        try:
            await server.listen_in_netns("c1", path, [], upstreams=[own_up.getsockname()])
            client = await netns.run_in_async(path, socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
            with client:
                client.setblocking(False)
                task = asyncio.ensure_future(answer(own_up, "192.0.2.77"))
                await loop.sock_sendto(client, dnswire.build_query("x.test"), ("127.0.0.11", 53))
                reply = dnswire.parse_response(await asyncio.wait_for(loop.sock_recv(client, 4096), 5))
                await task
            assert reply.answers[0][2] == bytes([192, 0, 2, 77])
        finally:
            await server.close()
            default_up.close()
            own_up.close()
            netns.delete(path)

    asyncio.run(scenario())
