"""docker save / docker load through the real CLI, docker-py and skopeo: both archive layouts,
ID round trips, OCI archives from skopeo, hostile archives, concurrent loads, and a daemon
killed in the middle of a load or import."""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
import uuid

import docker
import pytest

from images_harness import busybox_rootfs_tar

pytestmark = pytest.mark.e2e

SKOPEO = shutil.which("skopeo")


def dk(daemon, *args, input=None, check=True, timeout=180):
    result = subprocess.run(["docker", *args], env=daemon.env(), capture_output=True,
                            input=input, timeout=timeout)
    out, err = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}): {err}")
    return result.returncode, out, err


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(entries) -> bytes:
    """entries: (name, bytes) files, (name, target, "sym") symlinks, (name, None, "dir")."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, payload, *kind in entries:
            info = tarfile.TarInfo(name)
            if kind and kind[0] == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tar.addfile(info)
            elif kind and kind[0] == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(payload), 0o644
                tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def docker_archive(layers, tags, extra=()):
    diff_ids = [sha(layer) for layer in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-05-06T07:08:09Z",
                         "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "history": [{"created": "2024-05-06T07:08:09Z"} for _ in layers]}).encode()
    entries = [(f"blobs/sha256/{d[7:]}", layer) for d, layer in zip(diff_ids, layers)]
    entries.append((f"blobs/sha256/{sha(config)[7:]}", config))
    entries.append(("manifest.json", json.dumps([{
        "Config": f"blobs/sha256/{sha(config)[7:]}", "RepoTags": tags,
        "Layers": [f"blobs/sha256/{d[7:]}" for d in diff_ids]}]).encode()))
    entries.extend(extra)
    return tar_of(entries), sha(config)


@pytest.fixture(scope="module")
def rootfs():
    return busybox_rootfs_tar()


def test_save_load_round_trip_many_images(fresh_berthd, rootfs, tmp_path):
    daemon = fresh_berthd()
    base = dk(daemon, "import", "-c", 'CMD ["sh"]', "-", "rt/base:1", input=rootfs)[1].strip()
    dk(daemon, "tag", "rt/base:1", "rt/base:2")
    dk(daemon, "run", "--name", "mk", "rt/base:1", "sh", "-c", "echo child > /child")
    child = dk(daemon, "commit", "mk", "rt/child:1")[1].strip()
    dk(daemon, "rm", "mk")
    archive = tmp_path / "all.tar"
    dk(daemon, "save", "-o", str(archive), "rt/base", "rt/child:1")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("manifest.json"))
        index = json.load(tar.extractfile("index.json"))
        repositories = json.load(tar.extractfile("repositories"))
        for item in manifest:  # every layer blob is the exact tar its diff ID names
            config = json.load(tar.extractfile(item["Config"]))
            for path, diff_id in zip(item["Layers"], config["rootfs"]["diff_ids"]):
                assert sha(tar.extractfile(path).read()) == diff_id
    assert {"oci-layout", "index.json", "manifest.json", "repositories"} <= names
    tags = sorted(t for item in manifest for t in item["RepoTags"])
    assert tags == ["rt/base:1", "rt/base:2", "rt/child:1"]
    assert set(repositories) == {"rt/base", "rt/child"}
    assert {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]} == {"1", "2"}
    child_item = next(i for i in manifest if i["RepoTags"] == ["rt/child:1"])
    assert child_item["Parent"] == base
    dk(daemon, "rmi", "rt/child:1", "rt/base:1", "rt/base:2")
    assert dk(daemon, "images", "-aq")[1] == ""
    out = dk(daemon, "load", "-i", str(archive))[1]
    assert sorted(out.splitlines()) == ["Loaded image: rt/base:1", "Loaded image: rt/base:2",
                                        "Loaded image: rt/child:1"]
    ids = dk(daemon, "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")[1]
    assert f"rt/base:1 {base}" in ids and f"rt/child:1 {child}" in ids
    assert dk(daemon, "run", "--rm", "rt/child:1", "cat", "/child")[1] == "child\n"
    assert dk(daemon, "image", "inspect", "-f", "{{.Parent}}", "rt/child:1")[1].strip() == base
    # Saving by ID gives an untagged image; loading it says so.
    dk(daemon, "save", "-o", str(tmp_path / "byid.tar"), base[7:19])
    dk(daemon, "rmi", "rt/child:1")
    dk(daemon, "rmi", "rt/base:1", "rt/base:2")
    assert dk(daemon, "load", "-q", "-i", str(tmp_path / "byid.tar"))[1] == f"Loaded image ID: {base}\n"


def test_docker_py_save_and_load(fresh_berthd, rootfs):
    daemon = fresh_berthd()
    dk(daemon, "import", "-", "py:1", input=rootfs)
    client = docker.DockerClient(base_url=daemon.host, version="auto", timeout=120)
    try:
        image = client.images.get("py:1")
        data = b"".join(image.save(named=True))
        client.images.remove("py:1")
        loaded = client.images.load(data)
        assert [i.id for i in loaded] == [image.id] and loaded[0].tags == ["py:1"]
        stream = list(client.api.load_image(data, quiet=False))
        assert any(m.get("stream") == "Loaded image: py:1\n" for m in stream)
    finally:
        client.close()


@pytest.mark.skipif(SKOPEO is None, reason="skopeo not installed")
def test_skopeo_reads_our_save_and_we_load_its_oci_archive(fresh_berthd, rootfs, tmp_path):
    daemon = fresh_berthd()
    image_id = dk(daemon, "import", "-c", 'CMD ["sh"]', "-", "sk:1", input=rootfs)[1].strip()
    saved = tmp_path / "sk.tar"
    dk(daemon, "save", "-o", str(saved), "sk:1")
    for transport in ("docker-archive", "oci-archive"):  # both layouts are valid
        info = subprocess.run([SKOPEO, "inspect", "--config", f"{transport}:{saved}"],
                              capture_output=True, text=True, timeout=60)
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["config"]["Cmd"] == ["sh"]
    oci = tmp_path / "sk-oci.tar"
    copy = subprocess.run([SKOPEO, "--insecure-policy", "copy", f"docker-archive:{saved}",
                           f"oci-archive:{oci}:localhost/sk:oci"], capture_output=True, text=True,
                          timeout=120)
    assert copy.returncode == 0, copy.stderr
    layers = dk(daemon, "image", "inspect", "-f", "{{json .RootFS.Layers}}", "sk:1")[1]
    dk(daemon, "rmi", "sk:1")
    assert dk(daemon, "load", "-i", str(oci))[1] == "Loaded image: localhost/sk:oci\n"
    # skopeo rewrites the config as an OCI config (a new ID); the layers are the same bytes.
    assert dk(daemon, "image", "inspect", "-f", "{{json .RootFS.Layers}}",
              "localhost/sk:oci")[1] == layers
    oci_id = dk(daemon, "image", "inspect", "-f", "{{.Id}}", "localhost/sk:oci")[1].strip()
    assert oci_id != image_id
    assert dk(daemon, "run", "--rm", "localhost/sk:oci", "echo", "from oci")[1] == "from oci\n"
    legacy = tmp_path / "sk-docker.tar"  # skopeo's own docker-archive writer
    copy = subprocess.run([SKOPEO, "--insecure-policy", "copy", f"oci-archive:{oci}",
                           f"docker-archive:{legacy}:other/sk:legacy"], capture_output=True,
                          text=True, timeout=120)
    assert copy.returncode == 0, copy.stderr
    assert dk(daemon, "load", "-i", str(legacy))[1] == "Loaded image: other/sk:legacy\n"
    assert dk(daemon, "image", "inspect", "-f", "{{json .RootFS.Layers}}",
              "other/sk:legacy")[1] == layers
    dk(daemon, "rmi", "other/sk:legacy")
    gz = tmp_path / "sk-gz.tar"  # gzip layers, untagged
    copy = subprocess.run([SKOPEO, "--insecure-policy", "copy", "--dest-compress",
                           f"docker-archive:{saved}", f"oci-archive:{gz}"],
                          capture_output=True, text=True, timeout=120)
    assert copy.returncode == 0, copy.stderr
    dk(daemon, "rmi", "localhost/sk:oci")
    out = dk(daemon, "load", "-i", str(gz))[1]
    assert out.startswith("Loaded image ID: sha256:"), out
    assert dk(daemon, "image", "inspect", "-f", "{{json .RootFS.Layers}}",
              out.split()[-1])[1] == layers


def test_hostile_archives_fail_cleanly(fresh_berthd, rootfs, tmp_path):
    daemon = fresh_berthd()
    marker = f"escape-{uuid.uuid4().hex[:8]}"
    victims = [os.path.join(daemon.root, marker), os.path.join(daemon.data_root, marker),
               os.path.join("/tmp", marker)]
    outer = [
        tar_of([(f"../../{marker}", b"x"), ("manifest.json", b"[]")]),
        tar_of([(f"../../../../../../tmp/{marker}", b"x")]),
        tar_of([("manifest.json", "/etc/passwd", "sym")]),
        docker_archive([rootfs], ["bad:1"])[0].replace(b"blobs/sha256/", b"blobs/sha257/", 1),
        tar_of([("manifest.json", json.dumps([{"Config": "../../../../etc/passwd", "RepoTags": [],
                                               "Layers": []}]).encode())]),
        docker_archive([tar_of([(f"../../{marker}", b"x")])], ["bad:1"])[0],
    ]
    for data in outer:
        code, _, err = dk(daemon, "load", input=data, check=False)
        assert code == 1 and err, err
        assert dk(daemon, "images", "-aq")[1] == ""
    for victim in victims:
        assert not os.path.exists(victim), victim
    # A layer that goes through its own symlink lands inside the layer, not on the host.
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    evil = tar_of([("sneaky", str(host_dir), "sym"), ("sneaky/pwned", b"gotcha")])
    data, _ = docker_archive([rootfs, evil], ["evil:1"])
    dk(daemon, "load", input=data)
    assert os.listdir(host_dir) == []
    assert dk(daemon, "run", "--rm", "evil:1", "cat", f"{host_dir}/pwned")[1] == "gotcha"
    assert os.listdir(os.path.join(daemon.data_root, "image-tmp")) == []


def test_concurrent_loads_sharing_a_layer(fresh_berthd, rootfs):
    daemon = fresh_berthd()
    archives = [docker_archive([rootfs, tar_of([(name, name.encode())])], [f"{name}:1"])[0]
                for name in ("left", "right")]
    results = [None, None]

    def load(i):
        results[i] = dk(daemon, "load", input=archives[i], check=False)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r[0] for r in results] == [0, 0], results
    for name in ("left", "right"):
        assert dk(daemon, "run", "--rm", f"{name}:1", "cat", f"/{name}")[1] == name
    layer_dirs = os.listdir(os.path.join(daemon.data_root, "layerdb", "layers", "sha256"))
    assert len(layer_dirs) == 3  # the shared base once, plus one each


def _big_layer(path, size_mb):
    """A layer tar on disk with one big file; returns its sha256."""
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        info = tarfile.TarInfo("big")
        info.size = size_mb << 20
        header = info.tobuf(format=tarfile.PAX_FORMAT)
        for chunk in [header] + [block] * size_mb + [b"\0" * 1024]:
            out.write(chunk)
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory):
    """A docker-archive with a 384 MB layer (big enough to kill the daemon in the middle)."""
    directory = tmp_path_factory.mktemp("big")
    layer = directory / "layer.tar"
    diff_id = _big_layer(layer, 384)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    archive = directory / "big.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(layer, f"blobs/sha256/{diff_id[7:]}")
        for name, data in ((f"blobs/sha256/{sha(config)[7:]}", config),
                           ("manifest.json", json.dumps([{
                               "Config": f"blobs/sha256/{sha(config)[7:]}", "RepoTags": ["big:1"],
                               "Layers": [f"blobs/sha256/{diff_id[7:]}"]}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    yield archive, layer
    shutil.rmtree(directory, ignore_errors=True)


def _wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _files_under(top):
    for directory, _, files in os.walk(top):
        for name in files:
            yield os.path.join(directory, name)


def _registering(data_root):
    """True once a layer's big file is being written by a driver."""
    for driver in ("overlay2", "vfs"):
        top = os.path.join(data_root, driver)
        if os.path.isdir(top) and any(p.endswith("/big") for p in _files_under(top)):
            return True
    return False


def _uploading(data_root):
    top = os.path.join(data_root, "image-tmp")
    return any(os.path.getsize(p) > (8 << 20) for p in _files_under(top))


def _assert_nothing_left(daemon):
    assert dk(daemon, "images", "-aq")[1] == ""
    data = daemon.data_root
    assert os.listdir(os.path.join(data, "layerdb", "layers", "sha256")) == []
    assert os.listdir(os.path.join(data, "image-tmp")) == []
    assert os.listdir(os.path.join(data, "content", "sha256")) == []
    for driver in ("overlay2", "vfs"):
        top = os.path.join(data, driver)
        if os.path.isdir(top):
            assert [d for d in os.listdir(top) if d not in ("l", ".trash")] == [], os.listdir(top)
            trash = os.path.join(top, ".trash")  # removed layers go, ~0.1 s after removal
            deadline = time.monotonic() + 10
            while os.path.isdir(trash) and os.listdir(trash) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not os.path.isdir(trash) or os.listdir(trash) == []
    assert dk(daemon, "image", "prune", "-a", "-f")[1].strip() == "Total reclaimed space: 0B"


@pytest.mark.parametrize("phase", ["upload", "register", "import"])
def test_sigkill_mid_load_or_import_leaves_nothing(fresh_berthd, big_archive, phase):
    archive, layer = big_archive
    daemon = fresh_berthd()
    command = ["docker", "import", str(layer), "big:1"] if phase == "import" else \
        ["docker", "load", "-i", str(archive)]
    client = subprocess.Popen(command, env=daemon.env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        watch = _uploading if phase == "upload" else _registering
        assert _wait_for(lambda: watch(daemon.data_root)), f"never reached the {phase} phase"
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(10)
    finally:
        client.wait(60)
    again = fresh_berthd(root=daemon.root)
    _assert_nothing_left(again)
    # The store still works: the same archive loads completely afterwards.
    dk(again, "load", "-q", "-i", str(archive))
    assert dk(again, "images", "--format", "{{.Repository}}:{{.Tag}}")[1] == "big:1\n"
    dk(again, "rmi", "big:1")
    _assert_nothing_left(again)
