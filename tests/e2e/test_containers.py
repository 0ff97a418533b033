"""docker run and friends, through the real docker CLI and docker-py, against berthd."""

import json
import os
import socket
import subprocess
import time
import uuid

import docker
import pytest

pytestmark = pytest.mark.e2e


def docker_cli(daemon, *args, input=None, check=False, timeout=60):
    return subprocess.run(["docker", *args], env=daemon.env(), capture_output=True,
                          input=input, timeout=timeout, text=isinstance(input, str) or input is None)


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def names(busybox):
    """Container names a test uses; removed afterwards whatever happened."""
    created = []

    def make(prefix="c"):
        created.append(unique(prefix))
        return created[-1]

    yield make
    for name in created:
        docker_cli(busybox, "rm", "-f", name)


@pytest.fixture
def client(busybox):
    api = docker.DockerClient(base_url=busybox.host, version="auto", timeout=60)
    yield api
    api.close()


def test_run_prints_output_and_passes_exit_code(busybox):
    result = docker_cli(busybox, "run", "--rm", "busybox", "echo", "hi")
    assert (result.returncode, result.stdout) == (0, "hi\n")
    result = docker_cli(busybox, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert result.returncode == 7
    assert result.stdout == "out\n" and result.stderr == "err\n"


def test_missing_and_non_executable_commands(busybox):
    result = docker_cli(busybox, "run", "--rm", "busybox", "nope")
    assert result.returncode == 127
    assert 'exec: "nope": executable file not found in $PATH' in result.stderr
    assert "Error waiting for container" not in result.stderr  # removed: no error (dockerd)
    result = docker_cli(busybox, "run", "--rm", "busybox", "/etc/passwd")
    assert result.returncode == 126
    assert "permission denied" in result.stderr


def test_stdin_passes_through_and_closes(busybox):
    result = docker_cli(busybox, "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done",
                        input="x\ny\n")
    assert (result.returncode, result.stdout) == (0, "x\ny\ndone\n")


def test_detached_logs_inspect_stop(busybox, names):
    name = names()
    run = docker_cli(busybox, "run", "-d", "--name", name, "busybox", "sh", "-c",
                     "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done")
    assert run.returncode == 0, run.stderr
    container_id = run.stdout.strip()
    assert len(container_id) == 64
    deadline = time.time() + 10
    while "started" not in docker_cli(busybox, "logs", name).stdout and time.time() < deadline:
        time.sleep(0.1)
    data = json.loads(docker_cli(busybox, "inspect", name).stdout)[0]
    assert data["Id"] == container_id and data["Name"] == "/" + name
    assert data["State"]["Running"] is True and data["State"]["Pid"] > 0
    assert data["State"]["Status"] == "running"
    assert data["Config"]["Cmd"][0] == "sh"
    assert data["LogPath"].endswith(f"{container_id}-json.log")
    ps = docker_cli(busybox, "ps", "--filter", f"name={name}", "--format", "{{.Names}} {{.Status}}")
    assert ps.stdout.startswith(f"{name} Up ")
    assert docker_cli(busybox, "stop", name).returncode == 0
    data = json.loads(docker_cli(busybox, "inspect", name).stdout)[0]
    assert data["State"]["Status"] == "exited" and data["State"]["ExitCode"] == 0
    assert data["State"]["FinishedAt"] > data["State"]["StartedAt"]
    assert docker_cli(busybox, "logs", name).stdout == "started\nbye\n"


def test_stop_timeout_then_sigkill_gives_137(busybox, names):
    name = names()
    docker_cli(busybox, "run", "-d", "--name", name, "busybox", "sh", "-c",
               "trap '' TERM; while true; do sleep 0.1; done")
    started = time.time()
    assert docker_cli(busybox, "stop", "-t", "1", name).returncode == 0
    assert time.time() - started < 8
    state = json.loads(docker_cli(busybox, "inspect", name).stdout)[0]["State"]
    assert state["ExitCode"] == 137


def test_kill_with_signal_and_wait(busybox, names):
    name = names()
    # PID 1 ignores signals it has no handler for: --init (tini) passes USR1 on to sleep.
    docker_cli(busybox, "run", "-d", "--init", "--name", name, "busybox", "sleep", "300")
    # tini takes signals only once it has started its child (a signal before that is lost,
    # with Docker too): wait for `sleep` to exist.
    deadline = time.time() + 10
    while docker_cli(busybox, "exec", name, "pidof", "sleep").returncode != 0:
        assert time.time() < deadline, "sleep never started under tini"
        time.sleep(0.05)
    assert docker_cli(busybox, "kill", "-s", "USR1", name).returncode == 0
    waited = docker_cli(busybox, "wait", name)
    assert waited.stdout.strip() == "138"  # 128 + SIGUSR1
    result = docker_cli(busybox, "kill", name)
    assert result.returncode != 0 and "is not running" in result.stderr


def test_logs_options(busybox, names):
    name = names()
    docker_cli(busybox, "run", "--name", name, "busybox", "sh", "-c",
               "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2")
    assert docker_cli(busybox, "logs", "--tail", "2", name).stdout == "line5\n"
    both = docker_cli(busybox, "logs", name)
    assert both.stdout == "line1\nline2\nline3\nline4\nline5\n" and both.stderr == "oops\n"
    stamped = docker_cli(busybox, "logs", "-t", name).stdout.splitlines()
    assert stamped[0].endswith(" line1") and stamped[0][4] == "-" and stamped[0][29] == "Z"
    future = docker_cli(busybox, "logs", "--since", str(int(time.time()) + 100), name)
    assert future.stdout == "" and future.stderr == ""


def test_logs_follow_ends_when_container_exits(busybox, names):
    name = names()
    docker_cli(busybox, "run", "-d", "--name", name, "busybox", "sh", "-c",
               "echo a; sleep 1; echo b")
    result = docker_cli(busybox, "logs", "-f", name, timeout=20)
    assert result.stdout == "a\nb\n"


def test_exec_exit_codes_env_user_workdir(busybox, names):
    name = names()
    docker_cli(busybox, "run", "-d", "--name", name, "busybox", "sleep", "300")
    result = docker_cli(busybox, "exec", "-e", "FOO=bar", "-u", "nobody", "-w", "/tmp", name,
                        "sh", "-c", "echo $FOO $(id -u) $(pwd); exit 5")
    assert result.returncode == 5
    assert result.stdout == "bar 65534 /tmp\n"
    piped = docker_cli(busybox, "exec", "-i", name, "cat", input="through exec\n")
    assert piped.stdout == "through exec\n"
    missing = docker_cli(busybox, "exec", name, "nope")
    assert missing.returncode == 126  # dockerd's exec: 126 for every start that fails
    # a start the daemon refuses still leaves an exit code (dockerd's 126) and no ExecID
    unknown_user = docker_cli(busybox, "exec", "-u", "nosuchuser", name, "true")
    assert unknown_user.returncode == 126
    assert "unable to find user nosuchuser" in unknown_user.stdout  # dockerd writes it there too
    exec_ids = json.loads(docker_cli(busybox, "inspect", name).stdout)[0]["ExecIDs"] or []
    assert len(exec_ids) == 2  # the two that started; failed starts are dropped, as in dockerd


def test_exec_detached(busybox, names, client):
    name = names()
    docker_cli(busybox, "run", "-d", "--name", name, "busybox", "sleep", "300")
    assert docker_cli(busybox, "exec", "-d", name, "sh", "-c", "echo hi > /tmp/done").returncode == 0
    deadline = time.time() + 10
    while time.time() < deadline:
        if docker_cli(busybox, "exec", name, "cat", "/tmp/done").stdout == "hi\n":
            break
        time.sleep(0.1)
    else:
        pytest.fail("detached exec did not run")


def test_name_conflicts_and_validation(busybox, names):
    name = names()
    assert docker_cli(busybox, "create", "--name", name, "busybox").returncode == 0
    again = docker_cli(busybox, "create", "--name", name, "busybox")
    assert again.returncode != 0
    assert f'Conflict. The container name "/{name}" is already in use by container' in again.stderr
    bad = docker_cli(busybox, "create", "--name", "bad name!", "busybox")
    assert "Invalid container name (bad name!)" in bad.stderr


def test_unknown_image(busybox):
    result = docker_cli(busybox, "create", "--pull", "never", "nonexistent-image-xyz")
    assert result.returncode != 0
    assert "No such image: nonexistent-image-xyz:latest" in result.stderr


def test_create_start_attach_and_rm(busybox, names):
    name = names()
    created = docker_cli(busybox, "create", "--name", name, "busybox", "echo", "from start")
    assert created.returncode == 0
    started = docker_cli(busybox, "start", "-a", name)
    assert (started.returncode, started.stdout) == (0, "from start\n")
    running = docker_cli(busybox, "run", "-d", "busybox", "sleep", "300").stdout.strip()
    refused = docker_cli(busybox, "rm", running)
    assert refused.returncode != 0 and "container is running" in refused.stderr
    assert docker_cli(busybox, "rm", "-f", running).returncode == 0
    gone = docker_cli(busybox, "inspect", running)
    assert "No such object" in gone.stderr or "No such container" in gone.stderr


def test_rm_flag_removes_container(busybox):
    name = unique("rm")
    assert docker_cli(busybox, "run", "--rm", "--name", name, "busybox", "true").returncode == 0
    assert docker_cli(busybox, "ps", "-a", "-q", "--filter", f"name={name}").stdout == ""


def test_unique_prefix_lookup(busybox, names):
    name = names()
    container_id = docker_cli(busybox, "create", "--name", name, "busybox").stdout.strip()
    shown = docker_cli(busybox, "inspect", "--format", "{{.Name}}", container_id[:10])
    assert shown.stdout.strip() == "/" + name


def test_ps_filters_and_formats(busybox, names):
    exited, running = names("ex"), names("run")
    docker_cli(busybox, "run", "--name", exited, "--label", "tier=x", "busybox", "sh", "-c", "exit 2")
    docker_cli(busybox, "run", "-d", "--name", running, "--label", "tier=y", "busybox", "sleep", "300")
    by_status = docker_cli(busybox, "ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}")
    assert exited in by_status.stdout.split() and running not in by_status.stdout.split()
    by_exit = docker_cli(busybox, "ps", "-a", "--filter", "exited=2", "--format", "{{.Names}}")
    assert exited in by_exit.stdout.split()
    by_label = docker_cli(busybox, "ps", "-a", "--filter", "label=tier=y", "-q", "--no-trunc")
    assert len(by_label.stdout.split()) == 1 and len(by_label.stdout.strip()) == 64
    by_ancestor = docker_cli(busybox, "ps", "--filter", "ancestor=busybox", "--format", "{{.Names}}")
    assert running in by_ancestor.stdout.split()
    last = docker_cli(busybox, "ps", "-l", "--format", "{{.Names}}")
    assert last.stdout.strip() == running
    table = docker_cli(busybox, "ps", "-a", "--filter", f"name={exited}")
    assert table.stdout.splitlines()[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND",
                                                     "CREATED", "STATUS", "PORTS", "NAMES"]
    assert "Exited (2)" in table.stdout


def test_rename_and_restart(busybox, names):
    old, new = names(), names()
    docker_cli(busybox, "run", "-d", "--name", old, "busybox", "sleep", "300")
    assert docker_cli(busybox, "rename", old, new).returncode == 0
    first_pid = json.loads(docker_cli(busybox, "inspect", new).stdout)[0]["State"]["Pid"]
    assert docker_cli(busybox, "restart", "-t", "0", new).returncode == 0
    second = json.loads(docker_cli(busybox, "inspect", new).stdout)[0]["State"]
    assert second["Running"] and second["Pid"] != first_pid


def test_isolation_and_defaults_inside(busybox):
    script = ("grep CapEff /proc/self/status; hostname; cat /etc/hostname; "
              "grep -c . /proc/net/dev; ls /dev/pts >/dev/null && echo pts; id -u")
    result = docker_cli(busybox, "run", "--rm", "--network", "none", "-h", "boxy", "busybox",
                        "sh", "-c", script)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CapEff:", "00000000a80425fb"]
    assert lines[1] == "boxy" and lines[2] == "boxy"
    assert lines[3] == "3"  # header lines + lo only
    assert lines[4:] == ["pts", "0"]


def test_cgroup_namespace_default_follows_the_host(busybox, names):
    """As dockerd: no --cgroupns (the CLI sends "") is "host" on a cgroup v1 host like this
    one and "private" on a v2 one; --privileged on v1 is always "host"."""
    unified = subprocess.run(["stat", "-fc", "%T", "/sys/fs/cgroup"], capture_output=True,
                             text=True).stdout.strip() == "cgroup2fs"
    host_ns = os.readlink("/proc/self/ns/cgroup")
    cases = [([], "private" if unified else "host"), (["--cgroupns", "private"], "private"),
             (["--cgroupns", "host"], "host")]
    if not unified:
        cases.append((["--privileged"], "host"))
    for flags, mode in cases:
        name = names()
        made = docker_cli(busybox, "create", "--name", name, "--network", "none", *flags,
                          "busybox", "readlink", "/proc/self/ns/cgroup")
        assert made.returncode == 0, made.stderr
        shown = docker_cli(busybox, "inspect", "-f", "{{.HostConfig.CgroupnsMode}}", name)
        assert shown.stdout.strip() == mode, flags
        inside = docker_cli(busybox, "start", "-a", name).stdout.strip()
        assert (inside == host_ns) == (mode == "host"), (flags, inside, host_ns)


def test_attach_while_the_container_starts_gets_its_output(tmp_path):
    """A client that attaches while runc is still creating the container (after the start
    has taken the clients that came before) is connected once it runs, not left hanging."""
    from daemon_harness import remove_root, start_daemon
    from images_harness import import_busybox
    slow = tmp_path / "slow-runc"
    slow.write_text('#!/bin/sh\nfor a; do [ "$a" = run ] && sleep 1; done\nexec runc "$@"\n')
    slow.chmod(0o755)
    daemon = start_daemon(config={"runtimes": {"slow": {"path": str(slow)}}})
    try:
        import_busybox(daemon.env())
        made = docker_cli(daemon, "create", "--runtime", "slow", "--network", "none", "busybox",
                          "sh", "-c", "sleep 1; echo late")
        cid = made.stdout.strip()
        starting = subprocess.Popen(["docker", "start", cid], env=daemon.env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.4)  # runc sleeps: the container is starting
        assert starting.poll() is None
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(30)
        sock.connect(daemon.socket_path)
        sock.sendall(f"POST /v1.47/containers/{cid}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n"
                     "Host: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        sock.close()
        assert starting.wait(timeout=30) == 0
        assert received.endswith(b"\x01\x00\x00\x00\x00\x00\x00\x05late\n"), received
    finally:
        daemon.stop()
        remove_root(daemon.root)


def test_create_options_honoured(busybox):
    script = ("id; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
              "cat /sys/fs/cgroup/memory.max; ulimit -n; touch /x 2>&1 | head -c 40; echo; "
              "cat /proc/sys/net/ipv4/ip_forward 2>/dev/null; grep -c extra /etc/hosts")
    result = docker_cli(busybox, "run", "--rm", "--user", "1:1", "--group-add", "65534",
                        "--memory", "64m", "--ulimit", "nofile=512:512", "--read-only",
                        "--add-host", "extra:10.9.8.7", "--network", "none",
                        "busybox", "sh", "-c", script)
    out = result.stdout.splitlines()
    assert out[0].startswith("uid=1(daemon) gid=1(daemon)") and "65534" in out[0]
    assert out[1] == str(64 * 1024 * 1024)
    assert out[2] == "512"
    assert "Read-only file system" in out[3]
    assert out[-1] == "1"


def test_blkio_throttles_reach_the_cgroup_and_unsupported_weight_warns(busybox):
    disks = [f"/dev/{d}" for d in sorted(os.listdir("/sys/block")) if os.path.exists(f"/dev/{d}")]
    if not disks or not os.path.exists("/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device"):
        pytest.skip("needs a block device and cgroup v1 blkio throttling")
    rdev = os.stat(disks[0]).st_rdev
    result = docker_cli(busybox, "run", "--rm", "--device-read-bps", f"{disks[0]}:1mb",
                        "--blkio-weight", "300", "busybox",
                        "cat", "/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{os.major(rdev)}:{os.minor(rdev)} 1048576\n"
    weight_supported = any(os.path.exists(f"/sys/fs/cgroup/blkio/{f}")
                           for f in ("blkio.weight", "blkio.bfq.weight"))
    assert ("Block I/O weight or the cgroup is not mounted" in result.stderr) != weight_supported


def test_privileged_uses_host_bounding_set(busybox):
    with open("/proc/self/status") as handle:
        bounding = [l.split()[1] for l in handle if l.startswith("CapBnd")][0]
    result = docker_cli(busybox, "run", "--rm", "--privileged", "busybox", "grep", "CapEff",
                        "/proc/self/status")
    assert result.stdout.split()[1] == bounding


def test_init_and_tmpfs_and_env(busybox):
    result = docker_cli(busybox, "run", "--rm", "--init", "--tmpfs", "/scratch:size=1m",
                        "-e", "A=1", "busybox", "sh", "-c",
                        "cat /proc/1/cmdline | tr '\\0' ' '; echo; grep /scratch /proc/mounts | "
                        "cut -d' ' -f3; echo $A")
    lines = result.stdout.splitlines()
    assert "docker-init" in lines[0] or "tini" in lines[0]
    assert lines[1] == "tmpfs" and lines[2] == "1"


def test_ulimit_beyond_host_hard_limit_is_refused(busybox):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no finite hard limit here")
    result = docker_cli(busybox, "run", "--rm", "--ulimit", f"nofile={hard + 1}:{hard + 1}",
                        "busybox", "true")
    assert result.returncode != 0
    assert "nofile" in result.stderr


def test_failed_start_is_inspectable(busybox, names):
    name = names()
    docker_cli(busybox, "create", "--name", name, "busybox", "/nonexistent")
    result = docker_cli(busybox, "start", name)
    assert result.returncode != 0
    state = json.loads(docker_cli(busybox, "inspect", name).stdout)[0]["State"]
    assert "executable file not found" in state["Error"] or "no such file" in state["Error"]
    assert state["Running"] is False


def test_events_for_lifecycle(busybox, names):
    name = names()
    since = str(time.time())
    docker_cli(busybox, "run", "--name", name, "busybox", "true")
    docker_cli(busybox, "rm", name)
    out = docker_cli(busybox, "events", "--since", since, "--until", str(time.time() + 0.5),
                     "--filter", f"container={name}", "--format", "{{.Action}}").stdout.split()
    assert out[:1] == ["create"] and "start" in out and "die" in out and out[-1] == "destroy"


def test_event_order_of_stop_restart_and_exec_matches_dockerd(busybox, names):
    name = names()
    since = str(time.time())
    docker_cli(busybox, "run", "-d", "--name", name, "busybox", "sleep", "100")
    docker_cli(busybox, "exec", name, "true")
    docker_cli(busybox, "restart", "-t", "1", name)
    docker_cli(busybox, "stop", "-t", "1", name)
    out = docker_cli(busybox, "events", "--since", since, "--until", str(time.time() + 0.5),
                     "--filter", f"container={name}", "--filter", "type=container",
                     "--format", "{{.Action}}|{{index .Actor.Attributes \"signal\"}}").stdout
    assert out.splitlines() == [
        "create|", "start|", "exec_create: true |", "exec_start: true |", "exec_die|",
        "kill|15", "kill|9", "die|", "stop|", "start|", "restart|",  # sleep ignores TERM as pid 1
        "kill|15", "kill|9", "die|", "stop|"]


def test_docker_py_run_logs_exec_wait_remove(client):
    assert client.containers.run("busybox", "echo hello", remove=True) == b"hello\n"
    container = client.containers.run("busybox", "sh -c 'echo x; sleep 300'", detach=True)
    try:
        stream = container.logs(stream=True)
        assert next(stream) == b"x\n"
        code, (out, err) = container.exec_run("sh -c 'echo o; echo e >&2; exit 3'", demux=True)
        assert (code, out, err) == (3, b"o\n", b"e\n")
        container.kill()
        assert container.wait()["StatusCode"] == 137
    finally:
        container.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container.id)


def test_docker_py_attach_socket(client):
    container = client.containers.create("busybox", "cat", stdin_open=True)
    try:
        sock = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stream": 1})
        container.start()
        raw = sock._sock
        raw.sendall(b"ping\n")
        raw.shutdown(1)  # half-close: stdin EOF
        data = b""
        while True:
            chunk = raw.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data[8:] == b"ping\n" and data[0] == 1
        assert container.wait(timeout=10)["StatusCode"] == 0
    finally:
        container.remove(force=True)


def test_tty_run_is_raw(busybox):
    import pexpect
    child = pexpect.spawn("docker", ["run", "-it", "--rm", "busybox", "sh"], env=busybox.env(),
                          timeout=20)
    try:
        child.expect("# ")
        child.sendline("echo $((6*7))")
        child.expect("42")
        child.sendline("exit 4")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 4


def test_detach_keys_and_attach_back(busybox, names):
    import pexpect
    name = names()
    child = pexpect.spawn("docker", ["run", "-it", "--name", name, "busybox", "sh"],
                          env=busybox.env(), timeout=20)
    child.expect("# ")
    child.send("\x10\x11")  # ctrl-p ctrl-q
    child.expect(pexpect.EOF)
    child.close()
    state = json.loads(docker_cli(busybox, "inspect", name).stdout)[0]["State"]
    assert state["Running"] is True
    again = pexpect.spawn("docker", ["attach", name], env=busybox.env(), timeout=20)
    again.sendline("echo back")
    again.expect("back")
    again.sendline("exit 0")
    again.expect(pexpect.EOF)
    again.close()


def _raw_attach(daemon, container_id):
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(daemon.host.removeprefix("unix://"))
    sock.sendall(f"POST /v1.47/containers/{container_id}/attach?stream=1&stdin=1&stdout=1 "
                 "HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
    sock.settimeout(10)
    assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    return sock


def test_daemon_detaches_tty_streams_only(busybox, names):
    """As dockerd: the daemon looks for the detach keys in a tty's input only (the CLI does it
    for its own tty); a non-tty stream is data and passes whole."""
    tty, plain = names(), names()
    since = str(time.time())
    tty_id = docker_cli(busybox, "run", "-d", "-it", "--name", tty, "busybox", "sh").stdout.strip()
    sock = _raw_attach(busybox, tty_id)
    sock.sendall(b"\x10\x11")
    while sock.recv(4096):  # the daemon ends the stream
        pass
    sock.close()
    plain_id = docker_cli(busybox, "run", "-d", "-i", "--name", plain, "busybox", "cat").stdout.strip()
    sock = _raw_attach(busybox, plain_id)
    sock.sendall(b"\x10\x11")
    data = b""
    while len(data) < 10 and (chunk := sock.recv(4096)):  # one stdout frame: cat echoes both
        data += chunk
    sock.close()
    assert data == b"\x01\x00\x00\x00\x00\x00\x00\x02\x10\x11"
    states = [json.loads(docker_cli(busybox, "inspect", n).stdout)[0]["State"]["Running"] for n in (tty, plain)]
    assert states[0] is True
    actions = docker_cli(busybox, "events", "--since", since, "--until", str(time.time() + 0.5),
                         "--filter", f"container={tty}", "--format", "{{.Action}}").stdout.split()
    assert actions[-1] == "detach"


def test_attach_websocket(busybox, names):
    """GET /containers/{id}/attach/ws: RFC 6455 handshake, output as binary messages."""
    import socket

    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, BytesMessage, Request, TextMessage

    name = names()
    docker_cli(busybox, "create", "-i", "--name", name, "busybox", "sh", "-c",
               "read line; echo got:$line")
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(busybox.socket_path)
    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(ws.send(Request(host="localhost",
                                 target=f"/v1.47/containers/{name}/attach/ws?stream=1&stdin=1&stdout=1")))
    events = []
    while not any(isinstance(e, AcceptConnection) for e in events):
        ws.receive_data(sock.recv(4096))
        events += list(ws.events())
    assert docker_cli(busybox, "start", name).returncode == 0
    sock.sendall(ws.send(TextMessage(data="hello\n")))
    received = b""
    deadline = time.time() + 10
    while b"got:hello" not in received and time.time() < deadline:
        data = sock.recv(4096)
        if not data:
            break
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, BytesMessage):
                received += event.data
    sock.close()
    assert b"got:hello\n" in received


def test_devices_sysctls_shm_dns(busybox):
    script = ("ls -l /dev/xnull | cut -c1; cat /proc/sys/net/ipv4/tcp_syncookies; "
              "df -k /dev/shm | tail -1 | awk '{print $2}'; grep nameserver /etc/resolv.conf; "
              "grep search /etc/resolv.conf")
    result = docker_cli(busybox, "run", "--rm", "--network", "none", "--device", "/dev/null:/dev/xnull",
                        "--sysctl", "net.ipv4.tcp_syncookies=0", "--shm-size", "8m",
                        "--dns", "192.0.2.53", "--dns-search", "example.test", "busybox", "sh", "-c", script)
    lines = result.stdout.splitlines()
    assert lines[0] == "c"
    assert lines[1] == "0"
    assert lines[2] == str(8 * 1024)
    assert lines[3] == "nameserver 192.0.2.53"
    assert lines[4] == "search example.test"


def test_log_driver_none_and_rotation(busybox, names):
    quiet = names()
    docker_cli(busybox, "run", "--name", quiet, "--log-driver", "none", "busybox", "echo", "x")
    result = docker_cli(busybox, "logs", quiet)
    assert result.returncode != 0 and "does not support reading" in result.stderr
    rotated = names()
    docker_cli(busybox, "run", "--name", rotated, "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
               "busybox", "sh", "-c", "for i in $(seq 1 200); do echo line-$i; done")
    log_path = json.loads(docker_cli(busybox, "inspect", rotated).stdout)[0]["LogPath"]
    assert os.path.exists(log_path + ".1")
    assert not os.path.exists(log_path + ".3")
    tail = docker_cli(busybox, "logs", "--tail", "1", rotated).stdout
    assert tail == "line-200\n"
    with open(log_path) as handle:
        first = json.loads(handle.readline())
    assert set(first) == {"log", "stream", "time"} and first["stream"] == "stdout"


def test_log_attributes_and_details(busybox, names):
    name = names()
    docker_cli(busybox, "run", "--name", name, "--label", "team=a&b", "-e", "STAGE=dev x",
               "-e", "OTHER=1", "--log-opt", "labels=team,absent", "--log-opt", "env-regex=^ST",
               "--log-opt", "tag={{.Name}}/{{.ImageName}}", "busybox", "echo", "hi")
    log_path = json.loads(docker_cli(busybox, "inspect", name).stdout)[0]["LogPath"]
    with open(log_path) as handle:
        raw = handle.readline()
    # Go's encoding of the map: sorted keys, & escaped
    assert '"attrs":{"STAGE":"dev x","tag":"%s/busybox","team":"a\\u0026b"},"time"' % name in raw
    details = docker_cli(busybox, "logs", "--details", name).stdout
    assert details == f"STAGE=dev+x,tag={name}%2Fbusybox,team=a%26b hi\n"
    bad = docker_cli(busybox, "run", "--rm", "--log-opt", "labels-regex=(", "busybox", "true")
    assert bad.returncode == 125
    assert "failed to initialize logging driver: error parsing regexp" in bad.stderr


def test_memory_limit_oom_kill_is_reported(busybox, names):
    name = names()
    since = str(time.time())
    docker_cli(busybox, "run", "--name", name, "-m", "8m", "busybox", "sh", "-c",
               'x=$(head -c 50000000 /dev/zero | tr "\\0" a); echo survived')
    state = json.loads(docker_cli(busybox, "inspect", name).stdout)[0]["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    actions = docker_cli(busybox, "events", "--since", since, "--until", str(time.time() + 0.5),
                         "--filter", f"container={name}", "--format", "{{.Action}}").stdout.split()
    assert "oom" in actions and actions.index("oom") < actions.index("die")
    fine = names()
    docker_cli(busybox, "run", "--name", fine, "-m", "64m", "busybox", "true")
    assert json.loads(docker_cli(busybox, "inspect", fine).stdout)[0]["State"]["OOMKilled"] is False


def test_tty_logs_are_raw(busybox, names):
    name = names()
    docker_cli(busybox, "run", "-t", "--name", name, "busybox", "sh", "-c", "echo tty; echo err >&2")
    result = subprocess.run(["docker", "logs", name], env=busybox.env(), capture_output=True,
                            timeout=30)  # bytes: text mode would turn \r\n into \n
    assert result.stdout == b"tty\r\nerr\r\n" and result.stderr == b""


def test_only_rm_containers_have_a_volatile_rootfs(busybox, names):
    # overlay's "volatile": a --rm container's changes need not survive a host crash, so
    # its rootfs is never synced; any other container's is (as Docker's)
    probe = "grep -c -E 'volatile' /proc/self/mountinfo || true"
    scratch = docker_cli(busybox, "run", "--rm", "--network", "none", "busybox", "sh", "-c", probe)
    kept = docker_cli(busybox, "run", "--name", names(), "--network", "none", "busybox", "sh", "-c", probe)
    assert kept.returncode == 0 and kept.stdout.strip() == "0", kept
    if docker_cli(busybox, "info", "--format", "{{.Driver}}").stdout.strip() == "overlay2":
        assert scratch.returncode == 0 and int(scratch.stdout.strip()) >= 1, scratch
