"""Validators of single flag values, as docker/cli's ``opts`` (env, labels, hosts, DNS,
sysctls, links, restart policies, CPUs, block-IO devices, filters)."""

from __future__ import annotations

import ipaddress
import os
import re
from fractions import Fraction
from typing import Callable, Mapping

from berth.units import ram_in_bytes

_WHITESPACE = " \t"


def validate_env(value: str, lookup: Callable[[str], str | None] = os.environ.get) -> str:
    """``KEY=value`` as is; a bare ``KEY`` takes the local value if there is one."""
    key, sep, _ = value.partition("=")
    if not key:
        raise ValueError(f"invalid environment variable: {value}")
    if sep:
        return value
    local = lookup(key)
    return f"{key}={local}" if local is not None else value


def validate_label(value: str) -> str:
    key = value.partition("=")[0].lstrip(_WHITESPACE)
    if not key:
        raise ValueError(f"invalid label '{value}': empty name")
    if any(c in key for c in _WHITESPACE):
        raise ValueError(f"label '{key}' contains whitespaces")
    return value


def parse_ip(text: str) -> str | None:
    """Go's net.ParseIP(...).String(), or None."""
    text = text.strip()
    if "%" in text:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def validate_ip(value: str) -> str:
    ip = parse_ip(value)
    if ip is None:
        raise ValueError(f"IP address is not correctly formatted: {value}")
    return ip


_DOMAIN = re.compile(
    r"^(:?(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9]))(:?\.(:?[a-zA-Z0-9]|(:?[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])))*)\.?\s*$"
)


def validate_dns_search(value: str) -> str:
    value = value.strip(" ")
    if value == ".":
        return value
    if not re.search(r"[a-zA-Z]", value):
        raise ValueError(f"{value} is not a valid domain")
    m = _DOMAIN.match(value)
    if m and len(m.group(1)) < 255:
        return m.group(1)
    raise ValueError(f"{value} is not a valid domain")


HOST_GATEWAY = "host-gateway"


def validate_extra_host(value: str) -> str:
    """``host:ip`` or ``host=ip`` (brackets allowed around IPv6) -> ``host:ip``."""
    key, sep, addr = value.partition("=")
    if not sep:
        key, sep, addr = value.partition(":")
    if not sep or not key or ":" in key:
        raise ValueError(f'bad format for add-host: "{value}"')
    if addr != HOST_GATEWAY:
        if len(addr) > 2 and addr[0] == "[" and addr[-1] == "]":
            addr = addr[1:-1]
        if parse_ip(addr) is None:
            raise ValueError(f'invalid IP address in add-host: "{addr}"')
    return f"{key}:{addr}"


_SYSCTLS = {
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}


def validate_sysctl(value: str) -> str:
    key, sep, _ = value.partition("=")
    if not sep or not key:
        raise ValueError(f"sysctl '{value}' is not allowed")
    if key in _SYSCTLS or key.startswith(("net.", "fs.mqueue.")):
        return value
    raise ValueError(f"sysctl '{value}' is not allowed")


def validate_link(value: str) -> str:
    if not value:
        raise ValueError("empty string specified for links")
    if len(value.split(":", 2)) > 2:
        raise ValueError("bad format for links: " + value)
    return value


def validate_attach(value: str) -> str:
    lower = value.lower()
    if lower in ("stdin", "stdout", "stderr"):
        return lower
    raise ValueError("valid streams are STDIN, STDOUT and STDERR")


_CGROUP_RULE = re.compile(r"^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$")


def validate_device_cgroup_rule(value: str) -> str:
    if _CGROUP_RULE.match(value):
        return value
    raise ValueError(f"invalid device cgroup format '{value}'")


def validate_mac(value: str) -> str:
    """Go's net.ParseMAC accepts 6/8/20-byte forms with ':' '-' or '.' separators."""
    text = value.strip()
    patterns = [
        r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$",
        r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){6}$",
        r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){18}$",
        r"^[0-9A-Fa-f]{4}(\.[0-9A-Fa-f]{4}){2}$",
        r"^[0-9A-Fa-f]{4}(\.[0-9A-Fa-f]{4}){3}$",
        r"^[0-9A-Fa-f]{4}(\.[0-9A-Fa-f]{4}){9}$",
    ]
    if any(re.match(p, text) for p in patterns):
        return value
    raise ValueError(f"address {text}: invalid MAC address")


def parse_restart_policy(policy: str) -> dict:
    if not policy:
        return {"Name": "", "MaximumRetryCount": 0}
    name, sep, count = policy.partition(":")
    if sep and not name:
        raise ValueError("invalid restart policy format: no policy provided before colon")
    retries = 0
    if count:
        try:
            retries = int(count, 10)
        except ValueError:
            raise ValueError("invalid restart policy format: maximum retry count must be an integer") from None
    return {"Name": name, "MaximumRetryCount": retries}


def parse_cpus(value: str) -> int:
    """``--cpus 1.5`` -> NanoCPUs (big.Rat semantics: exact, or "value is too precise")."""
    try:
        if not re.match(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?\d+/\d+$", value):
            raise ValueError
        rat = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"failed to parse {value} as a rational number") from None
    nano = rat * 1_000_000_000
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)


def _device_path(value: str) -> tuple[str, str]:
    path, sep, rest = value.partition(":")
    if not sep or not path:
        raise ValueError(f"bad format: {value}")
    if not path.startswith("/dev/"):
        raise ValueError(f"bad format for device path: {value}")
    return path, rest


def validate_weight_device(value: str) -> dict:
    path, rest = _device_path(value)
    try:
        weight = int(rest, 10)
        if weight < 0 or weight > 0xFFFF:
            raise ValueError
    except ValueError:
        raise ValueError(f"invalid weight for device: {value}") from None
    if weight > 0 and (weight < 10 or weight > 1000):
        raise ValueError(f"invalid weight for device: {value}")
    return {"Path": path, "Weight": weight}


def validate_throttle_bps(value: str) -> dict:
    path, rest = _device_path(value)
    bad = ValueError(
        f"invalid rate for device: {value}. The correct format is <device-path>:<number>[<unit>]. "
        "Number must be a positive integer. Unit is optional and can be kb, mb, or gb"
    )
    try:
        rate = ram_in_bytes(rest)
    except ValueError:
        raise bad from None
    return {"Path": path, "Rate": rate}


def validate_throttle_iops(value: str) -> dict:
    path, rest = _device_path(value)
    try:
        if not rest.isdigit():
            raise ValueError
        rate = int(rest)
    except ValueError:
        raise ValueError(
            f"invalid rate for device: {value}. The correct format is <device-path>:<number>. "
            "Number must be a positive integer"
        ) from None
    return {"Path": path, "Rate": rate}


def parse_filter(value: str) -> tuple[str, str] | None:
    """docker's FilterOpt.Set: ``name=value`` (name lower-cased, both trimmed); "" is
    ignored (None)."""
    if value == "":
        return None
    if "=" not in value:
        raise ValueError("bad format of filter (expected name=value)")
    name, _, val = value.partition("=")
    return name.strip().lower(), val.strip()


def filters_from(pairs: list, extra: Mapping[str, list[str]] | None = None) -> dict[str, dict[str, bool]]:
    """Parsed ``--filter`` values -> the API's ``{"name": {"value": true}}``."""
    out: dict[str, dict[str, bool]] = {}
    for pair in pairs:
        if pair is None:
            continue
        name, val = pair
        out.setdefault(name, {})[val] = True
    for name, values in (extra or {}).items():
        for val in values:
            out.setdefault(name, {})[val] = True
    return out


def kv_map(values: list[str]) -> dict[str, str]:
    """docker's ConvertKVStringsToMap: ``k=v`` (a bare ``k`` maps to "")."""
    out: dict[str, str] = {}
    for value in values:
        key, _, val = value.partition("=")
        out[key] = val
    return out
