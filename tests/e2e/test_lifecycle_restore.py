"""Daemon restarts: live-restore after SIGTERM/SIGKILL, graceful shutdown without
it, restart policies at daemon start, and startup reconcile after crashes at many points."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import tempfile
import time

import pytest

from daemon_harness import start_daemon
from images_harness import import_busybox
from lifecycle_support import (container_ids, docker_cli, events, force_cleanup, inspect, leaks,
                               ok, shim_pids, wait_for, cgroup_pids)
from berth.timeutil import parse_time_value

pytestmark = pytest.mark.e2e

LOOP = "i=0; while true; do i=$((i+1)); echo line$i; sleep 0.1; done"
TRAP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


@pytest.fixture
def lab():
    """A daemon root the test may kill daemons on; everything is cleaned up afterwards."""
    root = tempfile.mkdtemp(prefix="berth-lc-")
    daemons = []

    class Lab:
        def __init__(self):
            self.root = root

        def start(self, live=True, **kwargs):
            daemon = start_daemon(root=root, args=["--live-restore"] if live else [], **kwargs)
            daemons.append(daemon)
            return daemon

    yield Lab()
    for daemon in daemons:
        if daemon.process.poll() is None:
            daemon.stop(signal.SIGKILL)
    force_cleanup(root)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(") ")[1][0] != "Z"


def _finish(lab, daemon):
    """Remove every container through the API, stop the daemon, and check nothing leaked."""
    ids = ok(daemon, "ps", "-aq").split()
    if ids:
        ok(daemon, "rm", "-f", *ids, timeout=120)
    assert daemon.stop() == 0, daemon.log()[-3000:]
    assert leaks(lab.root, set()) == []
    assert shim_pids(lab.root) == set()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_live_restore_keeps_containers_across_daemon_death(lab, sig):
    # SIGKILL: with the flag; SIGTERM: with daemon.json's "live-restore"
    daemon = lab.start(live=True) if sig == signal.SIGKILL else \
        lab.start(live=False, config={"live-restore": True})
    import_busybox(daemon.env())
    ok(daemon, "run", "-d", "--name", "logger", "busybox", "sh", "-c", LOOP)
    ok(daemon, "run", "-d", "--name", "healthy", "--health-cmd", "true", "--health-interval",
       "300ms", "busybox", "sleep", "300")
    ok(daemon, "run", "-d", "--name", "quitter", "busybox", "sh", "-c", "sleep 2; exit 7")
    ok(daemon, "run", "-d", "--name", "retry", "--restart", "on-failure", "busybox", "sh", "-c",
       "sleep 2; exit 5")
    ok(daemon, "run", "-d", "--name", "frozen", "busybox", "sleep", "300")
    ok(daemon, "pause", "frozen")
    wait_for(lambda: inspect(daemon, "healthy")["State"]["Health"]["Status"] == "healthy",
             message="healthy before")
    pids = {n: inspect(daemon, n)["State"]["Pid"] for n in ("logger", "healthy", "frozen")}
    before = docker_cli(daemon, "logs", "logger").stdout.count("\n")

    daemon.stop(sig)
    assert daemon.process.returncode is not None
    assert all(_alive(pid) for pid in pids.values())
    time.sleep(3.0)  # quitter and retry exit meanwhile; logger keeps writing
    restarted_at = time.time()
    daemon = lab.start(live=True) if sig == signal.SIGKILL else \
        lab.start(live=False, config={"live-restore": True})
    assert json.loads(ok(daemon, "info", "--format", "{{json .LiveRestoreEnabled}}")) is True

    for name, pid in pids.items():
        state = inspect(daemon, name)["State"]
        assert state["Running"] and state["Pid"] == pid, name
    assert inspect(daemon, "frozen")["State"]["Paused"] is True
    names = ok(daemon, "ps", "--format", "{{.Names}}").split()
    assert {"logger", "healthy", "frozen"} <= set(names)

    logs = docker_cli(daemon, "logs", "logger").stdout.splitlines()
    assert len(logs) > before + 20  # written while the daemon was away
    assert logs[:len(logs)] == [f"line{i}" for i in range(1, len(logs) + 1)]

    quitter = inspect(daemon, "quitter")["State"]
    assert (quitter["Status"], quitter["ExitCode"]) == ("exited", 7)
    assert parse_time_value(quitter["FinishedAt"]) / 1e9 < restarted_at
    dies = events(daemon, restarted_at - 1, "container=quitter", "event=die")
    assert [e["Actor"]["Attributes"]["exitCode"] for e in dies] == ["7"]
    wait_for(lambda: inspect(daemon, "retry")["RestartCount"] >= 1, message="restart policy applied")
    wait_for(lambda: events(daemon, restarted_at - 1, "container=retry", "event=start"),
             message="retry started again")

    wait_for(lambda: inspect(daemon, "healthy")["State"]["Health"]["Status"] == "healthy",
             message="healthchecks resumed")
    assert ok(daemon, "exec", "logger", "echo", "exec-ok").strip() == "exec-ok"
    attach = subprocess.Popen(["docker", "attach", "--no-stdin", "logger"], env=daemon.env(),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert attach.stdout.readline().startswith("line")
    finally:
        attach.kill()
        attach.wait()
    mem = ok(daemon, "stats", "--no-stream", "--format", "{{.MemUsage}}", "logger")
    assert not mem.startswith("0B")
    ok(daemon, "unpause", "frozen")
    ok(daemon, "stop", "-t", "1", "logger")
    assert inspect(daemon, "logger")["State"]["ExitCode"] == 137
    assert not _alive(pids["logger"])
    _finish(lab, daemon)


def test_shutdown_without_live_restore_is_graceful_parallel_and_policies_apply(lab):
    daemon = lab.start(live=False)
    import_busybox(daemon.env())
    for name in ("t1", "t2", "t3"):
        ok(daemon, "run", "-d", "--name", name, "busybox", "sh", "-c", TRAP)
    ok(daemon, "run", "-d", "--name", "stubborn", "--stop-timeout", "2", "busybox", "sh", "-c",
       "trap '' TERM; while true; do sleep 0.1; done")
    ok(daemon, "run", "-d", "--name", "always", "--restart", "always", "--stop-timeout", "1",
       "busybox", "sleep", "300")
    ok(daemon, "run", "-d", "--name", "unless", "--restart", "unless-stopped", "busybox", "sh",
       "-c", TRAP)
    ok(daemon, "run", "-d", "--name", "stopped", "--restart", "unless-stopped", "busybox", "sh",
       "-c", TRAP)
    ok(daemon, "stop", "stopped")
    ok(daemon, "run", "-d", "--name", "fails", "--restart", "on-failure", "busybox", "sh", "-c", TRAP)
    ok(daemon, "run", "-d", "--name", "stopsig", "--stop-signal", "USR1", "busybox", "sh", "-c",
       "trap 'exit 3' USR1; while true; do sleep 0.1; done")
    time.sleep(0.3)
    pids = {n: inspect(daemon, n)["State"]["Pid"] for n in ("t1", "t2", "t3", "stubborn", "always")}

    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 8, elapsed  # in parallel: about the longest timeout (2s), not the sum
    assert not any(_alive(pid) for pid in pids.values())
    assert shim_pids(lab.root) == set()

    daemon = lab.start(live=False)
    codes = {n: inspect(daemon, n)["State"] for n in
             ("t1", "t2", "t3", "stubborn", "stopped", "fails", "stopsig")}
    assert {n: (s["Status"], s["ExitCode"]) for n, s in codes.items()} == {
        "t1": ("exited", 0), "t2": ("exited", 0), "t3": ("exited", 0),
        "stubborn": ("exited", 137), "stopped": ("exited", 0), "fails": ("exited", 0),
        "stopsig": ("exited", 3)}
    for name in ("always", "unless"):  # not stopped by the user: started with the daemon
        data = inspect(daemon, name)
        assert data["State"]["Running"] and data["RestartCount"] == 0, name
    assert inspect(daemon, "always")["State"]["Pid"] != pids["always"]
    _finish(lab, daemon)


def test_sigkill_without_live_restore_stops_survivors_at_start(lab):
    daemon = lab.start(live=False)
    import_busybox(daemon.env())
    ok(daemon, "run", "-d", "--name", "plain", "busybox", "sh", "-c", TRAP)
    ok(daemon, "run", "-d", "--name", "always", "--restart", "always", "busybox", "sh", "-c", TRAP)
    pids = {n: inspect(daemon, n)["State"]["Pid"] for n in ("plain", "always")}
    daemon.stop(signal.SIGKILL)
    assert all(_alive(p) for p in pids.values())
    since = time.time()
    daemon = lab.start(live=False)
    plain = inspect(daemon, "plain")["State"]
    assert (plain["Status"], plain["ExitCode"]) == ("exited", 0)
    assert not _alive(pids["plain"])
    assert [e["Action"] for e in events(daemon, since, "container=plain")][-1] == "die"
    always = inspect(daemon, "always")
    assert always["State"]["Running"] and always["State"]["Pid"] != pids["always"]
    _finish(lab, daemon)


def test_startup_reconcile_of_crash_leftovers(lab):
    daemon = lab.start(live=True)
    import_busybox(daemon.env())
    half = ok(daemon, "create", "--name", "half", "busybox", "true").strip()
    layerless = ok(daemon, "create", "--name", "layerless", "busybox", "true").strip()
    keeper = ok(daemon, "run", "-d", "--name", "keeper", "busybox", "sleep", "300").strip()
    orphan = ok(daemon, "run", "-d", "--name", "orphan", "busybox", "sleep", "300").strip()
    keeper_pid = inspect(daemon, "keeper")["State"]["Pid"]
    orphan_pid = inspect(daemon, "orphan")["State"]["Pid"]
    daemon.stop(signal.SIGKILL)

    data = os.path.join(lab.root, "data")
    # a create that crashed before its record was written: layer and directory, no record
    with sqlite3.connect(os.path.join(data, "berth.db")) as db:
        db.execute("DELETE FROM containers WHERE id = ?", (half,))
    # a removal that crashed after the layer went: a record without its layer
    os.unlink(os.path.join(data, "layerdb", "mounts", layerless + ".json"))
    # a shim killed with the daemon: its container runs on, nobody reads its output
    with open(os.path.join(lab.root, "exec", "containers", orphan, "shim.pid")) as handle:
        os.kill(int(handle.read()), signal.SIGKILL)
    time.sleep(0.3)
    assert _alive(orphan_pid)
    # leftovers of an unknown container in the exec-root
    junk = "e" * 64
    os.makedirs(os.path.join(lab.root, "exec", "containers", junk))

    since = time.time()
    daemon = lab.start(live=True)
    assert docker_cli(daemon, "inspect", "half").returncode != 0
    assert half not in container_ids(lab.root)
    assert not os.path.exists(os.path.join(data, "containers", half))
    state = inspect(daemon, "layerless")["State"]
    assert state["Status"] == "dead" and state["Dead"] is True
    ok(daemon, "rm", "layerless")
    orphan_state = inspect(daemon, "orphan")["State"]
    assert orphan_state["Status"] == "exited" and orphan_state["ExitCode"] == 137
    assert not _alive(orphan_pid) and not cgroup_pids(orphan)
    assert not os.path.exists(os.path.join(lab.root, "exec", "runc", orphan))
    assert [e["Actor"]["Attributes"]["exitCode"]
            for e in events(daemon, since, "container=orphan", "event=die")] == ["137"]
    assert inspect(daemon, "keeper")["State"]["Pid"] == keeper_pid
    assert not os.path.exists(os.path.join(lab.root, "exec", "containers", junk))
    assert leaks(lab.root, {keeper}) == []
    _finish(lab, daemon)


OPS = ("create", "run", "exec", "stop", "rm", "start", "restart")


def _check_consistent(lab, daemon, history=()):
    """Every record agrees with the processes, runtime state, mounts and files (once pending
    restart-policy restarts, which the restore may have scheduled, are done)."""
    wait_for(lambda: not ok(daemon, "ps", "-q", "--filter", "status=restarting").strip(),
             message="pending restarts")
    ids = ok(daemon, "ps", "-aq", "--no-trunc").split()
    running = set()
    for cid in ids:
        data = inspect(daemon, cid)
        state = data["State"]
        if state["Dead"]:
            ok(daemon, "rm", "-f", cid)  # a crash mid-removal: the user can finish it
            continue
        if state["Running"] and not state["Restarting"]:
            running.add(cid)
            assert state["Pid"] > 0 and _alive(state["Pid"]), data["Name"]
            assert state["Pid"] in cgroup_pids(cid), data["Name"]
        else:
            assert state["Status"] in ("created", "exited"), state
            assert not os.path.exists(os.path.join(lab.root, "exec", "containers", cid))
    records = set(ok(daemon, "ps", "-aq", "--no-trunc").split())
    assert container_ids(lab.root) <= records | running, container_ids(lab.root) - records
    problems = leaks(lab.root, running)
    assert problems == [], (problems, list(history))
    return records, running


def test_sigkill_at_random_points_leaves_consistent_state(lab):
    rng = random.Random(int(os.environ.get("BERTH_CRASH_SEED", "5")))
    live = True
    daemon = lab.start(live=live)
    import_busybox(daemon.env())
    counter = 0
    history = []
    for iteration in range(int(os.environ.get("BERTH_CRASH_ITERATIONS", "12"))):
        records, running = _check_consistent(lab, daemon, history)
        if len(running) < 2:
            counter += 1
            ok(daemon, "run", "-d", "--name", f"keep{counter}", "busybox", "sh", "-c", TRAP)
            records, running = _check_consistent(lab, daemon)
        op = OPS[iteration % len(OPS)] if iteration < len(OPS) else rng.choice(OPS)
        counter += 1
        target_running = rng.choice(sorted(running))
        stopped = sorted(records - running)
        if op == "create":
            args = ["create", "--name", f"c{counter}", "busybox", "sh", "-c", TRAP]
        elif op == "run":
            args = ["run", "-d", "--name", f"c{counter}", "--restart",
                    rng.choice(["no", "always"]), "busybox", "sh", "-c", TRAP]
        elif op == "exec":
            args = ["exec", target_running, "sh", "-c", "sleep 0.3; echo x"]
        elif op == "stop":
            args = ["stop", "-t", "2", target_running]
        elif op == "rm":
            args = ["rm", "-f", rng.choice(sorted(records))]
        elif op == "start" and stopped:
            args = ["start", rng.choice(stopped)]
        else:
            args = ["restart", "-t", "1", target_running]
        client = subprocess.Popen(["docker", *args], env=daemon.env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        delay = rng.uniform(0.0, 0.6)
        time.sleep(delay)
        history.append((args, round(delay, 3), "live" if live else "no-live"))
        daemon.stop(signal.SIGKILL)
        try:
            client.wait(10)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
        if rng.random() < 0.3:
            live = not live
        daemon = lab.start(live=live)
    _check_consistent(lab, daemon)
    _finish(lab, daemon)


def test_exit_is_recorded_while_runc_deletes_and_the_next_start_waits(lab):
    # The shim tells the exit before `runc delete`; a start or removal right after it must
    # wait for the delete (a runtime whose delete takes 0.5 s makes the window wide).
    slow = os.path.join(lab.root, "slow-delete-runc")
    with open(slow, "w") as handle:
        handle.write('#!/bin/sh\nfor a; do [ "$a" = delete ] && sleep 0.5; done\nexec runc "$@"\n')
    os.chmod(slow, 0o755)
    daemon = lab.start(live=False, config={"runtimes": {"slowdel": {"path": slow}}})
    import_busybox(daemon.env())
    result = docker_cli(daemon, "run", "--runtime", "slowdel", "--name", "sd-a", "busybox", "sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr
    for _ in range(2):  # started again at once, while the last run's delete may still be going
        result = docker_cli(daemon, "start", "-a", "sd-a")
        assert result.returncode == 3, result.stderr
    ok(daemon, "run", "--rm", "--runtime", "slowdel", "busybox", "true")
    ok(daemon, "run", "--rm", "--runtime", "slowdel", "--pid", "host", "busybox", "true")
    ok(daemon, "run", "--runtime", "slowdel", "--name", "sd-b", "busybox", "true")
    ok(daemon, "rm", "sd-a", "sd-b")
    states = os.path.join(daemon.exec_root, "containers")
    wait_for(lambda: os.listdir(states) == [], message="state directories removed")
    _finish(lab, daemon)


def test_removal_is_told_while_the_runtime_still_deletes(lab):
    # A runtime whose delete waits for a gate file: `docker run --rm` must return (the
    # container gone from the API) while the shim still deletes; the shim's state goes after.
    gate = os.path.join(lab.root, "release-delete")
    gated = os.path.join(lab.root, "gated-delete-runc")
    with open(gated, "w") as handle:
        handle.write(f'#!/bin/sh\nfor a; do [ "$a" = delete ] && while [ ! -e {gate} ]; do '
                     'sleep 0.05; done; done\nexec runc "$@"\n')
    os.chmod(gated, 0o755)
    daemon = lab.start(live=False, config={"runtimes": {"gated": {"path": gated}}})
    import_busybox(daemon.env())
    ok(daemon, "run", "--rm", "--runtime", "gated", "--name", "gd", "busybox", "true", timeout=30)
    assert ok(daemon, "ps", "-aq") == ""
    assert docker_cli(daemon, "inspect", "gd").returncode == 1
    ok(daemon, "run", "--rm", "--runtime", "gated", "--name", "gd", "busybox", "true", timeout=30)
    states = os.path.join(daemon.exec_root, "containers")
    assert len(os.listdir(states)) == 2  # both shims are still in their runtime's delete
    with open(gate, "w"):
        pass
    wait_for(lambda: os.listdir(states) == [], message="state directories removed")
    _finish(lab, daemon)
