"""Resource usage of a container's cgroup (v1 or v2) and network namespace, read straight
from cgroupfs and /proc (no runtime subprocess per sample), as containerd's cgroups library
reads them for dockerd:

- cgroup v1: ``cpuacct.usage``/``usage_percpu``/``stat``, ``cpu.stat`` (throttling),
  ``memory.usage_in_bytes``/``max_usage_in_bytes``/``failcnt``/``limit_in_bytes``/``stat``,
  ``pids.current``/``max``, blkio CFQ ``*_recursive`` files or the ``throttle.*`` ones;
- cgroup v2: ``cpu.stat``, ``memory.current``/``max``/``stat``/``events``, ``pids.*``,
  ``io.stat``;
- ``/proc/stat`` for system_cpu_usage and online_cpus; ``/proc/<pid>/net/dev`` for networks
  (every interface but ``lo``).

The parsers are pure functions; :class:`Sampler` finds a process's cgroup directories and
reads one sample. Values come in the shape of Docker's stats JSON (``cpu_stats``,
``memory_stats``, ``pids_stats``, ``blkio_stats``, ``networks``); the engine adds the
container's name and id and the previous sample (``berth.engine.containers.stats``).
"""

from __future__ import annotations

import os
from typing import Any

from berth.timeutil import rfc3339_nano

CLOCK_TICKS = 100            # USER_HZ, as containerd hard-codes it
NANOS = 1_000_000_000

V1_MEMORY_KEYS = (
    "cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout",
    "pgfault", "pgmajfault", "inactive_anon", "active_anon", "inactive_file", "active_file",
    "unevictable", "hierarchical_memory_limit", "hierarchical_memsw_limit", "total_cache",
    "total_rss", "total_rss_huge", "total_mapped_file", "total_dirty", "total_writeback",
    "total_pgpgin", "total_pgpgout", "total_pgfault", "total_pgmajfault",
    "total_inactive_anon", "total_active_anon", "total_inactive_file", "total_active_file",
    "total_unevictable")
V2_MEMORY_KEYS = (
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty",
    "file_writeback", "anon_thp", "inactive_anon", "active_anon", "inactive_file",
    "active_file", "unevictable", "slab_reclaimable", "slab_unreclaimable", "pgfault",
    "pgmajfault", "workingset_refault", "workingset_activate", "workingset_nodereclaim",
    "pgrefill", "pgscan", "pgsteal", "pgactivate", "pgdeactivate", "pglazyfree",
    "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc")
BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
              "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
              "io_time_recursive", "sectors_recursive")
# CFQ file (without "blkio.") -> JSON key
V1_CFQ_FILES = (("sectors_recursive", "sectors_recursive"),
                ("io_service_bytes_recursive", "io_service_bytes_recursive"),
                ("io_serviced_recursive", "io_serviced_recursive"),
                ("io_queued_recursive", "io_queue_recursive"),
                ("io_service_time_recursive", "io_service_time_recursive"),
                ("io_wait_time_recursive", "io_wait_time_recursive"),
                ("io_merged_recursive", "io_merged_recursive"),
                ("time_recursive", "io_time_recursive"))
NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
              "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


# -- pure parsers --------------------------------------------------------------------------
def parse_uint(text: str) -> int:
    """containerd's readUint: "max" and negative values are 0."""
    text = text.strip()
    if text == "max" or not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        return 0
    return value if value > 0 else 0


def parse_kv(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = parse_uint(parts[1])
    return out


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` -> {controller: path}; cgroup v2's entry is under ""."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            paths[""] = path
            continue
        for controller in controllers.split(","):
            paths[controller.removeprefix("name=")] = path
    return paths


def parse_cgroup_mounts(mountinfo: str) -> dict[str, tuple[str, str]]:
    """{controller: (mount point, root)} of cgroup v1 mounts; "" for the cgroup2 mount."""
    mounts: dict[str, tuple[str, str]] = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        fstype = fields[sep + 1]
        root, point = fields[3], fields[4]
        if fstype == "cgroup2":
            mounts.setdefault("", (point, root))
        elif fstype == "cgroup":
            options = fields[sep + 3].split(",") if len(fields) > sep + 3 else []
            for option in options:
                key = option.removeprefix("name=")
                if key in ("rw", "ro") or option.startswith(("release_agent", "clone_children")):
                    continue
                mounts.setdefault(key, (point, root))
    return mounts


def cgroup_dirs(proc_cgroup: dict[str, str], mounts: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Host directory of each controller's cgroup of a process."""
    dirs: dict[str, str] = {}
    for controller, path in proc_cgroup.items():
        if controller not in mounts:
            continue
        point, root = mounts[controller]
        rel = path
        if root != "/" and (rel == root or rel.startswith(root + "/")):
            rel = rel[len(root):]
        dirs[controller] = os.path.join(point, rel.lstrip("/"))
    return dirs


def parse_blkio(text: str) -> list[dict[str, Any]]:
    """Lines ``major:minor Op value`` (or ``major:minor value``); the Total line is skipped."""
    entries = []
    for line in text.splitlines():
        fields = line.replace(":", " ").split()
        if len(fields) < 3:
            continue
        try:
            major, minor = int(fields[0]), int(fields[1])
            op, value = (fields[2], fields[3]) if len(fields) == 4 else ("", fields[2])
            entries.append({"major": major, "minor": minor, "op": op, "value": int(value)})
        except (ValueError, IndexError):
            continue
    return entries


def parse_io_stat(text: str) -> list[dict[str, Any]] | None:
    """cgroup v2 ``io.stat``: a read and a write entry per device (rbytes/wbytes)."""
    entries: list[dict[str, Any]] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or ":" not in fields[0]:
            continue
        major, _, minor = fields[0].partition(":")
        values = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        try:
            for op, key in (("read", "rbytes"), ("write", "wbytes")):
                entries.append({"major": int(major), "minor": int(minor), "op": op,
                                "value": int(values.get(key, "0"))})
        except ValueError:
            continue
    return entries or None


def parse_proc_stat(text: str) -> tuple[int, int]:
    """(system CPU time in ns, online CPUs) from /proc/stat, as dockerd reads it."""
    usage, cpus = 0, 0
    for line in text.splitlines():
        if not line.startswith("cpu"):
            break
        if line[3:4] == " ":
            parts = line.split()
            ticks = sum(int(v) for v in parts[1:8])
            usage = ticks * NANOS // CLOCK_TICKS
        elif line[3:4].isdigit():
            cpus += 1
    return usage, cpus


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """``/proc/<pid>/net/dev`` of a namespace -> Docker's networks (without ``lo``)."""
    networks: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or name == "lo":
            continue
        values = [int(v) for v in rest.split()]
        if len(values) < 12:
            continue
        rx = values[0:4]
        tx = values[8:12]
        networks[name] = dict(zip(NET_FIELDS, rx + tx))
    return networks


def empty_cpu() -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def empty_blkio() -> dict[str, Any]:
    return {key: None for key in BLKIO_KEYS}


def _omit_zero(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v}


# -- readers (blocking) ------------------------------------------------------------------------
def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()


def _read_or(path: str, default: str = "") -> str:
    try:
        return _read(path)
    except OSError:
        return default


def read_v1(dirs: dict[str, str], machine_memory: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cpuacct, cpu = dirs.get("cpuacct"), dirs.get("cpu")
    usage: dict[str, Any] = {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}
    if cpuacct:
        usage["total_usage"] = parse_uint(_read_or(os.path.join(cpuacct, "cpuacct.usage")))
        percpu = [parse_uint(v) for v in _read_or(os.path.join(cpuacct, "cpuacct.usage_percpu")).split()]
        if percpu:
            usage["percpu_usage"] = percpu
        times = parse_kv(_read_or(os.path.join(cpuacct, "cpuacct.stat")))
        usage["usage_in_kernelmode"] = times.get("system", 0) * NANOS // CLOCK_TICKS
        usage["usage_in_usermode"] = times.get("user", 0) * NANOS // CLOCK_TICKS
        usage = {"total_usage": usage["total_usage"], **({"percpu_usage": usage["percpu_usage"]}
                                                        if "percpu_usage" in usage else {}),
                 "usage_in_kernelmode": usage["usage_in_kernelmode"],
                 "usage_in_usermode": usage["usage_in_usermode"]}
    throttle = parse_kv(_read_or(os.path.join(cpu, "cpu.stat"))) if cpu else {}
    out["cpu_stats"] = {"cpu_usage": usage, "throttling_data": {
        "periods": throttle.get("nr_periods", 0),
        "throttled_periods": throttle.get("nr_throttled", 0),
        "throttled_time": throttle.get("throttled_time", 0)}}

    memory = dirs.get("memory")
    if memory:
        raw = parse_kv(_read_or(os.path.join(memory, "memory.stat")))
        stats = {key: raw.get(key, 0) for key in sorted(V1_MEMORY_KEYS)}  # Go sorts map keys
        limit = parse_uint(_read_or(os.path.join(memory, "memory.limit_in_bytes")))
        if machine_memory and limit > machine_memory:
            limit = machine_memory
        out["memory_stats"] = _omit_zero({
            "usage": parse_uint(_read_or(os.path.join(memory, "memory.usage_in_bytes"))),
            "max_usage": parse_uint(_read_or(os.path.join(memory, "memory.max_usage_in_bytes"))),
            "stats": stats,
            "failcnt": parse_uint(_read_or(os.path.join(memory, "memory.failcnt"))),
            "limit": limit})
    else:
        out["memory_stats"] = {}

    pids = dirs.get("pids")
    out["pids_stats"] = _omit_zero({
        "current": parse_uint(_read_or(os.path.join(pids, "pids.current"))),
        "limit": parse_uint(_read_or(os.path.join(pids, "pids.max")))}) if pids else {}

    blkio = dirs.get("blkio")
    out["blkio_stats"] = empty_blkio()
    if blkio:
        found: dict[str, list] = {key: [] for key in BLKIO_KEYS}
        total = 0
        if os.path.exists(os.path.join(blkio, "blkio.io_serviced_recursive")):
            for name, key in V1_CFQ_FILES:
                found[key] = parse_blkio(_read_or(os.path.join(blkio, "blkio." + name)))
                total += len(found[key])
        if not total:
            found["io_serviced_recursive"] = parse_blkio(
                _read_or(os.path.join(blkio, "blkio.throttle.io_serviced")))
            found["io_service_bytes_recursive"] = parse_blkio(
                _read_or(os.path.join(blkio, "blkio.throttle.io_service_bytes")))
        out["blkio_stats"] = found
    return out


def read_v2(path: str, machine_memory: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cpu = parse_kv(_read_or(os.path.join(path, "cpu.stat")))
    out["cpu_stats"] = {
        "cpu_usage": {"total_usage": cpu.get("usage_usec", 0) * 1000,
                      "usage_in_kernelmode": cpu.get("system_usec", 0) * 1000,
                      "usage_in_usermode": cpu.get("user_usec", 0) * 1000},
        "throttling_data": {"periods": cpu.get("nr_periods", 0),
                            "throttled_periods": cpu.get("nr_throttled", 0),
                            "throttled_time": cpu.get("throttled_usec", 0) * 1000}}
    raw = parse_kv(_read_or(os.path.join(path, "memory.stat")))
    limit = parse_uint(_read_or(os.path.join(path, "memory.max")))
    if limit == 0 or (machine_memory and limit > machine_memory):
        limit = machine_memory
    events = parse_kv(_read_or(os.path.join(path, "memory.events")))
    out["memory_stats"] = _omit_zero({
        "usage": parse_uint(_read_or(os.path.join(path, "memory.current"))),
        "stats": {key: raw.get(key, 0) for key in sorted(V2_MEMORY_KEYS)},
        "failcnt": events.get("oom", 0),
        "limit": limit})
    out["pids_stats"] = _omit_zero({
        "current": parse_uint(_read_or(os.path.join(path, "pids.current"))),
        "limit": parse_uint(_read_or(os.path.join(path, "pids.max")))})
    blkio: dict[str, Any] = empty_blkio()
    blkio["io_service_bytes_recursive"] = parse_io_stat(_read_or(os.path.join(path, "io.stat")))
    out["blkio_stats"] = blkio
    return out


def machine_memory() -> int:
    try:
        for line in _read("/proc/meminfo").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def system_cpu() -> tuple[int, int]:
    return parse_proc_stat(_read_or("/proc/stat"))


def cgroup_pids(dirs: dict[str, str]) -> list[int] | None:
    """Every process in a container's cgroup, exec processes included: ``cgroup.procs`` of
    the first of its controllers that it has (``Sampler.dirs``); None if it has none."""
    for controller in ("pids", "memory", "cpu", "freezer", ""):
        if controller in dirs:
            with open(os.path.join(dirs[controller], "cgroup.procs"), encoding="ascii") as handle:
                return [int(line) for line in handle.read().split()]
    return None


class Sampler:
    """Finds a container's cgroup directories (by the PID of its init) and reads a sample."""

    def __init__(self) -> None:
        self._mounts: dict[str, tuple[str, str]] | None = None
        self._dirs: dict[tuple[str, int], dict[str, str]] = {}
        self.machine_memory = machine_memory()

    def mounts(self) -> dict[str, tuple[str, str]]:
        if self._mounts is None:
            self._mounts = parse_cgroup_mounts(_read_or("/proc/self/mountinfo"))
        return self._mounts

    def dirs(self, container_id: str, pid: int) -> dict[str, str]:
        """Host directory of each cgroup controller of ``pid`` (remembered per container)."""
        key = (container_id, pid)
        found = self._dirs.get(key)
        if found is None:
            text = _read(f"/proc/{pid}/cgroup")
            found = cgroup_dirs(parse_proc_cgroup(text), self.mounts())
            self._dirs = {k: v for k, v in self._dirs.items() if k[0] != container_id}
            self._dirs[key] = found
        return found

    def forget(self, container_id: str) -> None:
        self._dirs = {k: v for k, v in self._dirs.items() if k[0] != container_id}

    def sample(self, container_id: str, pid: int, system: tuple[int, int],
               networks: bool = True) -> dict[str, Any]:
        """One sample of a running container whose init is ``pid`` (raises OSError if it is
        gone): ``read`` (the time), ``pids_stats``, ``blkio_stats``, ``cpu_stats`` (with
        ``system``, the host's CPU time and online CPUs), ``memory_stats`` and, with
        ``networks`` and any interface but ``lo``, ``networks``."""
        if not pid:
            raise FileNotFoundError("no process")
        read_at = rfc3339_nano()
        dirs = self.dirs(container_id, pid)
        if "memory" in dirs or "cpuacct" in dirs:
            body = read_v1(dirs, self.machine_memory)
        elif "" in dirs:
            body = read_v2(dirs[""], self.machine_memory)
        else:
            body = {"cpu_stats": empty_cpu(), "memory_stats": {}, "pids_stats": {},
                    "blkio_stats": empty_blkio()}
        cpu = body["cpu_stats"]
        out = {"read": read_at, "pids_stats": body["pids_stats"],
               "blkio_stats": body["blkio_stats"],
               "cpu_stats": {"cpu_usage": cpu["cpu_usage"], "system_cpu_usage": system[0],
                             "online_cpus": system[1],
                             "throttling_data": cpu["throttling_data"]},
               "memory_stats": body["memory_stats"]}
        if networks:
            found = parse_net_dev(_read(f"/proc/{pid}/net/dev"))
            if found:
                out["networks"] = found
        return out
