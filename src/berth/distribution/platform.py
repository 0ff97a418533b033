"""Platforms (``os/arch[/variant]``): parsing and normalising as containerd's ``platforms``
package does, the host's own platform, and the choice of one manifest from an index.

The default platform of a pull is the host's (``linux/amd64`` here). An index entry
matches when its OS and architecture are the wanted ones and its variant is compatible:
the same after normalisation, or, for ``arm``, an older one (a v7 host runs v6 and v5);
``amd64``'s microarchitecture levels (v2..v4) count as plain ``amd64``. The exact variant
wins over a compatible one; among equals, the first entry wins, as with Docker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable

from berth.errors import InvalidParameter, NotFound

_KNOWN_OS = {"aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js",
             "linux", "nacl", "netbsd", "openbsd", "plan9", "solaris", "windows", "zos", "wasip1"}
_KNOWN_ARCH = {"386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "ppc64", "ppc64le",
               "loong64", "mips", "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc",
               "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64", "wasm"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def to_json(self) -> dict[str, Any]:
        """The OCI platform object (omitting empty fields, as Go's omitempty)."""
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        return out


def _normalize_os(name: str) -> str:
    name = name.lower()
    return "darwin" if name == "macos" else name


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    if arch in ("i386",):
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant in ("", "v1") else variant
    if arch in ("aarch64", "arm64"):
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        return "arm64", variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
        return "arm", variant
    return arch, variant


def normalize(platform: Platform) -> Platform:
    arch, variant = _normalize_arch(platform.architecture, platform.variant)
    return Platform(_normalize_os(platform.os), arch, variant, platform.os_version,
                    platform.os_features)


def host() -> Platform:
    """The platform this daemon runs (``linux`` and the machine's Go architecture)."""
    machine = os.uname().machine
    if machine.startswith("armv") and machine[4:5].isdigit():
        return normalize(Platform("linux", "arm", "v" + machine[4]))
    return normalize(Platform("linux", machine))


def parse(specifier: str) -> Platform:
    """``os``, ``arch``, ``os/arch`` or ``os/arch/variant`` (containerd's ``platforms.Parse``);
    a missing OS is the host's, a missing architecture too."""
    def invalid(why: str) -> InvalidParameter:
        return InvalidParameter(f"{specifier!r}: {why}: invalid argument".replace("'", '"'))

    if "*" in specifier:
        raise invalid("wildcards not yet supported")
    parts = specifier.split("/")
    for part in parts:
        if not part or not all(c.isalnum() or c in "_-." for c in part):
            raise invalid("invalid platform specifier")
    here = host()
    if len(parts) == 1:
        name = parts[0].lower()
        if _normalize_os(name) in _KNOWN_OS:
            os_name = _normalize_os(name)
            arch, variant = (here.architecture, here.variant) if os_name == here.os else ("", "")
            return normalize(Platform(os_name, arch or here.architecture, variant))
        arch, variant = _normalize_arch(name, "")
        if arch in _KNOWN_ARCH:
            return Platform(here.os, arch, variant)
        raise invalid("unknown operating system or architecture")
    if len(parts) == 2:
        return normalize(Platform(parts[0], parts[1]))
    if len(parts) == 3:
        return normalize(Platform(parts[0], parts[1], parts[2]))
    raise invalid("cannot parse platform")


def from_json(value: Any) -> Platform | None:
    """An OCI platform object (index entries, image configs); None if it names nothing."""
    if not isinstance(value, dict):
        return None
    os_name = str(value.get("os") or "")
    arch = str(value.get("architecture") or "")
    if not os_name and not arch:
        return None
    features = value.get("os.features") or ()
    return Platform(os_name, arch, str(value.get("variant") or ""),
                    str(value.get("os.version") or ""),
                    tuple(str(f) for f in features) if isinstance(features, list) else ())


def of_image(config: dict[str, Any]) -> Platform:
    """An image config's platform (``os``, ``architecture``, ``variant``), normalised."""
    return normalize(Platform(str(config.get("os") or "linux"),
                              str(config.get("architecture") or host().architecture),
                              str(config.get("variant") or "")))


def _arm_rank(variant: str) -> int:
    try:
        return int(variant.lstrip("v"))
    except ValueError:
        return -1


def match_rank(want: Platform, candidate: Platform) -> int | None:
    """0 for an exact match, a positive number for a compatible one (lower is better),
    None when ``candidate`` cannot run where ``want`` is asked for."""
    want, candidate = normalize(want), normalize(candidate)
    if want.os != candidate.os or want.architecture != candidate.architecture:
        return None
    if want.variant == candidate.variant:
        return 0
    if want.architecture == "arm":
        wanted, have = _arm_rank(want.variant), _arm_rank(candidate.variant)
        if 0 <= have < wanted:
            return wanted - have
        return None
    if want.architecture == "amd64" and not want.variant:
        return 1 if candidate.variant.startswith("v") else None
    if want.architecture == "arm64" and not want.variant:
        return None if candidate.variant else 0
    return None


def matches(want: Platform, candidate: Platform) -> bool:
    return match_rank(want, candidate) is not None


def choose(entries: Iterable[dict[str, Any]], want: Platform) -> dict[str, Any]:
    """The index entry (a descriptor dict with ``platform``) to pull for ``want``; Docker's
    ``no matching manifest for linux/amd64 in the manifest list entries`` otherwise."""
    best: tuple[int, int, dict[str, Any]] | None = None
    for position, entry in enumerate(entries):
        candidate = from_json(entry.get("platform"))
        if candidate is None:
            continue
        rank = match_rank(want, candidate)
        if rank is None:
            continue
        if best is None or (rank, position) < best[:2]:
            best = (rank, position, entry)
    if best is None:
        raise NotFound(f"no matching manifest for {normalize(want)} in the manifest list entries")
    return best[2]

