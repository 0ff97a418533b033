"""The berth CLI: global flags, dispatch, docker's error texts and exit codes, system commands."""

import json
import os
import subprocess
import sys
import time
from urllib.parse import parse_qs

import pytest

ROOT_HINT = "Usage:  berth [OPTIONS] COMMAND [ARG...]\n\nRun 'berth --help' for more information\n"


def test_version_flag(berth):
    from berth import __version__
    from berth.cli.main import main

    assert main(["--version"]) == 0
    r = subprocess.run([sys.executable, "-m", "berth.cli", "-v"], capture_output=True, text=True)
    assert r.returncode == 0
    assert r.stdout.startswith(f"Berth version {__version__}, build ")


def test_version_flag_imports_nothing_heavy():
    code = (
        "import sys, io, contextlib\n"
        "import berth.cli.main as m\n"
        "with contextlib.redirect_stdout(io.StringIO()): m.main(['-D', '--version'])\n"
        "heavy = {'json', 'http.client', 'ssl', 'berth.client', 'berth.cli.app', 'argparse', 'dataclasses'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "[]", r.stderr


def test_context_commands_do_not_load_http():
    code = (
        "import sys, io\n"
        "from berth.cli.app import run\n"
        "run(['context', 'ls'], out=io.StringIO(), err=io.StringIO())\n"
        "print('http.client' in sys.modules, 'berth.client.api' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False False", r.stderr


def test_bare_berth_prints_help_to_stderr(berth):
    r = berth()
    assert r.code == 0 and r.out == ""
    assert r.err.startswith("Usage:  berth [OPTIONS] COMMAND\n")
    assert "  context     Manage contexts" in r.err
    r2 = berth("--help")
    assert r2.code == 0 and "Global Options:" in r2.out and "-H, --host list" in r2.out


@pytest.mark.parametrize(
    "args, code, err",
    [
        (["--bogus"], 125, "unknown flag: --bogus\n\n" + ROOT_HINT),
        (["-x"], 125, "unknown shorthand flag: 'x' in -x\n\n" + ROOT_HINT),
        (["--config"], 125, "flag needs an argument: --config\n\n" + ROOT_HINT),
        (["-c"], 125, "flag needs an argument: 'c' in -c\n\n" + ROOT_HINT),
        (["foo"], 1, "berth: unknown command: berth foo\n\nRun 'berth --help' for more information\n"),
        (
            ["context", "bogus"],
            1,
            "berth: unknown command: berth context bogus\n\nUsage:  berth context\n\n"
            "Run 'berth context --help' for more information\n",
        ),
        (
            ["context", "ls", "--bogus"],
            125,
            "unknown flag: --bogus\n\nUsage:  berth context ls [OPTIONS]\n\n"
            "Run 'berth context ls --help' for more information\n",
        ),
        (
            ["context", "create"],
            1,
            "berth: 'berth context create' requires 1 argument\n\nUsage:  berth context create [OPTIONS] CONTEXT\n\n"
            "Run 'berth context create --help' for more information\n",
        ),
        (
            ["context", "rm"],
            1,
            "berth: 'berth context rm' requires at least 1 argument\n\nUsage:  berth context rm CONTEXT [CONTEXT...]\n\n"
            "See 'berth context rm --help' for more information\n",
        ),
        (
            ["context", "ls", "extra"],
            1,
            "berth: 'berth context ls' accepts no arguments\n\nUsage:  berth context ls [OPTIONS]\n\n"
            "Run 'berth context ls --help' for more information\n",
        ),
        (["-l", "bogus", "version"], 1, "Unable to parse logging level: bogus\n"),
        (
            ["-H", "unix:///a", "-H", "unix:///b", "version"],
            125,
            'invalid argument "unix:///b" for "-H, --host" flag: specify only one -H\n\n' + ROOT_HINT,
        ),
        (["-c", "x", "-H", "unix:///a", "info"], 1, "conflicting options: cannot specify both --host and --context\n"),
    ],
)
def test_usage_errors(berth, args, code, err):
    r = berth(*args)
    assert (r.code, r.err) == (code, err)


def test_group_without_subcommand_prints_its_help(berth):
    r = berth("context")
    assert r.code == 0
    assert r.err.startswith("Usage:  berth context COMMAND\n\nManage contexts\n\nCommands:\n")
    assert "  ls          List contexts" in r.err


def test_command_help_shows_aliases(berth):
    r = berth("context", "ls", "--help")
    assert r.code == 0
    assert r.out.startswith("Usage:  berth context ls [OPTIONS]\n\nList contexts\n\nAliases:\n  berth context ls, berth context list\n")
    assert "  -q, --quiet " in r.out
    r = berth("events", "--help")
    assert "Aliases:\n  berth system events, berth events\n" in r.out
    r = berth("context", "list", "-q")
    assert (r.code, r.out) == (0, "default\n")


# -- version ------------------------------------------------------------------------------------


def test_version_text(berth, fake):
    r = berth("-H", fake.url, "version")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "Client: Berth"
    assert lines[2] == " API version:       1.47"
    assert lines[-12:] == [
        "Server: Fake Engine",
        " Engine:",
        "  Version:          27.0.0-fake",
        "  API version:      1.47 (minimum version 1.24)",
        "  Go version:       go1.22.5",
        "  Git commit:       abc1234",
        "  Built:            Fri Nov 27 22:43:22 2026",
        "  OS/Arch:          linux/amd64",
        "  Experimental:     false",
        " runc:",
        "  Version:          1.1.12",
        "  GitCommit:        v1.1.12-0-g51d5e94",
    ]
    assert " Context:           default" in lines


def test_version_downgraded_api(berth, fake):
    fake.api_version = "1.41"
    r = berth("-H", fake.url, "version")
    assert " API version:       1.41 (downgraded from 1.47)" in r.out.splitlines()


def test_version_formats(berth, fake):
    r = berth("-H", fake.url, "version", "--format", "{{.Server.Version}}")
    assert (r.code, r.out) == (0, "27.0.0-fake\n")
    r = berth("-H", fake.url, "version", "-f", "json")
    data = json.loads(r.out)
    assert data["Client"]["Context"] == "default" and data["Client"]["ApiVersion"] == "1.47"
    assert data["Server"]["Components"][0]["Name"] == "Engine"
    r = berth("-H", fake.url, "version", "--format", "{{json .}}")
    assert json.loads(r.out) == data
    r = berth("-H", fake.url, "version", "--format", "{{.Client.Version")
    assert r.code == 64 and r.err.startswith("template parsing error: ")


def test_version_daemon_down(berth, short_tmp):
    url = f"unix://{short_tmp}/none.sock"
    r = berth("-H", url, "version")
    assert r.code == 1
    assert r.out.startswith("Client: Berth\n") and "Server" not in r.out
    assert r.err == f"Cannot connect to the Docker daemon at {url}. Is the docker daemon running?\n"


def test_debug_flag_traces_the_wire(berth, fake):
    r = berth("-D", "-H", fake.url, "version", "--format", "{{.Server.Version}}")
    assert r.out == "27.0.0-fake\n"


def test_debug_flag_trace_goes_to_stderr(fake):
    r = subprocess.run(
        [sys.executable, "-m", "berth.cli", "-D", "-H", fake.url, "version", "--format", "{{.Server.Os}}"],
        capture_output=True,
        text=True,
    )
    assert r.stdout == "linux\n"
    assert "> GET /v1.47/version HTTP/1.1" in r.stderr and "< HTTP/1.1 200 OK" in r.stderr


# -- info ---------------------------------------------------------------------------------------


def test_info_text(berth, fake):
    r = berth("-H", fake.url, "info")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[:5] == ["Client: Berth", " Version:    0.1.0", " Context:    default", " Debug Mode: false", ""]
    for expected in [
        "Server:",
        " Containers: 3",
        "  Running: 1",
        " Storage Driver: overlay2",
        "  Backing Filesystem: extfs",
        "  Network: bridge host null",
        " Security Options:",
        "  seccomp",
        "   Profile: builtin",
        " Total Memory: 2GiB",
        " Live Restore Enabled: true",
    ]:
        assert expected in lines
    assert r.err == "WARNING: fake warning\n"


def test_info_format(berth, fake):
    r = berth("-H", fake.url, "info", "--format", "{{.ServerVersion}} {{.ClientInfo.Context}}")
    assert (r.code, r.out) == (0, "27.0.0-fake default\n")
    r = berth("-H", fake.url, "info", "-f", "json")
    data = json.loads(r.out)
    assert data["Images"] == 5 and data["ClientInfo"]["Plugins"] == []


def test_info_client_only_format_needs_no_daemon(berth, short_tmp):
    r = berth("-H", f"unix://{short_tmp}/none.sock", "info", "--format", "{{.ClientInfo.Context}}")
    assert (r.code, r.out) == (0, "default\n")


def test_info_daemon_down(berth, short_tmp):
    r = berth("-H", f"unix://{short_tmp}/none.sock", "info")
    assert r.code == 1
    assert r.out.endswith("Server:\n")
    assert "Cannot connect to the Docker daemon at" in r.err


# -- events -------------------------------------------------------------------------------------


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


def test_events_text(berth, fake, utc):
    r = berth("-H", fake.url, "events", "--since", "1795819400", "--until", "1795819500")
    assert r.code == 0, r.err
    a, b = "a" * 64, "b" * 64
    assert r.out == (
        f"2026-11-27T22:43:22.123456789Z container start {a} (image=busybox, name=web)\n"
        f"2026-11-27T22:43:23.000000001Z network connect {b} (container={a}, name=bridge, type=bridge)\n"
    )


def test_events_filters_format_and_since(berth, fake):
    r = berth("-H", fake.url, "system", "events", "--filter", "type=container", "-f", " Type = network ",
              "--since", "10m", "--format", "{{.Type}}/{{.Actor.Attributes.name}}")
    assert (r.code, r.out) == (0, "container/web\nnetwork/bridge\n")
    q = parse_qs(fake.api_requests("/events")[0]["query"])
    assert json.loads(q["filters"][0]) == {"type": {"container": True, "network": True}}
    assert abs(int(q["since"][0]) - (time.time() - 600)) < 60
    r = berth("-H", fake.url, "events", "--format", "json")
    assert [json.loads(line)["Action"] for line in r.out.splitlines()] == ["start", "connect"]


def test_events_errors(berth, fake):
    r = berth("-H", fake.url, "events", "--filter", "nonsense")
    assert r.code == 125
    assert r.err.startswith('invalid argument "nonsense" for "-f, --filter" flag: bad format of filter (expected name=value)\n')
    r = berth("-H", fake.url, "events", "--format", "{{.Type")
    assert r.code == 64 and r.err.startswith("Error parsing format: ")
    r = berth("-H", fake.url, "events", "--since", "yesterday")
    assert (r.code, r.err) == (1, 'failed to parse value as time or duration: "yesterday"\n')


# -- dial-stdio ---------------------------------------------------------------------------------


def test_dial_stdio_proxies_with_half_close(fake):
    request = (
        b"POST /v1.47/containers/web/attach?stream=1&stdin=1 HTTP/1.1\r\n"
        b"Host: api.moby.localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        b"payload bytes"
    )
    r = subprocess.run(
        [sys.executable, "-m", "berth.cli", "-H", fake.url, "system", "dial-stdio"],
        input=request,  # then stdin EOF: must become a half-close towards the daemon
        capture_output=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 UPGRADED")
    assert body == b"hello from daemon\necho:payload bytes"


def test_dial_stdio_without_daemon(short_tmp):
    r = subprocess.run(
        [sys.executable, "-m", "berth.cli", "-H", f"unix://{short_tmp}/none.sock", "system", "dial-stdio"],
        input=b"",
        capture_output=True,
        timeout=30,
    )
    assert r.returncode == 1
    assert r.stderr.decode().startswith("failed to open the raw stream connection: Cannot connect to the Docker daemon")


def test_docker_host_env_selects_the_daemon(berth, fake, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", fake.url)
    r = berth("version", "--format", "{{.Client.Context}} {{.Server.Os}}")
    assert (r.code, r.out) == (0, "default linux\n")


def test_python_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "berth.cli", "context", "show"], capture_output=True, text=True,
                       env={**os.environ})
    assert (r.returncode, r.stdout) == (0, "default\n")


def test_tls_flags_reach_a_tls_daemon(berth, tmp_path):
    import ssl

    from fakedaemon import FakeDaemon

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("client@example.com")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.configure_cert(ctx)
    ca.configure_trust(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    with FakeDaemon(ssl_context=ctx) as d:
        r = berth("--tlsverify", "--tlscacert", str(tmp_path / "ca.pem"), "--tlscert", str(tmp_path / "cert.pem"),
                  "--tlskey", str(tmp_path / "key.pem"), "-H", d.url, "version", "--format", "{{.Server.Version}}")
        assert (r.code, r.out) == (0, "27.0.0-fake\n"), r.err
        # without a client certificate the daemon refuses, and the error says TLS
        r = berth("--tlsverify", "--tlscacert", str(tmp_path / "ca.pem"), "-H", d.url, "info")
        assert r.code == 1 and "TLS" in r.err
        # a context carrying the same TLS material
        r = berth("context", "create", "tlsctx", "--docker",
                  f"host={d.url},ca={tmp_path / 'ca.pem'},cert={tmp_path / 'cert.pem'},key={tmp_path / 'key.pem'}")
        assert r.code == 0, r.err
        r = berth("--context", "tlsctx", "version", "--format", "{{.Client.Context}} {{.Server.Os}}")
        assert (r.code, r.out) == (0, "tlsctx linux\n"), r.err


def test_config_flag_selects_the_config_dir(berth, tmp_path):
    other = tmp_path / "other-config"
    r = berth("--config", str(other), "context", "create", "elsewhere", "--docker", "host=unix:///e.sock")
    assert r.code == 0, r.err
    assert berth("--config", str(other), "context", "ls", "-q").out == "default\nelsewhere\n"
    assert berth("context", "ls", "-q").out == "default\n"  # $DOCKER_CONFIG is untouched
