"""Container links end to end, with the docker CLI and docker-py: legacy ``--link name:alias``
on the default bridge (the linking container's /etc/hosts, the ALIAS_* variables dockerd 28
sets, ``HostConfig.Links`` in inspect, ``docker rm --link``), and on a user network ``--link``
and ``--network-alias`` answered by the embedded DNS. The daemon is test_networks' (unique
bridge and chains, a fake DNS upstream on 127.0.0.1)."""

from __future__ import annotations

import json

import docker
import pytest

from test_networks import docker_cli, fails, nslookup, ok, wait_for
from test_networks import net, netd, resolver  # noqa: F401 - the fixtures, one daemon for this module

__all__ = ["net", "netd", "resolver"]   # fixtures shared with test_networks

pytestmark = pytest.mark.e2e


def env_of(daemon, container: str, *exec_args: str) -> dict[str, str]:
    out = ok(daemon, "exec", *exec_args, container, "env")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_legacy_links_on_the_default_bridge(netd, net):
    db, web = net.name("db"), net.name("web")
    db_id = net.run("-e", "PASSWORD=secret", "-e", "HOME=/nowhere", "--expose", "5432",
                    "--expose", "7000-7001/udp", "busybox", "sleep", "300", name=db)
    web_id = net.run("--link", f"{db}:data", "--link", db, "busybox", "sleep", "300", name=web)
    ip = ok(netd, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", db)

    hosts = ok(netd, "exec", web, "cat", "/etc/hosts").splitlines()
    assert f"{ip}\tdata {db_id[:12]} {db}" in hosts            # alias, hostname, name
    assert f"{ip}\t{db} {db_id[:12]}" in hosts                  # the name is the alias: once
    assert hosts[-1].endswith(f"\t{web_id[:12]}")               # its own address comes last
    assert "1 packets received" in ok(netd, "exec", web, "ping", "-c1", "-W2", "data")

    for env in (env_of(netd, web), env_of(netd, web, "-u", "0")):   # the process and an exec
        assert env["DATA_PORT"] == f"tcp://{ip}:5432"
        assert env["DATA_PORT_5432_TCP"] == f"tcp://{ip}:5432"
        assert (env["DATA_PORT_5432_TCP_ADDR"], env["DATA_PORT_5432_TCP_PORT"],
                env["DATA_PORT_5432_TCP_PROTO"]) == (ip, "5432", "tcp")
        assert env["DATA_PORT_7000_UDP_START"] == f"udp://{ip}:7000"
        assert (env["DATA_PORT_7000_UDP_PORT_START"], env["DATA_PORT_7000_UDP_PORT_END"]) == ("7000", "7001")
        assert env["DATA_PORT_7001_UDP_ADDR"] == ip
        assert env["DATA_NAME"] == f"/{web}/data"
        assert env["DATA_ENV_PASSWORD"] == "secret" and "DATA_ENV_HOME" not in env
        own = db.upper().replace("-", "_")
        assert env[f"{own}_NAME"] == f"/{web}/{db}"
    links = json.loads(ok(netd, "inspect", web))[0]["HostConfig"]["Links"]
    assert links == [f"/{db}:/{web}/data", f"/{db}:/{web}/{db}"]
    names = ok(netd, "ps", "--no-trunc", "--filter", f"id={db_id}", "--format", "{{.Names}}")
    assert names.split(",") == [db, f"{web}/data", f"{web}/{db}"]   # as dockerd lists them
    assert ok(netd, "ps", "--filter", f"id={db_id}", "--format", "{{.Names}}") == db

    # the child comes back with another address: the parent's /etc/hosts follows
    ok(netd, "stop", "-t", "1", db)
    filler = net.name("filler")
    net.run("busybox", "sleep", "300", name=filler)   # takes the address db had
    assert ok(netd, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", filler) == ip
    ok(netd, "start", db)
    new_ip = ok(netd, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", db)
    assert new_ip != ip
    assert f"{new_ip}\tdata {db_id[:12]} {db}" in ok(netd, "exec", web, "cat", "/etc/hosts").splitlines()

    # docker rm --link: the link goes, both containers stay
    assert ok(netd, "rm", "--link", f"/{web}/data") == f"/{web}/data"
    hosts = ok(netd, "exec", web, "cat", "/etc/hosts")
    assert "data" not in hosts.split() and f"{new_ip}\t{db} {db_id[:12]}" in hosts.splitlines()
    assert json.loads(ok(netd, "inspect", web))[0]["HostConfig"]["Links"] == [f"/{db}:/{web}/{db}"]
    client = docker.DockerClient(base_url=netd.host, version="auto", timeout=60)
    try:
        client.api.remove_container(f"{web}/{db}", link=True)     # docker-py's rm --link
        assert client.api.inspect_container(web)["HostConfig"]["Links"] is None
        assert client.api.inspect_container(db)["State"]["Running"] is True
        with pytest.raises(docker.errors.NotFound) as excinfo:
            client.api.remove_container(f"{web}/nothing", link=True)
        assert f"No such container: {web}/nothing" in str(excinfo.value)
    finally:
        client.close()
    err = fails(netd, "rm", "--link", db)
    assert "Conflict, cannot remove the default link name of the container" in err


def test_link_errors_and_renames(netd, net):
    err = fails(netd, "run", "--rm", "--link", "no-such-box:x", "busybox", "true")
    assert "could not get container for no-such-box" in err
    child, parent = net.name("child"), net.name("parent")
    net.run("busybox", "sleep", "300", name=child)
    ok(netd, "create", "--name", parent, "--link", f"{child}:kid", "busybox", "sleep", "300")
    net.containers.append(parent)
    renamed = net.name("renamed")
    ok(netd, "rename", child, renamed)
    assert json.loads(ok(netd, "inspect", parent))[0]["HostConfig"]["Links"] == [f"/{renamed}:/{parent}/kid"]
    ok(netd, "stop", "-t", "1", renamed)
    err = fails(netd, "start", parent)
    assert f"Cannot link to a non running container: /{renamed} AS /{parent}/kid" in err
    ok(netd, "start", renamed)
    ok(netd, "start", parent)
    assert "kid" in ok(netd, "exec", parent, "cat", "/etc/hosts").split()
    # host networking cannot be linked to
    host_box = net.name("hostnet")
    ok(netd, "create", "--name", host_box, "--network", "host", "busybox", "true")
    net.containers.append(host_box)
    err = fails(netd, "create", "--link", host_box, "busybox", "true")
    assert "conflicting options: host type networking can't be used with links" in err


def test_links_and_aliases_on_a_user_network(netd, net, resolver):
    network = net.network()
    a, b, c = net.name("a"), net.name("b"), net.name("c")
    net.run("--network", network, "--network-alias", "svc", "busybox", "sleep", "300", name=a)
    net.run("--network", network, "--link", f"{a}:lnk", "busybox", "sleep", "300", name=b)
    net.run("--network", network, "busybox", "sleep", "300", name=c)
    a_ip = net.ip(a, network)

    assert nslookup(netd, b, "lnk") == (0, [a_ip])               # the linking container's alias
    assert nslookup(netd, b, f"lnk.{network}") == (0, [a_ip])
    assert nslookup(netd, c, "svc") == (0, [a_ip])               # a network alias: everyone's
    assert nslookup(netd, b, "svc") == (0, [a_ip])
    code, addresses = nslookup(netd, c, "lnk")                   # not c's: the upstream says no
    assert code != 0 and addresses == [] and "lnk" in resolver.asked
    wait_for(lambda: "1 packets received" in docker_cli(netd, "exec", b, "ping", "-c1", "-W2", "lnk").stdout,
             what="ping by the link alias")

    info = json.loads(ok(netd, "inspect", b))[0]
    assert info["HostConfig"]["Links"] is None                   # dockerd: not a legacy link here
    assert info["NetworkSettings"]["Networks"][network]["Links"] == [f"{a}:lnk"]
    # connected later with a link of its own
    d = net.name("d")
    net.run("busybox", "sleep", "300", name=d)
    ok(netd, "network", "connect", "--link", f"{c}:peer", network, d)
    assert nslookup(netd, d, "peer") == (0, [net.ip(c, network)])
    assert nslookup(netd, b, "peer")[1] == []
