"""The context store in docker's format, config.json, and endpoint resolution."""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from berth.client.config import ConfigFile
from berth.client.contexts import (
    ClientOptions,
    Context,
    ContextStore,
    StoreWithDefault,
    context_id,
    natural_key,
    resolve_context_name,
    resolve_endpoint,
    validate_name,
)
from berth.client.errors import ContextError, ContextNotFound

DOCKER = shutil.which("docker")
needs_docker = pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")


def make(store: ContextStore, name: str, host: str, description: str = "", skip: bool = False) -> None:
    ctx = Context(name, {}, {"docker": {"Host": host, "SkipTLSVerify": skip}})
    ctx.description = description
    store.create_or_update(ctx)


def test_meta_json_bytes_match_dockers(isolated_env):
    store = ContextStore(str(isolated_env))
    make(store, "zz", "unix:///tmp/z.sock", "hello")
    make(store, "t3", "tcp://1.2.3.4", skip=True)
    digest = hashlib.sha256(b"zz").hexdigest()
    path = isolated_env / "contexts" / "meta" / digest / "meta.json"
    # what `docker context create zz --docker host=unix:///tmp/z.sock --description hello` writes
    assert path.read_bytes() == (
        b'{"Name":"zz","Metadata":{"Description":"hello"},'
        b'"Endpoints":{"docker":{"Host":"unix:///tmp/z.sock","SkipTLSVerify":false}}}'
    )
    t3 = isolated_env / "contexts" / "meta" / context_id("t3") / "meta.json"
    assert t3.read_bytes() == b'{"Name":"t3","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://1.2.3.4","SkipTLSVerify":true}}}'


def test_unknown_fields_survive_a_rewrite(isolated_env):
    store = ContextStore(str(isolated_env))
    d = isolated_env / "contexts" / "meta" / context_id("kube")
    d.mkdir(parents=True)
    original = {
        "Name": "kube",
        "Metadata": {"Description": "d", "StackOrchestrator": "swarm"},
        "Endpoints": {"docker": {"Host": "unix:///x"}, "kubernetes": {"Namespace": "ns"}},
    }
    (d / "meta.json").write_text(json.dumps(original))
    ctx = store.get("kube")
    ctx.description = "new"
    store.create_or_update(ctx)
    again = json.loads((d / "meta.json").read_text())
    assert again["Metadata"] == {"Description": "new", "StackOrchestrator": "swarm"}
    assert again["Endpoints"]["kubernetes"] == {"Namespace": "ns"}


def test_get_missing_has_dockers_text(isolated_env):
    store = ContextStore(str(isolated_env))
    with pytest.raises(ContextNotFound) as e:
        store.get("nope")
    path = isolated_env / "contexts" / "meta" / context_id("nope") / "meta.json"
    assert str(e.value) == f'context "nope": context not found: open {path}: no such file or directory'


def test_tls_files_layout_and_modes(isolated_env):
    store = ContextStore(str(isolated_env))
    make(store, "secure", "tcp://h:2376")
    store.reset_tls("secure", {"docker": {"ca.pem": b"CA", "cert.pem": b"CERT", "key.pem": b"KEY"}})
    base = isolated_env / "contexts" / "tls" / context_id("secure") / "docker"
    assert (base / "ca.pem").read_bytes() == b"CA"
    assert oct((base / "key.pem").stat().st_mode & 0o777) == "0o600"
    assert oct(base.stat().st_mode & 0o777) == "0o700"
    assert store.list_tls_files("secure") == {"docker": ["ca.pem", "cert.pem", "key.pem"]}
    ep = resolve_endpoint(ClientOptions(context="secure"))
    assert ep.host == "tcp://h:2376"
    assert ep.tls is not None and ep.tls.verify and ep.tls.ca_file == str(base / "ca.pem")
    store.remove("secure")
    assert not (isolated_env / "contexts" / "tls" / context_id("secure")).exists()
    assert not store.exists("secure")


def test_list_is_sorted_naturally(isolated_env):
    store = ContextStore(str(isolated_env))
    for name in ["b10", "b2", "a1"]:
        make(store, name, "unix:///x")
    assert [c.name for c in store.list()] == ["a1", "b2", "b10"]
    assert natural_key("x2") < natural_key("x10")


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "context name cannot be empty"),
        ("default", '"default" is a reserved context name'),
        ("x", 'context name "x" is invalid, names are validated against regexp "^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$"'),
        ("-ab", 'context name "-ab" is invalid, names are validated against regexp "^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$"'),
    ],
)
def test_validate_name(name, message):
    with pytest.raises(ContextError) as e:
        validate_name(name)
    assert str(e.value) == message


def test_config_json_keeps_other_keys(isolated_env):
    path = isolated_env / "config.json"
    path.write_text(json.dumps({"auths": {"r.example": {"auth": "eA=="}}, "credsStore": "pass", "x-custom": [1, 2]}))
    cfg = ConfigFile.load(str(isolated_env))
    cfg.current_context = "zz"
    cfg.save()
    data = json.loads(path.read_text())
    assert data == {"auths": {"r.example": {"auth": "eA=="}}, "credsStore": "pass", "x-custom": [1, 2], "currentContext": "zz"}
    assert "\n\t" in path.read_text()  # docker's tab indentation
    cfg.current_context = ""
    cfg.save()
    assert "currentContext" not in json.loads(path.read_text())


def test_resolution_order(isolated_env, monkeypatch):
    cfg = ConfigFile.load(str(isolated_env))
    cfg.current_context = "fromconfig"
    opts = ClientOptions()
    assert resolve_context_name(opts, cfg) == "fromconfig"
    monkeypatch.setenv("DOCKER_CONTEXT", "fromenv")
    assert resolve_context_name(opts, cfg) == "fromenv"
    monkeypatch.setenv("DOCKER_HOST", "tcp://1.2.3.4:5")
    assert resolve_context_name(opts, cfg) == "default"
    assert resolve_context_name(ClientOptions(context="flag"), cfg) == "flag"
    assert resolve_context_name(ClientOptions(host="unix:///h"), cfg) == "default"
    with pytest.raises(ContextError, match="conflicting options: cannot specify both --host and --context"):
        resolve_context_name(ClientOptions(host="unix:///h", context="flag"), cfg)


def test_default_endpoint(isolated_env, monkeypatch):
    assert resolve_endpoint(ClientOptions()).host == "unix:///run/berth.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.1.2.3")
    ep = resolve_endpoint(ClientOptions())
    assert (ep.host, ep.tls, ep.context) == ("tcp://10.1.2.3:2375", None, "default")
    assert resolve_endpoint(ClientOptions(host="unix:///a.sock")).host == "unix:///a.sock"


def test_default_endpoint_tls_from_env(isolated_env, monkeypatch, certs):
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", os.path.dirname(certs["ca"]))
    ep = resolve_endpoint(ClientOptions())
    assert ep.host == "tcp://localhost:2376"
    assert ep.tls.verify and ep.tls.ca_file == certs["ca"] and ep.tls.key_file == certs["key"]
    # --tls alone: encrypted, not verified, no CA needed
    monkeypatch.delenv("DOCKER_TLS_VERIFY")
    ep2 = resolve_endpoint(ClientOptions(tls=True, host="tcp://h:1"))
    assert ep2.tls.verify is False and ep2.tls.ca_file == ""


def test_store_with_default(isolated_env, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///custom.sock")
    s = StoreWithDefault(ContextStore(str(isolated_env)), ClientOptions())
    d = s.get("default")
    assert d.host == "unix:///custom.sock"
    assert s.storage_info("default") == {"MetadataPath": "<IN MEMORY>", "TLSPath": "<IN MEMORY>"}
    assert [c.name for c in s.list()] == ["default"]


def test_current_context_missing_is_an_error_only_on_use(isolated_env):
    cfg = ConfigFile.load(str(isolated_env))
    cfg.current_context = "gone"
    cfg.save()
    assert resolve_context_name(ClientOptions()) == "gone"
    with pytest.raises(ContextNotFound):
        resolve_endpoint(ClientOptions())


# -- interop with the real docker CLI -----------------------------------------------------------


def docker(config_dir, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(config_dir)
    return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=60)


@needs_docker
def test_docker_reads_what_berth_writes(isolated_env, certs):
    store = ContextStore(str(isolated_env))
    make(store, "from-berth", "tcp://10.9.8.7:2376", "made by berth")
    ca = pathlib.Path(certs["ca"]).read_bytes()
    store.reset_tls("from-berth", {"docker": {"ca.pem": ca}})
    cfg = ConfigFile.load(str(isolated_env))
    cfg.data["auths"] = {"example.com": {}}
    cfg.current_context = "from-berth"
    cfg.save()
    r = docker(isolated_env, "context", "ls", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = {row["Name"]: row for row in map(json.loads, r.stdout.splitlines())}
    assert rows["from-berth"]["DockerEndpoint"] == "tcp://10.9.8.7:2376"
    assert rows["from-berth"]["Description"] == "made by berth"
    assert rows["from-berth"]["Current"] is True
    r = docker(isolated_env, "context", "inspect", "from-berth")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)[0]
    assert info["TLSMaterial"] == {"docker": ["ca.pem"]}
    assert info["Storage"]["MetadataPath"] == str(isolated_env / "contexts" / "meta" / context_id("from-berth"))


@needs_docker
def test_berth_reads_what_docker_writes(isolated_env, certs):
    r = docker(
        isolated_env,
        "context",
        "create",
        "from-docker",
        "--description",
        "made by docker",
        "--docker",
        f"host=tcp://127.0.0.1:2376,ca={certs['ca']},cert={certs['cert']},key={certs['key']}",
    )
    assert r.returncode == 0, r.stderr
    r = docker(isolated_env, "context", "use", "from-docker")
    assert r.returncode == 0, r.stderr
    store = ContextStore(str(isolated_env))
    ctx = store.get("from-docker")
    assert ctx.description == "made by docker"
    assert ctx.host == "tcp://127.0.0.1:2376"
    assert resolve_context_name(ClientOptions()) == "from-docker"
    ep = resolve_endpoint(ClientOptions())
    assert ep.tls.verify and pathlib.Path(ep.tls.cert_file).read_bytes() == pathlib.Path(certs["cert"]).read_bytes()
    # and berth's rewrite is byte-identical to docker's file
    path = isolated_env / "contexts" / "meta" / context_id("from-docker") / "meta.json"
    before = path.read_bytes()
    store.create_or_update(store.get("from-docker"))
    assert path.read_bytes() == before
