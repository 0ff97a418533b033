"""Facts about the host and the daemon for ``/version`` and ``/info``."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from functools import lru_cache

from berth import API_VERSION, MIN_API_VERSION, __version__

GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def go_arch() -> str:
    machine = platform.machine()
    return GO_ARCH.get(machine, machine)


def kernel_version() -> str:
    return platform.release()


@lru_cache(maxsize=1)
def operating_system() -> tuple[str, str]:
    """(PRETTY_NAME, VERSION_ID) from os-release, like dockerd."""
    fields: dict[str, str] = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    key, eq, value = line.strip().partition("=")
                    if eq:
                        fields[key] = value.strip('"')
            break
        except OSError:
            continue
    return fields.get("PRETTY_NAME", "Linux"), fields.get("VERSION_ID", "")


def mem_total() -> int:
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


@lru_cache(maxsize=1)
def cgroup_version() -> str:
    """"2" on a unified host, "1" on legacy or hybrid ones like this one (read once: each
    create asks, and reading the mount table takes 0.2 ms)."""
    try:
        return "2" if os.statvfs("/sys/fs/cgroup") and _fs_type("/sys/fs/cgroup") == "cgroup2" else "1"
    except OSError:
        return "1"


def _fs_type(path: str) -> str:
    best, best_type = "", ""
    with open("/proc/self/mounts", encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 3 and path.startswith(parts[1]) and len(parts[1]) >= len(best):
                best, best_type = parts[1], parts[2]
    return best_type


@lru_cache(maxsize=8)
def binary_version(binary: str) -> tuple[str, str]:
    """(version, commit) of an external tool such as runc, or ("", "") if it is missing."""
    path = shutil.which(binary)
    if not path:
        return "", ""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "", ""
    version, commit = "", ""
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] == "version":
            version = words[2]
        elif line.startswith("commit:"):
            commit = line.split(":", 1)[1].strip()
    return version, commit


def version_info() -> dict:
    runc_version, runc_commit = binary_version("runc")
    components = [{
        "Name": "Engine", "Version": __version__,
        "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                    "Arch": go_arch(), "Os": "linux", "KernelVersion": kernel_version(),
                    "Experimental": "false", "GitCommit": "berth", "GoVersion": "python" + platform.python_version(),
                    "BuildTime": ""},
    }]
    if runc_version:
        components.append({"Name": "runc", "Version": runc_version,
                           "Details": {"GitCommit": runc_commit}})
    return {
        "Platform": {"Name": f"Berth Engine {__version__}"},
        "Components": components,
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "berth",
        "GoVersion": "python" + platform.python_version(),
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel_version(),
        "BuildTime": "",
    }
