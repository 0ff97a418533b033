"""iptables rule management. Rule sets are checked pure; applying them runs the real iptables
inside a sandbox netns (its own nf tables), so the host's rules are never read or written."""

import subprocess

import pytest

from berth.errors import InvalidParameter
from berth.network import netns
from berth.network.firewall import Firewall
from berth.network.ports import PortMapping
from nethelpers import needs_iptables, needs_root

LOOP = PortMapping("tcp", "127.0.0.1", 8080, 80)
ANY = PortMapping("tcp", "0.0.0.0", 8081, 80)  # same container port, other host port


def lines(rules):
    return [f"{r.table}: {r.line}" for r in rules]


def test_prefix_is_validated():
    for bad in ("berth", "B" * 11, "BT-X", ""):
        with pytest.raises(InvalidParameter):
            Firewall(prefix=bad)


def test_network_rules_internal_has_no_masquerade_and_no_way_out():
    fw = Firewall(prefix="BTX")
    normal = lines(fw.network_rules("br-a", "10.1.0.0/24"))
    assert "nat: -A BTX-POSTROUTING -s 10.1.0.0/24 ! -o br-a -j MASQUERADE" in normal
    assert "filter: -A BTX-ISOLATION-STAGE-2 -o br-a -j DROP" in normal
    assert "filter: -A BTX-FORWARD -i br-a ! -o br-a -j ACCEPT" in normal
    internal = lines(fw.network_rules("br-i", "10.2.0.0/24", internal=True, icc=False))
    assert not any("MASQUERADE" in ln and "10.2.0.0/24" in ln for ln in internal)
    assert "filter: -A BTX-ISOLATION-STAGE-1 ! -d 10.2.0.0/24 -i br-i -j DROP" in internal
    assert "filter: -A BTX-FORWARD -i br-i -o br-i -j DROP" in internal  # icc=false
    assert not any("-i br-i ! -o br-i -j ACCEPT" in ln for ln in internal)


def test_port_rules_loopback_gets_a_raw_guard():
    fw = Firewall(prefix="BTX")
    loop = lines(fw.port_rules("br-a", "10.1.0.2", LOOP))
    assert loop[0] == ('nat: -A BTX -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -m comment '
                       '--comment "127.0.0.1:8080/tcp" -j DNAT --to-destination 10.1.0.2:80')
    assert any(ln.startswith("raw: -A BTX-PREROUTING -d 127.0.0.1/32 ! -i lo") for ln in loop)
    assert not any(ln.startswith("raw:") for ln in lines(fw.port_rules("br-a", "10.1.0.2", ANY)))


def save(table):
    return subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True, check=True).stdout


@needs_root
@needs_iptables
def test_apply_is_idempotent_exact_and_cleanup_leaves_foreign_rules(sandbox):
    def scenario():
        fw = Firewall(prefix="BTA")
        other = Firewall(prefix="BTAB")  # a prefix that starts like ours must survive our cleanup
        other.setup()
        subprocess.run(["iptables", "-A", "FORWARD", "-s", "10.99.0.0/16", "-j", "ACCEPT"], check=True)
        for _ in range(2):
            fw.setup()
            fw.add_network("br-a", "10.1.0.0/24")
            fw.add_ports("br-a", "10.1.0.2", [LOOP, ANY])
        expected = fw.base_rules() + fw.network_rules("br-a", "10.1.0.0/24") \
            + fw.port_rules("br-a", "10.1.0.2", LOOP) + fw.port_rules("br-a", "10.1.0.2", ANY)
        for table in ("filter", "nat", "raw"):
            mine = [r for r in expected if r.table == table]
            assert len(fw.rules(table)) == len(mine), table  # each once, none twice
        # hooks are first in the built-in chains
        assert save("filter").split("-A FORWARD ")[1].startswith("-j BTA-FORWARD")

        fw.remove_port("br-a", "10.1.0.2", LOOP)
        left = "\n".join(fw.rules("filter") + fw.rules("nat") + fw.rules("raw"))
        assert "127.0.0.1:8080/tcp" not in left
        assert left.count("0.0.0.0:8081/tcp") == 3  # DNAT, ACCEPT, hairpin of the other mapping stay
        fw.remove_port("br-a", "10.1.0.2", LOOP)  # removing twice is fine

        fw.cleanup_all()
        fw.cleanup_all()
        everything = save("filter") + save("nat") + save("raw")
        assert "BTA-" not in everything and "-j BTA " not in everything and ":BTA " not in everything
        assert "-A FORWARD -s 10.99.0.0/16 -j ACCEPT" in everything
        assert "BTAB-FORWARD" in everything
        other.cleanup_all()
        assert "BTAB" not in save("filter") + save("nat") + save("raw")

    netns.run_in(sandbox, scenario)


@needs_root
@needs_iptables
def test_flavour_reported(sandbox):
    assert netns.run_in(sandbox, Firewall(prefix="BTF").flavour) in ("nf_tables", "legacy")
