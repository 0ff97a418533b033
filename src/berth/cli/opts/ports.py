"""``-p/--publish`` and ``--expose``: go-connections' nat package, as docker parses them.

``ip:hostPort:containerPort/proto`` (parts optional, ranges ``8000-8010``, IPv6 in
brackets), plus docker's long form ``published=8080,target=80,protocol=udp``. Results are the
API's ``ExposedPorts`` (``{"80/tcp": {}}``) and ``PortBindings``
(``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``).
"""

from __future__ import annotations

import ipaddress


def _parse_uint16(text: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    value = int(text)
    if value > 0xFFFF:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return value


def parse_port_range(ports: str) -> tuple[int, int]:
    """nat.ParsePortRange: "80" or "8000-8010"."""
    if ports == "":
        raise ValueError("empty string specified for ports")
    if "-" not in ports:
        port = _parse_uint16(ports)
        return port, port
    parts = ports.split("-")
    start = _parse_uint16(parts[0])
    end = _parse_uint16(parts[1])
    if end < start:
        raise ValueError(f"invalid range specified for port: {ports}")
    return start, end


def split_proto_port(raw: str) -> tuple[str, str]:
    """nat.SplitProtoPort -> (proto, port)."""
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1:
        return "tcp", raw
    if not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def new_port(proto: str, port: str) -> str:
    if not port:
        return f"0/{proto}"
    start, end = parse_port_range(port)
    return f"{start}/{proto}" if start == end else f"{start}-{end}/{proto}"


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    n = len(parts)
    container = parts[-1]
    if n == 1:
        return "", "", container
    if n == 2:
        return "", parts[0], container
    if n == 3:
        return parts[0], parts[1], container
    return ":".join(parts[: n - 2]), parts[n - 2], container


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return "%" not in text
    except ValueError:
        return False


def parse_port_spec(raw: str) -> list[tuple[str, dict]]:
    """nat.ParsePortSpec -> [(port key, binding)]."""
    ip, host_port, container_port = _split_parts(raw)
    proto, container_port = split_proto_port(container_port)
    if ip and ip[0] == "[":
        if not ip.endswith("]") or ip.count("[") != 1:
            raise ValueError(f"invalid IP address {ip}: address {ip}: missing ']' in address")
        ip = ip[1:-1]
    if ip and not _valid_ip(ip):
        raise ValueError(f"invalid IP address: {ip}")
    if container_port == "":
        raise ValueError(f"no port specified: {raw}<empty>")
    try:
        start, end = parse_port_range(container_port)
    except ValueError:
        raise ValueError(f"invalid containerPort: {container_port}") from None
    host_start = host_end = 0
    if host_port:
        try:
            host_start, host_end = parse_port_range(host_port)
        except ValueError:
            raise ValueError(f"invalid hostPort: {host_port}") from None
    if host_port and (end - start) != (host_end - host_start) and end != start:
        raise ValueError(f"invalid ranges specified for container and host Ports: {container_port} and {host_port}")
    if proto.lower() not in ("tcp", "udp", "sctp"):
        raise ValueError(f"invalid proto: {proto}")
    out = []
    for i in range(end - start + 1):
        cport = str(start + i)
        hport = host_port
        if host_port:
            hport = str(host_start + i)
        if start == end and host_start != host_end:
            hport = f"{hport}-{host_end}"
        out.append((new_port(proto.lower(), cport), {"HostIp": ip, "HostPort": hport}))
    return out


def convert_to_standard_notation(specs: list[str]) -> list[str]:
    """docker's long form ``published=..,target=..,protocol=..`` -> ``8080:80/tcp``."""
    out = []
    for spec in specs:
        if "=" not in spec:
            out.append(spec)
            continue
        params = {"protocol": "tcp"}
        for param in spec.split(","):
            key, sep, value = param.partition("=")
            if not sep or not key:
                raise ValueError(f"invalid publish opts format (should be name=value but got '{param}')")
            params[key] = value
        out.append(f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}")
    return out


def parse_port_specs(specs: list[str]) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """nat.ParsePortSpecs -> (ExposedPorts, PortBindings); keys sorted as Go marshals maps."""
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict]] = {}
    for spec in specs:
        for port, binding in parse_port_spec(spec):
            exposed.setdefault(port, {})
            bindings.setdefault(port, []).append(binding)
    return exposed, bindings


def add_exposed(exposed: dict[str, dict], specs: list[str]) -> None:
    """``--expose 80``, ``--expose 8000-8010/udp`` into ExposedPorts."""
    for spec in specs:
        if ":" in spec:
            raise ValueError(f"invalid port format for --expose: {spec}")
        proto, port = split_proto_port(spec)
        try:
            start, end = parse_port_range(port)
        except ValueError as e:
            raise ValueError(f"invalid range format for --expose: {spec}, error: {e}") from None
        for number in range(start, end + 1):
            exposed.setdefault(new_port(proto, str(number)), {})


def sort_port_keys(ports: dict) -> dict:
    """Go marshals map keys in byte order."""
    return {k: ports[k] for k in sorted(ports)}
