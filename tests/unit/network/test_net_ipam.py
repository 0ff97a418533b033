"""IPAM: pure, no root."""

import json
from ipaddress import IPv4Address, IPv4Network

import pytest

from berth.errors import Forbidden, InvalidParameter, NotFound, SystemError_
from berth.network.ipam import DEFAULT_POOLS, Ipam, PoolSpec, parse_address_pools, parse_bip


def nets(*cidrs):
    return lambda: [IPv4Network(c) for c in cidrs]


def test_default_pools_are_dockers():
    assert DEFAULT_POOLS[0] == PoolSpec(IPv4Network("172.17.0.0/16"), 16)
    assert DEFAULT_POOLS[14] == PoolSpec(IPv4Network("172.31.0.0/16"), 16)
    assert DEFAULT_POOLS[15] == PoolSpec(IPv4Network("192.168.0.0/16"), 20)
    assert len(DEFAULT_POOLS) == 16


def test_dynamic_subnets_in_order_and_gateway_first_address():
    ipam = Ipam()
    first = ipam.allocate_network("a", name="bridge")
    second = ipam.allocate_network("b")
    assert str(first.subnet) == "172.17.0.0/16" and str(first.gateway) == "172.17.0.1"
    assert str(second.subnet) == "172.18.0.0/16"
    assert first.ipam_config() == {"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}


def test_host_routes_are_skipped_like_an_installed_docker0():
    ipam = Ipam(host_networks=nets("172.17.0.0/16", "172.18.5.0/24", "10.0.0.0/8"))
    assert str(ipam.allocate_network("a").subnet) == "172.19.0.0/16"


def test_after_the_172_pools_come_192_168_slash_20s():
    ipam = Ipam(host_networks=nets("172.16.0.0/12", "192.168.0.0/20"))
    assert str(ipam.allocate_network("a").subnet) == "192.168.16.0/20"
    assert str(ipam.allocate_network("b").subnet) == "192.168.32.0/20"


def test_exhaustion_error_text():
    ipam = Ipam(host_networks=nets("172.16.0.0/12", "192.168.0.0/16"))
    with pytest.raises(InvalidParameter, match="all predefined address pools have been fully subnetted"):
        ipam.allocate_network("a")


def test_custom_pools_carve_small_subnets_and_skip_big_clashes():
    pools = parse_address_pools([{"base": "10.10.0.0/16", "size": 24}, "base=10.20.0.0/16,size=28"])
    ipam = Ipam(pools=pools, host_networks=nets("10.10.0.0/23"))
    assert str(ipam.allocate_network("a").subnet) == "10.10.2.0/24"
    ipam2 = Ipam(pools=pools, host_networks=nets("10.10.0.0/16"))
    assert str(ipam2.allocate_network("a").subnet) == "10.20.0.0/28"
    assert parse_address_pools([]) == list(DEFAULT_POOLS)
    with pytest.raises(InvalidParameter, match="smaller prefix"):
        parse_address_pools([{"base": "10.0.0.0/16", "size": 8}])


def test_static_subnet_overlap_is_refused_with_dockers_words():
    ipam = Ipam()
    ipam.allocate_network("a", subnet="10.1.0.0/16")
    with pytest.raises(Forbidden) as err:
        ipam.allocate_network("b", subnet="10.1.2.0/24")
    assert err.value.message == "invalid pool request: Pool overlaps with other one on this address space"
    # a static subnet may overlap a host route (Docker allows it), and dynamic ones avoid ours
    ipam.allocate_network("c", subnet="172.17.0.0/16")
    assert str(ipam.allocate_network("d").subnet) == "172.18.0.0/16"


def test_invalid_config_errors_are_listed():
    ipam = Ipam()
    with pytest.raises(InvalidParameter) as err:
        ipam.allocate_network("a", subnet="10.0.0.1/24", gateway="10.9.9.9", ip_range="10.0.1.0/25")
    assert err.value.message.splitlines() == [
        "invalid network config:",
        "* invalid subnet 10.0.0.1/24: it should be 10.0.0.0/24",
        "* invalid ip-range 10.0.1.0/25: parent subnet 10.0.0.0/24 doesn't contain ip-range",
        "* invalid gateway 10.9.9.9: parent subnet 10.0.0.0/24 doesn't contain this address",
    ]
    with pytest.raises(InvalidParameter, match="invalid CIDR block notation"):
        ipam.allocate_network("a", subnet="nonsense")


def test_addresses_first_free_release_reuse_and_preferred():
    ipam = Ipam()
    ipam.allocate_network("n", name="mynet", subnet="10.5.0.0/29")  # .1 gateway, .2-.6 usable
    got = [ipam.allocate_address("n") for _ in range(3)]
    assert [str(x) for x in got] == ["10.5.0.2", "10.5.0.3", "10.5.0.4"]
    ipam.release_address("n", "10.5.0.3")
    assert str(ipam.allocate_address("n")) == "10.5.0.3"
    assert str(ipam.allocate_address("n", preferred="10.5.0.6")) == "10.5.0.6"
    with pytest.raises(Forbidden, match="^Address already in use$"):
        ipam.allocate_address("n", preferred="10.5.0.6")
    with pytest.raises(Forbidden, match="^Address already in use$"):
        ipam.allocate_address("n", preferred="10.5.0.1")  # the gateway
    with pytest.raises(InvalidParameter, match="does not belong to any of this network's subnets"):
        ipam.allocate_address("n", preferred="10.6.0.2")
    assert str(ipam.allocate_address("n")) == "10.5.0.5"
    with pytest.raises(SystemError_) as err:
        ipam.allocate_address("n")
    assert err.value.message == "no available IPv4 addresses on this network's address pools: mynet (n)"
    with pytest.raises(NotFound):
        ipam.allocate_address("missing")


def test_ip_range_gateway_and_aux_addresses():
    ipam = Ipam()
    pool = ipam.allocate_network("n", subnet="10.7.0.0/24", ip_range="10.7.0.128/28",
                                 aux_addresses={"router": "10.7.0.129"})
    assert str(pool.gateway) == "10.7.0.128"  # libnetwork takes the gateway from the range
    assert str(ipam.allocate_address("n")) == "10.7.0.130"  # .129 is the aux address
    assert pool.ipam_config() == {"Subnet": "10.7.0.0/24", "Gateway": "10.7.0.128",
                                  "IPRange": "10.7.0.128/28", "AuxiliaryAddresses": {"router": "10.7.0.129"}}
    explicit = ipam.allocate_network("m", subnet="10.8.0.0/24", gateway="10.8.0.254")
    assert str(explicit.gateway) == "10.8.0.254" and explicit.gateway_cidr == "10.8.0.254/24"
    assert str(ipam.allocate_address("m")) == "10.8.0.1"
    with pytest.raises(Forbidden, match="failed to allocate gateway"):
        ipam.allocate_network("x", subnet="10.9.0.0/24", gateway="10.9.0.0")


def test_state_round_trips_through_json():
    ipam = Ipam(host_networks=nets("172.17.0.0/16"))
    ipam.allocate_network("a", name="one")
    ipam.allocate_network("b", subnet="10.3.0.0/24", ip_range="10.3.0.64/26")
    ipam.allocate_address("a")
    ipam.allocate_address("b", preferred="10.3.0.7")
    saved = json.loads(json.dumps(ipam.to_dict()))
    again = Ipam.from_dict(saved, host_networks=nets("172.17.0.0/16"))
    assert again.to_dict() == ipam.to_dict()
    assert str(again.allocate_address("a")) == "172.18.0.3"
    assert str(again.allocate_network("c").subnet) == "172.19.0.0/16"
    again.release_network("a")
    assert str(again.allocate_network("d").subnet) == "172.18.0.0/16"


def test_bip():
    assert parse_bip("172.26.0.1/16") == (IPv4Network("172.26.0.0/16"), IPv4Address("172.26.0.1"))
    with pytest.raises(InvalidParameter):
        parse_bip("x")
