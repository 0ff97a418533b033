"""A container's NetworkSettings in Docker's shape, and the checks of its endpoint configs. Pure."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable, Mapping

from berth.errors import InvalidParameter

MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")

ERR_IP_PREDEFINED = "user specified IP address is supported on user defined networks only"
ERR_IP_NO_SUBNET = ("user specified IP address is supported only when connecting to networks "
                    "with user configured subnets")
ERR_ALIAS_PREDEFINED = "network-scoped alias is supported only for containers in user defined networks"
ERR_SHARED_NS = ("container sharing network namespace with another container or host cannot be "
                 "connected to any other network")
ERR_PRIVATE_NS = ("container cannot be connected to multiple networks with one of the networks in "
                  "private (none) mode")


def empty_settings() -> dict[str, Any]:
    """NetworkSettings of a container that has no sandbox (created or stopped)."""
    return {"Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": False,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": {},
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "MacAddress": "", "Networks": {}}


LEGACY_FIELDS = ("EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPAddress",
                 "IPPrefixLen", "IPv6Gateway", "MacAddress")


def endpoint_settings(config: Mapping[str, Any] | None, network_id: str = "") -> dict[str, Any]:
    """An EndpointSettings entry from a request's EndpointConfig (operational fields empty)."""
    config = dict(config or {})
    ipam = config.get("IPAMConfig") or None
    if ipam is not None:
        ipam = {k: v for k, v in dict(ipam).items() if v not in (None, "", [])} or None
    aliases = [a for a in (config.get("Aliases") or []) if a] or None
    links = list(config.get("Links") or []) or None
    return {"IPAMConfig": ipam, "Links": links, "Aliases": aliases,
            "MacAddress": config.get("MacAddress") or "",
            "DriverOpts": config.get("DriverOpts") or None,
            "NetworkID": network_id or config.get("NetworkID") or "",
            "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": config.get("DNSNames") or None}


def clean_operational(es: dict[str, Any], desired_mac: str = "") -> None:
    """What a stop clears in an endpoint's settings (moby's cleanOperationalData)."""
    es.update(EndpointID="", Gateway="", IPAddress="", IPPrefixLen=0, IPv6Gateway="",
              GlobalIPv6Address="", GlobalIPv6PrefixLen=0, MacAddress=desired_mac)


def requested_ipv4(es: Mapping[str, Any]) -> str | None:
    return ((es.get("IPAMConfig") or {}).get("IPv4Address") or None)


def requested_ipv6(es: Mapping[str, Any]) -> str | None:
    return ((es.get("IPAMConfig") or {}).get("IPv6Address") or None)


def validate_endpoint(es: Mapping[str, Any], *, user_defined: bool, user_subnet: bool,
                      subnet: str | None, user_subnet6: bool = False,
                      subnet6: str | None = None) -> None:
    """moby's validateEndpointSettings (API 1.47 texts) for one network of a container;
    ``subnet6``/``user_subnet6``: the network's IPv6 pool (None: no IPv6 on it)."""
    errors: list[str] = []
    ipam = es.get("IPAMConfig") or {}
    ipv4 = ipam.get("IPv4Address") or ""
    ipv6 = ipam.get("IPv6Address") or ""
    if not user_defined:
        if ipv4 or ipv6:
            errors.append(ERR_IP_PREDEFINED)
        if es.get("Aliases"):
            errors.append(ERR_ALIAS_PREDEFINED)
    if ipv4:
        try:
            addr = ipaddress.IPv4Address(ipv4)
            if addr.is_unspecified:
                raise ValueError
        except ValueError:
            errors.append(f"invalid IPv4 address: {ipv4}")
        else:
            if user_defined and not user_subnet:
                errors.append(ERR_IP_NO_SUBNET)
            elif user_defined and subnet and addr not in ipaddress.IPv4Network(subnet):
                errors.append(f"no configured subnet contains IP address {ipv4}")
    if ipv6:
        try:
            addr6 = ipaddress.IPv6Address(ipv6)
            if addr6.is_unspecified or addr6.ipv4_mapped:
                raise ValueError
        except ValueError:
            errors.append(f"invalid IPv6 address: {ipv6}")
        else:
            if user_defined and not user_subnet6:
                errors.append(ERR_IP_NO_SUBNET)
            elif user_defined and subnet6 and addr6 not in ipaddress.IPv6Network(subnet6):
                errors.append(f"no configured subnet contains IP address {ipv6}")
    mac = es.get("MacAddress") or ""
    if mac and not MAC_RE.match(mac):
        errors.append(f"address {mac}: invalid MAC address")
    if errors:
        if len(errors) == 1:
            raise InvalidParameter("invalid endpoint settings:\n" + errors[0])
        raise InvalidParameter("invalid endpoint settings:\n* " + "\n* ".join(errors))


def parse_link(value: str) -> tuple[str, str]:
    """moby's opts.ParseLink: ``name:alias``, ``name`` (the alias is the name), or the form
    inspect shows, ``/name:/parent/alias``; (name, alias)."""
    if not value:
        raise InvalidParameter("empty string specified for links")
    parts = value.split(":")
    if len(parts) > 2:
        raise InvalidParameter(f"bad format for links: {value}")
    if len(parts) == 1:
        return value, value
    name, alias = parts
    if name.startswith("/"):
        return name[1:], alias.rpartition("/")[2]
    return name, alias


def link_env(name: str, child_ip: str, child_env: Iterable[str], exposed: Iterable[str]) -> list[str]:
    """moby's links.Link.ToEnv (Docker 28) for the link ``name`` (``/web/db``): ``DB_PORT``,
    per port ``DB_PORT_5432_TCP`` (and ``_ADDR``, ``_PORT``, ``_PROTO``), ``_START``/``_END``
    for runs of consecutive ports, ``DB_NAME``, and the child's Env as ``DB_ENV_*`` (without
    HOME and PATH)."""
    alias = name.rpartition("/")[2].upper().replace("-", "_")
    ports: list[tuple[int, str]] = []
    for key in exposed:
        port, _, proto = key.partition("/")
        proto = (proto or "tcp").lower()
        if port.isdigit():
            ports.append((int(port), proto))
    ports.sort(key=lambda p: (p[1] != "tcp", p[1], p[0]))   # tcp first, then by protocol
    env: list[str] = []
    start = end = (0, "")
    for i, (num, proto) in enumerate(ports):
        if i == 0:
            start = end = (num, proto)
            env.append(f"{alias}_PORT={proto}://{child_ip}:{num}")
        prefix = f"{alias}_PORT_{num}_{proto.upper()}"
        env += [f"{prefix}={proto}://{child_ip}:{num}", f"{prefix}_ADDR={child_ip}",
                f"{prefix}_PORT={num}", f"{prefix}_PROTO={proto}"]
        if num == end[0] + 1 and proto == end[1]:
            end = (num, proto)
            if i < len(ports) - 1:
                continue
        if end != start:
            prefix = f"{alias}_PORT_{start[0]}_{start[1].upper()}"
            env += [f"{prefix}_START={start[1]}://{child_ip}:{start[0]}",
                    f"{prefix}_PORT_START={start[0]}",
                    f"{prefix}_END={end[1]}://{child_ip}:{end[0]}",
                    f"{prefix}_PORT_END={end[0]}"]
        start = end = (num, proto)
    env.append(f"{alias}_NAME={name}")
    for item in child_env:
        key, sep, value = item.partition("=")
        if not sep or key in ("HOME", "PATH"):
            continue
        env.append(f"{alias}_ENV_{key}={value}")
    return env


def normalise_mac(mac: str) -> str:
    return mac.replace("-", ":").lower()


def dns_names(name: str, aliases: Iterable[str] | None, container_id: str, hostname: str) -> list[str]:
    """moby's buildEndpointDNSNames: name, aliases, short ID, hostname; deduplicated."""
    names: list[str] = []
    for item in [name, *(aliases or []), container_id[:12], hostname]:
        if item and item not in names:
            names.append(item)
    return names


def check_container_mode(config: Mapping[str, Any], host_config: Mapping[str, Any]) -> str:
    """moby's validateNetContainerMode; returns the target reference of ``container:<ref>``."""
    mode = host_config.get("NetworkMode") or ""
    if mode != "container" and not mode.startswith("container:"):
        return ""
    target = mode.partition(":")[2]
    if not target:
        raise InvalidParameter("invalid network mode: invalid container format container:<name|id>")
    if config.get("Hostname"):
        raise InvalidParameter("conflicting options: hostname and the network mode")
    if host_config.get("Links"):
        raise InvalidParameter("conflicting options: container type network can't be used with links. "
                               "This would result in undefined behavior")
    if host_config.get("Dns"):
        raise InvalidParameter("conflicting options: dns and the network mode")
    if host_config.get("ExtraHosts"):
        raise InvalidParameter("conflicting options: custom host-to-IP mapping and the network mode")
    if host_config.get("PortBindings") or host_config.get("PublishAllPorts"):
        raise InvalidParameter("conflicting options: port publishing and the container type network mode")
    if config.get("ExposedPorts"):
        raise InvalidParameter("conflicting options: port exposing and the container type network mode")
    return target


def port_bindings_with_default_ip(bindings: Mapping[str, Any] | None, default_ip: str) -> dict[str, Any]:
    """PortBindings with an empty HostIp replaced by the network's default binding address."""
    out: dict[str, Any] = {}
    for key, entries in (bindings or {}).items():
        fixed = []
        for entry in entries or [{}]:
            entry = dict(entry or {})
            if not (entry.get("HostIp") or "").strip():
                entry["HostIp"] = default_ip
            fixed.append(entry)
        out[key] = fixed
    return out
