"""Container commands other than run: listing, inspecting, logs, state changes, ports,
processes, changes, export/commit, prune -- compared with the docker CLI on the same daemon."""

from __future__ import annotations

import json
import subprocess
import tarfile
import time

import pytest

from test_cli_common import BERTH, berth, compare, docker, unique

pytestmark = pytest.mark.e2e


@pytest.fixture
def pair(busybox, names):
    """Two running containers with a label unique to the test (so listings see only them)."""
    label = unique("lbl")
    created = []
    for prefix in ("a", "b"):
        name = names(prefix)
        result = berth(busybox, "run", "-d", "--name", name, "-l", f"suite={label}", "-l", "k=v",
                       "-p", "127.0.0.1::80", "busybox", "sh", "-c", "echo hello; echo oops >&2; sleep 300")
        assert result.code == 0, result
        created.append(name)
    time.sleep(0.5)
    return label, created


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["-q"],
        ["--no-trunc"],
        ["-s"],
        ["--format", "table {{.Names}}\t{{.Image}}\t{{.Command}}\t{{.State}}\t{{.Labels}}"],
        ["--format", "{{.Names}} {{.Label \"k\"}} {{.Ports}}"],
        ["--format", "{{json .Labels}}"],
        ["--format", "table {{.ID}}\t{{.Label \"com.example.some-thing\"}}"],
        ["-q", "--format", "{{.Names}}"],
        ["--format", "{{.Nope}}"],
        ["--format", "{{"],
    ],
)
def test_ps_matches_docker(busybox, pair, extra):
    label, _ = pair
    compare(busybox, "ps", "-a", "--filter", f"label=suite={label}", *extra, loose=True)


def test_ps_json_and_filters(busybox, pair):
    label, created = pair
    want = docker(busybox, "ps", "--filter", f"label=suite={label}", "--format", "json")
    got = berth(busybox, "ps", "--filter", f"label=suite={label}", "--format", "json")
    strip = lambda text: [{k: v for k, v in json.loads(line).items() if k not in ("RunningFor", "Status")} for line in text.splitlines()]  # noqa: E731
    assert strip(got.out) == strip(want.out) and len(strip(got.out)) == 2
    compare(busybox, "ps", "-a", "-q", "--filter", f"name={created[0]}", "--filter", f"label=suite={label}")
    compare(busybox, "ps", "-a", "--filter", "bogus=1")


def test_inspect_is_byte_identical(busybox, pair):
    _, created = pair
    compare(busybox, "inspect", *created)
    compare(busybox, "container", "inspect", "--format", "json", created[0])
    compare(busybox, "inspect", "-f", "{{.Name}} {{.State.Running}} {{json .Config.Labels}} {{.HostConfig.Memory}}", *created)
    compare(busybox, "container", "inspect", created[0], "no-such-container-xyz")
    compare(busybox, "inspect", "--type", "container", "-f", "{{.Id}}", created[1])
    compare(busybox, "inspect", "-f", "{{", created[0])


def test_logs(busybox, pair, names):
    _, created = pair
    compare(busybox, "logs", created[0])
    compare(busybox, "logs", "--tail", "1", created[0])
    compare(busybox, "logs", "--since", "1h", "--until", "0s", created[0])
    compare(busybox, "logs", "--since", "bogus", created[0])
    stamped = berth(busybox, "logs", "-t", created[0])
    assert stamped.out.endswith(" hello\n") and stamped.err.endswith(" oops\n")
    compare(busybox, "logs", "no-such-container-xyz")
    name = names()
    assert berth(busybox, "run", "-d", "--name", name, "busybox", "sh", "-c",
                 "for i in 1 2 3; do echo line $i; sleep 0.3; done").code == 0
    followed = berth(busybox, "logs", "-f", name, timeout=30)
    assert followed.out == "line 1\nline 2\nline 3\n"


def test_port_top_and_rename(busybox, pair):
    _, created = pair
    compare(busybox, "port", created[0])
    compare(busybox, "port", created[0], "80/tcp")
    compare(busybox, "port", created[0], "81")
    compare(busybox, "port", created[0], "x")
    # ps's default columns include CPU use (C), which changes between the two calls.
    top = compare(busybox, "top", created[0], "-o", "pid,args")
    assert top.out.splitlines()[0].split() == ["PID", "COMMAND"] and "sleep 300" in top.out
    compare(busybox, "rename", created[0], created[0])
    compare(busybox, "rename", "no-such-container-xyz", "whatever")
    compare(busybox, "rename", " ", "x")


def test_stop_kill_rm_wait_messages(busybox, names):
    names_made = [names() for _ in range(4)]
    for name in names_made:
        assert berth(busybox, "run", "-d", "--name", name, "busybox", "sleep", "300").code == 0
    missing = "no-such-container-xyz"
    assert compare(busybox, "kill", "-s", "USR1", names_made[0], missing).out == f"{names_made[0]}\n"
    compare(busybox, "kill", "-s", "BOGUS", names_made[0])
    result = berth(busybox, "stop", "-t", "1", names_made[0], missing, names_made[1])
    assert (result.code, result.out) == (1, f"{names_made[0]}\n{names_made[1]}\n")
    assert result.err == f"Error response from daemon: No such container: {missing}\n"
    compare(busybox, "stop", "-t", "1", "--time", "2", names_made[2])
    assert berth(busybox, "wait", names_made[0], names_made[1]).out in ("137\n137\n", "143\n143\n", "0\n0\n")
    compare(busybox, "wait", missing)
    compare(busybox, "rm", missing)
    compare(busybox, "rm", "-f", missing)
    running = berth(busybox, "rm", names_made[2])
    assert running.code == 1 and "cannot remove" in running.err.lower()
    assert berth(busybox, "rm", "-f", names_made[2], names_made[3]).out == f"{names_made[2]}\n{names_made[3]}\n"
    compare(busybox, "rm", "/")
    restarted = berth(busybox, "restart", "-t", "1", names_made[0])
    assert (restarted.code, restarted.out) == (0, f"{names_made[0]}\n")


def test_exec_options(busybox, pair, tmp_path):
    _, created = pair
    env_file = tmp_path / "env"
    env_file.write_text("FROM_FILE=1\n")
    compare(busybox, "exec", "-e", "A=1", "--env-file", str(env_file), "-u", "1:2", "-w", "/tmp", created[0],
            "sh", "-c", "echo $A $FROM_FILE $(id -u):$(id -g) $(pwd); exit 4")
    compare(busybox, "exec", "-i", created[0], "sh", "-c", "cat; echo end", input="piped\n")
    compare(busybox, "exec", created[0], "nope")
    compare(busybox, "exec", "no-such-container-xyz", "true")
    detached = berth(busybox, "exec", "-d", created[0], "sh", "-c", "echo bg > /tmp/bg")
    assert (detached.code, detached.out) == (0, "")
    time.sleep(0.5)
    assert berth(busybox, "exec", created[0], "cat", "/tmp/bg").out == "bg\n"


def test_pause_unpause_update(busybox, names):
    name = names()
    assert berth(busybox, "run", "-d", "--name", name, "busybox", "sleep", "300").code == 0
    paused = berth(busybox, "pause", name)
    assert (paused.code, paused.out) == (0, f"{name}\n")
    assert "(Paused)" in berth(busybox, "ps", "-f", f"name={name}", "--format", "{{.Status}}").out
    assert berth(busybox, "unpause", name).out == f"{name}\n"
    compare(busybox, "unpause", name)
    compare(busybox, "update", name)
    compare(busybox, "update", "-m", "12x", name)
    updated = compare(busybox, "update", "--cpu-shares", "512", "--restart", "on-failure:2", name)
    assert updated.out == f"{name}\n"
    data = json.loads(berth(busybox, "inspect", name).out)[0]["HostConfig"]
    assert (data["CpuShares"], data["RestartPolicy"]) == (512, {"Name": "on-failure", "MaximumRetryCount": 2})


def test_diff_export_commit(busybox, names, tmp_path):
    name = names()
    assert berth(busybox, "run", "--name", name, "busybox", "sh", "-c", "mkdir /made; echo x > /made/f; rm /bin/vi").code == 0
    diff = berth(busybox, "diff", name)
    compare(busybox, "diff", name)
    assert "A /made/f" in diff.out and "D /bin/vi" in diff.out
    out = tmp_path / "fs.tar"
    assert berth(busybox, "export", "-o", str(out), name).code == 0
    with tarfile.open(out) as tar:
        assert tar.extractfile("made/f").read() == b"x\n"
    piped = berth(busybox, "export", name)
    assert piped.code == 0 and len(piped.out) > 0
    compare(busybox, "export", "-o", "/nonexistent-dir/x.tar", name)
    image = f"bt-commit-{unique()}"
    committed = berth(busybox, "commit", "-m", "msg", "-a", "me", "-c", "ENV X=1", name, f"{image}:v1")
    try:
        assert committed.code == 0 and committed.out.startswith("sha256:"), committed
        data = json.loads(berth(busybox, "image", "inspect", f"{image}:v1").out)[0]
        assert data["Comment"] == "msg" and data["Author"] == "me" and "X=1" in data["Config"]["Env"]
        assert berth(busybox, "run", "--rm", f"{image}:v1", "cat", "/made/f").out == "x\n"
    finally:
        berth(busybox, "rmi", f"{image}:v1")
    compare(busybox, "commit", name, "Bad/Name")


def test_stats_no_stream(busybox, pair):
    _, created = pair
    result = berth(busybox, "stats", "--no-stream", *created)
    lines = result.out.splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                                "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    assert {line.split()[1] for line in lines[1:]} == set(created)
    fmt = berth(busybox, "stats", "--no-stream", "--format", "{{.Name}}:{{.PIDs}}", created[0])
    assert fmt.out == f"{created[0]}:1\n"
    compare(busybox, "stats", "--no-stream", "no-such-container-xyz")
    as_json = json.loads(berth(busybox, "stats", "--no-stream", "--format", "json", created[0]).out)
    assert sorted(as_json) == ["BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs"]


def test_stats_stream_redraws(busybox, pair):
    _, created = pair
    proc = subprocess.Popen(BERTH + ["stats", created[0]], env=busybox.env(), stdout=subprocess.PIPE)
    time.sleep(2.5)
    proc.terminate()
    out = proc.communicate(timeout=10)[0].decode()
    # each frame: cursor home, the table, the same lines with erase-to-end-of-line, erase below
    frames = out.split("\x1b[J")
    assert len(frames) >= 3 and frames[0].startswith("\x1b[HCONTAINER ID")
    assert f" {created[0]} " in frames[1] and " \x1b[K\n" in frames[1]


def test_container_prune(busybox, names):
    label = unique("prune")
    name = names()
    assert berth(busybox, "run", "--name", name, "-l", f"p={label}", "busybox", "true").code == 0
    cancelled = berth(busybox, "container", "prune", "--filter", f"label=p={label}", input="n\n")
    assert cancelled.code == 0
    assert cancelled.out == "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
    pruned = berth(busybox, "container", "prune", "-f", "--filter", f"label=p={label}")
    assert pruned.out.startswith("Deleted Containers:\n") and pruned.out.endswith("\n\nTotal reclaimed space: 0B\n")
    assert berth(busybox, "inspect", name).code == 1
    compare(busybox, "container", "prune", "-f", "--filter", f"label=p={label}")

