"""Host devices for ``--device`` and ``--privileged``, and device-cgroup rules.

Mirrors moby's oci/devices_linux.go: a path that is a device node becomes one device, a
directory becomes every device below it; each gets an allow rule with its permissions.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from berth.errors import InvalidParameter

# Docker's default device-cgroup rules (moby oci/defaults.go): deny all, then allow the
# standard nodes; runc adds /dev/pts, ptmx and tun itself.
DEFAULT_DEVICE_RULES: list[dict[str, Any]] = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},   # zero
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},   # null
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},   # urandom
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},   # random
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},   # tty
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},   # console
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},  # fuse
]

_SKIP_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def device_from_path(path: str, path_in_container: str) -> dict[str, Any] | None:
    """The OCI device for a device node, None if ``path`` is not one."""
    st = os.stat(path)
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return {"path": path_in_container, "type": kind, "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}


def _rule(dev: dict[str, Any], access: str) -> dict[str, Any]:
    return {"allow": True, "type": dev["type"], "major": dev["major"], "minor": dev["minor"],
            "access": access}


def devices_for_mapping(on_host: str, in_container: str, permissions: str = "rwm"
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Devices and cgroup rules for one ``HostConfig.Devices`` entry."""
    in_container = in_container or on_host
    permissions = permissions or "rwm"
    if not permissions or any(c not in "rwm" for c in permissions):
        raise InvalidParameter(f"invalid device mode: {permissions}")
    try:
        dev = device_from_path(on_host, in_container)
    except OSError as e:
        raise InvalidParameter(f'error gathering device information while adding custom device '
                               f'"{on_host}": {e.strerror.lower() if e.strerror else e}') from e
    if dev is not None:
        return [dev], [_rule(dev, permissions)]
    if not os.path.isdir(on_host):
        raise InvalidParameter(f'error gathering device information while adding custom device '
                               f'"{on_host}": not a device node')
    devs, rules = [], []
    for dirpath, _dirs, files in os.walk(on_host):
        for name in sorted(files):
            host_path = os.path.join(dirpath, name)
            try:
                d = device_from_path(host_path, in_container + host_path[len(on_host):])
            except OSError:
                continue
            if d is not None:
                devs.append(d)
                rules.append(_rule(d, permissions))
    return devs, rules


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every device node under /dev, for ``--privileged``."""
    devs = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            if path == "/dev/console":
                continue
            try:
                d = device_from_path(path, path)
            except OSError:
                continue
            if d is not None:
                devs.append(d)
    return devs


def parse_cgroup_rule(rule: str) -> dict[str, Any]:
    """``c 1:3 rwm`` / ``b *:* m`` (HostConfig.DeviceCgroupRules) to an OCI rule."""
    parts = rule.split()
    if len(parts) != 3 or parts[0] not in ("a", "b", "c") or ":" not in parts[1] \
            or any(c not in "rwm" for c in parts[2]):
        raise InvalidParameter(f"invalid device cgroup rule format: '{rule}'")
    major, _, minor = parts[1].partition(":")
    out: dict[str, Any] = {"allow": True, "type": parts[0], "access": parts[2]}
    for key, value in (("major", major), ("minor", minor)):
        if value != "*":
            if not value.isdigit():
                raise InvalidParameter(f"invalid device cgroup rule format: '{rule}'")
            out[key] = int(value)
    return out
