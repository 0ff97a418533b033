"""Network sysctls (/proc/sys/net/...), read and written in the calling thread's netns.

/proc/sys/net resolves to the network namespace of the thread that opens the file, so inside
``netns.run_in`` these touch that namespace, not the host's.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path("/proc/sys")


def _path(key: str) -> Path:
    """"net.ipv4.conf.br-x.route_localnet" -> /proc/sys/net/ipv4/conf/br-x/route_localnet."""
    parts = key.split(".")
    if len(parts) >= 4 and parts[:3] in (["net", "ipv4", "conf"], ["net", "ipv6", "conf"]):
        # interface names may not contain '/', but the 4th part runs up to the last component
        parts = parts[:3] + [".".join(parts[3:-1]), parts[-1]]
    return ROOT.joinpath(*parts)


def read(key: str) -> str:
    return _path(key).read_text().strip()


def write(key: str, value: str | int) -> None:
    """Write only when different (writes to some keys reset state even if unchanged)."""
    path = _path(key)
    if path.read_text().strip() != str(value):
        path.write_text(f"{value}\n")


def enable_ip_forward() -> None:
    """``--ip-forward`` (default true): routing between bridges and the outside."""
    write("net.ipv4.ip_forward", 1)


def ip_forward_enabled() -> bool:
    return read("net.ipv4.ip_forward") == "1"


def enable_ipv6_forward() -> None:
    """``--ip-forward`` for IPv6 networks (dockerd sets it when it makes one): routing
    between their bridges and the outside."""
    for scope in ("default", "all"):
        write(f"net.ipv6.conf.{scope}.forwarding", 1)
