"""``docker update``: change a container's resources and restart policy, live.

dockerd's ContainerUpdate, in three steps: the update's own values are validated
(verifyPlatformContainerResources in update mode, with its texts); they are merged into the
HostConfig with UpdateContainer's rules (only fields given; NanoCPUs vs CPU period/quota
conflicts; memory above the recorded swap limit needs --memory-swap too; no restart policy
with --rm); on a running (or paused) container the runtime applies the update's resources
(``runc update``), and a failure puts the old HostConfig back. Pure functions here; the
engine does the I/O.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from berth.engine.containers.restart import validate_policy
from berth.errors import Conflict, InvalidParameter
from berth.runtime.cgroups import (BLKIO_WEIGHT_DISCARDED, MIN_MEMORY, check_cpu_limits,
                                   check_cpusets)

RESOURCE_KEYS = ("CpuShares", "Memory", "NanoCpus", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod",
                 "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "MemoryReservation",
                 "MemorySwap", "KernelMemory", "PidsLimit", "BlkioWeight", "BlkioWeightDevice",
                 "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
                 "BlkioDeviceWriteIOps", "MemorySwappiness", "OomKillDisable", "CpuCount",
                 "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth")


class UpdateConflict(Conflict):
    """UpdateContainer's conflicting options (409)."""


def parse_update(body: Any) -> dict[str, Any]:
    """The UpdateConfig body: Resources fields and RestartPolicy. PidsLimit <= 0 means
    unlimited (0), as dockerd's router normalises it."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: update config must be an object")
    update = {k: body[k] for k in RESOURCE_KEYS if k in body}
    if "NanoCPUs" in body and "NanoCpus" not in update:
        update["NanoCpus"] = body["NanoCPUs"]
    for key in ("CpuShares", "Memory", "NanoCpus", "CpuPeriod", "CpuQuota", "MemoryReservation",
                "MemorySwap", "BlkioWeight", "CpuRealtimePeriod", "CpuRealtimeRuntime"):
        if key in update:
            try:
                update[key] = int(update[key] or 0)
            except (TypeError, ValueError):
                raise InvalidParameter(f"invalid value for {key}") from None
    if update.get("PidsLimit") is not None:
        update["PidsLimit"] = max(0, int(update["PidsLimit"]))
    update["RestartPolicy"] = body.get("RestartPolicy") or {}
    return update


def validate_update(update: dict[str, Any], swap_supported: bool = True,
                    ncpu: int | None = None, blkio_weight: bool = True) -> list[str]:
    """verifyPlatformContainerResources (update mode) and the restart policy; warnings.
    What the host cannot do (swap limits, blkio weight) is dropped from ``update``."""
    warnings: list[str] = []
    validate_policy(update.get("RestartPolicy") or {})
    memory = int(update.get("Memory") or 0)
    swap = int(update.get("MemorySwap") or 0)
    if memory != 0 and memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if memory > 0 and swap != -1 and not swap_supported:
        warnings.append("Your kernel does not support swap limit capabilities or the cgroup is "
                        "not mounted. Memory limited without swap.")
        update["MemorySwap"] = swap = -1
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    swappiness = update.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1 and not 0 <= int(swappiness) <= 100:
        raise InvalidParameter(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")
    reservation = int(update.get("MemoryReservation") or 0)
    if reservation > 0 and reservation < MIN_MEMORY:
        raise InvalidParameter("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidParameter("Minimum memory limit can not be less than memory reservation "
                               "limit, see usage")
    check_cpu_limits(int(update.get("NanoCpus") or 0), int(update.get("CpuPeriod") or 0),
                     int(update.get("CpuQuota") or 0), int(update.get("CpuShares") or 0),
                     ncpu or os.cpu_count() or 1)
    check_cpusets(update.get("CpusetCpus") or "", update.get("CpusetMems") or "")
    weight = int(update.get("BlkioWeight") or 0)
    if weight > 0 and not blkio_weight:
        warnings.append(BLKIO_WEIGHT_DISCARDED)
        update["BlkioWeight"] = weight = 0
    if weight > 0 and not 10 <= weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    if update.get("IOMaximumBandwidth") or update.get("IOMaximumIOps"):
        raise InvalidParameter("Invalid QoS settings: linux does not support Maximum IO "
                               "Bandwidth or Maximum IO IOps")
    return warnings


def recorded_swap(host_config: dict[str, Any]) -> int:
    """The swap limit dockerd would have recorded: twice the memory when only memory was set."""
    swap = int(host_config.get("MemorySwap") or 0)
    memory = int(host_config.get("Memory") or 0)
    if swap == 0 and memory > 0:
        return memory * 2
    return swap


def merge_update(host_config: dict[str, Any], update: dict[str, Any], container_id: str) -> dict[str, Any]:
    """UpdateContainer: a new HostConfig with the update's non-zero fields."""
    hc = copy.deepcopy(host_config)

    def conflict(message: str) -> UpdateConflict:
        return UpdateConflict(f"Cannot update container {container_id}: {message}")

    nano = int(update.get("NanoCpus") or 0)
    if nano > 0 and int(hc.get("CpuPeriod") or 0) > 0:
        raise conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
    if nano > 0 and int(hc.get("CpuQuota") or 0) > 0:
        raise conflict("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
    if int(update.get("CpuPeriod") or 0) > 0 and int(hc.get("NanoCpus") or 0) > 0:
        raise conflict("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
    if int(update.get("CpuQuota") or 0) > 0 and int(hc.get("NanoCpus") or 0) > 0:
        raise conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
    for key in ("BlkioWeight", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "CpusetCpus",
                "CpusetMems", "MemoryReservation", "CpuRealtimePeriod", "CpuRealtimeRuntime"):
        if update.get(key):
            hc[key] = update[key]
    for key in ("BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
                "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps"):
        if update.get(key) is not None:
            hc[key] = update[key]
    memory = int(update.get("Memory") or 0)
    swap = int(update.get("MemorySwap") or 0)
    if memory != 0:
        if memory > recorded_swap(hc) and swap == 0:
            raise conflict("Memory limit should be smaller than already set memoryswap limit, "
                           "update the memoryswap at the same time")
        if not hc.get("MemorySwap") and hc.get("Memory"):
            hc["MemorySwap"] = recorded_swap(hc)
        hc["Memory"] = memory
    if swap != 0:
        hc["MemorySwap"] = swap
    if update.get("PidsLimit") is not None:
        hc["PidsLimit"] = update["PidsLimit"]
    policy = update.get("RestartPolicy") or {}
    if policy.get("Name"):
        if hc.get("AutoRemove") and policy["Name"] != "no":
            raise conflict("Restart policy cannot be updated because AutoRemove is enabled for "
                           "the container")
        hc["RestartPolicy"] = {"Name": policy["Name"],
                               "MaximumRetryCount": int(policy.get("MaximumRetryCount") or 0)}
    return hc


def runtime_resources(update: dict[str, Any]) -> dict[str, Any]:
    """OCI ``linux.resources`` for ``runc update`` from the update's own values (dockerd's
    toContainerdResources)."""
    res: dict[str, Any] = {}
    cpu: dict[str, Any] = {}
    if update.get("CpusetCpus"):
        cpu["cpus"] = update["CpusetCpus"]
    if update.get("CpusetMems"):
        cpu["mems"] = update["CpusetMems"]
    if update.get("CpuShares"):
        cpu["shares"] = int(update["CpuShares"])
    period, quota = 0, 0
    nano = int(update.get("NanoCpus") or 0)
    if nano:
        period = 100000
        quota = nano * period // 10**9
    if quota == 0 and update.get("CpuQuota"):
        quota = int(update["CpuQuota"])
    if period == 0 and update.get("CpuPeriod"):
        period = int(update["CpuPeriod"])
    if period:
        cpu["period"] = period
    if quota:
        cpu["quota"] = quota
    if cpu:
        res["cpu"] = cpu
    memory: dict[str, Any] = {}
    if update.get("Memory"):
        memory["limit"] = int(update["Memory"])
    if update.get("MemoryReservation"):
        memory["reservation"] = int(update["MemoryReservation"])
    if int(update.get("MemorySwap") or 0) > 0:
        memory["swap"] = int(update["MemorySwap"])
    if memory:
        res["memory"] = memory
    if update.get("PidsLimit") is not None:
        limit = int(update["PidsLimit"])
        res["pids"] = {"limit": limit if limit > 0 else -1}
    if update.get("BlkioWeight"):
        res["blockIO"] = {"weight": int(update["BlkioWeight"])}
    return res
