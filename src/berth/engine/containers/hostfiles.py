"""The files Docker writes for each container: /etc/hostname, /etc/hosts, /etc/resolv.conf."""

from __future__ import annotations

import os
import re
from typing import Any

from berth.network import resolvconf
from berth.storage import fsutil


def write_atomic(path: str, text: str) -> None:
    """Replace the file so a running container's readers see the old or the new one. The
    first write (a first start: no container reads it yet) creates it in place, a rename less."""
    data = text.encode()
    try:
        fsutil.write_new_files(os.path.dirname(path), {os.path.basename(path): data}, durable=False)
    except FileExistsError:
        fsutil.atomic_write(path, data, durable=False)


def hostname_for(container_id: str, config: dict[str, Any], host_config: dict[str, Any]) -> str:
    if host_config.get("NetworkMode") == "host" and not config.get("Hostname"):
        return os.uname().nodename
    return config.get("Hostname") or container_id[:12]


def hosts_file(hostname: str, domainname: str, addresses: list[str],
               extra_hosts: list[str] | None, host_gateway: str | None = None,
               host_network: bool = False) -> str:
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
    names = hostname if not domainname else f"{hostname}.{domainname} {hostname}"
    for address in addresses:
        lines.append(f"{address}\t{names}")
    return "\n".join(lines) + "\n"


# The host's resolv.conf (systemd-resolved's stub swapped for its upstream file).
host_resolv_conf = resolvconf.read_host


def resolv_conf(host_text: str, dns: list[str] | None, search: list[str] | None,
                options: list[str] | None, host_network: bool = False) -> str:
    """Docker's rules: explicit --dns/--dns-search/--dns-option replace the host's; localhost
    nameservers are dropped (unreachable from the container's own loopback) unless the
    container shares the host's network."""
    nameservers, searches, opts, other = [], [], [], []
    for line in host_text.splitlines():
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        if words[0] == "nameserver" and len(words) > 1:
            nameservers.append(words[1])
        elif words[0] in ("search", "domain"):
            searches = words[1:]
        elif words[0] == "options":
            opts.extend(words[1:])
        else:
            other.append(line)
    if not host_network:
        nameservers = [ns for ns in nameservers if not _is_localhost(ns)]
        if not nameservers and not dns:
            nameservers = ["8.8.8.8", "8.8.4.4"]  # Docker's fallback; never contacted by tests
    if dns:
        nameservers = list(dns)
    if search:
        searches = [] if search == ["."] else list(search)
    if options:
        opts = list(options)
    out = [f"nameserver {ns}" for ns in nameservers]
    if searches:
        out.append("search " + " ".join(searches))
    if opts:
        out.append("options " + " ".join(opts))
    return "\n".join(out) + "\n"


def _is_localhost(address: str) -> bool:
    return bool(re.match(r"^(127\.|::1$)", address))
