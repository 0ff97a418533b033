"""A container's /etc/hostname and /etc/hosts as Docker writes them (its resolv.conf is
``resolvconf``'s). Pure, but for reading the host's /etc/hosts, which a container on the
host's network gets."""

from __future__ import annotations

import os
from typing import Any


def hostname_for(container_id: str, config: dict[str, Any], host_config: dict[str, Any]) -> str:
    if host_config.get("NetworkMode") == "host" and not config.get("Hostname"):
        return os.uname().nodename
    return config.get("Hostname") or container_id[:12]


def hosts_file(hostname: str, domainname: str, addresses: list[str],
               extra_hosts: list[str] | None, host_gateway: str | None = None,
               host_network: bool = False, links: list[tuple[str, str]] | None = None) -> str:
    """/etc/hosts in dockerd's order: localhost lines, ``--add-host`` entries, legacy links
    (``links``: (address, "alias hostname name")), then the container's own addresses
    (IPv4 and IPv6) with its hostname."""
    if host_network:
        try:
            with open("/etc/hosts", encoding="utf-8") as handle:
                base = handle.read()
        except OSError:
            base = "127.0.0.1\tlocalhost\n"
        return base if base.endswith("\n") else base + "\n"
    lines = ["127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix",
             "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters"]
    for item in extra_hosts or []:
        name, _, address = item.replace("=", ":", 1).partition(":")
        if address == "host-gateway" and host_gateway:
            address = host_gateway
        lines.append(f"{address}\t{name}")
    for address, names_of_link in links or []:
        lines.append(f"{address}\t{names_of_link}")
    names = hostname if not domainname else f"{hostname}.{domainname} {hostname}"
    for address in addresses:
        lines.append(f"{address}\t{names}")
    return "\n".join(lines) + "\n"
