"""Docker's seccomp profile format to the OCI ``linux.seccomp`` object.

Docker profiles carry ``archMap`` and per-rule ``includes``/``excludes`` filters (arches,
capabilities, minimum kernel); the OCI form has neither. The filters are resolved for this
machine and for the container's bounding capabilities, like moby's profiles/seccomp.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import platform
from collections.abc import Collection
from importlib import resources
from typing import Any

from berth.errors import InvalidParameter

# machine() -> the arch name Docker's profiles use ("arches" filters).
_NATIVE_ARCH = {
    "x86_64": "amd64", "amd64": "amd64", "i386": "x86", "i686": "x86", "aarch64": "arm64",
    "arm64": "arm64", "armv7l": "arm", "armv6l": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64",
    "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64", "loongarch64": "loong64",
}
# Docker arch name -> libseccomp/OCI arch constant (for archMap lookup).
_SCMP_ARCH = {
    "x86": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64", "loong64": "SCMP_ARCH_LOONGARCH64",
    "mips64": "SCMP_ARCH_MIPS64", "mips64n32": "SCMP_ARCH_MIPS64N32",
    "mipsel64": "SCMP_ARCH_MIPSEL64", "mipsle": "SCMP_ARCH_MIPSEL", "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE", "riscv64": "SCMP_ARCH_RISCV64",
    "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
}
# Keys of a Docker profile that are not part of the OCI object.
_DOCKER_ONLY = {"archMap", "syscalls"}
_RULE_DOCKER_ONLY = {"name", "comment", "includes", "excludes"}
# x32 syscalls are x86_64 ones with this bit set in the number.
_X32_SYSCALL_BIT = 0x40000000
_GETPID_X86_64 = 39


def native_arch() -> str:
    return _NATIVE_ARCH.get(platform.machine(), platform.machine())


def kernel_version() -> tuple[int, int]:
    release = os.uname().release
    head = release.split("-", 1)[0].split(".")
    try:
        return int(head[0]), int(head[1]) if len(head) > 1 else 0
    except ValueError as e:
        raise ValueError(f"failed to parse kernel version {release!r}") from e


@functools.cache
def unavailable_subarches() -> frozenset[str]:
    """Sub-architectures of a profile's archMap that this kernel cannot run at all.

    Only x32 is probed: most kernels are built without it (CONFIG_X86_X32_ABI), and keeping it
    in the filter costs ~10 ms of runc's start, for syscalls the kernel would refuse with ENOSYS
    anyway. Without it in the filter such a syscall kills the process instead (SIGSYS).
    """
    if native_arch() != "amd64" or _x32_syscalls_work():
        return frozenset()
    return frozenset({"SCMP_ARCH_X32"})


def _x32_syscalls_work() -> bool:
    # Probed in a child: a seccomp filter around the daemon itself might kill on x32 syscalls.
    # The library is loaded before the fork, so the child takes no loader locks.
    syscall = ctypes.CDLL(None, use_errno=True).syscall
    pid = os.fork()
    if pid == 0:
        failed = syscall(_X32_SYSCALL_BIT | _GETPID_X86_64) < 0
        os._exit(1 if failed and ctypes.get_errno() == errno.ENOSYS else 0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _parse_min_kernel(value: str) -> tuple[int, int]:
    parts = value.split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or parts == ["0", "0"]:
        raise InvalidParameter(f'invalid kernel version: "{value}", expected "<kernel>.<major>"')
    return int(parts[0]), int(parts[1])


def default_profile() -> dict[str, Any]:
    """Docker's default profile as shipped in ``berth/data/seccomp-default.json``."""
    text = resources.files("berth").joinpath("data/seccomp-default.json").read_text()
    return json.loads(text)


def _rule_applies(rule: dict[str, Any], arch: str, caps: set[str], kernel: tuple[int, int]) -> bool:
    excludes = rule.get("excludes") or {}
    if arch in (excludes.get("arches") or []):
        return False
    if any(c in caps for c in excludes.get("caps") or []):
        return False
    if excludes.get("minKernel") and kernel >= _parse_min_kernel(excludes["minKernel"]):
        return False
    includes = rule.get("includes") or {}
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if any(c not in caps for c in includes.get("caps") or []):
        return False
    if includes.get("minKernel") and kernel < _parse_min_kernel(includes["minKernel"]):
        return False
    return True


def convert_profile(profile: dict[str, Any], capabilities: list[str], arch: str | None = None,
                    kernel: tuple[int, int] | None = None,
                    unavailable: Collection[str] | None = None) -> dict[str, Any] | None:
    """The OCI ``linux.seccomp`` object for ``profile`` (Docker's format), or None when the
    profile disables seccomp (no default action and no rules).

    ``unavailable`` names archMap sub-architectures to leave out; by default, on this machine,
    those its kernel cannot run (``unavailable_subarches``).
    """
    if unavailable is None:
        unavailable = unavailable_subarches() if arch is None else ()
    arch = arch or native_arch()
    kernel = kernel or kernel_version()
    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return None
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidParameter("both 'architectures' and 'archMap' are specified in the seccomp "
                               "profile, use either 'architectures' or 'archMap'")
    out = {k: v for k, v in profile.items() if k not in _DOCKER_ONLY}
    scmp = _SCMP_ARCH.get(arch)
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == scmp:
            subs = [a for a in entry.get("subArchitectures") or [] if a not in unavailable]
            out["architectures"] = [scmp] + subs
            break
    caps = set(capabilities)
    syscalls = []
    for rule in profile.get("syscalls") or []:
        if rule.get("name") and rule.get("names"):
            raise InvalidParameter("both 'name' and 'names' are specified in the seccomp profile, "
                                   "use either 'name' or 'names'")
        if not _rule_applies(rule, arch, caps, kernel):
            continue
        oci = {k: v for k, v in rule.items() if k not in _RULE_DOCKER_ONLY}
        if rule.get("name"):
            oci["names"] = [rule["name"]]
        syscalls.append(oci)
    out["syscalls"] = syscalls
    return out


def load_profile(text: str) -> dict[str, Any]:
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise InvalidParameter(f"Decoding seccomp profile failed: {e}") from e
    if not isinstance(profile, dict):
        raise InvalidParameter("Decoding seccomp profile failed: not a JSON object")
    return profile


def daemon_profile(setting: str | None) -> str | None:
    """The daemon-wide default (dockerd's ``--seccomp-profile``), read once at start-up:
    None for Docker's built-in profile (unset or ``builtin``), ``unconfined``, or the
    JSON text of the file named. Raises OSError if the file cannot be read and
    InvalidParameter if it is not a profile."""
    if not setting or setting == "builtin":
        return None
    if setting == "unconfined":
        return setting
    with open(setting, encoding="utf-8") as handle:
        text = handle.read()
    load_profile(text)
    return text


def seccomp_for(setting: str | None, capabilities: list[str], privileged: bool,
                daemon_default: str | None = None) -> dict[str, Any] | None:
    """The ``linux.seccomp`` value for a container.

    ``setting`` is what follows ``seccomp=`` in SecurityOpt: None/"" (the daemon's default,
    ``daemon_default`` as ``daemon_profile`` returns it), ``unconfined``, ``builtin`` (the
    default profile) or the profile JSON itself (the docker CLI sends the file's content).
    Privileged containers run unconfined unless a profile is given explicitly, as in Docker.
    """
    if not setting:
        if privileged:
            return None
        setting = daemon_default
    if setting == "unconfined":
        return None
    if not setting or setting == "builtin":
        if privileged:
            return None
        return _copy(_builtin_for(tuple(sorted(capabilities))))
    return convert_profile(load_profile(setting), capabilities)


@functools.lru_cache(maxsize=64)
def _builtin_for(capabilities: tuple[str, ...]) -> dict[str, Any] | None:
    """Docker's profile converted for these capabilities on this host, once per set (reading
    and converting it took ~0.3 ms of every container start)."""
    return convert_profile(default_profile(), list(capabilities))


def _copy(converted: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of a cached conversion that its caller may change at the top two levels."""
    if converted is None:
        return None
    return {**converted, "syscalls": [dict(rule) for rule in converted["syscalls"]]}
