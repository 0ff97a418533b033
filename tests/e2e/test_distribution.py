"""berthd as a registry client, end to end, against Debian's docker-registry on 127.0.0.1 in
four setups (plain HTTP, TLS with the test's own CA through certs.d, htpasswd basic auth,
token auth with the test's token server), driven by the real docker CLI, docker-py and
berth: push, pull (tag, digest, all tags, platform), progress, RepoDigests, layer reuse
and mounts, login/logout, search, registry data, errors with Docker's words, mirrors,
concurrent pulls, a registry dying mid-pull and a daemon killed mid-pull."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from daemon_harness import remove_root, start_daemon
from distribution_support import RawPusher, ThrottlingProxy, file_tar, gz, layered_archive, zst
from images_harness import import_busybox
from registry_harness import PASSWORD, USER, SearchServer, start_registry

from berth.distribution import mediatypes as mt
from berth.distribution.auth import AuthConfig

pytestmark = pytest.mark.e2e
KINDS = ("plain", "tls", "basic", "token")


@pytest.fixture(scope="module")
def registries():
    started = {}
    try:
        for kind in KINDS:
            started[kind] = start_registry(kind)
        yield started
    finally:
        for registry in started.values():
            registry.stop()


@pytest.fixture(scope="module")
def daemon(registries):
    daemon = start_daemon(env={"BERTH_CERTS_DIRS": registries["tls"].certs_root})
    import_busybox(daemon.env())
    yield daemon
    code = daemon.stop()
    log = daemon.log()
    remove_root(daemon.root)
    assert code == 0, log


def run(daemon, *args, input=None, check=True, timeout=180, env=None):
    result = subprocess.run(list(args), env=env or daemon.env(), capture_output=True, text=True,
                            input=input, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def login(daemon, registry, cli="docker"):
    if registry.kind in ("basic", "token"):
        run(daemon, cli, "login", "-u", USER, "--password-stdin", registry.host,
            input=PASSWORD + "\n")


def load(daemon, tag, sizes, seed=""):
    result = subprocess.run(["docker", "load"], input=layered_archive(tag, sizes, seed),
                            env=daemon.env(), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return tag


def inspect(daemon, ref):
    return json.loads(run(daemon, "docker", "image", "inspect", ref).stdout)[0]


def manifest_of(registry, path, ref, auth=None):
    pusher = RawPusher(registry.host, path, auth)
    try:
        data, media, digest = pusher.repo.get_manifest(ref)
        return json.loads(data), digest
    finally:
        pusher.close()


# -- the round trip in each setup, with each client ----------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cli", ["docker", "berth"])
def test_push_then_pull_in_each_setup(daemon, registries, kind, cli):
    registry = registries[kind]
    login(daemon, registry, cli)
    name = f"{registry.host}/roundtrip/{cli}"
    load(daemon, f"{name}:v1", [300_000, 200_000], seed=f"{kind}{cli}")
    image_id = inspect(daemon, f"{name}:v1")["Id"]
    pushed = run(daemon, cli, "push", f"{name}:v1").stdout
    assert f"The push refers to repository [{name}]" in pushed
    assert "Pushed" in pushed
    digest = pushed.strip().splitlines()[-1].split("digest: ")[1].split()[0]
    assert f"{name}@{digest}" in inspect(daemon, f"{name}:v1")["RepoDigests"]
    again = run(daemon, cli, "push", f"{name}:v1").stdout
    assert "Layer already exists" in again and "Pushed" not in again
    run(daemon, "docker", "rmi", f"{name}:v1")
    pulled = run(daemon, cli, "pull", f"{name}:v1").stdout
    for status in ("v1: Pulling from roundtrip/" + cli, "Pull complete", f"Digest: {digest}",
                   f"Status: Downloaded newer image for {name}:v1"):
        assert status in pulled, pulled
    assert inspect(daemon, f"{name}:v1")["Id"] == image_id  # the same config, the same ID
    up_to_date = run(daemon, cli, "pull", f"{name}:v1").stdout
    assert f"Status: Image is up to date for {name}:v1" in up_to_date
    digests = run(daemon, "docker", "images", "--digests", "--format", "{{.Digest}}", name).stdout
    assert digest in digests
    out = run(daemon, "docker", "run", "--rm", "--network", "none", f"{name}:v1", "wc", "-c",
              f"/data/{kind}{cli}layer1.bin").stdout
    assert out.split()[0] == "200000"
    run(daemon, "docker", "rmi", f"{name}:v1")


def test_tls_verification_uses_certs_d(daemon, registries, tmp_path):
    """The TLS registry's CA comes from certs.d; a daemon trusting another CA refuses it."""
    import trustme
    registry = registries["tls"]
    other = tmp_path / "certs.d" / registry.host
    other.mkdir(parents=True)
    trustme.CA().cert_pem.write_to_path(str(other / "ca.crt"))
    second = start_daemon(env={"BERTH_CERTS_DIRS": str(tmp_path / "certs.d")})
    try:
        result = run(second, "docker", "pull", f"{registry.host}/roundtrip/docker:v1", check=False)
        assert result.returncode != 0
        assert "tls: failed to verify certificate: x509: certificate signed by unknown authority" \
            in result.stderr, result.stderr
    finally:
        second.stop()
        remove_root(second.root)


# -- references --------------------------------------------------------------------------------------
def test_pull_by_digest_all_tags_and_missing_image_run(daemon, registries):
    registry = registries["plain"]
    name = f"{registry.host}/refs/app"
    load(daemon, f"{name}:one", [100_000], seed="one")
    load(daemon, f"{name}:two", [100_000], seed="two")
    pushed = run(daemon, "docker", "push", "--all-tags", name).stdout
    assert "one: digest: " in pushed and "two: digest: " in pushed
    digest = pushed.split("one: digest: ")[1].split()[0]
    run(daemon, "docker", "rmi", f"{name}:one", f"{name}:two")
    by_digest = run(daemon, "docker", "pull", f"{name}@{digest}").stdout
    assert f"{name}@{digest}: Pulling from refs/app" in by_digest
    assert f"Status: Downloaded newer image for {name}@{digest}" in by_digest
    run(daemon, "docker", "rmi", f"{name}@{digest}")
    everything = run(daemon, "docker", "pull", "--all-tags", name).stdout
    assert "one: Pulling from refs/app" in everything and "two: Pulling from refs/app" in everything
    assert f"Status: Downloaded newer image for {name}" in everything
    tags = run(daemon, "docker", "images", "--format", "{{.Tag}}", name).stdout.split()
    assert sorted(tags) == ["one", "two"]
    run(daemon, "docker", "rmi", f"{name}:one", f"{name}:two")
    ran = run(daemon, "docker", "run", "--rm", "--network", "none", f"{name}:two", "ls", "/data")
    assert "Unable to find image" in ran.stderr and "twolayer0.bin" in ran.stdout
    berth = run(daemon, "berth", "run", "--rm", "--network", "none", f"{name}:one", "ls", "/data")
    assert "Unable to find image" in berth.stderr and "onelayer0.bin" in berth.stdout


def test_index_picks_the_platform_and_oci_layers_of_every_compression(daemon, registries):
    registry = registries["plain"]
    pusher = RawPusher(registry.host, "multi/app")
    try:
        base = file_tar({"bin/busybox": open("/bin/busybox", "rb").read()})
        plain = file_tar({"data/plain.txt": b"uncompressed layer\n"})
        zstd_layer = file_tar({"data/zstd.txt": b"zstd layer\n"})
        amd, amd_size = pusher.image("amd64", [(base, gz(base), mt.OCI_LAYER_GZIP),
                                               (plain, plain, mt.OCI_LAYER),
                                               (zstd_layer, zst(zstd_layer), mt.OCI_LAYER_ZSTD)])
        arm, arm_size = pusher.image("arm64", [(base, gz(base), mt.OCI_LAYER_GZIP)], arch="arm64")
        index = pusher.manifest("latest", mt.OCI_INDEX, {
            "schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
                {"mediaType": mt.OCI_MANIFEST, "digest": arm, "size": arm_size,
                 "platform": {"architecture": "arm64", "os": "linux"}},
                {"mediaType": mt.OCI_MANIFEST, "digest": amd, "size": amd_size,
                 "platform": {"architecture": "amd64", "os": "linux"}}]})
    finally:
        pusher.close()
    name = f"{registry.host}/multi/app"
    pulled = run(daemon, "docker", "pull", name).stdout
    assert f"Digest: {index}" in pulled
    facts = inspect(daemon, name)
    assert facts["Architecture"] == "amd64" and f"{name}@{index}" in facts["RepoDigests"]
    out = run(daemon, "docker", "run", "--rm", "--network", "none", "--entrypoint",
              "/bin/busybox", name, "cat", "/data/plain.txt", "/data/zstd.txt").stdout
    assert out == "uncompressed layer\nzstd layer\n"
    run(daemon, "docker", "pull", "--platform", "linux/arm64", name)
    assert inspect(daemon, name)["Architecture"] == "arm64"
    warned = run(daemon, "docker", "run", "--rm", "--network", "none", "--entrypoint", "/bin/busybox",
                 name, "true")
    assert ("The requested image's platform (linux/arm64) does not match the detected host platform "
            "(linux/amd64) and no specific platform was requested") in warned.stderr
    asked = run(daemon, "docker", "run", "--rm", "--network", "none", "--platform", "linux/amd64",
                "--entrypoint", "/bin/busybox", name, "cat", "/data/plain.txt")
    assert asked.stdout == "uncompressed layer\n"  # not found for amd64: the CLI pulled it
    assert inspect(daemon, name)["Architecture"] == "amd64"
    again = f"{registry.host}/multi/copy:v1"  # a pulled OCI image with a zstd layer, pushed on
    run(daemon, "docker", "tag", name, again)
    pushed = run(daemon, "docker", "push", again).stdout
    assert "Mounted from multi/app" in pushed
    copied, _ = manifest_of(registry, "multi/copy", "v1")
    original, _ = manifest_of(registry, "multi/app", amd)
    assert copied["mediaType"] == mt.OCI_MANIFEST
    assert [l["digest"] for l in copied["layers"]] == [l["digest"] for l in original["layers"]]
    missing = run(daemon, "docker", "pull", "--platform", "linux/s390x", name, check=False)
    assert "no matching manifest for linux/s390x in the manifest list entries" in missing.stderr
    data = run(daemon, "python3", "-c", f"import docker,json; print(json.dumps(docker.from_env()"
               f".images.get_registry_data('{name}').attrs))").stdout
    platforms = json.loads(data)["Platforms"]
    assert {"architecture": "amd64", "os": "linux"} in platforms and len(platforms) == 2


# -- blobs reused ----------------------------------------------------------------------------------------
def test_push_of_a_pulled_image_mounts_or_sends_the_same_blobs(daemon, registries):
    plain, basic = registries["plain"], registries["basic"]
    source = f"{plain.host}/reuse/source:v1"
    load(daemon, source, [400_000], seed="reuse")
    run(daemon, "docker", "push", source)
    run(daemon, "docker", "rmi", source)
    run(daemon, "docker", "pull", source)
    original, _ = manifest_of(plain, "reuse/source", "v1")
    same_registry = f"{plain.host}/reuse/other:v1"
    run(daemon, "docker", "tag", source, same_registry)
    mounted = run(daemon, "docker", "push", same_registry).stdout
    assert mounted.count("Mounted from reuse/source") == 2, mounted
    login(daemon, basic)
    elsewhere = f"{basic.host}/reuse/copy:v1"
    run(daemon, "docker", "tag", source, elsewhere)
    run(daemon, "docker", "push", elsewhere)
    copied, _ = manifest_of(basic, "reuse/copy", "v1", AuthConfig(USER, PASSWORD))
    assert [l["digest"] for l in copied["layers"]] == [l["digest"] for l in original["layers"]]


# -- login, logout, search -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["basic", "token"])
def test_login_logout_and_wrong_credentials(daemon, registries, kind):
    registry = registries[kind]
    env = daemon.env(DOCKER_CONFIG=os.path.join(daemon.root, f"login-{kind}"))
    wrong = run(daemon, "docker", "login", "-u", USER, "--password-stdin", registry.host,
                input="nope\n", check=False, env=env)
    assert wrong.returncode == 1
    expected = ("login attempt to http" if kind == "basic" else "unauthorized: incorrect username or password")
    assert expected in wrong.stderr, wrong.stderr
    run(daemon, "docker", "login", "-u", USER, "--password-stdin", registry.host,
        input=PASSWORD + "\n", env=env)
    with open(os.path.join(env["DOCKER_CONFIG"], "config.json")) as handle:
        assert registry.host in json.load(handle)["auths"]
    out = run(daemon, "berth", "logout", registry.host, env=env).stdout
    assert out == f"Removing login credentials for {registry.host}\n"
    with open(os.path.join(env["DOCKER_CONFIG"], "config.json")) as handle:
        assert registry.host not in json.load(handle).get("auths", {})
    denied = run(daemon, "docker", "pull", f"{registry.host}/roundtrip/docker:v1", check=False, env=env)
    if kind == "basic":
        assert "no basic auth credentials" in denied.stderr, denied.stderr
    else:
        assert ("pull access denied for " f"{registry.host}/roundtrip/docker, repository does not exist "
                "or may require 'docker login': denied: requested access to the resource is denied") \
            in denied.stderr, denied.stderr


def test_docker_py_login_pull_push_and_run(daemon, registries):
    import docker
    registry = registries["token"]
    client = docker.DockerClient(base_url=daemon.host)
    try:
        assert client.login(USER, PASSWORD, registry=registry.host)["Status"] == "Login Succeeded"
        with pytest.raises(docker.errors.APIError):
            client.login(USER, "wrong", registry=registry.host, reauth=True)
        auth = {"username": USER, "password": PASSWORD}
        name = f"{registry.host}/py/app"
        load(daemon, f"{name}:v1", [50_000], seed="py")
        lines = list(client.images.push(name, "v1", auth_config=auth, stream=True, decode=True))
        assert any("aux" in line and line["aux"]["Tag"] == "v1" for line in lines), lines
        client.images.remove(f"{name}:v1")
        image = client.images.pull(name, "v1", auth_config=auth)
        assert f"{name}:v1" in image.tags
        client.images.remove(f"{name}:v1")
        client.login(USER, PASSWORD, registry=registry.host, reauth=True)
        out = client.containers.run(f"{name}:v1", ["ls", "/data"], remove=True, network_mode="none")
        assert b"pylayer0.bin" in out
        with pytest.raises(docker.errors.NotFound):
            client.images.pull(f"{registry.host}/py/nothing", "v1", auth_config=auth)
    finally:
        client.close()


def test_search(daemon, registries):
    server = SearchServer([
        {"name": "team/tool", "description": "x" * 60, "star_count": 7, "is_official": False,
         "is_automated": False},
        {"name": "library/toolbox", "description": "official", "star_count": 99, "is_official": True,
         "is_automated": False}])
    try:
        for cli in ("docker", "berth"):
            out = run(daemon, cli, "search", f"{server.host}/tool").stdout.splitlines()
            assert out[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
            assert out[1].startswith("team/tool") and "x" * 44 + "…" in out[1]
            official = run(daemon, cli, "search", "--filter", "is-official=true",
                           f"{server.host}/tool").stdout
            assert "library/toolbox" in official and "team/tool" not in official
        assert server.queries[-1]["n"] == ["25"]
        bad = run(daemon, "docker", "search", "--limit", "101", f"{server.host}/tool", check=False)
        assert "limit 101 is outside the range of [1, 100]" in bad.stderr
        none = run(daemon, "docker", "search", f"{registries['plain'].host}/x", check=False)
        assert "Unexpected status code 404" in none.stderr
    finally:
        server.stop()


# -- errors ------------------------------------------------------------------------------------------------
def test_errors_read_as_dockers_and_the_daemon_stays_healthy(daemon, registries):
    plain = registries["plain"]
    unknown = run(daemon, "docker", "pull", f"{plain.host}/nobody/here:v9", check=False)
    assert unknown.stderr.strip() == (f"Error response from daemon: manifest for {plain.host}/nobody/"
                                      f"here:v9 not found: manifest unknown: manifest unknown")
    gone = run(daemon, "docker", "pull", "127.0.0.1:1/x/y", check=False)
    assert 'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused' in gone.stderr
    invalid = run(daemon, "docker", "pull", "UPPER/Case", check=False)
    assert "invalid reference format" in invalid.stderr
    import docker
    api = docker.APIClient(base_url=daemon.host)
    try:
        with pytest.raises(docker.errors.NotFound) as caught:  # before any output: a 404
            api.pull(f"{plain.host}/nobody/here", "v9")
        assert caught.value.status_code == 404
    finally:
        api.close()
    not_local = run(daemon, "docker", "push", f"{plain.host}/never/made:v1", check=False)
    assert f"An image does not exist locally with the tag: {plain.host}/never/made" in not_local.stderr
    assert run(daemon, "docker", "version", "--format", "{{.Server.APIVersion}}").stdout.strip() == "1.47"


def test_pull_events(daemon, registries):
    registry = registries["plain"]
    name = f"{registry.host}/events/app"
    load(daemon, f"{name}:v1", [10_000], seed="events")
    run(daemon, "docker", "push", f"{name}:v1")
    since = str(int(time.time()) - 1)
    run(daemon, "docker", "pull", f"{name}:v1")
    until = str(int(time.time()) + 1)
    events = run(daemon, "docker", "events", "--since", since, "--until", until, "--filter",
                 "type=image", "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}").stdout
    assert f"pull {name}:v1 {name}" in events


# -- mirrors, concurrency, failures ------------------------------------------------------------------------
def test_registry_mirror_serves_docker_hub_names(registries, fresh_berthd):
    mirror = registries["plain"]
    pusher = RawPusher(mirror.host, "library/mirrored")
    try:
        base = file_tar({"bin/busybox": open("/bin/busybox", "rb").read()})
        pusher.image("v1", [(base, gz(base), mt.DOCKER_LAYER)], manifest_type=mt.DOCKER_MANIFEST,
                     config_type=mt.DOCKER_CONFIG)
    finally:
        pusher.close()
    daemon = fresh_berthd(config={"registry-mirrors": [f"http://{mirror.host}"]})
    out = run(daemon, "docker", "pull", "mirrored:v1").stdout
    assert "v1: Pulling from library/mirrored" in out and "Status: Downloaded newer image for mirrored:v1" in out
    info = json.loads(run(daemon, "docker", "info", "--format", "{{json .RegistryConfig}}").stdout)
    assert info["Mirrors"] == [f"http://{mirror.host}"]


def test_concurrent_pulls_share_one_download(registries, fresh_berthd):
    registry = registries["plain"]
    proxy = ThrottlingProxy(registry.port, rate=4 << 20)
    try:
        daemon = fresh_berthd()
        import_busybox(daemon.env())
        name = f"{proxy.host}/shared/app:v1"
        load(daemon, name, [2_000_000, 2_000_000], seed="shared")
        run(daemon, "docker", "push", name)
        layers = [l["digest"] for l in manifest_of(registry, "shared/app", "v1")[0]["layers"]]
        second = fresh_berthd()
        results = []

        def pull():
            results.append(run(second, "docker", "pull", name, check=False))
        threads = [threading.Thread(target=pull) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
        for digest in layers:
            assert registry.requests("GET", f"/v2/shared/app/blobs/{digest}") == 1, digest
    finally:
        proxy.stop()


def test_registry_dying_mid_pull_leaves_nothing(registries, fresh_berthd):
    registry = registries["plain"]
    proxy = ThrottlingProxy(registry.port, rate=1 << 20)
    try:
        daemon = fresh_berthd(config={"max-download-attempts": 1})
        import_busybox(daemon.env())
        name = f"{proxy.host}/dying/app:v1"
        load(daemon, name, [3_000_000], seed="dying")
        run(daemon, "docker", "push", name)
        run(daemon, "docker", "rmi", name)
        puller = subprocess.Popen(["docker", "pull", name], env=daemon.env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        proxy.refuse = True
        proxy.cut()
        out, err = puller.communicate(timeout=120)
        assert puller.returncode != 0, out
        assert run(daemon, "docker", "images", "-q", name).stdout == ""
        proxy.refuse = False
        run(daemon, "docker", "pull", name)
        assert run(daemon, "docker", "images", "-q", name).stdout.strip()
    finally:
        proxy.stop()


def test_sigkill_mid_pull_then_the_next_pull_reuses_complete_layers(registries):
    registry = registries["plain"]
    proxy = ThrottlingProxy(registry.port, rate=1 << 20)
    daemon = start_daemon(config={"max-concurrent-downloads": 1})
    try:
        name = f"{proxy.host}/killed/app:v1"
        load(daemon, name, [200_000, 4_000_000], seed="killed")
        run(daemon, "docker", "push", name)
        run(daemon, "docker", "rmi", name)
        layers = [l["digest"] for l in manifest_of(registry, "killed/app", "v1")[0]["layers"]]
        before = {d: registry.requests("GET", f"/v2/killed/app/blobs/{d}") for d in layers}
        puller = subprocess.Popen(["docker", "pull", name], env=daemon.env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        seen = ""
        deadline = time.monotonic() + 60
        while seen.count("Pull complete") < 2 and time.monotonic() < deadline:
            line = puller.stdout.readline()
            if not line:
                break
            seen += line
        assert seen.count("Pull complete") == 2, seen  # busybox and the small layer are in
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait()
        puller.wait(30)
        daemon = start_daemon(root=daemon.root, config={"max-concurrent-downloads": 1})
        assert run(daemon, "docker", "images", "-q", name).stdout == ""  # nothing half-made
        out = run(daemon, "docker", "pull", name).stdout
        assert "Status: Downloaded newer image" in out
        after = {d: registry.requests("GET", f"/v2/killed/app/blobs/{d}") for d in layers}
        assert after[layers[0]] == before[layers[0]] + 1  # complete blobs were not fetched again
        assert after[layers[1]] == before[layers[1]] + 1
        assert after[layers[2]] >= before[layers[2]] + 1  # (the killed GET is logged when it ends)
        run(daemon, "docker", "run", "--rm", "--network", "none", name, "ls", "/data")
    finally:
        daemon.stop()
        remove_root(daemon.root)
        proxy.stop()


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose (1.29) is not installed")
def test_compose_pull_and_up_pull_what_is_missing(daemon, registries, tmp_path):
    registry = registries["plain"]
    first, second = f"{registry.host}/compose/one:v1", f"{registry.host}/compose/two:v1"
    for index, name in enumerate((first, second)):
        load(daemon, name, [5_000], seed=f"compose{index}")
        run(daemon, "docker", "push", name)
        run(daemon, "docker", "rmi", name)
    (tmp_path / "docker-compose.yml").write_text(
        'version: "3"\nservices:\n'
        f'  one:\n    image: {first}\n    command: ["ls", "/data"]\n    network_mode: none\n'
        f'  two:\n    image: {second}\n    command: ["ls", "/data"]\n    network_mode: none\n')

    def compose(*args):
        return subprocess.run(["docker-compose", "-p", "berthdist", *args], cwd=tmp_path,
                              env=daemon.env(), capture_output=True, text=True, timeout=180)
    try:
        pulled = compose("pull", "one")
        assert pulled.returncode == 0, pulled.stderr
        assert run(daemon, "docker", "images", "-q", first).stdout.strip()
        assert run(daemon, "docker", "images", "-q", second).stdout.strip() == ""
        up = compose("up", "--no-color")
        assert up.returncode == 0, up.stderr
        assert "compose0layer0.bin" in up.stdout and "compose1layer0.bin" in up.stdout
    finally:
        compose("down")


def test_progress_stream_is_dockers(daemon, registries):
    """The JSON lines clients draw bars from: every layer's steps, Waiting beyond
    max-concurrent-downloads, Downloading/Extracting with progressDetail and the rendered
    bar, Already exists for a layer present."""
    import docker
    registry = registries["plain"]
    name = f"{registry.host}/progress/app"
    load(daemon, f"{name}:v1", [1_500_000] * 4, seed="progress")
    run(daemon, "docker", "push", f"{name}:v1")
    run(daemon, "docker", "rmi", f"{name}:v1")
    api = docker.APIClient(base_url=daemon.host)
    try:
        lines = list(api.pull(name, "v1", stream=True, decode=True))
    finally:
        api.close()
    by_layer: dict[str, list[str]] = {}
    for line in lines:
        if "id" in line and line["id"] != "v1":
            by_layer.setdefault(line["id"], []).append(line["status"])
    assert lines[0] == {"status": "Pulling from progress/app", "id": "v1"}
    already = [steps for steps in by_layer.values() if steps == ["Already exists"]]
    assert len(already) == 1  # the busybox base layer imported at the start
    pulled = [steps for steps in by_layer.values() if steps != ["Already exists"]]
    assert len(pulled) == 4
    assert sum("Waiting" in steps for steps in pulled) == 1  # 4 layers, 3 download slots
    for steps in pulled:
        assert steps[0] == "Pulling fs layer" and steps[-1] == "Pull complete"
        for step in ("Downloading", "Verifying Checksum", "Download complete", "Extracting"):
            assert step in steps, steps
    downloading = [l for l in lines if l.get("status") == "Downloading"]
    assert all(l["progressDetail"]["total"] > 0 and "progress" in l for l in downloading)
    assert lines[-2]["status"].startswith("Digest: sha256:")
    assert lines[-1] == {"status": f"Status: Downloaded newer image for {name}:v1"}


def test_credentials_in_a_helper_are_shared_with_the_docker_cli(daemon, registries, tmp_path):
    import stat
    import sys
    registry = registries["basic"]
    store = tmp_path / "store.json"
    helper = tmp_path / "docker-credential-fake"
    helper.write_text(f"#!{sys.executable}\n" + (
        "import json, os, sys\n"
        f"path = {str(store)!r}\n"
        "data = json.load(open(path)) if os.path.exists(path) else {}\n"
        "action, payload = sys.argv[1], sys.stdin.read()\n"
        "if action == 'store':\n    e = json.loads(payload); data[e['ServerURL']] = e\n"
        "elif action == 'get':\n"
        "    if payload.strip() not in data: print('credentials not found in native keychain'); sys.exit(1)\n"
        "    print(json.dumps(data[payload.strip()]))\n"
        "elif action == 'list':\n    print(json.dumps({k: v['Username'] for k, v in data.items()}))\n"
        "elif action == 'erase':\n    data.pop(payload.strip(), None)\n"
        "json.dump(data, open(path, 'w'))\n"))
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    env = daemon.env(DOCKER_CONFIG=str(config_dir), PATH=f"{tmp_path}:{os.environ['PATH']}")
    login = run(daemon, "berth", "login", "-u", USER, "--password-stdin", registry.host,
                input=PASSWORD + "\n", env=env)
    assert login.stdout == "Login Succeeded\n" and "unencrypted" not in login.stderr
    assert json.loads(store.read_text())[registry.host]["Secret"] == PASSWORD
    name = f"{registry.host}/helper/app:v1"
    load(daemon, name, [20_000], seed="helper")
    run(daemon, "docker", "push", name, env=env)  # the docker CLI asks the helper too
    run(daemon, "docker", "rmi", name)
    run(daemon, "berth", "pull", name, env=env)
    run(daemon, "berth", "logout", registry.host, env=env)
    assert registry.host not in json.loads(store.read_text())


def test_foreign_layers_come_from_their_urls_and_are_not_pushed(daemon, registries):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    registry = registries["plain"]
    base = file_tar({"bin/busybox": open("/bin/busybox", "rb").read()})
    foreign = file_tar({"data/foreign.txt": b"from elsewhere\n"})
    blob = gz(foreign)
    served = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/layer.tar.gz"
    pusher = RawPusher(registry.host, "foreign/app")
    try:
        from distribution_support import image_config, sha
        config = image_config([sha(base), sha(foreign)])
        document = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                    "config": {"mediaType": mt.DOCKER_CONFIG, "digest": pusher.blob(config),
                               "size": len(config)},
                    "layers": [{"mediaType": mt.DOCKER_LAYER, "digest": pusher.blob(gz(base)),
                                "size": len(gz(base))},
                               {"mediaType": mt.DOCKER_FOREIGN_LAYER, "digest": sha(blob),
                                "size": len(blob), "urls": [url]}]}
        pusher.manifest("v1", mt.DOCKER_MANIFEST, document)
    finally:
        pusher.close()
    try:
        name = f"{registry.host}/foreign/app:v1"
        run(daemon, "docker", "pull", name)
        assert served == ["/layer.tar.gz"]
        out = run(daemon, "docker", "run", "--rm", "--network", "none", "--entrypoint", "/bin/busybox",
                  name, "cat", "/data/foreign.txt").stdout
        assert out == "from elsewhere\n"
        copy = f"{registry.host}/foreign/copy:v1"
        run(daemon, "docker", "tag", name, copy)
        pushed = run(daemon, "docker", "push", copy).stdout
        assert "Skipped foreign layer" in pushed, pushed
        manifest, _ = manifest_of(registry, "foreign/copy", "v1")
        assert manifest["layers"][1] == {"mediaType": mt.DOCKER_FOREIGN_LAYER, "digest": sha(blob),
                                         "size": len(blob), "urls": [url]}
        check = RawPusher(registry.host, "foreign/copy")
        try:
            assert not check.repo.blob_exists(sha(blob))  # never uploaded
        finally:
            check.close()
    finally:
        server.shutdown()
        server.server_close()


# -- a build whose base image is in a registry -----------------------------------------------------
@pytest.mark.parametrize("kind", ["plain", "token"])
def test_build_pulls_its_base_image(daemon, registries, kind, tmp_path):
    """FROM names an image that is not local: the builder pulls it, with the credentials
    the client sends for that registry (X-Registry-Config), and shows the pull."""
    registry = registries[kind]
    base = f"{registry.host}/base/busybox-{kind}:1"
    run(daemon, "docker", "tag", "busybox", base)
    login(daemon, registry)
    run(daemon, "docker", "push", base)
    run(daemon, "docker", "rmi", base)
    (tmp_path / "Dockerfile").write_text(f"FROM {base}\nRUN echo built > /built\n")
    tag = f"built-from-{kind}:1"
    done = run(daemon, "docker", "build", "-t", tag, str(tmp_path))
    assert "Pulling from base/busybox" in done.stdout + done.stderr
    assert run(daemon, "docker", "run", "--rm", tag, "cat", "/built").stdout == "built\n"
    run(daemon, "docker", "rmi", tag, base)
    if kind != "plain":
        run(daemon, "docker", "logout", registry.host)
