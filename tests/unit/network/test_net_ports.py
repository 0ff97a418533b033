"""Port parsing and allocation (pure, plus bind tests on 127.0.0.1)."""

import os
import socket

import pytest

from berth.errors import InvalidParameter, SystemError_
from berth.network.ports import (
    PortAllocator,
    PortAlreadyAllocated,
    PortMapping,
    PortRequest,
    ephemeral_range,
    is_port_free,
    parse_port_bindings,
    ports_view,
    publish_all,
)


def test_parse_port_bindings_from_the_api():
    got = parse_port_bindings({
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}, {"HostIp": "", "HostPort": ""}],
        "53/udp": [{"HostPort": "5300-5310"}],
        "90": None,
    })
    assert got == [
        PortRequest("tcp", 80, "127.0.0.1", 8080),
        PortRequest("tcp", 80, "0.0.0.0", 0),
        PortRequest("udp", 53, "0.0.0.0", 5300, 5310),
        PortRequest("tcp", 90, "0.0.0.0", 0),
    ]
    with pytest.raises(InvalidParameter, match="invalid port specification"):
        parse_port_bindings({"80/tcp": [{"HostPort": "eighty"}]})
    assert parse_port_bindings({"80/tcp": [{"HostIp": "[::1]", "HostPort": "80"},
                                           {"HostIp": "0:0::0", "HostPort": "81"}]}) == [
        PortRequest("tcp", 80, "::1", 80), PortRequest("tcp", 80, "::", 81)]
    with pytest.raises(InvalidParameter, match="invalid IP address: fd00::zz"):
        parse_port_bindings({"80/tcp": [{"HostIp": "fd00::zz", "HostPort": "80"}]})


def test_ipv6_bindings_are_their_own_family():
    allocator = PortAllocator(ephemeral=(40000, 40010), check_host=None)
    allocator.allocate(PortRequest("tcp", 80, "0.0.0.0", 8080))
    assert allocator.allocate(PortRequest("tcp", 80, "::", 8080)).host_ip == "::"  # 0.0.0.0 and :: differ
    with pytest.raises(PortAlreadyAllocated) as excinfo:
        allocator.allocate(PortRequest("tcp", 80, "::1", 8080))   # :: holds every IPv6 address
    assert excinfo.value.message == "Bind for ::1:8080 failed: port is already allocated"
    allocator.allocate(PortRequest("tcp", 80, "::1", 8081))
    with pytest.raises(PortAlreadyAllocated):
        allocator.allocate(PortRequest("tcp", 80, "::", 8081))
    allocator.allocate(PortRequest("tcp", 80, "127.0.0.1", 8081))  # IPv4 is not in the way


def test_is_port_free_on_ipv6_loopback():
    if not socket.has_ipv6 or not os.path.exists("/proc/net/if_inet6"):
        pytest.skip("no IPv6 in this kernel")
    with socket.socket(socket.AF_INET6) as held:
        held.bind(("::1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        assert not is_port_free("::1", port)
        assert not is_port_free("::", port)


def test_publish_all_and_ports_view():
    assert publish_all(["80/tcp", "53/udp"]) == [PortRequest("tcp", 80), PortRequest("udp", 53)]
    view = ports_view(["80/tcp", "443/tcp"], [PortMapping("tcp", "0.0.0.0", 32768, 80)])
    assert view == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}], "443/tcp": None}


def test_ephemeral_range_reads_proc_and_falls_back(tmp_path):
    f = tmp_path / "range"
    f.write_text("40000\t40010\n")
    assert ephemeral_range(str(f)) == (40000, 40010)
    assert ephemeral_range(str(tmp_path / "missing")) == (49153, 65535)


def test_allocator_conflicts_in_dockers_words():
    alloc = PortAllocator(ephemeral=(40000, 40002), check_host=None)
    alloc.allocate(PortRequest("tcp", 80, "127.0.0.1", 8080), owner="c1")
    with pytest.raises(PortAlreadyAllocated) as err:
        alloc.allocate(PortRequest("tcp", 80, "127.0.0.1", 8080))
    assert err.value.message == "Bind for 127.0.0.1:8080 failed: port is already allocated"
    with pytest.raises(PortAlreadyAllocated, match="Bind for 0.0.0.0:8080 failed"):
        alloc.allocate(PortRequest("tcp", 80, "0.0.0.0", 8080))  # any-address clashes with 127.0.0.1
    assert alloc.allocate(PortRequest("udp", 80, "0.0.0.0", 8080)).host_port == 8080  # other proto
    assert alloc.allocate(PortRequest("tcp", 80, "127.0.0.2", 8080)).host_port == 8080  # other address


def test_allocator_ephemeral_and_ranges():
    alloc = PortAllocator(ephemeral=(40000, 40002), check_host=None)
    got = [alloc.allocate(PortRequest("tcp", 80), owner="c").host_port for _ in range(3)]
    assert got == [40000, 40001, 40002]
    with pytest.raises(SystemError_, match="all ports are allocated"):
        alloc.allocate(PortRequest("tcp", 80))
    assert len(alloc.release_owner("c")) == 3
    assert alloc.allocate(PortRequest("tcp", 80)).host_port == 40000  # wrapped around
    alloc.reserve("tcp", "0.0.0.0", 9001, owner="restored")
    m = alloc.allocate(PortRequest("tcp", 80, "0.0.0.0", 9000, 9002))
    assert m.host_port == 9000
    assert alloc.allocate(PortRequest("tcp", 80, "0.0.0.0", 9000, 9002)).host_port == 9002
    with pytest.raises(PortAlreadyAllocated, match="Bind for 0.0.0.0:9000-9002 failed"):
        alloc.allocate(PortRequest("tcp", 80, "0.0.0.0", 9000, 9002))
    alloc.release(m)
    assert alloc.allocate(PortRequest("tcp", 80, "0.0.0.0", 9000, 9002)).host_port == 9000


def test_bind_test_sees_a_listener_on_loopback():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert not is_port_free("127.0.0.1", port, "tcp")
        assert not is_port_free("0.0.0.0", port, "tcp")
        assert is_port_free("127.0.0.1", port, "udp")
        alloc = PortAllocator()
        with pytest.raises(PortAlreadyAllocated, match=f"Bind for 127.0.0.1:{port} failed"):
            alloc.allocate(PortRequest("tcp", 80, "127.0.0.1", port))
    assert is_port_free("127.0.0.1", port, "tcp")
    with pytest.raises(InvalidParameter, match="cannot assign requested address"):
        is_port_free("203.0.113.77", 8080, "tcp")  # not a local address: a bind, no traffic
