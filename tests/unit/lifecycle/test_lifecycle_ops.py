"""docker top parsing, docker update rules and container prune selection (pure)."""

import pytest

from berth.engine.containers import prune, resources
from berth.runtime import top
from berth.engine.containers.record import Container
from berth.errors import Conflict, InvalidParameter

PS_EF = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init splash
root         100       1  0 10:01 ?        00:00:00 sh -c sleep 1000
root         101     100  0 10:01 ?        00:00:00 sleep 1000
"""


def test_parse_ps_output_keeps_the_containers_processes():
    result = top.parse_ps_output(PS_EF, [100, 101])
    assert result["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert result["Processes"] == [
        ["root", "100", "1", "0", "10:01", "?", "00:00:00", "sh -c sleep 1000"],
        ["root", "101", "100", "0", "10:01", "?", "00:00:00", "sleep 1000"]]


def test_thread_lines_follow_their_process():
    text = "PID TID CMD\n100 - sh\n- 100 -\n200 - other\n- 200 -\n"
    assert top.parse_ps_output(text, [100])["Processes"] == [["100", "-", "sh"], ["-", "100", "-"]]


def test_ps_errors():
    with pytest.raises(top.TopError, match="Couldn't find PID field in ps output"):
        top.parse_ps_output("USER CMD\nroot x\n", [1])
    with pytest.raises(top.TopError, match="Unexpected pid 'x'"):
        top.parse_ps_output("PID CMD\nx y\n", [1])
    with pytest.raises(top.TopError, match='^specifying "user=PID" is not allowed$'):
        top.validate_ps_args("-o user=PID")
    top.validate_ps_args("-o pid=PID,comm")  # renaming pid itself is fine
    top.validate_ps_args("aux")
    assert top.ps_pids_arg([1, 2, 3]) == "-q1,2,3"


def test_run_ps_really_filters(tmp_path):
    import os
    out = top.run_ps("-ef", [os.getpid()])
    result = top.parse_ps_output(out, [os.getpid()])
    assert [row[1] for row in result["Processes"]] == [str(os.getpid())]


# -- update --------------------------------------------------------------------------------
def test_parse_and_validate_update():
    update = resources.parse_update({"Memory": 64 << 20, "PidsLimit": -1,
                                     "RestartPolicy": {"Name": "always"}})
    assert update["PidsLimit"] == 0 and update["Memory"] == 64 << 20
    assert resources.validate_update(update) == []
    cases = [
        ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
        ({"Memory": 64 << 20, "MemorySwap": 32 << 20}, "Minimum memoryswap limit should be larger"),
        ({"NanoCpus": 10**9, "CpuPeriod": 100000}, "Nano CPUs and CPU Period cannot both be set"),
        ({"NanoCpus": 99 * 10**9}, "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs"),
        ({"CpuPeriod": 10}, "CPU cfs period can not be less than 1ms"),
        ({"CpuQuota": 10}, "CPU cfs quota can not be less than 1ms"),
        ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
        ({"RestartPolicy": {"Name": "bogus"}}, "invalid restart policy: unknown policy 'bogus'"),
        ({"CpusetCpus": "0-99"}, "Requested CPUs are not available - requested 0-99"),
        ({"CpusetCpus": "a"}, "Invalid value a for cpuset cpus"),
    ]
    for body, message in cases:
        with pytest.raises(InvalidParameter, match=message):
            resources.validate_update(resources.parse_update(body), ncpu=2)
    # memory-swap alone is fine for an update (not for a create)
    resources.validate_update(resources.parse_update({"MemorySwap": 64 << 20}))
    warned = resources.parse_update({"Memory": 64 << 20})
    assert resources.validate_update(warned, swap_supported=False) and warned["MemorySwap"] == -1
    weighted = resources.parse_update({"BlkioWeight": 5})  # discarded before the range check
    assert resources.validate_update(weighted, blkio_weight=False) == [
        "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."]
    assert weighted["BlkioWeight"] == 0


def test_merge_update_rules():
    cid = "c" * 64
    hc = {"Memory": 0, "MemorySwap": 0, "NanoCpus": 0, "CpuShares": 0, "PidsLimit": None,
          "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False}
    with pytest.raises(Conflict, match=f"^Cannot update container {cid}: Memory limit should be "
                                       "smaller than already set memoryswap limit"):
        resources.merge_update(hc, resources.parse_update({"Memory": 64 << 20}), cid)
    merged = resources.merge_update(hc, resources.parse_update(
        {"Memory": 64 << 20, "MemorySwap": 128 << 20, "CpuShares": 512, "PidsLimit": 20,
         "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}), cid)
    assert merged["Memory"] == 64 << 20 and merged["MemorySwap"] == 128 << 20
    assert merged["CpuShares"] == 512 and merged["PidsLimit"] == 20
    assert merged["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert hc["Memory"] == 0  # the original is untouched
    # with -m recorded, dockerd recorded twice as much swap: a raise below that is fine
    limited = dict(hc, Memory=64 << 20)
    assert resources.merge_update(limited, resources.parse_update({"Memory": 100 << 20}), cid)[
        "Memory"] == 100 << 20
    with pytest.raises(Conflict, match="Nano CPUs cannot be updated as CPU Period"):
        resources.merge_update(dict(hc, CpuPeriod=100000), resources.parse_update({"NanoCpus": 10**9}), cid)
    with pytest.raises(Conflict, match="CPU Quota cannot be updated as NanoCPUs"):
        resources.merge_update(dict(hc, NanoCpus=10**9), resources.parse_update({"CpuQuota": 5000}), cid)
    with pytest.raises(Conflict, match="AutoRemove is enabled"):
        resources.merge_update(dict(hc, AutoRemove=True),
                               resources.parse_update({"RestartPolicy": {"Name": "always"}}), cid)


def test_runtime_resources():
    assert resources.runtime_resources(resources.parse_update(
        {"NanoCpus": 1_500_000_000, "Memory": 64 << 20, "MemorySwap": -1, "PidsLimit": 0,
         "CpuShares": 256, "CpusetCpus": "0"})) == {
        "cpu": {"cpus": "0", "shares": 256, "period": 100000, "quota": 150000},
        "memory": {"limit": 64 << 20}, "pids": {"limit": -1}}
    assert resources.runtime_resources(resources.parse_update({})) == {}


# -- prune ---------------------------------------------------------------------------------
def _c(cid, running=False, labels=None, created="2026-01-01T00:00:00.000000000Z"):
    c = Container(id=cid * 64, name=cid, created=created, image="i", image_id="sha256:1",
                  config={"Labels": labels or {}}, host_config={})
    c.state["Running"] = running
    return c


def test_prune_selection():
    containers = [_c("a"), _c("b", running=True), _c("c", labels={"keep": "1"}),
                  _c("d", created="2030-01-01T00:00:00.000000000Z")]
    assert [c.name for c in prune.select(containers, {})] == ["a", "c", "d"]
    assert [c.name for c in prune.select(containers, {"label": ["keep"]})] == ["c"]
    assert [c.name for c in prune.select(containers, {"label!": ["keep=1"]})] == ["a", "d"]
    assert [c.name for c in prune.select(containers, {"until": ["2027-01-01T00:00:00Z"]})] == ["a", "c"]
    with pytest.raises(InvalidParameter, match="^invalid filter 'name'$"):
        prune.select(containers, {"name": ["a"]})
    with pytest.raises(InvalidParameter, match="more than one until filter specified"):
        prune.select(containers, {"until": ["1h", "2h"]})
    assert prune.report([], 0) == {"ContainersDeleted": None, "SpaceReclaimed": 0}
