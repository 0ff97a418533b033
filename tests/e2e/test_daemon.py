"""berthd as a process: flags and daemon.json, locks, listeners, TLS, signals."""

import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time

import pytest
import trustme

from daemon_harness import remove_root, start_daemon

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_berthd(*args, timeout=20):
    return subprocess.run([sys.executable, "-m", "berth.daemon", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_help_documents_dockerd_flags():
    out = run_berthd("--help").stdout
    for flag in ("--host", "--data-root", "--exec-root", "--pidfile", "--config-file", "--debug",
                 "--log-level", "--group", "--tlsverify", "--tlscacert", "--live-restore"):
        assert flag in out


def test_unix_socket_mode_and_second_daemon_refused(fresh_berthd):
    daemon = fresh_berthd()
    mode = stat.S_IMODE(os.stat(daemon.socket_path).st_mode)
    assert mode == 0o660
    second = run_berthd("--config-file", "/dev/null", "--data-root", daemon.data_root,
                        "--exec-root", daemon.exec_root + "2", "--pidfile", daemon.root + "/other.pid",
                        "-H", f"unix://{daemon.root}/other.sock")
    assert second.returncode != 0
    assert "already using data-root" in second.stderr
    assert daemon.process.poll() is None  # the first one is untouched


def test_flag_and_file_clash_is_an_error(tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"debug": False}))
    result = run_berthd("--config-file", str(config), "--debug")
    assert result.returncode == 1
    assert ("the following directives are specified both as a flag and in the configuration "
            "file: debug: (from flag: true, from file: false)") in result.stderr


def test_unknown_and_malformed_daemon_json(tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"no-such-thing": 1}))
    result = run_berthd("--config-file", str(config), "--validate")
    assert "don't match any configuration option: no-such-thing" in result.stderr
    config.write_text("{not json")
    result = run_berthd("--config-file", str(config), "--validate")
    assert result.returncode == 1 and "unable to configure" in result.stderr


def test_plain_tcp_refused_unless_tls_false(tmp_path):
    port = free_port()
    refused = run_berthd("--config-file", "/dev/null", "--data-root", str(tmp_path / "d"),
                         "--exec-root", str(tmp_path / "e"), "--pidfile", str(tmp_path / "p"),
                         "-H", f"tcp://127.0.0.1:{port}")
    assert refused.returncode == 1
    assert "without TLS" in refused.stderr and "--tls=false" in refused.stderr
    daemon = start_daemon(args=["-H", f"tcp://127.0.0.1:{port}", "--tls=false"])
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
        assert "without TLS" in daemon.log()
    finally:
        daemon.stop()
        remove_root(daemon.root)


@pytest.fixture
def tls_material(tmp_path):
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("client")
    server_dir, client_dir = tmp_path / "server", tmp_path / "client"
    server_dir.mkdir()
    client_dir.mkdir()
    ca.cert_pem.write_to_path(str(server_dir / "ca.pem"))
    server.cert_chain_pems[0].write_to_path(str(server_dir / "cert.pem"))
    server.private_key_pem.write_to_path(str(server_dir / "key.pem"))
    ca.cert_pem.write_to_path(str(client_dir / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(client_dir / "cert.pem"))
    client.private_key_pem.write_to_path(str(client_dir / "key.pem"))
    return server_dir, client_dir, ca


def test_mutual_tls_with_docker_cli_and_docker_py(tls_material, monkeypatch):
    import docker

    # requests lets these override a session's CA bundle, which would hide ours.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    server_dir, client_dir, ca = tls_material
    port = free_port()
    daemon = start_daemon(args=["-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                                "--tlscacert", str(server_dir / "ca.pem"),
                                "--tlscert", str(server_dir / "cert.pem"),
                                "--tlskey", str(server_dir / "key.pem")])
    try:
        env = daemon.env(DOCKER_HOST=f"tcp://127.0.0.1:{port}", DOCKER_TLS_VERIFY="1",
                         DOCKER_CERT_PATH=str(client_dir))
        result = subprocess.run(["docker", "version", "--format", "{{.Server.APIVersion}}"],
                                env=env, capture_output=True, text=True, timeout=30)
        assert result.stdout.strip() == "1.47", result.stderr
        tls = docker.tls.TLSConfig(client_cert=(str(client_dir / "cert.pem"), str(client_dir / "key.pem")),
                                   ca_cert=str(client_dir / "ca.pem"), verify=True)
        client = docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls)
        assert client.ping()
        client.close()
        # A client without a certificate signed by the CA is refused during the handshake.
        context = ssl.create_default_context(cafile=str(client_dir / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            with socket.create_connection(("127.0.0.1", port)) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock:
                    tls_sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                    if not tls_sock.recv(100):
                        raise ConnectionResetError("closed")
    finally:
        daemon.stop()
        remove_root(daemon.root)


def test_sigterm_finishes_in_flight_request(fresh_berthd):
    daemon = fresh_berthd()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(daemon.socket_path)
        # A request whose body has not fully arrived is in flight when SIGTERM lands.
        sock.sendall(b"POST /v1.47/containers/create HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{")
        time.sleep(0.3)
        daemon.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        sock.sendall(b"}")
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 ")
    assert daemon.process.wait(20) == 0
    assert not os.path.exists(daemon.socket_path)
    assert not os.path.exists(os.path.join(daemon.root, "berthd.pid"))


def test_sighup_reloads_debug(fresh_berthd):
    daemon = fresh_berthd()
    with open(os.path.join(daemon.root, "daemon.json"), "w") as handle:
        json.dump({"debug": True, "labels": ["team=berth"]}, handle)
    daemon.process.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    import docker
    client = docker.DockerClient(base_url=daemon.host)
    while time.time() < deadline and not client.info()["Debug"]:
        time.sleep(0.1)
    info = client.info()
    client.close()
    assert info["Debug"] is True and info["Labels"] == ["team=berth"]


def test_sigusr1_dumps_threads_and_tasks(fresh_berthd):
    daemon = fresh_berthd()
    daemon.process.send_signal(signal.SIGUSR1)
    deadline = time.time() + 10
    dumps = []
    while time.time() < deadline and not dumps:
        dumps = [name for name in os.listdir(daemon.exec_root) if name.startswith("berthd-stacks-")]
        time.sleep(0.1)
    assert len(dumps) == 1
    with open(os.path.join(daemon.exec_root, dumps[0])) as handle:
        text = handle.read()
    assert "=== thread MainThread" in text and "=== task " in text
    assert "stack dump written to" in daemon.log()
    assert daemon.process.poll() is None  # and the daemon carries on


def test_default_runtime_is_recorded_at_create_and_unknown_ones_refused():
    from images_harness import import_busybox
    daemon = start_daemon(config={"runtimes": {"other": {"path": "runc"}},
                                  "default-runtime": "other"})
    try:
        import_busybox(daemon.env())

        def docker(*args):
            return subprocess.run(["docker", *args], env=daemon.env(), capture_output=True,
                                  text=True, timeout=60)

        made = docker("create", "busybox", "true")
        assert made.returncode == 0, made.stderr
        shown = docker("inspect", "--format", "{{.HostConfig.Runtime}}", made.stdout.strip())
        assert shown.stdout.strip() == "other"
        chosen = docker("create", "--runtime", "runc", "busybox", "true")
        shown = docker("inspect", "--format", "{{.HostConfig.Runtime}}", chosen.stdout.strip())
        assert shown.stdout.strip() == "runc"
        refused = docker("create", "--runtime", "nope", "busybox", "true")
        assert refused.returncode == 1
        assert "unknown or invalid runtime name: nope" in refused.stderr
        assert len(docker("ps", "-aq").stdout.split()) == 2
        assert docker("rm", made.stdout.strip(), chosen.stdout.strip()).returncode == 0
    finally:
        daemon.stop()
        remove_root(daemon.root)


def test_runtime_args_from_daemon_json_reach_every_runtime_call(tmp_path):
    from images_harness import import_busybox
    calls = tmp_path / "calls"
    wrapper = tmp_path / "logging-runc"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec runc "$@"\n')
    wrapper.chmod(0o755)
    daemon = start_daemon(config={"runtimes": {"logged": {"path": str(wrapper),
                                                          "runtimeArgs": ["--debug"]}}})
    try:
        import_busybox(daemon.env())

        def docker(*args):
            return subprocess.run(["docker", *args], env=daemon.env(), capture_output=True,
                                  text=True, timeout=60)

        cid = docker("run", "-d", "--runtime", "logged", "--network", "none", "busybox",
                     "sleep", "30").stdout.strip()
        assert docker("pause", cid).returncode == 0 and docker("unpause", cid).returncode == 0
        assert docker("rm", "-f", cid).returncode == 0
        lines = calls.read_text().splitlines()
        for subcommand in ("run", "pause", "resume"):
            used = [line for line in lines if f" {subcommand} " in f" {line} "]
            assert used and all("--debug" in line.split() for line in used), (subcommand, lines)
    finally:
        daemon.stop()
        remove_root(daemon.root)


def test_default_shm_size_applies_to_containers_that_name_none():
    from images_harness import import_busybox
    daemon = start_daemon(config={"default-shm-size": "32m"})
    try:
        import_busybox(daemon.env())

        def docker(*args):
            return subprocess.run(["docker", *args], env=daemon.env(), capture_output=True,
                                  text=True, timeout=60)

        name = "shm-default"
        shown = docker("run", "--name", name, "--network", "none", "busybox", "df", "-k", "/dev/shm")
        assert shown.stdout.split("\n")[1].split()[1] == "32768", shown.stdout
        size = docker("inspect", "--format", "{{.HostConfig.ShmSize}}", name).stdout.strip()
        assert size == str(32 << 20)
        own = docker("run", "--rm", "--shm-size", "1m", "--network", "none", "busybox", "df", "-k",
                     "/dev/shm")
        assert own.stdout.split("\n")[1].split()[1] == "1024"
        docker("rm", name)
    finally:
        daemon.stop()
        remove_root(daemon.root)


def test_daemon_seccomp_profile_is_the_default_for_containers(tmp_path):
    from images_harness import import_busybox
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    missing = run_berthd("--config-file", "/dev/null", "--data-root", str(tmp_path / "d"),
                         "--exec-root", str(tmp_path / "e"), "--pidfile", str(tmp_path / "p"),
                         "--seccomp-profile", str(tmp_path / "missing.json"))
    assert missing.returncode == 1
    assert f"opening seccomp profile ({tmp_path / 'missing.json'}) failed" in missing.stderr
    daemon = start_daemon(config={"seccomp-profile": str(profile)})
    try:
        import_busybox(daemon.env())

        def docker(*args):
            return subprocess.run(["docker", *args], env=daemon.env(), capture_output=True,
                                  text=True, timeout=60)

        denied = docker("run", "--rm", "--network", "none", "busybox", "mkdir", "/made")
        assert denied.returncode == 1 and "Operation not permitted" in denied.stderr
        for opt in ("seccomp=unconfined", "seccomp=builtin"):
            allowed = docker("run", "--rm", "--network", "none", "--security-opt", opt,
                             "busybox", "mkdir", "/made")
            assert allowed.returncode == 0, (opt, allowed.stderr)
        shown = docker("info", "--format", "{{json .SecurityOptions}}")
        assert f"name=seccomp,profile={profile}" in json.loads(shown.stdout)
    finally:
        daemon.stop()
        remove_root(daemon.root)
