"""``berth run``/``create``/``start``: outputs, exit codes and error texts as docker's, and
create requests byte-identical to the ones the docker CLI sends."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from test_cli_common import berth, compare, docker, unique

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--rm", "busybox", "echo", "hi"),
        ("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"),
        ("run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "1:1", "busybox", "sh", "-c", "echo $A $(pwd) $(id -u)"),
        ("run", "--rm", "--entrypoint", "echo", "busybox", "from", "entrypoint"),
        ("run", "--rm", "-a", "stderr", "busybox", "sh", "-c", "echo hidden; echo shown >&2"),
        ("run", "--rm", "busybox", "nope"),
        ("run", "--rm", "busybox", "/etc/passwd"),
        ("run", "-p", "abc", "busybox"),
        ("run", "--restart", "always", "--rm", "busybox"),
        ("run", "--pull", "x", "busybox"),
        ("run", "-d", "-a", "stdout", "busybox"),
        ("run", "--memory-swappiness", "200", "busybox"),
        ("run", "--ulimit", "nofile=2:1", "busybox"),
        ("run", "--pull", "never", "nosuchimage-xyz"),
        ("run", "BAD"),
        ("run", "-t", "-i", "busybox", "true"),
        ("create", "BAD"),
        ("create", "--pull", "never", "nosuchimage-xyz"),
    ],
)
def test_run_matches_docker(busybox, args):
    compare(busybox, *args, input="")


def test_missing_image_is_pulled_and_the_failure_reported(busybox):
    # Docker Hub is unreachable here: the daemon's words name it (not renamed for berth)
    result = berth(busybox, "run", "nosuchimage-xyz:1", input="")
    want = docker(busybox, "run", "nosuchimage-xyz:1", input="")
    assert result.err.startswith("Unable to find image 'nosuchimage-xyz:1' locally\n")
    assert result.code == want.code == 125
    assert result.err == want.err.replace("docker:", "berth:").replace("'docker run", "'berth run")
    assert 'Get "https://registry-1.docker.io/v2/": ' in result.err


def test_stdin_passes_through_and_closes(busybox):
    result = berth(busybox, "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done", input="x\ny\n")
    assert (result.code, result.out) == (0, "x\ny\ndone\n")


def test_detached_rm_and_cidfile(busybox, names, tmp_path):
    name = names()
    cidfile = tmp_path / "cid"
    result = berth(busybox, "run", "-d", "--name", name, "--cidfile", str(cidfile), "busybox", "sleep", "100")
    assert result.code == 0, result
    cid = result.out.strip()
    assert len(cid) == 64 and cidfile.read_text() == cid
    again = compare(busybox, "run", "-d", "--cidfile", str(cidfile), "busybox", "true")
    assert again.code == 125 and f"container ID file found, make sure the other container isn't running or delete {cidfile}" in again.err
    conflict = compare(busybox, "run", "-d", "--name", name, "busybox", "true")
    assert conflict.code == 125 and "Conflict" in conflict.err
    gone = unique("rm")
    assert berth(busybox, "run", "--rm", "--name", gone, "busybox", "true").code == 0
    assert berth(busybox, "inspect", gone).code == 1


def test_create_then_start_attached(busybox, names):
    name = names()
    created = berth(busybox, "create", "--name", name, "busybox", "sh", "-c", "echo started; exit 3")
    assert created.code == 0 and len(created.out.strip()) == 64
    started = berth(busybox, "start", "-a", name)
    assert (started.code, started.out) == (3, "started\n")
    plain = berth(busybox, "start", name, "nosuch-xyz")
    assert plain.code == 1 and plain.out == f"{name}\n"
    assert plain.err == "Error response from daemon: No such container: nosuch-xyz\nError: failed to start containers: nosuch-xyz\n"
    multi = compare(busybox, "start", "-a", name, name)
    assert multi.err.strip() == "you cannot start and attach multiple containers at once"


def test_start_interactive_passes_stdin(busybox, names):
    name = names()
    assert berth(busybox, "create", "-i", "--name", name, "busybox", "sh", "-c", "read line; echo got $line").code == 0
    result = berth(busybox, "start", "-ai", name, input="hello\n")
    assert (result.code, result.out) == (0, "got hello\n")


# -- the create request itself ---------------------------------------------------------------------


class RecordingProxy:
    """A unix-socket proxy to the daemon that keeps what clients send (per connection)."""

    def __init__(self, target: str, path: str):
        self.target = target
        self.path = path
        self.sent: list[bytearray] = []
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            record = bytearray()
            self.sent.append(record)
            threading.Thread(target=self._pipe, args=(client, upstream, record), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, record: bytearray | None) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                if record is not None:
                    record += data
                dst.sendall(data)
        except OSError:
            pass

    def create_requests(self) -> list[bytes]:
        out = []
        for record in self.sent:
            data = bytes(record)
            start = data.find(b"POST /v")
            while start >= 0:
                head_end = data.find(b"\r\n\r\n", start)
                head = data[start:head_end].decode()
                if "/containers/create" in head.split("\r\n")[0]:
                    length = int(next(line.split(":")[1] for line in head.split("\r\n") if line.lower().startswith("content-length")))
                    body = data[head_end + 4 : head_end + 4 + length]
                    out.append(head.split("\r\n")[0].encode() + b"\n" + body)
                start = data.find(b"POST /v", head_end)
        return out

    def close(self) -> None:
        self.server.close()


@pytest.mark.parametrize(
    "flags",
    [
        ["busybox", "true"],
        ["-p", "8080:80", "-p", "127.0.0.1::53/udp", "--expose", "9000-9001", "-e", "A=1", "-v", "/tmp:/mnt:ro",
         "-v", "/anon", "--mount", "type=tmpfs,dst=/tt,tmpfs-size=1m", "--ulimit", "nofile=100:200",
         "--health-cmd", "true", "--health-interval", "5s", "--restart", "on-failure:3", "--tmpfs", "/run:size=1m",
         "--cpus", "1.5", "-m", "64m", "--memory-swap", "128m", "--pids-limit", "50", "--sysctl",
         "net.ipv4.ip_forward=1", "--add-host", "foo:1.2.3.4", "--dns", "8.8.8.8", "--group-add", "10",
         "--cap-add", "net_admin", "--cap-drop", "CHOWN", "--security-opt", "no-new-privileges", "--init",
         "--stop-signal", "SIGINT", "--stop-timeout", "5", "-l", "a=b", "--log-opt", "max-size=1m",
         "--shm-size", "32m", "-w", "/tmp", "-u", "1:1", "--entrypoint", "sh", "-h", "myhost", "-i",
         "busybox", "-c", "true"],
        ["--privileged", "--read-only", "--oom-kill-disable", "--ipc", "host", "--pid", "host", "--uts", "host",
         "--network", "none", "--dns-search", "example.com", "--dns-option", "ndots:2", "-P", "--no-healthcheck",
         "-a", "stdout", "--cpu-shares", "512", "--blkio-weight", "300", "--entrypoint=", "--mount",
         "type=bind,src=/tmp,dst=/x,readonly", "--annotation", "x=y", "--stop-timeout", "0", "busybox", "sh"],
    ],
    ids=["plain", "many-flags", "more-flags"],
)
def test_create_requests_are_docker_identical(busybox, flags):
    path = os.path.join(busybox.root, f"proxy-{unique()}.sock")
    proxy = RecordingProxy(busybox.socket_path, path)
    created = []
    try:
        env = {"DOCKER_HOST": f"unix://{path}"}
        for prog in (docker, berth):
            result = prog(busybox, "create", *flags, env=env)
            assert result.code == 0, result
            created.append(result.out.strip())
        requests = proxy.create_requests()
        assert len(requests) == 2
        assert requests[1] == requests[0]
    finally:
        proxy.close()
        if created:
            berth(busybox, "rm", "-f", *created)
