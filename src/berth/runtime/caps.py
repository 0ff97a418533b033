"""Linux capabilities: names, Docker's default set, CapAdd/CapDrop/--privileged arithmetic.

``--privileged`` means every capability this host lets us hand out, i.e. the bounding set
of the daemon (``CapBnd`` in /proc/self/status), not a fixed "all": on this host
CAP_SYS_RESOURCE is missing from the bounding set and runc would refuse to grant it.
"""

from __future__ import annotations

from berth.errors import InvalidParameter

# Index = capability number (linux/capability.h).
CAPABILITY_NAMES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
_INDEX = {name: i for i, name in enumerate(CAPABILITY_NAMES)}

# Docker's default set (moby oci/caps/defaults.go); its mask is 0xa80425fb.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)


def caps_from_mask(mask: int) -> list[str]:
    """Names of the known capabilities set in ``mask`` (unknown high bits are dropped)."""
    return [name for i, name in enumerate(CAPABILITY_NAMES) if mask >> i & 1]


def mask_from_caps(caps: list[str] | tuple[str, ...]) -> int:
    mask = 0
    for name in caps:
        mask |= 1 << _INDEX[name]
    return mask


def read_bounding_mask(status_path: str = "/proc/self/status") -> int:
    with open(status_path, encoding="ascii") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    raise OSError(f"no CapBnd line in {status_path}")


_host_caps: list[str] | None = None


def host_capabilities() -> list[str]:
    """Capabilities the daemon may grant (its bounding set), read once."""
    global _host_caps
    if _host_caps is None:
        _host_caps = caps_from_mask(read_bounding_mask())
    return list(_host_caps)


def normalize(caps: list[str] | None, available: list[str]) -> list[str]:
    """Upper-case, add the ``CAP_`` prefix, keep ``ALL``; Docker's errors for unknown names."""
    out: list[str] = []
    for raw in caps or []:
        name = raw.upper()
        if name == "ALL":
            out.append(name)
            continue
        if not name.startswith("CAP_"):
            name = "CAP_" + name
        if name not in _INDEX:
            raise InvalidParameter(f'unknown capability: "{name}"')
        if name not in available:
            raise InvalidParameter(
                "capability not supported by your kernel or not available in the current "
                f'environment: "{name}"')
        out.append(name)
    return out


def effective_capabilities(cap_add: list[str] | None, cap_drop: list[str] | None,
                           privileged: bool, available: list[str] | None = None) -> list[str]:
    """The container's capability list, as moby's TweakCapabilities computes it."""
    available = host_capabilities() if available is None else available
    if privileged:
        return list(available)
    if not cap_add and not cap_drop:
        return list(DEFAULT_CAPABILITIES)
    drops = normalize(cap_drop, available)
    adds = normalize(cap_add, available)
    if "ALL" in adds:
        return [c for c in available if c not in drops]
    if "ALL" in drops:
        return [c for c in adds if c != "ALL"]
    caps = [c for c in DEFAULT_CAPABILITIES if c not in drops]
    for c in adds:
        if c not in caps:
            caps.append(c)
    return caps
