"""``port``: a container's published ports, docker's lines and natural sort."""

from __future__ import annotations

import re

from berth.cli.command import StatusError


def _join_host_port(ip: str, port: str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def natural_key(text: str) -> list:
    """fvbommel/sortorder NaturalLess: digit runs compare as numbers."""
    return [(0, int(part), len(part)) if part.isdigit() else (1, part, 0) for part in re.findall(r"\d+|\D+", text)]


def port_lines(container: dict, name: str, wanted: str) -> list[str]:
    ports = ((container.get("NetworkSettings") or {}).get("Ports")) or {}
    out: list[str] = []
    if wanted:
        number, _, proto = wanted.partition("/")
        proto = proto or "tcp"
        if not number.isdigit() or int(number) > 0xFFFF:
            raise StatusError(f'Error: invalid port ({number}): strconv.ParseUint: parsing "{number}": invalid syntax', 1)
        frontends = ports.get(f"{number}/{proto}")
        if not frontends:
            raise StatusError(f"Error: No public port '{wanted}' published for {name}", 1)
        out = [_join_host_port(f.get("HostIp", ""), f.get("HostPort", "")) for f in frontends]
    else:
        for key, frontends in ports.items():
            for f in frontends or []:
                out.append(f"{key} -> {_join_host_port(f.get('HostIp', ''), f.get('HostPort', ''))}")
    return sorted(out, key=natural_key)
