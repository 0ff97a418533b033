"""``HostConfig.Ulimits`` to OCI ``process.rlimits``, within what this host allows.

runc sets rlimits from the shim's (= daemon's) context. Raising a hard limit needs
CAP_SYS_RESOURCE, which this host's bounding set lacks, so a limit above the current hard
limit would make runc fail with a bare EPERM. Defaults are clamped silently; an explicit
ulimit beyond the allowed hard limit is refused with a clear message instead.
"""

from __future__ import annotations

import resource
from typing import Any

from berth.errors import InvalidParameter
from berth.runtime.caps import host_capabilities

# Docker's ulimit names (go-units) -> Linux resource numbers (not all are in ``resource``).
RLIMITS: dict[str, int] = {
    "cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6,
    "nofile": 7, "memlock": 8, "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12,
    "nice": 13, "rtprio": 14, "rttime": 15,
}
UNLIMITED = 2**64 - 1  # RLIM_INFINITY as runc reads it (uint64)

# What `docker run` typically shows (dockerd's systemd unit: LimitNOFILE=1048576);
# clamped to this host's hard limit.
DEFAULT_ULIMITS: list[dict[str, Any]] = [{"Name": "nofile", "Soft": 1048576, "Hard": 1048576}]


def _u64(value: int) -> int:
    return UNLIMITED if value < 0 or value == resource.RLIM_INFINITY else value


def host_hard_limit(name: str) -> int:
    return _u64(resource.getrlimit(RLIMITS[name])[1])


def _may_raise_hard() -> bool:
    return "CAP_SYS_RESOURCE" in host_capabilities()


def build_rlimits(ulimits: list[dict[str, Any]] | None,
                  defaults: list[dict[str, Any]] | None = None,
                  hard_limit=host_hard_limit, may_raise: bool | None = None) -> list[dict[str, Any]]:
    """OCI rlimits: explicit ``ulimits`` (Docker's {Name, Soft, Hard}) merged over ``defaults``."""
    may_raise = _may_raise_hard() if may_raise is None else may_raise
    defaults = DEFAULT_ULIMITS if defaults is None else defaults
    explicit = {u["Name"]: u for u in ulimits or []}
    out: list[dict[str, Any]] = []
    for source, items in (("explicit", list(explicit.values())),
                          ("default", [d for d in defaults if d["Name"] not in explicit])):
        for item in items:
            name = item["Name"]
            if name not in RLIMITS:
                raise InvalidParameter(f"invalid ulimit type: {name}")
            soft, hard = _u64(int(item.get("Soft", 0))), _u64(int(item.get("Hard", 0)))
            if soft > hard:
                raise InvalidParameter(
                    f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
            allowed = UNLIMITED if may_raise else hard_limit(name)
            if hard > allowed:
                if source == "explicit":
                    shown = "unlimited" if allowed == UNLIMITED else str(allowed)
                    raise InvalidParameter(
                        f"ulimit {name}={soft}:{hard} exceeds the hard limit this host allows "
                        f"({shown}): raising it needs CAP_SYS_RESOURCE, which the daemon lacks")
                hard = allowed
                soft = min(soft, hard)
            out.append({"type": "RLIMIT_" + name.upper(), "hard": hard, "soft": soft})
    return out
