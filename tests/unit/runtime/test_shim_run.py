"""Real containers: runc through the shim, on a busybox-static rootfs (needs root and runc)."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from berth.errors import BerthError, Conflict, InvalidParameter, NotFound
from berth.runtime import cgroups, oci, sealedexe, shim, spec as specmod
from rt_support import needs_runc

pytestmark = [needs_runc, pytest.mark.timeout(60)]
LOG_LINE = re.compile(rb'^\{"log":"hi\\n","stream":"stdout","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"\}\n$')


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def log_entries(opts):
    with open(opts.log_path, "rb") as f:
        return [json.loads(line) for line in f]


def test_echo_hi_end_to_end(env):
    out, err, record, sd, opts = env.run(["echo", "hi"])
    assert (out, err, record["exit_code"]) == (b"hi\n", b"", 0)
    with open(opts.log_path, "rb") as f:
        assert LOG_LINE.match(f.read())
    saved = json.load(open(os.path.join(sd, "exit.json")))
    assert saved["exit_code"] == 0 and saved["finished_at"].endswith("Z") and saved["oom_killed"] is False
    # the shim cleaned up after itself: no socket, no runc state, no cgroup
    assert not os.path.exists(os.path.join(sd, "shim.sock"))
    cid = os.path.basename(sd)
    assert wait_for(lambda: not shim.ShimClient(os.path.join(sd, "shim.sock")).is_alive())
    assert not os.path.exists(os.path.join(env.runc_root, cid))
    assert not any(os.path.exists(d) for d in cgroups.container_dirs(f"/{env.cgroup_parent}/{cid}"))


def test_stdout_and_stderr_stay_separate(env):
    out, err, record, _, opts = env.run(["sh", "-c", "echo out; echo err >&2; printf partial; exit 3"])
    assert out == b"out\npartial" and err == b"err\n" and record["exit_code"] == 3
    got = sorted((e["stream"], e["log"]) for e in log_entries(opts))
    assert got == [("stderr", "err\n"), ("stdout", "out\n"), ("stdout", "partial")]


def test_container_sees_docker_defaults(env):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    expected_nofile = min(1048576, hard if hard != resource.RLIM_INFINITY else 1048576)
    out, _, record, _, _ = env.run(["sh", "-c", "grep -E 'CapEff|Seccomp:' /proc/self/status; ulimit -n; "
                                                "cat /proc/1/cmdline; echo; ip -o link | wc -l"])
    lines = out.decode().splitlines()
    assert lines[0] == "CapEff:\t00000000a80425fb"
    assert lines[1] == "Seccomp:\t2"
    assert lines[2] == str(expected_nofile)
    assert lines[3].startswith("sh")
    assert lines[4] == "1"  # private network namespace: loopback only


def test_command_not_found_and_not_executable(env):
    with pytest.raises(oci.StartError) as e:
        env.create(["nope"])
    assert e.value.exit_code == 127 and e.value.status == 400
    assert 'exec: "nope": executable file not found in $PATH' in e.value.message
    with pytest.raises(oci.StartError) as e:
        env.create(["/etc/notexec.sh"])
    assert e.value.exit_code == 126 and "permission denied" in e.value.message


def test_stdin_is_passed_and_closed(env):
    client, sd, _, _ = env.create(["sh", "-c", "cat; echo done"], config={"OpenStdin": True})
    stream = client.attach(stdin=True, close_stdin=True)
    client.start()
    stream.write(b"line one\nline two\n")
    stream.close_stdin()
    out, _ = stream.read_all()
    assert out == b"line one\nline two\ndone\n" and stream.exit_code == 0
    assert client.wait(timeout=10)["exit_code"] == 0


def test_stdin_sent_before_start_is_kept(env):
    client, _, _, _ = env.create(["cat"], config={"OpenStdin": True})
    stream = client.attach(stdin=True, close_stdin=True)
    stream.write(b"early\n")
    stream.close_stdin()
    client.start()
    assert stream.read_all()[0] == b"early\n"


def test_tty_output_resize_and_log(env):
    client, _, _, opts = env.create(["sh", "-c", "tty; sleep 0.2; stty size"],
                                    config={"Tty": True, "OpenStdin": True})
    client.resize(33, 101)
    stream = client.attach(stdin=True)
    assert stream.tty
    client.start()
    out, err = stream.read_all()
    assert err == b"" and out == b"/dev/pts/0\r\n33 101\r\n"
    assert [e["log"] for e in log_entries(opts)] == ["/dev/pts/0\r\n", "33 101\r\n"]
    assert {e["stream"] for e in log_entries(opts)} == {"stdout"}


def test_tty_interactive_input(env):
    client, _, _, _ = env.create(["sh"], config={"Tty": True, "OpenStdin": True})
    stream = client.attach(stdin=True)
    client.start()
    stream.write(b"echo $((6*7))\nexit 5\n")
    out, _ = stream.read_all()
    assert b"42\r\n" in out and stream.exit_code == 5


def test_kill_gives_137_and_init_forwards_sigterm(env):
    client, _, _, _ = env.create(["sleep", "30"])
    client.start()
    client.kill(signal.SIGKILL)
    assert client.wait(timeout=10)["exit_code"] == 137
    client, _, _, _ = env.create(["sleep", "30"], host_config={"Init": True})
    client.start()
    for _ in range(150):  # tini ignores signals until its handlers are set up: repeat
        try:
            client.kill(signal.SIGTERM)
        except (Conflict, shim.ShimGone):  # it exited meanwhile
            pass
        try:
            record = client.wait(timeout=0.2)
            break
        except shim.ShimTimeout:
            continue
    assert record["exit_code"] == 143


def test_kill_before_start(env):
    client, _, _, _ = env.create(["echo", "never"])
    assert client.state()["status"] == "created"
    client.kill(signal.SIGKILL)
    assert client.wait(timeout=10)["exit_code"] == 137


def test_exec_variants(env):
    client, _, sp, _ = env.create(["sleep", "30"])
    with pytest.raises(Conflict):
        client.exec("e0", specmod.build_exec_process(sp, {"Cmd": ["true"]}))
    client.start()
    try:
        pid, stream = client.exec("e1", specmod.build_exec_process(sp, {"Cmd": ["sh", "-c", "echo o; echo e >&2; exit 3"]}))
        assert pid > 0
        assert stream.read_all() == (b"o\n", b"e\n") and stream.exit_code == 3
        assert client.wait(exec_id="e1")["exit_code"] == 3
        # stdin
        _, stream = client.exec("e2", specmod.build_exec_process(sp, {"Cmd": ["cat"]}), stdin=True)
        stream.write(b"abc")
        stream.close_stdin()
        assert stream.read_all()[0] == b"abc" and stream.exit_code == 0
        # tty
        _, stream = client.exec("e3", specmod.build_exec_process(sp, {"Cmd": ["tty"], "Tty": True}), tty=True)
        assert stream.read_all()[0] == b"/dev/pts/0\r\n" and stream.exit_code == 0
        # user
        _, stream = client.exec("e4", specmod.build_exec_process(sp, {"Cmd": ["id", "-u"], "User": "app"}))
        assert stream.read_all()[0] == b"1000\n"
        # missing command: Docker's message and 127
        with pytest.raises(oci.StartError) as e:
            client.exec("e5", specmod.build_exec_process(sp, {"Cmd": ["nope"]}))
        assert e.value.exit_code == 127 and e.value.message.startswith("OCI runtime exec failed: exec failed:")
        # detached: exit code through wait
        pid, stream = client.exec("e6", specmod.build_exec_process(sp, {"Cmd": ["sh", "-c", "exit 4"]}), detach=True)
        assert stream is None and client.wait(exec_id="e6", timeout=10)["exit_code"] == 4
        state = client.state()
        assert state["status"] == "running" and state["execs"]["e1"] == {"pid": state["execs"]["e1"]["pid"],
                                                                        "running": False, "exit_code": 3}
    finally:
        client.kill(signal.SIGKILL)
        client.wait(timeout=10)


def test_runtime_ops_on_running_container(env):
    client, sd, _, _ = env.create(["sleep", "30"], host_config={"Memory": 64 << 20, "PidsLimit": 20})
    info = client.start()
    cid = os.path.basename(sd)
    try:
        state = env.runtime.state(cid)
        assert state["status"] == "running" and state["pid"] == info["pid"]
        assert info["pid"] in env.runtime.ps(cid)
        env.runtime.pause(cid)
        assert env.runtime.state(cid)["status"] == "paused"
        env.runtime.resume(cid)
        env.runtime.update(cid, {"pids": {"limit": 30}})
        mem_dir = [d for d in cgroups.container_dirs(f"/{env.cgroup_parent}/{cid}") if "/memory/" in d][0]
        assert open(os.path.join(mem_dir, "memory.limit_in_bytes")).read().strip() == str(64 << 20)
        pids_dir = [d for d in cgroups.container_dirs(f"/{env.cgroup_parent}/{cid}") if "/pids/" in d][0]
        assert open(os.path.join(pids_dir, "pids.max")).read().strip() == "30"
        stats = env.runtime.stats(cid)
        assert stats["type"] == "stats" and stats["data"]["memory"]["usage"]["limit"] == 64 << 20
    finally:
        client.kill(signal.SIGKILL)
        client.wait(timeout=10)


def test_pause_resume_and_update_go_through_the_shim(env):
    client, sd, _, _ = env.create(["sleep", "30"], host_config={"PidsLimit": 20})
    client.start()
    cid = os.path.basename(sd)
    pids_dir = [d for d in cgroups.container_dirs(f"/{env.cgroup_parent}/{cid}") if "/pids/" in d][0]
    try:
        assert client.state()["paused"] is False
        client.pause()
        assert env.runtime.state(cid)["status"] == "paused" and client.state()["paused"] is True
        with pytest.raises(Conflict):  # runc's own refusal, with its kind
            client.pause()
        client.resume()
        assert env.runtime.state(cid)["status"] == "running" and client.state()["paused"] is False
        client.update({"pids": {"limit": 31}})
        assert open(os.path.join(pids_dir, "pids.max")).read().strip() == "31"
        assert not [n for n in os.listdir(sd) if n.startswith("update-")]  # its file is gone
        with pytest.raises(InvalidParameter):
            client.update("x")  # type: ignore[arg-type]
    finally:
        client.kill(signal.SIGKILL)
        client.wait(timeout=10)
    with pytest.raises(BerthError):  # the container (and its shim) is gone
        client.pause()


def test_security_and_resource_options_inside(env):
    out, _, _, _, _ = env.run(["sh", "-c", "grep -E 'CapEff|Seccomp:' /proc/self/status"],
                              host_config={"Privileged": True})
    bnd = open("/proc/self/status").read().split("CapBnd:\t")[1].split()[0]
    assert out.decode().splitlines() == [f"CapEff:\t{bnd}", "Seccomp:\t0"]
    out, _, _, _, _ = env.run(["sh", "-c", "grep Seccomp: /proc/self/status; id"],
                              config={"User": "app"}, host_config={"SecurityOpt": ["seccomp=unconfined"],
                                                                   "GroupAdd": ["daemon"]})
    assert out == b"Seccomp:\t0\nuid=1000(app) gid=1000(app) groups=1(daemon),10(wheel),50(staff),1000(app)\n"
    out, err, record, _, _ = env.run(["sh", "-c", "touch /x || echo ro; cat /sys/fs/cgroup/pids/pids.max; "
                                                  "hostname; cat /proc/sys/kernel/domainname"],
                                     config={"Hostname": "box", "Domainname": "example.org"},
                                     host_config={"ReadonlyRootfs": True, "PidsLimit": 42})
    assert out == b"ro\n42\nbox\nexample.org\n" and b"Read-only file system" in err


def test_oom_kill_is_reported(env):
    out, _, record, _, _ = env.run(["sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1"],
                                   host_config={"Memory": 8 << 20, "MemorySwap": 8 << 20})
    assert record["exit_code"] == 137 and record["oom_killed"] is True


@pytest.mark.parametrize("run", [False, True])  # True: the output waits in a full pipe first
def test_big_output_is_complete_in_attach_and_log(env, run):
    out, _, record, _, opts = env.run(["seq", "1", "100000"], run=run)
    expected = b"".join(b"%d\n" % i for i in range(1, 100001))
    assert out == expected and record["exit_code"] == 0
    entries = log_entries(opts)
    assert len(entries) == 100000 and entries[-1]["log"] == "100000\n"


def test_log_rotation_and_none_driver(env):
    _, _, _, sd, opts = env.run(["seq", "1", "500"], log_opts={"max-size": "2k", "max-file": "3"})
    names = sorted(n for n in os.listdir(sd) if "-json.log" in n)
    cid = os.path.basename(sd)
    assert names == [f"{cid}-json.log", f"{cid}-json.log.1", f"{cid}-json.log.2"]
    out, _, record, sd, opts = env.run(["echo", "hi"], log_driver="none")
    assert out == b"hi\n" and not os.path.exists(opts.log_path)


SURVIVOR = r"""
import sys
sys.path.insert(0, {tests!r})
from rt_support import Env
import os, signal
from berth.runtime import shim
env = Env.__new__(Env)
env.__dict__.update({state!r})
client, sd, sp, opts = env.create(["sh", "-c", "echo started; sleep 1.5; echo late; exit 9"])
client.start()
print(sd, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # the "daemon" dies
"""


def test_shim_survives_its_daemon_and_records_exit(env):
    state = {k: v for k, v in env.__dict__.items() if isinstance(v, str)}
    code = SURVIVOR.format(tests=os.path.dirname(__file__), state=state)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))), "src")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": src})
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    sd = proc.stdout.decode().strip()
    cid = os.path.basename(sd)
    found = shim.find_shims(env.exec_root)
    assert cid in found
    client = found[cid]
    assert client.is_alive() and client.state()["status"] == "running"
    # a new "daemon" reattaches: exec works and the exit (while nobody listens) is recorded
    sp = json.load(open(os.path.join(sd, "config.json")))
    _, stream = client.exec("after", specmod.build_exec_process(sp, {"Cmd": ["echo", "reattached"]}))
    assert stream.read_all()[0] == b"reattached\n"
    assert wait_for(lambda: os.path.exists(os.path.join(sd, "exit.json")), 10)
    record = shim.ShimClient(os.path.join(sd, "shim.sock")).wait(timeout=5)  # from exit.json
    assert record["exit_code"] == 9
    logs = [json.loads(line)["log"] for line in open(os.path.join(sd, f"{cid}-json.log"))]
    assert logs == ["started\n", "late\n"]


def test_shim_memory(env):
    client, _, _, _ = env.create(["sleep", "30"])
    client.start()
    try:
        pid = client.shim_pid()
        fields = {}
        for line in open(f"/proc/{pid}/smaps_rollup"):
            parts = line.split()
            if parts[0].endswith(":"):
                fields[parts[0].rstrip(":")] = int(parts[1])
        print(f"shim RSS {fields['Rss']} kB, PSS {fields['Pss']} kB, anon {fields['Anonymous']} kB")
        assert fields["Rss"] < 10 * 1024 and fields["Anonymous"] < 5 * 1024
        mods = open(f"/proc/{pid}/cmdline", "rb").read()
        assert b"-S" in mods
    finally:
        client.kill(signal.SIGKILL)
        client.wait(timeout=10)


def test_bad_options_are_refused_before_launch(env):
    cid, sd, sp, opts = env.prepare(["true"], log_opts={"max-file": "0"})
    with pytest.raises(InvalidParameter, match="max-file cannot be less than 1"):
        shim.start_shim(sd, opts)
    assert not os.path.exists(os.path.join(sd, "shim.pid"))


def test_slow_attach_reader_loses_nothing(env):
    client, _, _, opts = env.create(["seq", "1", "400000"])
    stream = client.attach()
    client.start()
    time.sleep(1.0)  # ~2.7 MB pending: the shim stops reading the container meanwhile
    out, _ = stream.read_all()
    assert out == b"".join(b"%d\n" % i for i in range(1, 400001))
    assert client.wait(timeout=10)["exit_code"] == 0
    assert len(log_entries(opts)) == 400000


def test_wait_timeout_and_late_attach(env):
    client, _, _, _ = env.create(["sh", "-c", "sleep 0.5; echo late"])
    client.start()
    with pytest.raises(shim.ShimTimeout):
        client.wait(timeout=0.1)
    stream = client.attach(stdout=True, stderr=False)
    assert stream.read_all() == (b"late\n", b"") and stream.exit_code == 0


def test_dead_shim_is_detectable_and_cleanable(env):
    client, sd, _, _ = env.create(["sleep", "30"])
    client.start()
    os.kill(client.shim_pid(), signal.SIGKILL)
    assert wait_for(lambda: not client.is_alive())
    cid = os.path.basename(sd)
    assert cid in shim.find_shims(env.exec_root)  # the stale socket is still there
    with pytest.raises(shim.ShimGone):
        client.state()
    assert client.read_exit() is None  # died without recording an exit: the engine cleans up
    assert env.runtime.state(cid)["status"] == "running"  # the container outlived its shim
    env.runtime.delete(cid, force=True)
    with pytest.raises(NotFound):
        env.runtime.state(cid)


# --- `runc run` at once (ShimOptions.run, as the engine starts containers) ---------------------

def test_run_mode_holds_output_until_start(env):
    client, _, _, opts = env.create(["sh", "-c", "echo early; echo err >&2"], run=True)
    time.sleep(0.3)  # the process is done: its output waits in the pipes
    assert client.state()["status"] == "created"
    stream = client.attach()
    started = client.start()
    assert stream.read_all() == (b"early\n", b"err\n") and stream.exit_code == 0
    record = client.wait(timeout=10)
    assert record["exit_code"] == 0
    assert started["started_at"] <= record["finished_at"] and record["started_at"] <= record["finished_at"]
    assert sorted(e["log"] for e in log_entries(opts)) == ["early\n", "err\n"]


def test_run_mode_start_errors_read_as_create_errors(env):
    with pytest.raises(oci.StartError) as e:
        env.create(["nope"], run=True)
    assert e.value.exit_code == 127
    assert "OCI runtime create failed: runc create failed: unable to start container process" in e.value.message


def test_run_mode_kill_instead_of_start(env):
    client, _, _, _ = env.create(["sh", "-c", "echo never-read; sleep 30"], run=True)
    client.kill(signal.SIGKILL)
    assert client.wait(timeout=10)["exit_code"] == 137


def test_run_mode_tty(env):
    client, _, _, _ = env.create(["sh", "-c", "tty; echo x"], config={"Tty": True}, run=True)
    stream = client.attach()
    client.start()
    out, _ = stream.read_all()
    assert out == b"/dev/pts/0\r\nx\r\n" and client.wait(timeout=10)["exit_code"] == 0


# --- the spawner: shims forked from a process that has them imported ---------------------------

def test_spawned_shims_outlive_the_spawner(env):
    spawner = shim.ShimSpawner(env.exec_root)
    try:
        cid, sd, _, opts = env.prepare(["sh", "-c", "read line; echo got $line"],
                                       config={"OpenStdin": True}, run=True)
        client = shim.start_shim(sd, opts, spawner=spawner)
        spawner_pid = spawner._proc.pid
        stream = client.attach(stdin=True, close_stdin=True)
        client.start()
    finally:
        spawner.close()
    assert not os.path.exists(f"/proc/{spawner_pid}")
    assert client.is_alive()  # its own process, in its own session
    assert os.getsid(client.shim_pid()) == client.shim_pid()
    stream.write(b"hello\n")
    stream.close_stdin()
    assert stream.read_all()[0] == b"got hello\n"
    assert client.wait(timeout=10)["exit_code"] == 0


def test_spawner_restarts_and_refuses_foreign_directories(env):
    spawner = shim.ShimSpawner(env.exec_root)
    try:
        out, _, record, _, _ = _spawned_run(env, spawner, ["echo", "one"])
        assert out == b"one\n" and record["exit_code"] == 0
        os.kill(spawner._proc.pid, signal.SIGKILL)
        spawner._proc.wait()
        out, _, record, _, _ = _spawned_run(env, spawner, ["echo", "two"])
        assert out == b"two\n"
        listener = socket.socket(socket.AF_UNIX)
        with spawner.launch("/etc", 10, listener) as conn:
            reply = json.loads(conn.makefile("rb").readline())
        listener.close()
        assert reply == {"ok": False, "error": "spawner: state directory outside exec-root"}
        with pytest.raises(oci.StartError) as e:  # runc's error comes back through the spawner
            shim.start_shim(*env.prepare(["nope"], run=True)[1::2], spawner=spawner)
        assert e.value.exit_code == 127
    finally:
        spawner.close()


@pytest.mark.parametrize("sealed", [True, False])
def test_spawned_shims_run_runc_from_a_sealed_copy(env, tmp_path, sealed):
    seen = tmp_path / "runc-exe"  # an OCI hook run by runc records what runc runs from
    hook = tmp_path / "hook"
    hook.write_text(f"#!/bin/sh\nreadlink /proc/$PPID/exe > {seen}\n")
    hook.chmod(0o755)
    runc = shim.runtime_path("runc")
    spawner = shim.ShimSpawner(env.exec_root, lambda: [runc] if sealed else [])
    try:
        cid, sd, sp, opts = env.prepare(["echo", "ok"], run=True)
        sp["hooks"] = {"createRuntime": [{"path": str(hook)}]}
        oci.write_bundle(sd, sp)
        client = shim.start_shim(sd, opts, spawner=spawner)
        held = [os.path.join(f"/proc/{client.shim_pid()}/fd", fd)
                for fd in os.listdir(f"/proc/{client.shim_pid()}/fd")]
        copies = [path for path in held if os.readlink(path).startswith("/memfd:")]
        if sealed:  # the shim holds one copy, of runc
            assert len(copies) == 1
            with open(copies[0], "rb") as copy, open(runc, "rb") as original:
                assert sealedexe.is_sealed(copy.fileno()) and copy.read() == original.read()
        stream = client.attach()
        client.start()
        assert stream.read_all()[0] == b"ok\n" and client.wait(timeout=10)["exit_code"] == 0
    finally:
        spawner.close()
    if sealed:
        assert seen.read_text().startswith("/memfd:runc")
    else:
        assert seen.read_text() == os.path.realpath(runc) + "\n" and copies == []


def _children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def test_spawner_forks_ahead_and_its_waiting_child_dies_with_it(env):
    spawner = shim.ShimSpawner(env.exec_root)
    try:
        out, _, record, _, _ = _spawned_run(env, spawner, ["echo", "one"])
        assert out == b"one\n" and record["exit_code"] == 0
        spawner_pid = spawner._proc.pid
        assert wait_for(lambda: len(_children(spawner_pid)) == 1)  # the next request's child
        waiting = _children(spawner_pid)[0]
        os.kill(spawner_pid, signal.SIGKILL)
        spawner._proc.wait()
        assert wait_for(lambda: not os.path.exists(f"/proc/{waiting}"))  # no orphan keeps the socket
        out, _, _, _, _ = _spawned_run(env, spawner, ["echo", "two"])  # a new spawner serves it
        assert out == b"two\n" and spawner._proc.pid != spawner_pid
    finally:
        spawner.close()


def _spawned_run(env, spawner, cmd):
    cid, sd, sp, opts = env.prepare(cmd, run=True)
    client = shim.start_shim(sd, opts, spawner=spawner)
    stream = client.attach()
    client.start()
    out, err = stream.read_all()
    return out, err, client.wait(timeout=10), sd, opts


def test_exit_is_told_before_runc_delete_and_again_when_done(env, tmp_path):
    slow = tmp_path / "slow-delete-runc"  # runc whose delete takes half a second
    slow.write_text('#!/bin/sh\nfor a; do [ "$a" = delete ] && sleep 0.5; done\nexec runc "$@"\n')
    slow.chmod(0o755)
    cid, sd, _, opts = env.prepare(["sh", "-c", "exit 7"])
    opts.runtime = str(slow)
    client = shim.start_shim(sd, opts)
    plain = []
    waiter = threading.Thread(target=lambda: plain.append(client.wait(timeout=20)))
    waiter.start()
    client.start()
    notice = client.wait_exited()
    assert notice.record["exit_code"] == 7 and notice.record["early"] is True
    assert os.path.isdir(os.path.join(env.runc_root, cid))          # runc delete still to come
    assert not os.path.exists(os.path.join(sd, "exit.json")) and not plain
    late = client.wait_exited()                                       # asked after the exit
    assert late.record["early"] is True and late.record["finished_at"] == notice.record["finished_at"]
    final = notice.wait_ended()
    assert final["exit_code"] == 7 and "early" not in final
    assert late.wait_ended()["finished_at"] == final["finished_at"]
    assert not os.path.exists(os.path.join(env.runc_root, cid))
    assert json.load(open(os.path.join(sd, "exit.json")))["exit_code"] == 7
    waiter.join(10)
    assert plain and plain[0]["exit_code"] == 7 and "early" not in plain[0]
    # once the shim is gone, the notice comes from exit.json and is complete
    assert wait_for(lambda: not client.is_alive())
    assert client.wait_exited().wait_ended()["exit_code"] == 7


def test_runtime_does_not_inherit_the_shims_ignored_signals(env, tmp_path):
    seen = tmp_path / "sigign"  # the runtime wrapper records its ignored-signal mask
    wrapper = tmp_path / "recording-runc"
    wrapper.write_text(f'#!/bin/sh\ngrep SigIgn /proc/$$/status >> {seen}\nexec runc "$@"\n')
    wrapper.chmod(0o755)
    cid, sd, _, opts = env.prepare(["true"])
    opts.runtime = str(wrapper)
    client = shim.start_shim(sd, opts)
    client.start()
    assert client.wait(timeout=20)["exit_code"] == 0
    masks = [int(line.split()[1], 16) for line in seen.read_text().splitlines()]
    assert masks  # create, start, delete
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        assert all(not mask & (1 << (sig - 1)) for mask in masks), sig


def test_requests_sent_while_runc_creates_are_served_in_order(env, tmp_path):
    """What a container start pipelines (engine/containers/startup.py): attach, the early
    wait and start go out before runc is done; the attached stream misses nothing."""
    slow = tmp_path / "slow-run-runc"  # runc whose run takes a while: the requests come first
    slow.write_text('#!/bin/sh\nfor a; do [ "$a" = run ] && sleep 0.3; done\nexec runc "$@"\n')
    slow.chmod(0o755)
    spawner = shim.ShimSpawner(env.exec_root, lambda: [str(slow)])
    try:
        _, sd, _, opts = env.prepare(["sh", "-c", "echo first; echo second >&2; exit 3"], run=True)
        opts.runtime = str(slow)
        launch = shim.launch_shim(sd, opts, spawner=spawner)
        stream = launch.client.attach()
        exit_wait = launch.client.request_wait_exited()
        start = launch.client.request_start()
        assert launch.created()
        assert start.result()["pid"] > 0
        assert stream.read_all() == (b"first\n", b"second\n")
        assert exit_wait.notice().record["exit_code"] == 3
        assert launch.client.wait(timeout=10)["exit_code"] == 3
    finally:
        spawner.close()


def test_start_asked_during_a_create_that_fails_gets_its_error(env):
    spawner = shim.ShimSpawner(env.exec_root)
    try:
        _, sd, _, opts = env.prepare(["nope"], run=True)
        launch = shim.launch_shim(sd, opts, spawner=spawner)
        try:
            start = launch.client.request_start()
        except shim.ShimGone:  # the shim was quicker: it is gone already
            start = None
        with pytest.raises(oci.StartError) as e:
            launch.result()
        assert e.value.exit_code == 127
        with pytest.raises(oci.StartError):  # the same failure, again
            launch.result()
        assert not launch.created()
        if start is not None:
            with pytest.raises(BerthError, match="executable file not found"):
                start.result()
    finally:
        spawner.close()


def test_the_bundle_can_follow_the_launch(env):
    """A spawned shim starts up while the engine writes config.json, and runs runc once
    told ``go``; a launch whose bundle fails ends the shim without running anything."""
    spawner = shim.ShimSpawner(env.exec_root)
    try:
        _, sd, sp, opts = env.prepare(["echo", "late bundle"], run=True)
        config = os.path.join(sd, "config.json")
        os.unlink(config)

        def write_bundle():
            time.sleep(0.2)  # the shim is up by now, and must wait
            oci.write_bundle(sd, sp)

        launch = shim.launch_shim(sd, opts, spawner=spawner, write_bundle=write_bundle)
        stream = launch.client.attach()
        launch.client.start()
        assert stream.read_all() == (b"late bundle\n", b"")
        assert launch.client.wait(timeout=10)["exit_code"] == 0

        _, sd, _, opts = env.prepare(["true"], run=True)

        def broken_bundle():
            time.sleep(0.2)
            raise OSError("no rootfs")

        with pytest.raises(OSError, match="no rootfs"):
            shim.launch_shim(sd, opts, spawner=spawner, write_bundle=broken_bundle)
        client = shim.ShimClient(os.path.join(sd, shim.SOCKET_NAME))
        deadline = time.monotonic() + 5
        while client.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not client.is_alive()
        assert not os.path.exists(os.path.join(sd, "init.pid"))  # runc never ran
    finally:
        spawner.close()
