"""Container lifecycle through the real docker CLI and docker-py: pause/unpause, top, stats,
update, prune, healthchecks and restart policies."""

import json
import os
import subprocess
import time

import docker
import pytest

from lifecycle_support import docker_cli, events, inspect, ok, unique, wait_for

pytestmark = pytest.mark.e2e

LOOP = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done"
TRAP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


@pytest.fixture
def names(busybox):
    created = []

    def make(prefix="lc"):
        created.append(unique(prefix))
        return created[-1]

    yield make
    if created:
        docker_cli(busybox, "rm", "-f", *created)


@pytest.fixture
def client(busybox):
    api = docker.DockerClient(base_url=busybox.host, version="auto", timeout=60)
    yield api
    api.close()


def _cgroup_file(pid: int, controller: str, name: str) -> str:
    with open(f"/proc/{pid}/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                with open(f"/sys/fs/cgroup/{controller}{path}/{name}") as f:
                    return f.read().strip()
    raise AssertionError(f"no {controller} cgroup for {pid}")


# -- pause / unpause ------------------------------------------------------------------------------
def test_pause_freezes_and_unpause_thaws(busybox, names):
    name = names()
    ok(busybox, "run", "-d", "--name", name, "busybox", "sh", "-c", LOOP)
    wait_for(lambda: docker_cli(busybox, "logs", name).stdout.count("\n") > 2, message="output")
    since = time.time()
    ok(busybox, "pause", name)
    state = inspect(busybox, name)["State"]
    assert state["Paused"] is True and state["Running"] is True and state["Status"] == "paused"
    assert _cgroup_file(state["Pid"], "freezer", "freezer.state") == "FROZEN"
    status = ok(busybox, "ps", "--filter", f"name={name}", "--format", "{{.Status}}")
    assert status.strip().endswith("(Paused)")
    assert ok(busybox, "ps", "-q", "--filter", f"name={name}", "--filter", "status=paused").strip()
    lines = docker_cli(busybox, "logs", name).stdout.count("\n")
    time.sleep(0.6)
    assert docker_cli(busybox, "logs", name).stdout.count("\n") == lines  # frozen: no output

    result = docker_cli(busybox, "exec", name, "true")
    assert result.returncode != 0 and "is paused, unpause the container before exec" in result.stderr
    result = docker_cli(busybox, "pause", name)
    assert result.returncode != 0 and "is already paused" in result.stderr
    result = docker_cli(busybox, "start", name)
    assert "cannot start a paused container, try unpause instead" in result.stderr

    ok(busybox, "unpause", name)
    state = inspect(busybox, name)["State"]
    assert state["Paused"] is False and state["Status"] == "running"
    assert _cgroup_file(state["Pid"], "freezer", "freezer.state") == "THAWED"
    wait_for(lambda: docker_cli(busybox, "logs", name).stdout.count("\n") > lines + 2,
             message="output after unpause")
    result = docker_cli(busybox, "unpause", name)
    assert result.returncode != 0 and "is not paused" in result.stderr
    actions = [e["Action"] for e in events(busybox, since, f"container={name}")]
    assert actions[:2] == ["pause", "unpause"]


def test_stop_and_remove_a_paused_container(busybox, names):
    name = names()
    ok(busybox, "run", "-d", "--name", name, "busybox", "sh", "-c", TRAP)
    time.sleep(0.3)
    ok(busybox, "pause", name)
    result = docker_cli(busybox, "rm", name)
    assert result.returncode != 0
    assert f'cannot remove container "/{name}": container is paused and must be unpaused first' \
        in result.stderr
    started = time.monotonic()
    ok(busybox, "stop", "-t", "20", name)
    # the TERM reached the process once thawed: it exited 0 at once, not 137 after 20s
    assert time.monotonic() - started < 10
    state = inspect(busybox, name)["State"]
    assert (state["Status"], state["ExitCode"], state["Paused"]) == ("exited", 0, False)
    other = names()
    ok(busybox, "run", "-d", "--name", other, "busybox", "sleep", "300")
    ok(busybox, "pause", other)
    ok(busybox, "rm", "-f", other)
    assert docker_cli(busybox, "inspect", other).returncode != 0


# -- top ---------------------------------------------------------------------------------------------
def test_top_lists_the_containers_processes(busybox, names, client):
    name = names()
    since = time.time()
    ok(busybox, "run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 300 & sleep 301; wait")
    ok(busybox, "exec", "-d", name, "sleep", "302")
    def top_with_exec():
        out = ok(busybox, "top", name)
        return out if "sleep 302" in out else None
    out = wait_for(top_with_exec, message="exec process in top")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
    commands = [line.split(None, 7)[-1] for line in lines[1:]]
    assert {"sleep 300", "sleep 301", "sleep 302"} <= set(commands)
    assert len(commands) == 4  # sh, its two sleeps and the exec: nothing of the host
    aux = ok(busybox, "top", name, "aux").splitlines()
    assert aux[0].split()[:3] == ["USER", "PID", "%CPU"]
    custom = ok(busybox, "top", name, "-o", "pid,comm").splitlines()
    assert custom[0].split() == ["PID", "COMMAND"] and len(custom) == 5
    result = docker_cli(busybox, "top", name, "-o", "comm,user=PID")
    assert result.returncode != 0 and 'specifying "comm,user=PID" is not allowed' in result.stderr
    result = docker_cli(busybox, "top", name, "--bogus-option")
    assert result.returncode != 0 and "ps:" in result.stderr
    data = client.containers.get(name).top(ps_args="-o pid,args")
    assert data["Titles"] == ["PID", "COMMAND"] and len(data["Processes"]) == 4
    assert events(busybox, since, f"container={name}", "event=top")  # dockerd logs `top`
    ok(busybox, "kill", name)
    ok(busybox, "wait", name)
    result = docker_cli(busybox, "top", name)
    assert result.returncode != 0 and "is not running" in result.stderr


# -- stats -------------------------------------------------------------------------------------------
def test_stats_no_stream_shows_cpu_memory_pids(busybox, names):
    busy, idle = names("busy"), names("idle")
    ok(busybox, "run", "-d", "--name", busy, "-m", "64m", "busybox", "sh", "-c",
       "while true; do :; done")
    ok(busybox, "run", "-d", "--name", idle, "busybox", "sh", "-c",
       "sleep 300 & dd if=/dev/zero of=/tmp/f bs=1M count=8 2>/dev/null; sleep 301")
    time.sleep(1.0)
    out = ok(busybox, "stats", "--no-stream", "--format", "{{json .}}", busy, idle)
    rows = {row["Name"]: row for row in map(json.loads, out.splitlines())}
    assert set(rows) == {busy, idle}
    cpu = float(rows[busy]["CPUPerc"].rstrip("%"))
    assert cpu > 20.0, rows[busy]  # a shell spinning on one of the host's CPUs
    assert rows[busy]["MemUsage"].endswith("/ 64MiB")
    assert float(rows[idle]["CPUPerc"].rstrip("%")) < 20.0
    assert rows[idle]["PIDs"] == "2" and rows[busy]["PIDs"] == "1"  # sh execs its last command
    usage, _, limit = rows[idle]["MemUsage"].partition(" / ")
    assert usage.endswith(("KiB", "MiB")) and limit.endswith("GiB")
    assert " / " in rows[idle]["NetIO"] and " / " in rows[idle]["BlockIO"]
    table = ok(busybox, "stats", "--no-stream", busy).splitlines()
    assert table[0].split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"]


def test_stats_api_shape_stream_and_stopped(busybox, names, client):
    name = names()
    ok(busybox, "run", "-d", "--name", name, "busybox", "sh", "-c", LOOP)
    container = client.containers.get(name)
    doc = container.stats(stream=False)
    assert list(doc)[:9] == ["read", "preread", "pids_stats", "blkio_stats", "num_procs",
                             "storage_stats", "cpu_stats", "precpu_stats", "memory_stats"]
    assert doc["name"] == "/" + name and doc["id"] == container.id
    assert doc["preread"] != "0001-01-01T00:00:00Z"  # two samples: precpu is filled
    cpu = doc["cpu_stats"]
    assert cpu["online_cpus"] == os.cpu_count() and cpu["system_cpu_usage"] > 0
    assert cpu["cpu_usage"]["total_usage"] >= doc["precpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert doc["memory_stats"]["usage"] > 0 and doc["memory_stats"]["limit"] > 0
    assert "stats" in doc["memory_stats"] and doc["pids_stats"]["current"] >= 1
    assert "io_service_bytes_recursive" in doc["blkio_stats"]
    one = container.stats(stream=False, one_shot=True)
    assert one["preread"] == "0001-01-01T00:00:00Z" and one["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    samples = []
    started = time.monotonic()
    for sample in container.stats(stream=True, decode=True):
        samples.append(sample)
        if len(samples) == 3:
            break
    assert time.monotonic() - started > 1.5  # one a second
    assert samples[1]["preread"] == samples[0]["read"]
    assert samples[2]["precpu_stats"] == samples[1]["cpu_stats"]
    ok(busybox, "kill", name)
    ok(busybox, "wait", name)
    stopped = container.stats(stream=False)
    assert stopped["read"] == "0001-01-01T00:00:00Z" and stopped["memory_stats"] == {}
    assert stopped["name"] == "/" + name
    assert docker_cli(busybox, "stats", "--no-stream", "nonexistent-xyz").returncode != 0


# -- update ------------------------------------------------------------------------------------------
def test_update_running_container_resources(busybox, names, client):
    name = names()
    ok(busybox, "run", "-d", "--name", name, "busybox", "sleep", "300")
    pid = inspect(busybox, name)["State"]["Pid"]
    since = time.time()
    result = docker_cli(busybox, "update", "-m", "64m", name)
    assert result.returncode != 0 and "Memory limit should be smaller than already set " \
        "memoryswap limit, update the memoryswap at the same time" in result.stderr
    assert f"Cannot update container {inspect(busybox, name)['Id']}" in result.stderr
    ok(busybox, "update", "-m", "64m", "--memory-swap", "128m", "--cpus", "0.5",
       "--cpu-shares", "512", "--pids-limit", "50", name)
    hc = inspect(busybox, name)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["CpuShares"], hc["PidsLimit"]) == \
        (64 << 20, 128 << 20, 500_000_000, 512, 50)
    assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert _cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "50000"
    assert _cgroup_file(pid, "cpu", "cpu.shares") == "512"
    assert _cgroup_file(pid, "pids", "pids.max") == "50"
    # raising memory within the recorded swap needs no --memory-swap
    ok(busybox, "update", "-m", "100m", name)
    assert _cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(100 << 20)
    ok(busybox, "update", "--pids-limit", "-1", "--restart", "on-failure:2", name)
    assert _cgroup_file(pid, "pids", "pids.max") == "max"
    hc = inspect(busybox, name)["HostConfig"]
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    stats = ok(busybox, "stats", "--no-stream", "--format", "{{.MemUsage}}", name)
    assert stats.strip().endswith("/ 100MiB")
    actions = [e["Action"] for e in events(busybox, since, f"container={name}", "event=update")]
    assert len(actions) == 3

    result = docker_cli(busybox, "update", "--cpus", "99", name)
    assert result.returncode != 0 and "range of CPUs is from 0.01 to" in result.stderr
    result = docker_cli(busybox, "update", "-m", "1k", "--memory-swap", "10m", name)
    assert result.returncode != 0 and "Minimum memory limit allowed is 6MB" in result.stderr
    assert client.api.update_container(name, cpu_shares=256) == {"Warnings": None}
    assert _cgroup_file(pid, "cpu", "cpu.shares") == "256"
    rm = names()
    ok(busybox, "create", "--rm", "--name", rm, "busybox", "true")
    result = docker_cli(busybox, "update", "--restart", "always", rm)
    assert result.returncode != 0 and "Restart policy cannot be updated because AutoRemove is " \
        "enabled for the container" in result.stderr


def test_update_stopped_container_applies_at_next_start(busybox, names):
    name = names()
    ok(busybox, "create", "--name", name, "busybox", "sleep", "300")
    ok(busybox, "update", "--cpu-shares", "300", "--pids-limit", "7", name)
    ok(busybox, "start", name)
    pid = inspect(busybox, name)["State"]["Pid"]
    assert _cgroup_file(pid, "cpu", "cpu.shares") == "300"
    assert _cgroup_file(pid, "pids", "pids.max") == "7"


# -- prune -------------------------------------------------------------------------------------------
def test_container_prune_with_filters(busybox, names, client):
    keep_running, old_a, old_b, labelled = names("run"), names("a"), names("b"), names("lab")
    ok(busybox, "run", "-d", "--name", keep_running, "--label", "prunetest=1", "busybox", "sleep", "300")
    for name in (old_a, old_b):
        ok(busybox, "run", "--name", name, "--label", "prunetest=1", "busybox", "sh", "-c",
           "echo data > /big; true")
    ok(busybox, "run", "--name", labelled, "--label", "prunetest=2", "busybox", "true")
    expected = {inspect(busybox, old_a)["Id"], inspect(busybox, old_b)["Id"]}
    since = time.time()
    out = ok(busybox, "container", "prune", "-f", "--filter", "label=prunetest=1")
    assert out.startswith("Deleted Containers:") and "Total reclaimed space:" in out
    assert set(out.split("Total")[0].split()[2:]) == expected
    assert docker_cli(busybox, "inspect", old_a).returncode != 0
    assert inspect(busybox, keep_running)["State"]["Running"]
    assert inspect(busybox, labelled)["State"]["Status"] == "exited"
    # until: nothing created before an hour ago
    assert client.containers.prune(filters={"until": "1h", "label": "prunetest=2"}) == \
        {"ContainersDeleted": None, "SpaceReclaimed": 0}
    labelled_id = inspect(busybox, labelled)["Id"]
    report = client.containers.prune(filters={"label!": "prunetest=1", "label": "prunetest"})
    assert report["ContainersDeleted"] == [labelled_id] and report["SpaceReclaimed"] == 0
    assert inspect(busybox, keep_running)["State"]["Running"]
    prune_events = events(busybox, since, "type=container", "event=prune")
    assert prune_events and "reclaimed" in prune_events[0]["Actor"]["Attributes"]
    result = docker_cli(busybox, "container", "prune", "-f", "--filter", "name=x")
    assert result.returncode != 0 and "invalid filter 'name'" in result.stderr


# -- healthchecks ------------------------------------------------------------------------------------
def test_healthcheck_states_events_and_ps(busybox, names):
    name = names()
    since = time.time()
    ok(busybox, "run", "-d", "--name", name, "--health-cmd", "cat /tmp/healthy",
       "--health-interval", "500ms", "--health-retries", "2", "--health-start-period", "10s",
       "--health-start-interval", "200ms", "busybox", "sh", "-c",
       "sleep 1.5; echo yes > /tmp/healthy; sleep 2.5; rm /tmp/healthy; sleep 300")
    first = inspect(busybox, name)["State"]["Health"]
    assert first["Status"] == "starting" and first["FailingStreak"] == 0
    assert "(health: starting)" in ok(busybox, "ps", "--filter", f"name={name}", "--format", "{{.Status}}")
    wait_for(lambda: inspect(busybox, name)["State"]["Health"]["Status"] == "healthy", timeout=10,
             message="healthy")
    assert ok(busybox, "ps", "--filter", f"name={name}", "--format", "{{.Status}}").strip().endswith("(healthy)")
    assert ok(busybox, "ps", "-q", "--filter", "health=healthy", "--filter", f"name={name}").strip()
    health = inspect(busybox, name)["State"]["Health"]
    assert health["Log"][-1]["ExitCode"] == 0 and health["Log"][-1]["Output"] == "yes\n"
    wait_for(lambda: inspect(busybox, name)["State"]["Health"]["Status"] == "unhealthy", timeout=10,
             message="unhealthy")
    health = inspect(busybox, name)["State"]["Health"]
    assert health["FailingStreak"] >= 2 and len(health["Log"]) <= 5
    assert "No such file or directory" in health["Log"][-1]["Output"]
    assert health["Log"][-1]["ExitCode"] == 1
    assert ok(busybox, "ps", "--filter", f"name={name}", "--format", "{{.Status}}").strip().endswith("(unhealthy)")
    actions = [e["Action"] for e in events(busybox, since, f"container={name}")]
    assert "health_status: healthy" in actions and "health_status: unhealthy" in actions
    assert actions.index("health_status: healthy") < actions.index("health_status: unhealthy")
    assert "exec_create: /bin/sh -c cat /tmp/healthy" in actions and "exec_die" in actions
    assert inspect(busybox, name)["ExecIDs"] is None  # probes are not user execs


def test_healthcheck_timeout_pause_and_none(busybox, names):
    slow = names()
    ok(busybox, "run", "-d", "--name", slow, "--health-cmd", "echo begun; sleep 5",
       "--health-interval", "300ms", "--health-timeout", "500ms", "--health-retries", "1",
       "busybox", "sleep", "300")
    wait_for(lambda: inspect(busybox, slow)["State"]["Health"]["Status"] == "unhealthy",
             timeout=10, message="unhealthy by timeout")
    entry = inspect(busybox, slow)["State"]["Health"]["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (500ms): begun\n"
    # the timed-out probe was killed: no pile of sleeps
    assert ok(busybox, "top", slow).count("sleep 5") <= 1

    fast = names()
    ok(busybox, "run", "-d", "--name", fast, "--health-cmd", "true", "--health-interval", "200ms",
       "busybox", "sleep", "300")
    wait_for(lambda: len(inspect(busybox, fast)["State"]["Health"]["Log"]) >= 2, message="probes")
    ok(busybox, "pause", fast)
    time.sleep(0.3)
    frozen = inspect(busybox, fast)["State"]["Health"]["Log"][-1]["Start"]
    time.sleep(0.8)
    assert inspect(busybox, fast)["State"]["Health"]["Log"][-1]["Start"] == frozen
    ok(busybox, "unpause", fast)
    wait_for(lambda: inspect(busybox, fast)["State"]["Health"]["Log"][-1]["Start"] != frozen,
             message="probes after unpause")

    none = names()
    ok(busybox, "run", "-d", "--name", none, "--no-healthcheck", "busybox", "sleep", "300")
    data = inspect(busybox, none)
    assert data["Config"]["Healthcheck"]["Test"] == ["NONE"] and "Health" not in data["State"]
    result = docker_cli(busybox, "run", "-d", "--health-cmd", "true", "--health-interval", "1us",
                        "busybox", "true")
    assert result.returncode != 0


def test_image_healthcheck_is_inherited_and_overridable(busybox, names):
    base = names()
    ok(busybox, "run", "--name", base, "busybox", "true")
    image = f"{base}:hc"
    ok(busybox, "commit", "--change", 'HEALTHCHECK --interval=300ms --retries=1 CMD ["false"]',
       base, image)
    try:
        inherited = names()
        ok(busybox, "run", "-d", "--name", inherited, image, "sleep", "300")
        wait_for(lambda: inspect(busybox, inherited)["State"]["Health"]["Status"] == "unhealthy",
                 message="image healthcheck")
        cfg = inspect(busybox, inherited)["Config"]["Healthcheck"]
        assert cfg["Test"] == ["CMD", "false"] and cfg["Interval"] == 300_000_000
        override = names()
        ok(busybox, "run", "-d", "--name", override, "--health-cmd", "true", image, "sleep", "300")
        wait_for(lambda: inspect(busybox, override)["State"]["Health"]["Status"] == "healthy",
                 message="overridden healthcheck")
        assert inspect(busybox, override)["Config"]["Healthcheck"]["Interval"] == 300_000_000
        disabled = names()
        ok(busybox, "run", "-d", "--name", disabled, "--no-healthcheck", image, "sleep", "300")
        assert "Health" not in inspect(busybox, disabled)["State"]
    finally:
        docker_cli(busybox, "rm", "-f", *[n for n in (locals().get("inherited"), locals().get("override"),
                                                    locals().get("disabled")) if n])
        docker_cli(busybox, "rmi", image)


# -- restart policies --------------------------------------------------------------------------------
def test_on_failure_restarts_with_backoff_and_a_maximum(busybox, names):
    name = names()
    since = time.time()
    ok(busybox, "run", "-d", "--name", name, "--restart", "on-failure:3", "busybox", "sh", "-c", "exit 3")
    wait_for(lambda: inspect(busybox, name)["RestartCount"] == 3
             and inspect(busybox, name)["State"]["Status"] == "exited", timeout=15,
             message="three restarts")
    time.sleep(1.0)
    data = inspect(busybox, name)
    assert data["RestartCount"] == 3 and data["State"]["ExitCode"] == 3
    evs = events(busybox, since, f"container={name}")
    starts = [e["timeNano"] for e in evs if e["Action"] == "start"]
    dies = [e for e in evs if e["Action"] == "die"]
    assert len(starts) == 4 and len(dies) == 4
    assert all(e["Actor"]["Attributes"]["exitCode"] == "3" for e in dies)
    gaps = [(b - a) / 1e9 for a, b in zip(starts, starts[1:])]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4, gaps  # 100ms doubling
    assert gaps[2] > gaps[0]


def test_on_failure_does_not_restart_success(busybox, names):
    name = names()
    ok(busybox, "run", "-d", "--name", name, "--restart", "on-failure", "busybox", "true")
    time.sleep(1.0)
    data = inspect(busybox, name)
    assert data["RestartCount"] == 0 and data["State"]["Status"] == "exited"


def test_always_restarting_state_stop_and_start(busybox, names, client):
    name = names()
    ok(busybox, "run", "-d", "--name", name, "--restart", "always", "busybox", "sh", "-c", "exit 2")

    def restarting():
        status = ok(busybox, "ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}").strip()
        return status if status.startswith("Restarting (2) ") else None
    wait_for(restarting, timeout=20, interval=0.05, message="Restarting status")
    data = inspect(busybox, name)
    assert data["State"]["Restarting"] and data["State"]["Running"] and data["State"]["Pid"] == 0
    assert data["State"]["Status"] == "restarting"
    assert ok(busybox, "ps", "-q", "--filter", f"name={name}", "--filter", "status=restarting").strip()
    result = docker_cli(busybox, "rm", name)
    assert result.returncode != 0 and "container is restarting: stop the container before " \
        "removing or force remove" in result.stderr
    result = docker_cli(busybox, "exec", name, "true")
    assert result.returncode != 0 and "is restarting, wait until the container is running" in result.stderr
    waiter = subprocess.Popen(["docker", "wait", name], env=busybox.env(), stdout=subprocess.PIPE,
                              text=True)
    ok(busybox, "stop", name)
    assert waiter.communicate(timeout=20)[0].strip() == "2"
    count = inspect(busybox, name)["RestartCount"]  # it kept restarting until the stop
    assert count >= 1
    time.sleep(1.0)
    data = inspect(busybox, name)
    assert data["State"]["Status"] == "exited" and data["State"]["ExitCode"] == 2
    assert data["RestartCount"] == count  # not restarted after a manual stop
    ok(busybox, "update", "--restart", "no", name)
    ok(busybox, "start", name)
    time.sleep(0.5)
    assert inspect(busybox, name)["RestartCount"] == 0  # a user start resets the count


def test_kill_and_stop_prevent_restarts_but_a_crash_does_not(busybox, names):
    always, unless = names("always"), names("unless")
    ok(busybox, "run", "-d", "--name", always, "--restart", "always", "busybox", "sleep", "300")
    ok(busybox, "run", "-d", "--name", unless, "--restart", "unless-stopped", "--init",
       "busybox", "sleep", "300")
    pid = inspect(busybox, always)["State"]["Pid"]
    os.kill(pid, 9)  # a crash, not the user: restarted
    wait_for(lambda: inspect(busybox, always)["RestartCount"] == 1
             and inspect(busybox, always)["State"]["Running"]
             and not inspect(busybox, always)["State"]["Restarting"], message="restart after crash")
    assert inspect(busybox, always)["State"]["Pid"] != pid
    ok(busybox, "kill", always)
    ok(busybox, "kill", "-s", "USR1", unless)  # no StopSignal configured: any kill counts
    time.sleep(1.0)
    for name in (always, unless):
        data = inspect(busybox, name)
        assert data["State"]["Status"] == "exited", name
    assert inspect(busybox, always)["RestartCount"] == 1


def test_docker_py_restart_policy_and_lifecycle(busybox, names, client):
    name = names()
    container = client.containers.run("busybox", ["sh", "-c", "sleep 0.2; exit 1"], name=name,
                                      detach=True, restart_policy={"Name": "on-failure",
                                                                   "MaximumRetryCount": 2})
    wait_for(lambda: client.containers.get(name).attrs["RestartCount"] == 2
             and client.containers.get(name).status == "exited", timeout=15, message="2 restarts")
    container.reload()
    assert container.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                              "MaximumRetryCount": 2}
    other = client.containers.run("busybox", ["sleep", "300"], name=names(), detach=True)
    other.pause()
    other.reload()
    assert other.status == "paused"
    other.unpause()
    other.reload()
    assert other.status == "running"
    other.update(restart_policy={"Name": "unless-stopped"})
    other.reload()
    assert other.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    with pytest.raises(docker.errors.APIError) as info:
        client.api.update_container(other.id, restart_policy={"Name": "bogus"})
    assert info.value.status_code == 400
    assert client.containers.get(other.id).top()["Processes"][0][-1] == "sleep 300"
