"""berth context ...: docker's behaviour and texts, and the same files as the docker CLI."""

import hashlib
import json
import os
import shutil
import subprocess

import pytest

DOCKER = shutil.which("docker")
needs_docker = pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")


def meta_path(config_dir, name):
    return config_dir / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"


def test_create_ls_use_show_rm(berth, config_dir):
    r = berth("context", "create", "zz", "--docker", "host=unix:///tmp/z.sock", "--description", "hello")
    assert (r.code, r.out, r.err) == (0, "zz\n", 'Successfully created context "zz"\n')
    assert json.loads(meta_path(config_dir, "zz").read_text())["Endpoints"]["docker"]["Host"] == "unix:///tmp/z.sock"
    r = berth("context", "ls")
    assert r.out == (
        "NAME        DESCRIPTION                               DOCKER ENDPOINT          ERROR\n"
        "default *   Current DOCKER_HOST based configuration   unix:///run/berth.sock   \n"
        "zz          hello                                     unix:///tmp/z.sock       \n"
    )
    r = berth("context", "use", "zz")
    assert (r.code, r.out, r.err) == (0, "zz\n", 'Current context is now "zz"\n')
    assert json.loads((config_dir / "config.json").read_text()) == {"currentContext": "zz"}
    assert berth("context", "show").out == "zz\n"
    assert berth("context", "ls", "-q").out == "default\nzz\n"
    r = berth("context", "rm", "zz")
    assert (r.code, r.err) == (1, 'context "zz" is in use, set -f flag to force remove\n')
    r = berth("context", "rm", "-f", "zz")
    assert (r.code, r.out) == (0, "zz\n")
    assert "currentContext" not in json.loads((config_dir / "config.json").read_text())
    assert berth("context", "show").out == "default\n"


def test_use_default_clears_current(berth, config_dir):
    (config_dir / "config.json").write_text(json.dumps({"auths": {"x": {}}, "currentContext": "old"}))
    r = berth("context", "use", "default")
    assert r.code == 0
    assert json.loads((config_dir / "config.json").read_text()) == {"auths": {"x": {}}}


@pytest.mark.parametrize(
    "args, err",
    [
        (["context", "create", "default"], '"default" is a reserved context name\n'),
        (["context", "create", "x"], 'context name "x" is invalid, names are validated against regexp "^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$"\n'),
        (["context", "create", "yy", "--docker", "host=unix:///y,bogus=1"], "unable to create docker endpoint config: unrecognized config key: bogus\n"),
        (["context", "create", "yy", "--docker", "host=x"], "unable to create docker endpoint config: unable to apply docker endpoint options: unable to parse docker host `x`\n"),
        (["context", "create", "yy", "--docker", "host=tcp://h:1,skip-tls-verify=maybe"], 'unable to create docker endpoint config: skip-tls-verify: parsing "maybe": invalid syntax\n'),
        (["context", "create", "yy", "--docker", "ca=/nonexistent/ca.pem"], "unable to create docker endpoint config: open /nonexistent/ca.pem: no such file or directory\n"),
        (["context", "create", "yy", "--from", "default", "--docker", "host=unix:///y"], "cannot use --docker flag when --from is set\n"),
        (["context", "rm", "nope"], 'context "nope" does not exist\n'),
        (["context", "rm", "default"], 'context "default" cannot be removed\n'),
        (["context", "use", "x"], 'context name "x" is invalid, names are validated against regexp "^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$"\n'),
    ],
)
def test_error_texts(berth, args, err):
    r = berth(*args)
    assert (r.code, r.err) == (1, err)


def test_not_found_texts_name_the_file(berth, config_dir):
    path = meta_path(config_dir, "nope")
    expected = f'context "nope": context not found: open {path}: no such file or directory\n'
    assert berth("context", "use", "nope").err == expected
    assert berth("context", "update", "nope", "--description", "d").err == expected
    r = berth("context", "inspect", "nope")
    assert (r.code, r.out, r.err) == (1, "[]\n", expected)
    r = berth("--context", "nope", "version")
    assert (r.code, r.err) == (1, expected)


def test_create_twice_and_rm_force_missing(berth):
    assert berth("context", "create", "dup", "--docker", "host=unix:///d").code == 0
    r = berth("context", "create", "dup", "--docker", "host=unix:///d")
    assert (r.code, r.err) == (1, 'context "dup" already exists\n')
    r = berth("context", "rm", "nope", "dup", "-f")
    assert (r.code, r.out) == (0, "nope\ndup\n")


@pytest.fixture
def ca_file(tmp_path):
    trustme = pytest.importorskip("trustme")
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def test_invalid_ca_is_refused_like_docker(berth, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    r = berth("context", "create", "bad", "--docker", f"host=tcp://h:2376,ca={bad}")
    assert (r.code, r.err) == (
        1,
        "unable to create docker endpoint config: invalid docker endpoint options: "
        "failed to retrieve context tls info: ca.pem seems invalid\n",
    )


def test_create_from_copies_endpoint_and_tls(berth, config_dir, ca_file):
    ca = ca_file
    assert berth("context", "create", "src", "--docker", f"host=tcp://h:2376,ca={ca}", "--description", "orig").code == 0
    assert berth("context", "create", "copy", "--from", "src").code == 0
    assert berth("context", "create", "copy2", "--from", "src", "--description", "new").code == 0
    rows = {row["Name"]: row for row in map(json.loads, berth("context", "ls", "--format", "json").out.splitlines())}
    assert rows["copy"]["DockerEndpoint"] == "tcp://h:2376" and rows["copy"]["Description"] == "orig"
    assert rows["copy2"]["Description"] == "new"
    info = json.loads(berth("context", "inspect", "copy").out)[0]
    assert info["TLSMaterial"] == {"docker": ["ca.pem"]}
    # --docker from=: only the endpoint, no TLS files
    assert berth("context", "create", "epcopy", "--docker", "from=src").code == 0
    info = json.loads(berth("context", "inspect", "epcopy").out)[0]
    assert info["Endpoints"]["docker"]["Host"] == "tcp://h:2376" and info["TLSMaterial"] == {}


def test_create_without_docker_copies_the_current_context(berth, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.9:2375")
    r = berth("context", "create", "snap")
    assert r.code == 0
    info = json.loads(berth("context", "inspect", "snap").out)[0]
    assert info["Endpoints"]["docker"] == {"Host": "tcp://10.0.0.9:2375", "SkipTLSVerify": False}


def test_update(berth):
    berth("context", "create", "up", "--docker", "host=unix:///a", "--description", "one")
    r = berth("context", "update", "up", "--description", "two")
    assert (r.code, r.out, r.err) == (0, "up\n", 'Successfully updated context "up"\n')
    r = berth("context", "update", "up", "--docker", "host=tcp://b:1,skip-tls-verify=true")
    info = json.loads(berth("context", "inspect", "up").out)[0]
    assert info["Metadata"] == {"Description": "two"}
    assert info["Endpoints"]["docker"] == {"Host": "tcp://b:1", "SkipTLSVerify": True}
    assert berth("context", "update", "default").err == '"default" is a reserved context name\n'


def test_inspect_default_and_format(berth, monkeypatch):
    r = berth("context", "inspect")
    obj = json.loads(r.out)[0]
    assert obj["Name"] == "default" and obj["Metadata"] == {}
    assert obj["Storage"] == {"MetadataPath": "<IN MEMORY>", "TLSPath": "<IN MEMORY>"}
    assert '"\\u003cIN MEMORY\\u003e"' in r.out  # Go's escaping
    r = berth("context", "inspect", "-f", "{{.Name}} {{.Endpoints.docker.Host}}", "default")
    assert r.out == "default unix:///run/berth.sock\n"


def test_ls_marks_a_missing_current_context(berth, config_dir):
    (config_dir / "config.json").write_text(json.dumps({"currentContext": "gone"}))
    rows = [json.loads(line) for line in berth("context", "ls", "--format", "json").out.splitlines()]
    gone = [r for r in rows if r["Name"] == "gone"][0]
    assert gone["Current"] is True
    assert gone["Error"].startswith('context "gone": context not found: open ') and gone["Error"].endswith("…")
    assert len(gone["Error"]) == 45


def test_ls_warns_when_docker_host_overrides(berth, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///x.sock")
    r = berth("context", "ls")
    assert "unix:///x.sock" in r.out
    assert r.err.startswith("Warning: DOCKER_HOST environment variable overrides the active context.")


# -- the same output as the docker CLI, on the same store ------------------------------------------


def docker(config_dir, *args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    e["DOCKER_CONFIG"] = str(config_dir)
    e.update(env or {})
    return subprocess.run([DOCKER, *args], env=e, capture_output=True, text=True, timeout=60)


@needs_docker
def test_ls_output_identical_to_docker(berth, config_dir, monkeypatch):
    for name, host, desc in [
        ("alpha", "unix:///tmp/alpha.sock", "first"),
        ("b2", "tcp://10.0.0.2:2376", "日本語の説明"),
        ("b10", "ssh://me@example.com", ""),
        ("long-name-context", "tcp://[::1]:2375", "a rather long description of this context"),
    ]:
        args = ["context", "create", name, "--docker", f"host={host}"] + (["--description", desc] if desc else [])
        assert docker(config_dir, *args).returncode == 0
    broken = meta_path(config_dir, "broken")
    broken.parent.mkdir(parents=True)
    broken.write_text('{"Name":"broken","Metadata":{},"Endpoints":{}}')
    # default's endpoint would differ (docker's socket vs berth's): pin it for both
    monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
    formats = [
        [],
        ["--format", "table {{.Name}}\t{{.DockerEndpoint}}"],
        ["--format", "table {{.Current}}\t{{.Name}}\t{{.Error}}"],
        ["--format", "table {{json .Name}}\t{{upper .Name}}|"],
        ["--format", "{{.Name}}\t{{.Current}}"],
        ["--format", "json"],
        ["--format", "{{json .}}"],
        ["--format", "table {{.Name}}\\n{{.Description}}"],
        ["-q"],
    ]
    for fmt in formats:
        want = docker(config_dir, "context", "ls", *fmt, env={"DOCKER_HOST": "unix:///var/run/docker.sock"})
        got = berth("context", "ls", *fmt)
        assert (got.code, got.out) == (want.returncode, want.stdout), fmt
        assert got.err == want.stderr, fmt


@needs_docker
def test_inspect_output_identical_to_docker(berth, config_dir, ca_file):
    ca = ca_file
    assert docker(config_dir, "context", "create", "withtls", "--description", "a<b & c>d",
                  "--docker", f"host=tcp://h:2376,ca={ca},skip-tls-verify=true").returncode == 0
    assert berth("context", "create", "fromberth", "--docker", "host=unix:///b.sock").code == 0
    for refs in (["withtls"], ["fromberth", "withtls"], ["withtls", "missing"]):
        want = docker(config_dir, "context", "inspect", *refs)
        got = berth("context", "inspect", *refs)
        assert (got.code, got.out, got.err) == (want.returncode, want.stdout, want.stderr), refs


@needs_docker
def test_use_and_rm_interop(berth, config_dir):
    (config_dir / "config.json").write_text(json.dumps({"auths": {"reg.example": {"auth": "dTpw"}}, "psFormat": "table {{.ID}}"}))
    assert docker(config_dir, "context", "create", "shared", "--docker", "host=unix:///s.sock").returncode == 0
    assert berth("context", "use", "shared").code == 0
    assert docker(config_dir, "context", "show").stdout == "shared\n"
    assert json.loads((config_dir / "config.json").read_text())["psFormat"] == "table {{.ID}}"
    assert docker(config_dir, "context", "use", "default").returncode == 0
    assert berth("context", "show").out == "default\n"
    assert berth("context", "rm", "shared").code == 0
    assert "shared" not in docker(config_dir, "context", "ls", "-q").stdout
