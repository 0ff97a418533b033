"""Links and the container side of the network service without a daemon: legacy links'
variables (moby's links.ToEnv), /etc/hosts entries, checks and bookkeeping (create, rename,
``rm --link``), link aliases on user networks, the files a ``container:`` container shares,
IPv6 endpoint checks and dual-stack port requests. Containers are plain records in a fake
``ContainerRecords``; nothing touches the host."""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace

import pytest

from berth.engine.networks import settings as nset
from berth.engine.store import Store
from berth.errors import InvalidParameter, NotFound, SystemError_
from berth.network import hostfiles
from berth.network import ports as portlib
from test_net_engine import make_service


def test_link_env_is_dockers():
    """The shape of moby's TestLinkMultipleEnv, with our own values: TCP first, ranges of
    consecutive ports, the name, the child's Env without HOME and PATH."""
    env = nset.link_env("/web/my-db", "172.17.0.5", ["PASSWORD=pw", "HOME=/root", "PATH=/bin", "EMPTY="],
                        ["6300/udp", "5432/tcp", "6379", "6380/tcp", "6381/tcp", "6382/udp"])
    assert sorted(env) == sorted([
        "MY_DB_ENV_PASSWORD=pw", "MY_DB_ENV_EMPTY=", "MY_DB_NAME=/web/my-db",
        "MY_DB_PORT=tcp://172.17.0.5:5432",
        "MY_DB_PORT_5432_TCP=tcp://172.17.0.5:5432", "MY_DB_PORT_5432_TCP_ADDR=172.17.0.5",
        "MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_PROTO=tcp",
        "MY_DB_PORT_6379_TCP=tcp://172.17.0.5:6379", "MY_DB_PORT_6379_TCP_ADDR=172.17.0.5",
        "MY_DB_PORT_6379_TCP_PORT=6379", "MY_DB_PORT_6379_TCP_PROTO=tcp",
        "MY_DB_PORT_6379_TCP_START=tcp://172.17.0.5:6379", "MY_DB_PORT_6379_TCP_PORT_START=6379",
        "MY_DB_PORT_6379_TCP_END=tcp://172.17.0.5:6381", "MY_DB_PORT_6379_TCP_PORT_END=6381",
        "MY_DB_PORT_6380_TCP=tcp://172.17.0.5:6380", "MY_DB_PORT_6380_TCP_ADDR=172.17.0.5",
        "MY_DB_PORT_6380_TCP_PORT=6380", "MY_DB_PORT_6380_TCP_PROTO=tcp",
        "MY_DB_PORT_6381_TCP=tcp://172.17.0.5:6381", "MY_DB_PORT_6381_TCP_ADDR=172.17.0.5",
        "MY_DB_PORT_6381_TCP_PORT=6381", "MY_DB_PORT_6381_TCP_PROTO=tcp",
        "MY_DB_PORT_6300_UDP=udp://172.17.0.5:6300", "MY_DB_PORT_6300_UDP_ADDR=172.17.0.5",
        "MY_DB_PORT_6300_UDP_PORT=6300", "MY_DB_PORT_6300_UDP_PROTO=udp",
        "MY_DB_PORT_6382_UDP=udp://172.17.0.5:6382", "MY_DB_PORT_6382_UDP_ADDR=172.17.0.5",
        "MY_DB_PORT_6382_UDP_PORT=6382", "MY_DB_PORT_6382_UDP_PROTO=udp"])
    assert env[0] == "MY_DB_PORT=tcp://172.17.0.5:5432"
    assert nset.link_env("/a/b", "10.0.0.2", [], []) == ["B_NAME=/a/b"]


def test_parse_link_forms():
    assert nset.parse_link("db:data") == ("db", "data")
    assert nset.parse_link("db") == ("db", "db")
    assert nset.parse_link("/db:/web/data") == ("db", "data")
    for bad, text in (("", "empty string specified for links"), ("a:b:c", "bad format for links: a:b:c")):
        with pytest.raises(InvalidParameter) as excinfo:
            nset.parse_link(bad)
        assert excinfo.value.message == text


def test_hosts_file_order_with_links_and_ipv6():
    text = hostfiles.hosts_file("web1", "", ["172.17.0.3", "fd00::3"], ["gw:host-gateway"],
                                host_gateway="172.17.0.1",
                                links=[("172.17.0.2", "data 0123456789ab db")])
    assert text.splitlines()[6:] == ["172.17.0.1\tgw", "172.17.0.2\tdata 0123456789ab db",
                                     "172.17.0.3\tweb1", "fd00::3\tweb1"]


def test_ipv6_endpoint_checks():
    es = nset.endpoint_settings({"IPAMConfig": {"IPv6Address": "fd00:1::9"}})
    nset.validate_endpoint(es, user_defined=True, user_subnet=False, subnet=None,
                           user_subnet6=True, subnet6="fd00:1::/64")
    for kwargs, text in (
            ({"user_subnet6": False, "subnet6": "fd00:1::/64"}, nset.ERR_IP_NO_SUBNET),
            ({"user_subnet6": True, "subnet6": "fd00:2::/64"}, "no configured subnet contains IP address fd00:1::9"),
            ({"user_subnet6": False, "subnet6": None}, nset.ERR_IP_NO_SUBNET)):
        with pytest.raises(InvalidParameter) as excinfo:
            nset.validate_endpoint(es, user_defined=True, user_subnet=False, subnet=None, **kwargs)
        assert excinfo.value.message == "invalid endpoint settings:\n" + text
    with pytest.raises(InvalidParameter) as excinfo:
        nset.validate_endpoint(nset.endpoint_settings({"IPAMConfig": {"IPv6Address": "10.0.0.1"}}),
                               user_defined=True, user_subnet=True, subnet=None, user_subnet6=True)
    assert "invalid IPv6 address: 10.0.0.1" in excinfo.value.message
    with pytest.raises(InvalidParameter) as excinfo:
        nset.validate_endpoint(es, user_defined=False, user_subnet=False, subnet=None)
    assert nset.ERR_IP_PREDEFINED in excinfo.value.message


# ---- the service, with containers in a fake ContainerRecords -----------------------------------

class Named(dict):
    """Records by id whose ``get`` also knows names (what ContainerRecords.get does)."""

    def lookup(self, ref):
        for container in self.values():
            if ref in (container.id, container.name):
                return container
        raise NotFound(f"No such container: {ref}")


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTH_DNS_UPSTREAMS", "127.0.0.1:53535")
    store = Store(str(tmp_path / "berth.db"))
    svc = make_service(tmp_path, store)
    svc.containers.records = Named()
    svc.containers.get = svc.containers.records.lookup
    yield svc
    store.close()


def box(service, name: str, cid_char: str, *, mode: str = "bridge", links=None, running=True,
        ip: str = "", env=None, exposed=None, hostname: str = "", **extra):
    paths = {"hosts_path": "", "resolv_conf_path": "", "hostname_path": "", **extra}
    container = SimpleNamespace(
        id=cid_char * 64, name=name, running=running, state={"Pid": 0},
        config={"Hostname": hostname or (cid_char * 12), "Env": list(env or []),
                "ExposedPorts": {p: {} for p in exposed or []}},
        host_config={"NetworkMode": mode, "Links": links},
        network_settings={"Networks": {"bridge": {"IPAddress": ip, "GlobalIPv6Address": ""}} if ip else {}},
        removal_in_progress=False, **paths)
    service.containers.records[container.id] = container
    return container


def test_legacy_links_are_checked_kept_and_shown(service):
    db = box(service, "db", "d", ip="172.17.0.2", env=["USER=app"], exposed=["5432/tcp"])
    box(service, "hostbox", "h", mode="host")
    for links, error in ((["nope:x"], "could not get container for nope: No such container: nope"),
                         (["hostbox"], "conflicting options: host type networking can't be used "
                                       "with links. This would result in undefined behavior"),
                         (["a:b:c"], "bad format for links: a:b:c")):
        with pytest.raises(InvalidParameter) as excinfo:
            service.prepare_create({}, {"NetworkMode": "default", "Links": links}, None)
        assert excinfo.value.message == error
    service.prepare_create({}, {"NetworkMode": "default", "Links": ["db:data"]}, None)

    web = box(service, "web", "w", links=["db:data", "db", "db:data"], ip="172.17.0.3")
    service.register_links(web)
    assert web.host_config["Links"] == ["/db:/web/data", "/db:/web/db"]   # a repeated alias: once
    assert service._link_hosts(web) == [("172.17.0.2", f"data {'d' * 12} db"), ("172.17.0.2", f"db {'d' * 12}")]
    env = service.link_environment(web)
    assert "DATA_PORT_5432_TCP_ADDR=172.17.0.2" in env and "DATA_NAME=/web/data" in env
    assert "DATA_ENV_USER=app" in env and "DB_NAME=/web/db" in env
    hosts = service._hosts_text(web).splitlines()
    assert hosts[-3:] == [f"172.17.0.2\tdata {'d' * 12} db", f"172.17.0.2\tdb {'d' * 12}", f"172.17.0.3\t{'w' * 12}"]
    service._check_links(web)
    db.running = False
    with pytest.raises(SystemError_) as excinfo:
        service._check_links(web)
    assert excinfo.value.message == "Cannot link to a non running container: /db AS /web/data"
    assert service.link_environment(web) == []   # nothing of a stopped child
    db.running = True
    assert service._parents(db) == [web]

    # on a user network HostConfig.Links means nothing (inspect shows null)
    user = box(service, "u", "u", mode="mynet", links=["db:data"])
    service.register_links(user)
    assert user.host_config["Links"] is None


def test_rename_and_rm_link(service):
    db = box(service, "db", "d", ip="172.17.0.2")
    web = box(service, "web", "w", links=["/db:/web/data", "/db:/web/db"], ip="172.17.0.3")
    db.name = "store"
    service._rename_in_links(db, "db")
    assert web.host_config["Links"] == ["/store:/web/data", "/store:/web/db"]
    web.name = "front"
    service._rename_in_links(web, "web")
    assert web.host_config["Links"] == ["/store:/front/data", "/store:/front/db"]

    async def scenario():
        await service.remove_link("/front/data")
        assert web.host_config["Links"] == ["/store:/front/db"]
        for name, error in (("front/nothing", NotFound), ("nobody/x", NotFound)):
            with pytest.raises(error) as excinfo:
                await service.remove_link(name)
            assert excinfo.value.message == f"No such container: {name}"
        with pytest.raises(SystemError_) as excinfo:
            await service.remove_link("store")
        assert excinfo.value.message == "Conflict, cannot remove the default link name of the container"
        with pytest.raises(NotFound):
            await service.remove_link("/ghost")
        await service.remove_link("front/db")
        assert web.host_config["Links"] is None

    asyncio.run(scenario())
    assert web in service.containers.saved


def test_link_aliases_on_user_networks(service):
    async def make():
        return await service.create({"Name": "mynet"})

    service.host.ensure_network_sync = lambda net: None
    service.host.bridge_exists_sync = lambda name: False
    network_id = asyncio.run(make())["Id"]
    c = box(service, "c", "c", mode="mynet")
    c.network_settings = {"Networks": {"mynet": {"NetworkID": network_id, "Links": ["db:Data", "/x:/c/y"]},
                                       "bridge": {"NetworkID": "", "Links": ["db:ignored"]}}}
    assert service._link_aliases(c) == {network_id: {"data": "db", "y": "x"}}


def test_container_mode_shares_its_targets_files(service, tmp_path):
    files = {}
    for name in ("hostname", "hosts", "resolv.conf"):
        files[name] = str(tmp_path / name)
        with open(files[name], "w") as handle:
            handle.write(name + "\n")
    infra = box(service, "infra", "i", hostname_path=files["hostname"], hosts_path=files["hosts"],
                resolv_conf_path=files["resolv.conf"])
    infra.config["Domainname"] = "pod.local"
    app = box(service, "app", "a", mode="container:infra")
    assert service.joined_files(app) == files
    assert app.config["Domainname"] == "pod.local"
    assert service.joined_files(box(service, "other", "o")) is None
    os.unlink(files["hosts"])
    assert service.joined_files(app) is None   # the target has no files (yet): its own then


def test_dual_stack_port_requests(service):
    net = service.find("bridge")
    container = SimpleNamespace(config={"ExposedPorts": {"9000/tcp": {}}}, host_config={
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1"}],
                         "53/udp": [{"HostIp": "::1", "HostPort": "5353"}]},
        "PublishAllPorts": True})
    v4_only = service._port_requests(container, net)
    assert [r.host_ip for r in v4_only] == ["0.0.0.0", "127.0.0.1", "::1", "0.0.0.0"]
    net.enable_ipv6 = True
    service.ipam.allocate_network6(net.id, subnet="fd00:5::/64")
    both = service._port_requests(container, net)
    assert both[:4] == v4_only
    assert both[4:] == [portlib.PortRequest("tcp", 80, "::", 8080), portlib.PortRequest("tcp", 9000, "::")]


def test_a_rename_moves_both_families_in_the_dns(service):
    from berth.engine.networks.service import Sandbox

    service.dns.add_network("n1", "mynet", "10.1.0.0/24")
    service._networks["n1"] = service.find("bridge").__class__(id="n1", name="mynet", driver="bridge",
                                                                created="2026-01-01T00:00:00Z")
    web = box(service, "web", "w")
    web.network_settings = {"Networks": {"mynet": {"NetworkID": "n1", "DNSNames": ["web", "w" * 12]}}}
    ep = {"address": "10.1.0.2/24", "address6": "fd00:1::2/64"}
    service._sandboxes[web.id] = Sandbox(web.id, netns="/x", endpoints={
        "n1": {"endpoint_id": "e", "network_name": "mynet", "ep": ep, "dns_names": ["web", "w" * 12]}})
    for ip in ("10.1.0.2", "fd00:1::2"):
        service.dns.register("n1", ["web", "w" * 12], ip)
    web.name = "front"
    service.rename_container(web, "web")
    records = service.dns.records
    assert records.lookup(["n1"], "front") == ["10.1.0.2"]
    assert records.lookup(["n1"], "front", version=6) == ["fd00:1::2"]
    assert records.resolve(["n1"], "web") == []
