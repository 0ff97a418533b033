"""runtime.cgstats: cgroup and /proc parsers (pure), readers on fake cgroup trees, and the
sampler on this test's own process."""

import os

import pytest

from berth.runtime import cgstats as stats

PROC_CGROUP_V1 = """9:name=systemd:/berth/abc
8:pids:/berth/abc
4:memory:/berth/abc
2:cpu,cpuacct:/berth/abc
7:blkio:/berth/abc
0::/berth/abc
"""

MOUNTINFO = """25 30 0:21 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
26 30 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
27 30 0:23 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
28 30 0:24 / /sys/fs/cgroup/blkio rw,nosuid - cgroup cgroup rw,blkio
29 30 0:25 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
31 30 0:26 /nested /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
"""


def test_proc_cgroup_and_mounts_give_directories():
    paths = stats.parse_proc_cgroup(PROC_CGROUP_V1)
    assert paths["memory"] == "/berth/abc" and paths["cpuacct"] == "/berth/abc"
    assert paths[""] == "/berth/abc" and paths["systemd"] == "/berth/abc"
    mounts = stats.parse_cgroup_mounts(MOUNTINFO)
    assert mounts["cpuacct"] == ("/sys/fs/cgroup/cpu,cpuacct", "/")
    assert mounts[""] == ("/sys/fs/cgroup/unified", "/")
    dirs = stats.cgroup_dirs(paths, mounts)
    assert dirs["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct/berth/abc"
    assert dirs["memory"] == "/sys/fs/cgroup/memory/berth/abc"
    assert dirs[""] == "/sys/fs/cgroup/unified/berth/abc"
    nested = stats.cgroup_dirs({"systemd": "/nested/x"}, mounts)
    assert nested["systemd"] == "/sys/fs/cgroup/systemd/x"


def test_proc_stat_and_net_dev():
    usage, cpus = stats.parse_proc_stat(
        "cpu  100 0 50 1000 10 0 5 0 0 0\ncpu0 50 0 25 500 5 0 2 0 0 0\n"
        "cpu1 50 0 25 500 5 0 3 0 0 0\nintr 1 2 3\n")
    assert usage == (100 + 50 + 1000 + 10 + 5) * 10_000_000 and cpus == 2
    text = ("Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed"
            " multicast|bytes packets errs drop fifo colls carrier compressed\n"
            "    lo:  100  2 0 0 0 0 0 0  100  2 0 0 0 0 0 0\n"
            "  eth0: 1516  18 1 2 0 0 0 0  426  5 3 4 0 0 0 0\n")
    assert stats.parse_net_dev(text) == {"eth0": {
        "rx_bytes": 1516, "rx_packets": 18, "rx_errors": 1, "rx_dropped": 2,
        "tx_bytes": 426, "tx_packets": 5, "tx_errors": 3, "tx_dropped": 4}}


def test_blkio_and_io_stat():
    assert stats.parse_blkio("8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n") == [
        {"major": 8, "minor": 0, "op": "Read", "value": 4096},
        {"major": 8, "minor": 0, "op": "Write", "value": 8192}]
    assert stats.parse_blkio("8:0 7\n")[0] == {"major": 8, "minor": 0, "op": "", "value": 7}
    assert stats.parse_io_stat("8:0 rbytes=10 wbytes=20 rios=1 wios=2\n") == [
        {"major": 8, "minor": 0, "op": "read", "value": 10},
        {"major": 8, "minor": 0, "op": "write", "value": 20}]
    assert stats.parse_io_stat("") is None
    assert stats.parse_uint("max\n") == 0 and stats.parse_uint("-1") == 0


def _write(base, rel, text):
    path = os.path.join(base, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def test_read_v1_shapes_like_dockerd(tmp_path):
    base = str(tmp_path)
    _write(base, "cpuacct/cpuacct.usage", "3000\n")
    _write(base, "cpuacct/cpuacct.usage_percpu", "1000 2000 \n")
    _write(base, "cpuacct/cpuacct.stat", "user 3\nsystem 1\n")
    _write(base, "cpu/cpu.stat", "nr_periods 7\nnr_throttled 2\nthrottled_time 99\n")
    _write(base, "memory/memory.usage_in_bytes", "5000\n")
    _write(base, "memory/memory.max_usage_in_bytes", "6000\n")
    _write(base, "memory/memory.failcnt", "0\n")
    _write(base, "memory/memory.limit_in_bytes", "9223372036854771712\n")
    _write(base, "memory/memory.stat", "cache 10\nrss 20\ntotal_inactive_file 300\n")
    _write(base, "pids/pids.current", "3\n")
    _write(base, "pids/pids.max", "max\n")
    _write(base, "blkio/blkio.throttle.io_service_bytes", "8:0 Read 512\nTotal 512\n")
    _write(base, "blkio/blkio.throttle.io_serviced", "8:0 Read 1\nTotal 1\n")
    dirs = {c: os.path.join(base, c) for c in ("cpuacct", "cpu", "memory", "pids", "blkio")}
    out = stats.read_v1(dirs, machine_memory=1 << 30)
    usage = out["cpu_stats"]["cpu_usage"]
    assert usage == {"total_usage": 3000, "percpu_usage": [1000, 2000],
                     "usage_in_kernelmode": 10_000_000, "usage_in_usermode": 30_000_000}
    assert out["cpu_stats"]["throttling_data"] == {"periods": 7, "throttled_periods": 2,
                                                   "throttled_time": 99}
    memory = out["memory_stats"]
    assert memory["usage"] == 5000 and memory["max_usage"] == 6000 and "failcnt" not in memory
    assert memory["limit"] == 1 << 30  # capped to the machine's memory
    assert memory["stats"]["total_inactive_file"] == 300 and memory["stats"]["rss_huge"] == 0
    assert len(memory["stats"]) == 32
    assert out["pids_stats"] == {"current": 3}
    blkio = out["blkio_stats"]
    assert blkio["io_service_bytes_recursive"] == [{"major": 8, "minor": 0, "op": "Read", "value": 512}]
    assert blkio["io_queue_recursive"] == [] and set(blkio) == set(stats.BLKIO_KEYS)


def test_read_v2(tmp_path):
    base = str(tmp_path)
    _write(base, "cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 1\n"
                             "nr_throttled 0\nthrottled_usec 4\n")
    _write(base, "memory.current", "4096\n")
    _write(base, "memory.max", "max\n")
    _write(base, "memory.stat", "anon 1\ninactive_file 2\n")
    _write(base, "memory.events", "low 0\noom 1\n")
    _write(base, "pids.current", "2\n")
    _write(base, "pids.max", "10\n")
    _write(base, "io.stat", "8:0 rbytes=1 wbytes=2\n")
    out = stats.read_v2(base, machine_memory=1 << 20)
    assert out["cpu_stats"]["cpu_usage"] == {"total_usage": 5000, "usage_in_kernelmode": 2000,
                                             "usage_in_usermode": 3000}
    assert out["cpu_stats"]["throttling_data"]["throttled_time"] == 4000
    assert out["memory_stats"]["limit"] == 1 << 20 and out["memory_stats"]["failcnt"] == 1
    assert out["memory_stats"]["stats"]["inactive_file"] == 2
    assert out["pids_stats"] == {"current": 2, "limit": 10}
    assert out["blkio_stats"]["io_serviced_recursive"] is None


def test_sampler_reads_this_process():
    sampler = stats.Sampler()
    pid = os.getpid()
    dirs = sampler.dirs("self", pid)
    assert dirs and all(os.path.isabs(d) for d in dirs.values())
    assert sampler.dirs("self", pid) is dirs  # remembered per container
    sample = sampler.sample("self", pid, (123, 4), networks=False)
    assert list(sample) == ["read", "pids_stats", "blkio_stats", "cpu_stats", "memory_stats"]
    assert list(sample["cpu_stats"]) == ["cpu_usage", "system_cpu_usage", "online_cpus",
                                         "throttling_data"]
    assert sample["cpu_stats"]["system_cpu_usage"] == 123
    assert sample["cpu_stats"]["online_cpus"] == 4
    assert set(sample["blkio_stats"]) == set(stats.BLKIO_KEYS)
    sampler.forget("self")
    assert sampler.dirs("self", pid) is not dirs
    usage, cpus = stats.system_cpu()
    assert usage > 0 and cpus >= 1


def test_sampler_refuses_a_container_without_process():
    with pytest.raises(FileNotFoundError):
        stats.Sampler().sample("gone", 0, (0, 1))
