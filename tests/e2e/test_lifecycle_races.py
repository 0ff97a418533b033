"""Operations on one container sent together, as racing clients send them: every pair ends
with an answer below 500, in time, with the container's state agreeing with runc's and
nothing left behind. Also: a shim killed under a running container, `--rm` containers at
daemon start, and the details of kill, wait and exec that clients read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading

import docker
import pytest

from berth.client.api import APIClient as BerthClient
from daemon_harness import start_daemon
from images_harness import import_busybox
from lifecycle_support import force_cleanup, leaks, wait_for

pytestmark = pytest.mark.e2e

ROUNDS = 10


@pytest.fixture(scope="module")
def lab():
    """A daemon of this module's own, whose root is checked for leftovers at the end."""
    root = tempfile.mkdtemp(prefix="berth-race-")
    daemon = start_daemon(root=root)
    import_busybox(daemon.env())
    api = docker.APIClient(base_url=daemon.host, version="1.47", timeout=60)
    try:
        yield daemon, api
        for container in api.containers(all=True):
            api.remove_container(container["Id"], force=True)
        # removals answer while the shims still run `runc delete` and clear their state
        wait_for(lambda: not leaks(root, set()), timeout=15, message="nothing left behind")
        assert runc_ids(daemon) == set()
    finally:
        api.close()
        daemon.stop()
        force_cleanup(root)


def runc_ids(daemon) -> set[str]:
    out = subprocess.run(["runc", "--root", os.path.join(daemon.exec_root, "runc"), "list",
                          "--format", "json"], capture_output=True, text=True).stdout
    return {c["id"] for c in json.loads(out or "null") or []}


def runc_status(daemon, container_id: str) -> str | None:
    out = subprocess.run(["runc", "--root", os.path.join(daemon.exec_root, "runc"), "state",
                          container_id], capture_output=True, text=True)
    return json.loads(out.stdout)["status"] if out.returncode == 0 else None


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def gone_from_runc(daemon, container_id: str) -> None:
    """A removal answers while the shim still runs `runc delete`: gone soon after."""
    wait_for(lambda: container_id not in runc_ids(daemon), timeout=10,
             message=f"runc to forget {container_id[:12]}")


def together(*calls):
    """Run the calls at the same moment; each gives its result, or the exception it raised.
    An API error of 500 or more fails the test; so does a call that does not return."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except docker.errors.APIError as exc:
            results[i] = exc
        except Exception as exc:  # noqa: BLE001 - timeouts and the like: reported below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
        assert not thread.is_alive(), "an operation hung"
    for result in results:
        if isinstance(result, docker.errors.APIError):
            assert result.status_code < 500, f"{result.status_code}: {result.explanation}"
        else:
            assert not isinstance(result, Exception), repr(result)
    return results


def consistent(daemon, api, container_id: str) -> None:
    """What inspect says agrees with runc, once the operations have answered."""
    try:
        state = api.inspect_container(container_id)["State"]
    except docker.errors.NotFound:
        gone_from_runc(daemon, container_id)
        return
    status = runc_status(daemon, container_id)
    if state["Running"] and not state["Restarting"]:
        assert status in ("running", "paused"), (state, status)
    else:  # stopped: the shim's `runc delete` may still be on its way
        assert status in (None, "stopped"), (state, status)
        gone_from_runc(daemon, container_id)


def sleeper(api, start: bool = True, **host) -> str:
    container = api.create_container("busybox", ["sleep", "60"], stop_signal="SIGKILL",
                                     host_config=api.create_host_config(**host))["Id"]
    if start:
        api.start(container)
    return container


@pytest.mark.parametrize("pair", ["start/rm", "exec/rm", "pause/rm", "stop/rm", "restart/stop",
                                  "kill/start", "connect/rm", "start/start"])
def test_operations_racing_on_one_container(lab, pair):
    daemon, api = lab
    network = api.create_network(f"race-{os.getpid()}")["Id"] if pair == "connect/rm" else None
    try:
        for _ in range(ROUNDS):
            cid = sleeper(api, start=pair not in ("start/rm", "start/start"))
            exec_id = api.exec_create(cid, ["true"])["Id"] if pair == "exec/rm" else None
            remove = lambda: api.remove_container(cid, force=True)  # noqa: E731
            calls = {
                "start/rm": (lambda: api.start(cid), remove),
                "exec/rm": (lambda: api.exec_start(exec_id, detach=True), remove),
                "pause/rm": (lambda: api.pause(cid), remove),
                "stop/rm": (lambda: api.stop(cid, timeout=1), remove),
                "restart/stop": (lambda: api.restart(cid, timeout=1), lambda: api.stop(cid, timeout=1)),
                "kill/start": (lambda: api.kill(cid), lambda: api.start(cid)),
                "connect/rm": (lambda: api.connect_container_to_network(cid, network), remove),
                "start/start": (lambda: api.start(cid), lambda: api.start(cid)),
            }[pair]
            together(*calls)
            consistent(daemon, api, cid)
            try:
                api.remove_container(cid, force=True)
            except docker.errors.NotFound:
                pass
            gone_from_runc(daemon, cid)
    finally:
        if network:
            api.remove_network(network)


def test_a_killed_shim_ends_its_container_through_the_runtime(lab):
    daemon, api = lab
    cid = sleeper(api, restart_policy={"Name": "on-failure"})
    first_pid = api.inspect_container(cid)["State"]["Pid"]
    with open(os.path.join(daemon.exec_root, "containers", cid, "shim.pid")) as handle:
        os.kill(int(handle.read()), signal.SIGKILL)
    # the exit is recorded (137: the runtime killed it), the restart policy applies
    wait_for(lambda: api.inspect_container(cid)["RestartCount"] == 1, message="a restart")
    state = wait_for(lambda: (s := api.inspect_container(cid)["State"])["Running"]
                     and s["Pid"] and s, message="running again")
    assert state["Pid"] != first_pid
    wait_for(lambda: not alive(first_pid), timeout=5, message="the first run to end")
    api.remove_container(cid, force=True)
    gone_from_runc(daemon, cid)


def test_rm_containers_that_are_not_running_go_at_daemon_start(fresh_berthd):
    daemon = fresh_berthd()
    import_busybox(daemon.env())
    api = docker.APIClient(base_url=daemon.host, version="1.47", timeout=60)
    created = api.create_container("busybox", ["true"],
                                   host_config=api.create_host_config(auto_remove=True))["Id"]
    kept = api.create_container("busybox", ["true"])["Id"]
    api.close()
    daemon.stop()
    again = fresh_berthd(root=daemon.root)
    api = docker.APIClient(base_url=again.host, version="1.47", timeout=60)
    try:
        ids = {c["Id"] for c in api.containers(all=True)}
        assert created not in ids and kept in ids
        api.remove_container(kept)
    finally:
        api.close()


def test_kill_answers_once_a_terminal_container_has_exited(lab):
    daemon, api = lab
    for _ in range(5):
        cid = api.create_container("busybox", ["top"], tty=True, stdin_open=True)["Id"]
        api.start(cid)
        api.kill(cid)
        assert api.inspect_container(cid)["State"]["Status"] == "exited"
        api.remove_container(cid)


def test_wait_answers_as_dockerd_and_late_for_auto_removed_containers(lab):
    daemon, api = lab
    cid = sleeper(api, start=False)
    api.start(cid)
    api.kill(cid)
    berth_api = BerthClient(daemon.host)
    try:
        body = berth_api.request("POST", f"/containers/{cid}/wait").read()
    finally:
        berth_api.close()
    assert body == b'{"Error":null,"StatusCode":137}\n'
    api.remove_container(cid)
    client = docker.DockerClient(base_url=daemon.host, version="1.47")
    try:
        for _ in range(3):  # docker-py's run: start, inspect, logs, then wait
            with pytest.raises(docker.errors.ContainerError) as info:
                client.containers.run("busybox", ["sh", "-c", "exit 3"], auto_remove=True)
            assert info.value.exit_status == 3
    finally:
        client.close()


def test_exec_details_that_clients_read(lab):
    daemon, api = lab
    cid = sleeper(api)
    # the terminal is the create's, whatever the start's body says (docker-py sends False)
    exec_id = api.exec_create(cid, ["echo", "hello"], tty=True)["Id"]
    assert api.exec_start(exec_id, tty=False) == b"hello\r\n"
    # every start that fails answers 126, as dockerd
    failed = api.exec_create(cid, ["no-such-command"])["Id"]
    api.exec_start(failed)
    assert api.exec_inspect(failed)["ExitCode"] == 126
    # container processes start with no signal ignored (nor do their exec processes)
    for command in (["cat", "/proc/1/status"], ["cat", "/proc/self/status"]):
        status = api.exec_start(api.exec_create(cid, command)["Id"]).decode()
        assert "SigIgn:\t0000000000000000" in status
    api.remove_container(cid, force=True)
