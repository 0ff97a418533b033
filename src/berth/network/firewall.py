"""iptables rules for bridge networks: NAT, isolation, published ports, loopback publishing.

Everything lives in chains of our own, named from a configurable prefix (default ``BERTH``;
tests use their own so that they never touch a real installation's rules). Built-in chains only
get one jump each, so :meth:`Firewall.cleanup_all` can remove every trace exactly::

    filter FORWARD      -j P-FORWARD          P-FORWARD: -j P-USER, -j P-ISOLATION-STAGE-1,
                                                         then per-bridge accept/drop rules
                                              P: per published port ACCEPT (like Docker's DOCKER)
                                              P-ISOLATION-STAGE-1/2: inter-network isolation
    nat PREROUTING      -m addrtype --dst-type LOCAL -j P      P: DNAT per published port
    nat OUTPUT          -m addrtype --dst-type LOCAL -j P      (127.0.0.1 included: no proxy)
    nat POSTROUTING     -j P-POSTROUTING      MASQUERADE per subnet (not --internal), for
                                              127.0.0.0/8 sources leaving a bridge, and hairpin
    raw PREROUTING      -j P-PREROUTING       drops packets to a loopback-published port that do
                                              not come from lo (route_localnet would let other
                                              hosts and containers reach it otherwise)

IPv6 (``Firewall(prefix, family=6)``, ``ip6tables``): the same chains and rules for IPv6
subnets and container addresses, but nat OUTPUT skips ``::1`` (IPv6 has no route_localnet: a
packet from ::1 may not leave the host, so ports on [::1] and [::] are reached from the host
through a userland proxy, as dockerd's docker-proxy does), and there is no raw guard.

Published ports on 127.0.0.1 work with kernel rules only (no userland proxy): OUTPUT DNAT, plus
``route_localnet=1`` on the bridge (set by ``bridge.ensure_bridge``) and the MASQUERADE of
127.0.0.0/8 sources. So they keep working while the daemon is down (live-restore).

Engine use (``--iptables=false``: do not create a Firewall at all)::

    fw = Firewall()                       # prefix="BERTH"
    fw.setup()                            # startup; idempotent
    fw.add_network(bridge, subnet, internal=False, icc=True, masquerade=True)
    fw.add_port(bridge, container_ip, mapping)      # mapping: ports.PortMapping
    fw.remove_port(...); fw.remove_network(...)     # same arguments as the add
    fw.reconcile(rules)                   # startup: exactly these rules of ours, nothing else
    fw.cleanup_all()                      # remove every chain/rule of this prefix

Adds and removes are exact and idempotent: the current rules are read with ``iptables-save``,
only the missing (or present) ones are written, in one ``iptables-restore --noflush``
transaction per table. Rules are therefore written in the canonical form iptables-save prints.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from berth.errors import InvalidParameter, SystemError_
from berth.network.ports import PortMapping

Runner = Callable[[Sequence[str], str | None], str]

MAX_PREFIX = 10  # iptables chain names are at most 28 chars; "-ISOLATION-STAGE-1" takes 18


def run_command(argv: Sequence[str], stdin: str | None = None) -> str:
    """Run argv, return stdout; SystemError_ with stderr on failure."""
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemError_(f"{' '.join(argv[:3])} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


@dataclass(frozen=True)
class Rule:
    """One rule: ``spec`` in iptables-save's canonical form; ``position`` None appends,
    an int inserts at that 1-based position."""

    table: str
    chain: str
    spec: str
    position: int | None = None

    @property
    def line(self) -> str:
        return f"-A {self.chain} {self.spec}"


def _neg(flag: str, value: str, negate: bool) -> str:
    return f"{'! ' if negate else ''}{flag} {value}"


def _host(ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    return f"{addr}/{addr.max_prefixlen}"


def _endpoint(ip: str, port: int) -> str:
    """``--to-destination``'s form: 172.18.0.2:80, [fd00::2]:80."""
    addr = ipaddress.ip_address(ip)
    return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"


class Firewall:
    """Rule sets for networks and ports under chains named from ``prefix``."""

    def __init__(self, prefix: str = "BERTH", *, iptables: str | None = None,
                 runner: Runner | None = None, family: int = 4):
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", prefix) or len(prefix) > MAX_PREFIX:
            raise InvalidParameter(f"invalid iptables chain prefix: {prefix!r}")
        self.prefix = prefix
        self.family = family
        self.iptables = iptables or ("ip6tables" if family == 6 else "iptables")
        self._run = runner or run_command
        self._lock = threading.Lock()
        p = prefix
        self.chain_forward = f"{p}-FORWARD"
        self.chain_ports = p                      # filter: ACCEPT published; nat: DNAT
        self.chain_user = f"{p}-USER"
        self.chain_iso1 = f"{p}-ISOLATION-STAGE-1"
        self.chain_iso2 = f"{p}-ISOLATION-STAGE-2"
        self.chain_post = f"{p}-POSTROUTING"
        self.chain_raw = f"{p}-PREROUTING"

    # ---- what exists ----------------------------------------------------------------------------
    def flavour(self) -> str:
        """"nf_tables" or "legacy" (for ``docker info``), from ``iptables --version``."""
        out = self._run([self.iptables, "--version"], None)
        return "nf_tables" if "nf_tables" in out else "legacy"

    def chains(self) -> dict[str, list[str]]:
        """Our chains per table (base chains of setup())."""
        chains = {
            "filter": [self.chain_forward, self.chain_ports, self.chain_user, self.chain_iso1, self.chain_iso2],
            "nat": [self.chain_ports, self.chain_post],
            "raw": [self.chain_raw],
        }
        if self.family == 6:
            del chains["raw"]
        return chains

    # ---- pure rule sets ---------------------------------------------------------------------------
    def base_rules(self) -> list[Rule]:
        local = "-m addrtype --dst-type LOCAL"
        rules = [
            Rule("filter", "FORWARD", f"-j {self.chain_forward}", 1),
            Rule("filter", self.chain_forward, f"-j {self.chain_user}", 1),
            Rule("filter", self.chain_forward, f"-j {self.chain_iso1}", 2),
            Rule("nat", "PREROUTING", f"{local} -j {self.chain_ports}", 1),
            Rule("nat", "OUTPUT", f"{local} -j {self.chain_ports}", 1),
            Rule("nat", "POSTROUTING", f"-j {self.chain_post}", 1),
            Rule("raw", "PREROUTING", f"-j {self.chain_raw}", 1),
        ]
        if self.family == 6:
            rules[4] = Rule("nat", "OUTPUT", f"! -d ::1/128 {local} -j {self.chain_ports}", 1)
            del rules[6]
        return rules

    def network_rules(self, bridge: str, subnet: str, *, internal: bool = False, icc: bool = True,
                      masquerade: bool = True) -> list[Rule]:
        """Rules of one bridge network (Docker's bridge driver, in our chains); ``subnet`` of
        this firewall's family."""
        net = str(ipaddress.ip_network(subnet))
        fwd = self.chain_forward
        rules: list[Rule] = []
        if internal:
            rules += [
                Rule("filter", self.chain_iso1, f"! -s {net} -o {bridge} -j DROP"),
                Rule("filter", self.chain_iso1, f"! -d {net} -i {bridge} -j DROP"),
            ]
        else:
            rules += [
                Rule("filter", self.chain_iso1, f"-i {bridge} ! -o {bridge} -j {self.chain_iso2}"),
                Rule("filter", self.chain_iso2, f"-o {bridge} -j DROP"),
            ]
        rules += [
            Rule("filter", fwd, f"-o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
            Rule("filter", fwd, f"-o {bridge} -j {self.chain_ports}"),
            Rule("filter", fwd, f"-i {bridge} -o {bridge} -j {'ACCEPT' if icc else 'DROP'}"),
            Rule("filter", fwd, f"! -i {bridge} -o {bridge} -j DROP"),
        ]
        if not internal:
            rules.append(Rule("filter", fwd, f"-i {bridge} ! -o {bridge} -j ACCEPT"))
            if masquerade:
                rules.append(Rule("nat", self.chain_post, f"-s {net} ! -o {bridge} -j MASQUERADE"))
        if self.family == 4:
            # Loopback-published ports: the source 127.0.0.1 must not leave on the bridge.
            rules.append(Rule("nat", self.chain_post, f"-s 127.0.0.0/8 -o {bridge} -j MASQUERADE"))
        return rules

    def port_rules(self, bridge: str, container_ip: str, mapping: PortMapping) -> list[Rule]:
        """Rules of one published port (DNAT, forward accept, hairpin, loopback guard); the
        container address and the mapping's host address of this firewall's family."""
        cip = str(ipaddress.ip_address(container_ip))
        chost = _host(cip)
        proto = mapping.proto
        any_ip = "::" if self.family == 6 else "0.0.0.0"
        host_ip = mapping.host_ip or any_ip
        if self.family == 6 and ipaddress.IPv6Address(host_ip).is_loopback:
            return []   # [::1] is the userland proxy's alone: no packet from ::1 may leave
        # The comment names the host side, so that two host ports published to the same
        # container port get distinct ACCEPT/hairpin rules and removing one keeps the other.
        tag = f'-m comment --comment "{_endpoint(host_ip, mapping.host_port)}/{proto}"'
        match_host = f"-p {proto} -m {proto} --dport {mapping.host_port}"
        match_ctr = f"-p {proto} -m {proto} --dport {mapping.container_port}"
        dst = "" if host_ip == any_ip else f"-d {_host(host_ip)} "
        rules = [
            Rule("nat", self.chain_ports,
                 f"{dst}{match_host} {tag} -j DNAT --to-destination {_endpoint(cip, mapping.container_port)}"),
            Rule("filter", self.chain_ports,
                 f"-d {chost} ! -i {bridge} -o {bridge} {match_ctr} {tag} -j ACCEPT"),
            Rule("nat", self.chain_post, f"-s {chost} -d {chost} {match_ctr} {tag} -j MASQUERADE"),
        ]
        if self.family == 4 and ipaddress.IPv4Address(host_ip).is_loopback:
            rules.append(Rule("raw", self.chain_raw, f"-d {_host(host_ip)} ! -i lo {match_host} {tag} -j DROP"))
        return rules

    # ---- applying ---------------------------------------------------------------------------------
    def _save(self) -> dict[str, tuple[set[str], list[str]]]:
        """All tables in one ``iptables-save``: {table: (chains, rule lines)}."""
        tables: dict[str, tuple[set[str], list[str]]] = {}
        chains: set[str] = set()
        lines: list[str] = []
        for line in self._run([f"{self.iptables}-save"], None).splitlines():
            if line.startswith("*"):
                chains, lines = set(), []
                tables[line[1:].strip()] = (chains, lines)
            elif line.startswith(":"):
                chains.add(line[1:].split()[0])
            elif line.startswith("-A "):
                lines.append(line.strip())
        return tables

    def _restore(self, bodies: dict[str, list[str]]) -> None:
        """One ``iptables-restore --noflush`` for every table that has changes."""
        text = "".join(f"*{table}\n" + "\n".join(body) + "\nCOMMIT\n" for table, body in bodies.items() if body)
        if text:
            self._run([f"{self.iptables}-restore", "--noflush", "--wait"], text)

    def _apply(self, rules: Iterable[Rule], *, present: bool, chains: dict[str, list[str]] | None = None) -> None:
        by_table: dict[str, list[Rule]] = {}
        for rule in rules:
            by_table.setdefault(rule.table, []).append(rule)
        with self._lock:
            saved = self._save()
            bodies: dict[str, list[str]] = {}
            for table in dict.fromkeys([*(chains or {}), *by_table]):
                have, lines = saved.get(table, (set(), []))
                table_rules = by_table.get(table, [])
                body = bodies.setdefault(table, [])
                if present:
                    wanted = list(chains.get(table, [])) if chains else []
                    for rule in table_rules:
                        wanted += [rule.chain, _jump_target(rule.line) or ""]
                    for chain in dict.fromkeys(wanted):
                        if chain not in have and self._ours(chain):
                            body.append(f":{chain} - [0:0]")
                            have.add(chain)
                    seen = {_canonical(ln) for ln in lines}
                    for rule in table_rules:
                        if _canonical(rule.line) in seen:
                            continue
                        seen.add(_canonical(rule.line))
                        if rule.position is None:
                            body.append(rule.line)
                        else:
                            body.append(f"-I {rule.chain} {rule.position} {rule.spec}")
                else:
                    # Delete each copy that exists (a duplicate left by an older bug included).
                    canonical = [_canonical(ln) for ln in lines]
                    for rule in table_rules:
                        body += [f"-D {rule.chain} {rule.spec}"] * canonical.count(_canonical(rule.line))
            self._restore(bodies)

    def add(self, rules: Iterable[Rule]) -> None:
        """Add the rules that are missing (creating our chains as needed)."""
        self._apply(rules, present=True)

    def remove(self, rules: Iterable[Rule]) -> None:
        """Delete the rules that exist; missing ones are fine."""
        self._apply(rules, present=False)

    def setup(self) -> None:
        """Create our chains and hook them into the built-in chains. Idempotent."""
        self._apply(self.base_rules(), present=True, chains=self.chains())

    def add_network(self, bridge: str, subnet: str, *, internal: bool = False, icc: bool = True,
                    masquerade: bool = True) -> None:
        self.add(self.network_rules(bridge, subnet, internal=internal, icc=icc, masquerade=masquerade))

    def remove_network(self, bridge: str, subnet: str, *, internal: bool = False, icc: bool = True,
                       masquerade: bool = True) -> None:
        self.remove(self.network_rules(bridge, subnet, internal=internal, icc=icc, masquerade=masquerade))

    def add_port(self, bridge: str, container_ip: str, mapping: PortMapping) -> None:
        self.add(self.port_rules(bridge, container_ip, mapping))

    def remove_port(self, bridge: str, container_ip: str, mapping: PortMapping) -> None:
        self.remove(self.port_rules(bridge, container_ip, mapping))

    def add_ports(self, bridge: str, container_ip: str, mappings: Iterable[PortMapping]) -> None:
        """All ports of one endpoint in one transaction per table."""
        self.add([r for m in mappings for r in self.port_rules(bridge, container_ip, m)])

    def remove_ports(self, bridge: str, container_ip: str, mappings: Iterable[PortMapping]) -> None:
        self.remove([r for m in mappings for r in self.port_rules(bridge, container_ip, m)])

    # ---- inspection and cleanup -------------------------------------------------------------------
    def _ours(self, chain: str) -> bool:
        return chain == self.prefix or chain.startswith(self.prefix + "-")

    def rules(self, table: str) -> list[str]:
        """Our rule lines in ``table``: everything in our chains and every jump into them."""
        chains, lines = self._save().get(table, (set(), []))
        ours = {c for c in chains if self._ours(c)}
        return [ln for ln in lines if ln.split()[1] in ours or _jump_target(ln) in ours]

    def reconcile(self, desired: Iterable[Rule]) -> int:
        """Make our rules exactly ``desired`` (startup after a crash): rules in our chains, and
        jumps into them, that are not desired are deleted; missing ones are added; our base
        chains are created. One ``iptables-restore`` per table. Returns how many were deleted."""
        by_table: dict[str, list[Rule]] = {}
        for rule in desired:
            by_table.setdefault(rule.table, []).append(rule)
        base_chains = self.chains()
        deleted = 0
        with self._lock:
            saved = self._save()
            bodies: dict[str, list[str]] = {}
            for table in dict.fromkeys([*base_chains, *by_table, *saved]):
                have, lines = saved.get(table, (set(), []))
                ours = {c for c in have if self._ours(c)}
                rules = by_table.get(table, [])
                wanted = {_canonical(r.line) for r in rules}
                body = bodies.setdefault(table, [])
                if table in base_chains or rules:
                    for chain in dict.fromkeys([*base_chains.get(table, []), *(r.chain for r in rules),
                                                *(_jump_target(r.line) or "" for r in rules)]):
                        if chain and chain not in have and self._ours(chain):
                            body.append(f":{chain} - [0:0]")
                            have.add(chain)
                kept: set[str] = set()
                for line in lines:
                    mine = line.split()[1] in ours or _jump_target(line) in ours
                    if not mine:
                        continue
                    key = _canonical(line)
                    if key in wanted and key not in kept:
                        kept.add(key)
                        continue
                    body.append(line.replace("-A ", "-D ", 1))
                    deleted += 1
                for rule in rules:
                    key = _canonical(rule.line)
                    if key in kept:
                        continue
                    kept.add(key)
                    body.append(rule.line if rule.position is None
                                else f"-I {rule.chain} {rule.position} {rule.spec}")
            self._restore(bodies)
        return deleted

    def cleanup_all(self) -> None:
        """Remove every chain of this prefix and every rule that jumps into one. Idempotent."""
        with self._lock:
            bodies: dict[str, list[str]] = {}
            for table, (chains, lines) in self._save().items():
                ours = sorted(c for c in chains if self._ours(c))
                if ours:
                    body = [ln.replace("-A ", "-D ", 1) for ln in lines
                            if ln.split()[1] not in ours and _jump_target(ln) in ours]
                    bodies[table] = body + [f"-F {c}" for c in ours] + [f"-X {c}" for c in ours]
            self._restore(bodies)


def _canonical(line: str) -> str:
    """Compare rules whitespace- and quote-insensitively (save quotes comments, legacy may not)."""
    return " ".join(line.replace('"', "").split())


def _jump_target(line: str) -> str | None:
    words = shlex.split(line)
    for flag in ("-j", "-g"):
        if flag in words:
            i = words.index(flag)
            if i + 1 < len(words):
                return words[i + 1]
    return None


def iptables_available(binary: str = "iptables") -> bool:
    """``iptables`` (or ``ip6tables``) and its restore tool are installed."""
    return shutil.which(binary) is not None and shutil.which(f"{binary}-restore") is not None
