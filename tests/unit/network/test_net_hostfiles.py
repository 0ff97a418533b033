"""A container's /etc/hostname and /etc/hosts, as Docker writes them."""

import os

from berth.network import hostfiles


def test_hostname_is_the_short_id_unless_given_or_on_the_host_network():
    cid = "0123456789ab" + "c" * 52
    assert hostfiles.hostname_for(cid, {}, {}) == "0123456789ab"
    assert hostfiles.hostname_for(cid, {"Hostname": "web"}, {"NetworkMode": "host"}) == "web"
    assert hostfiles.hostname_for(cid, {}, {"NetworkMode": "host"}) == os.uname().nodename


def test_hosts_file_lists_localhost_extra_hosts_then_the_container():
    text = hostfiles.hosts_file("web", "example.test", ["172.17.0.2"],
                                ["db:10.0.0.5", "gw=host-gateway"], host_gateway="172.17.0.1")
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost" and text.endswith("\n")
    assert lines[-3:] == ["10.0.0.5\tdb", "172.17.0.1\tgw", "172.17.0.2\tweb.example.test web"]


def test_hosts_file_on_the_host_network_is_the_hosts():
    with open("/etc/hosts", encoding="utf-8") as handle:
        expected = handle.read()
    assert hostfiles.hosts_file("x", "", [], None, host_network=True).rstrip("\n") == expected.rstrip("\n")
