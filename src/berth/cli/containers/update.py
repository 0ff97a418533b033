"""``update``: the UpdateConfig body (container.Resources + RestartPolicy) from the flags."""

from __future__ import annotations

from typing import Any

from berth.cli.command import StatusError


def update_body(opts: Any) -> dict:
    from berth.cli.opts.validate import parse_restart_policy

    if not opts.any_changed():
        raise StatusError("you must provide one or more flags when using this command", 1)
    restart = {"Name": "", "MaximumRetryCount": 0}
    if opts.restart:
        try:
            restart = parse_restart_policy(opts.restart)
        except ValueError as e:
            raise StatusError(str(e), 1) from None
    # sizes and CPUs were converted by the flag parser (docker's MemBytes/NanoCPUs)
    memory, reservation = opts.memory or 0, opts.memory_reservation or 0
    swap, kernel, cpus = opts.memory_swap or 0, opts.kernel_memory or 0, opts.cpus or 0
    resources: dict[str, Any] = {
        "CpuShares": opts.cpu_shares,
        "Memory": memory,
        "NanoCpus": cpus,
        "CgroupParent": "",
        "BlkioWeight": opts.blkio_weight,
        "BlkioWeightDevice": None,
        "BlkioDeviceReadBps": None,
        "BlkioDeviceWriteBps": None,
        "BlkioDeviceReadIOps": None,
        "BlkioDeviceWriteIOps": None,
        "CpuPeriod": opts.cpu_period,
        "CpuQuota": opts.cpu_quota,
        "CpuRealtimePeriod": opts.cpu_rt_period,
        "CpuRealtimeRuntime": opts.cpu_rt_runtime,
        "CpusetCpus": opts.cpuset_cpus,
        "CpusetMems": opts.cpuset_mems,
        "Devices": None,
        "DeviceCgroupRules": None,
        "DeviceRequests": None,
    }
    if kernel:
        resources["KernelMemory"] = kernel
    resources.update({
        "MemoryReservation": reservation,
        "MemorySwap": swap,
        "MemorySwappiness": None,
        "OomKillDisable": None,
        "PidsLimit": opts.pids_limit if opts.pids_limit != 0 else None,
        "Ulimits": None,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
    })
    body = dict(resources)
    body["RestartPolicy"] = restart
    return body
