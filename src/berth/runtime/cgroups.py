"""Cgroup layout detection, container resource limits, and the container's cgroup files.

runc does the writing: the spec carries ``linux.resources`` in the OCI form, which runc
applies to cgroup v1 (this host: v1 controllers plus cgroup2 at /sys/fs/cgroup/unified) and
translates itself on a pure v2 host. What v2 cannot do (swappiness, OOM-killer disable) is
dropped with Docker's warning instead of failing the start.
"""

from __future__ import annotations

import os
from typing import Any

from berth.errors import InvalidParameter

CGROUP_ROOT = "/sys/fs/cgroup"
MIN_MEMORY = 6 * 1024 * 1024  # moby's linuxMinMemory
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer",
                  "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc", "systemd")


def cgroup_mode(root: str = CGROUP_ROOT) -> str:
    """``v2`` (unified), ``hybrid`` (v1 + cgroup2 at unified/) or ``v1``."""
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return "v2"
    if os.path.exists(os.path.join(root, "unified", "cgroup.controllers")):
        return "hybrid"
    return "v1"


def swap_limit_supported(mode: str, root: str = CGROUP_ROOT) -> bool:
    if mode == "v2":
        return True
    return os.path.exists(os.path.join(root, "memory", "memory.memsw.limit_in_bytes"))


def cgroups_path(container_id: str, parent: str | None = None) -> str:
    """cgroupfs-driver path, as moby builds it (``/docker/<id>`` there)."""
    return os.path.join("/" + (parent or "berth").strip("/"), container_id)


def build_resources(hc: dict[str, Any], mode: str, swap_supported: bool = True,
                    ncpu: int | None = None, stat_devices: bool = True
                    ) -> tuple[dict[str, Any], list[str]]:
    """OCI ``linux.resources`` (without devices) from a HostConfig, plus warnings.

    Validates like moby's verifyPlatformContainerResources, with its error texts. Without
    ``stat_devices`` (at create) the blkio device paths are not resolved.
    """
    warnings: list[str] = []
    memory = int(hc.get("Memory") or 0)
    swap = int(hc.get("MemorySwap") or 0)
    reservation = int(hc.get("MemoryReservation") or 0)
    swappiness = hc.get("MemorySwappiness")
    oom_disable = hc.get("OomKillDisable")
    if memory and memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if memory > 0 and swap == 0:
        swap = memory * 2  # Docker's default: as much swap as memory
    if memory > 0 and swap != -1 and not swap_supported:
        warnings.append("Your kernel does not support swap limit capabilities or the cgroup is "
                        "not mounted. Memory limited without swap.")
        swap = -1
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory == 0 and swap > 0:
        raise InvalidParameter("You should always set the Memory limit when using Memoryswap limit, see usage")
    if swappiness is not None and swappiness != -1:
        if not 0 <= swappiness <= 100:
            raise InvalidParameter(
                f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
        if mode == "v2":
            warnings.append("Your kernel does not support memory swappiness capabilities or the "
                            "cgroup is not mounted. Memory swappiness discarded.")
            swappiness = None
    else:
        swappiness = None
    if reservation and reservation < MIN_MEMORY:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if memory and reservation and memory < reservation:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation "
                               "limit, see usage")
    if oom_disable and mode == "v2":
        warnings.append("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
        oom_disable = None
    elif oom_disable and not memory:
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, "
                        "this can result in the system running out of resources.")

    res: dict[str, Any] = {}
    mem: dict[str, Any] = {}
    if memory > 0:
        mem["limit"] = memory
    if reservation > 0:
        mem["reservation"] = reservation
    if swap > 0 or (swap == -1 and memory > 0 and swap_supported):
        mem["swap"] = swap
    if swappiness is not None:
        mem["swappiness"] = int(swappiness)
    if oom_disable is not None:
        mem["disableOOMKiller"] = bool(oom_disable)
    if mem:
        res["memory"] = mem

    cpu = _cpu_resources(hc, ncpu or os.cpu_count() or 1)
    if cpu:
        res["cpu"] = cpu

    pids = hc.get("PidsLimit")
    if pids is not None:
        res["pids"] = {"limit": int(pids) if int(pids) > 0 else -1}

    block_io = _block_io(hc, mode, warnings, stat_devices)
    if block_io:
        res["blockIO"] = block_io
    return res, warnings


# (HostConfig list, OCI blockIO field, HostConfig value key (OCI: in lower case), the v1 files
# that show the host supports it, moby's warning when it does not)
_THROTTLES = (
    ("BlkioDeviceReadBps", "throttleReadBpsDevice", "Rate", ("blkio.throttle.read_bps_device",),
     "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. "
     "Block I/O BPS read limit discarded."),
    ("BlkioDeviceWriteBps", "throttleWriteBpsDevice", "Rate", ("blkio.throttle.write_bps_device",),
     "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. "
     "Block I/O BPS write limit discarded."),
    ("BlkioDeviceReadIOps", "throttleReadIOPSDevice", "Rate", ("blkio.throttle.read_iops_device",),
     "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. "
     "Block I/O IOPS read limit discarded."),
    ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice", "Rate", ("blkio.throttle.write_iops_device",),
     "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. "
     "Block I/O IOPS write limit discarded."),
    ("BlkioWeightDevice", "weightDevice", "Weight", ("blkio.weight_device", "blkio.bfq.weight_device"),
     "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. "
     "Weight-device discarded."),
)


def _block_io(hc: dict[str, Any], mode: str, warnings: list[str], stat_devices: bool) -> dict[str, Any]:
    """OCI ``blockIO``; what the host's blkio controller lacks is discarded with moby's
    warning, as dockerd does (runc would fail the start instead)."""
    block_io: dict[str, Any] = {}
    weight = int(hc.get("BlkioWeight") or 0)
    if weight and not blkio_weight_supported(mode):
        warnings.append(BLKIO_WEIGHT_DISCARDED)
        weight = 0
    if weight:
        if not 10 <= weight <= 1000:
            raise InvalidParameter("Range of blkio weight is from 10 to 1000")
        block_io["weight"] = weight
    for key, field, value_key, files, warning in _THROTTLES:
        entries = hc.get(key) or []
        if not entries:
            continue
        if not _blkio_supports(mode, files):
            warnings.append(warning)
            continue
        if stat_devices:  # dockerd resolves the paths at start, not at create
            block_io[field] = [{**_device_numbers(e.get("Path") or ""),
                                value_key.lower(): int(e.get(value_key) or 0)} for e in entries]
    return block_io


BLKIO_WEIGHT_DISCARDED = ("Your kernel does not support Block I/O weight or the cgroup is not "
                          "mounted. Weight discarded.")


def blkio_weight_supported(mode: str) -> bool:
    return _blkio_supports(mode, ("blkio.weight", "blkio.bfq.weight"))


def _blkio_supports(mode: str, files: tuple[str, ...]) -> bool:
    root = CGROUP_ROOT  # read now: tests point it at a fake tree
    if mode == "v2":
        try:
            with open(os.path.join(root, "cgroup.controllers")) as handle:
                return "io" in handle.read().split()
        except OSError:
            return False
    return any(os.path.exists(os.path.join(root, "blkio", name)) for name in files)


def _device_numbers(path: str) -> dict[str, int]:
    try:
        rdev = os.stat(path).st_rdev
    except OSError as exc:
        raise InvalidParameter(f"stat {path}: {(exc.strerror or str(exc)).lower()}") from None
    return {"major": os.major(rdev), "minor": os.minor(rdev)}


def check_cpu_limits(nano: int, period: int, quota: int, shares: int, ncpu: int) -> None:
    """The CPU checks of moby's verifyPlatformContainerResources, with its texts: at create
    (``build_resources``) and at ``docker update`` (engine.containers.resources)."""
    if nano > 0 and period > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano and (nano < 0 or nano > ncpu * 10**9):
        raise InvalidParameter(
            f"range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    if period and not 1000 <= period <= 1000000:
        raise InvalidParameter("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                               "than 1s (i.e. 1000000)")
    if 0 < quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if shares < 0:
        raise InvalidParameter(f"invalid CPU shares ({shares}): value must be a positive integer")


def check_cpusets(cpus: str, mems: str, root: str = CGROUP_ROOT) -> None:
    """``--cpuset-cpus``/``--cpuset-mems`` within what the host has (moby's texts)."""
    for wanted, kind, label in ((cpus, "cpus", "CPUs"), (mems, "mems", "memory nodes")):
        if not wanted:
            continue
        available = available_cpuset(kind, root)
        try:
            requested = _cpu_list(wanted)
        except ValueError:
            raise InvalidParameter(f"Invalid value {wanted} for cpuset {kind}: invalid format: "
                                   f"{wanted}") from None
        if not requested <= _cpu_list(available):
            raise InvalidParameter(f"Requested {label} are not available - requested {wanted}, "
                                   f"available: {available}")


def available_cpuset(kind: str, root: str = CGROUP_ROOT) -> str:
    """The host's cpuset (``cpus`` or ``mems``) as the root cgroup lists it."""
    for path in (f"{root}/cpuset/cpuset.{kind}", f"{root}/cpuset.{kind}.effective"):
        try:
            with open(path, encoding="ascii") as handle:
                value = handle.read().strip()
        except OSError:
            continue
        if value:
            return value
    return f"0-{(os.cpu_count() or 1) - 1}" if kind == "cpus" else "0"


def _cpu_list(text: str) -> set[int]:
    """"0-2,4" -> {0,1,2,4}; ValueError when malformed."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(text)
        low, sep, high = part.partition("-")
        first = int(low)
        last = int(high) if sep else first
        if last < first or first < 0:
            raise ValueError(text)
        out.update(range(first, last + 1))
    return out


def _cpu_resources(hc: dict[str, Any], ncpu: int) -> dict[str, Any]:
    nano = int(hc.get("NanoCpus") or hc.get("NanoCPUs") or 0)
    period = int(hc.get("CpuPeriod") or 0)
    quota = int(hc.get("CpuQuota") or 0)
    shares = int(hc.get("CpuShares") or 0)
    check_cpu_limits(nano, period, quota, shares, ncpu)
    cpu: dict[str, Any] = {}
    if shares:
        cpu["shares"] = shares
    if hc.get("CpusetCpus"):
        cpu["cpus"] = hc["CpusetCpus"]
    if hc.get("CpusetMems"):
        cpu["mems"] = hc["CpusetMems"]
    if nano > 0:
        cpu["period"] = 100000
        cpu["quota"] = nano * 100000 // 10**9
    if period:
        cpu["period"] = period
    if quota:
        cpu["quota"] = quota
    rt_period = int(hc.get("CpuRealtimePeriod") or 0)
    rt_runtime = int(hc.get("CpuRealtimeRuntime") or 0)
    if rt_period and rt_runtime > rt_period:
        raise InvalidParameter("cpu-rt-runtime cannot be higher than cpu-rt-period")
    if rt_period:
        cpu["realtimePeriod"] = rt_period
    if rt_runtime:
        cpu["realtimeRuntime"] = rt_runtime
    return cpu


def container_dirs(path: str, mode: str | None = None, root: str = CGROUP_ROOT) -> list[str]:
    """Host directories of a container's cgroup (cgroupfs driver), existing or not."""
    mode = mode or cgroup_mode(root)
    rel = path.lstrip("/")
    if mode == "v2":
        return [os.path.join(root, rel)]
    dirs = [os.path.join(root, c, rel) for c in V1_CONTROLLERS
            if os.path.isdir(os.path.join(root, c))]
    if mode == "hybrid":
        dirs.append(os.path.join(root, "unified", rel))
    return dirs


def oom_probe(path: str, mode: str | None = None, root: str = CGROUP_ROOT) -> dict[str, str]:
    """Where the shim reads the OOM-kill counter of the container's cgroup."""
    mode = mode or cgroup_mode(root)
    rel = path.lstrip("/")
    if mode == "v2":
        return {"file": os.path.join(root, rel, "memory.events"), "key": "oom_kill"}
    return {"file": os.path.join(root, "memory", rel, "memory.oom_control"), "key": "oom_kill"}


def remove_container_cgroup(path: str, mode: str | None = None, root: str = CGROUP_ROOT) -> None:
    """rmdir the container's cgroup dirs (runc delete normally does this); missing is fine."""
    for d in container_dirs(path, mode, root):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass
