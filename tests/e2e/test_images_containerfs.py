"""A container's filesystem through the real docker CLI and docker-py: docker diff, export,
commit, and docker cp both ways (running and stopped containers, symlinks, ownership)."""

import base64
import io
import json
import os
import subprocess
import tarfile
import time
import uuid

import docker
import pytest

pytestmark = pytest.mark.e2e


def dk(daemon, *args, input=None, check=True, timeout=120):
    result = subprocess.run(["docker", *args], env=daemon.env(), capture_output=True,
                            input=input, timeout=timeout)
    out, err = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}): {err}")
    return result.returncode, out, err


@pytest.fixture
def made(busybox):
    """Names of containers and images a test creates on the shared daemon; removed after."""
    containers, images = [], []

    def container(prefix="fs"):
        containers.append(f"{prefix}-{uuid.uuid4().hex[:8]}")
        return containers[-1]

    def image(prefix="fsimg"):
        images.append(f"{prefix}-{uuid.uuid4().hex[:8]}:t")
        return images[-1]

    container.image = image  # type: ignore[attr-defined]
    yield container
    for name in containers:
        dk(busybox, "rm", "-f", name, check=False)
    for ref in images:
        dk(busybox, "rmi", "-f", ref, check=False)


@pytest.fixture
def api(busybox):
    client = docker.APIClient(base_url=busybox.host, version="auto", timeout=120)
    yield client
    client.close()


def test_diff_export_and_commit(busybox, made, tmp_path):
    name = made()
    dk(busybox, "run", "--name", name, "busybox", "sh", "-c",
       "mkdir -p /new/dir && echo data > /new/dir/file && echo x >> /etc/passwd && rm /etc/group")
    changes = dict(reversed(line.split(" ", 1)) for line in dk(busybox, "diff", name)[1].splitlines())
    assert changes["/new"] == "A" and changes["/new/dir/file"] == "A"
    assert changes["/etc/passwd"] == "C" and changes["/etc/group"] == "D" and changes["/etc"] == "C"
    # export: the whole filesystem, changes included
    out = tmp_path / "export.tar"
    dk(busybox, "export", "-o", str(out), name)
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        assert tar.extractfile("new/dir/file").read() == b"data\n"
    assert "bin/busybox" in names and "etc/group" not in names
    # commit with everything the CLI can send
    ref = made.image()
    image_id = dk(busybox, "commit", "-a", "Ada <ada@example.com>", "-m", "my message",
                  "-c", "ENV COMMITTED=yes", "-c", "WORKDIR /new", "-c", 'CMD ["cat", "dir/file"]',
                  name, ref)[1].strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    info = json.loads(dk(busybox, "image", "inspect", ref)[1])[0]
    parent = dk(busybox, "image", "inspect", "-f", "{{.Id}}", "busybox")[1].strip()
    assert info["Id"] == image_id and info["Parent"] == parent
    assert info["Author"] == "Ada <ada@example.com>" and info["Comment"] == "my message"
    assert "COMMITTED=yes" in info["Config"]["Env"] and info["Config"]["WorkingDir"] == "/new"
    assert len(info["RootFS"]["Layers"]) == 2
    assert dk(busybox, "run", "--rm", ref)[1] == "data\n"
    history = [json.loads(line) for line in
               dk(busybox, "history", "--no-trunc", "--format", "{{json .}}", ref)[1].splitlines()]
    assert [h["ID"] for h in history] == [image_id, parent]
    assert history[0]["Comment"] == "my message" and "mkdir -p /new/dir" in history[0]["CreatedBy"]


def test_commit_of_unchanged_container_and_running_one(busybox, made):
    name = made()
    dk(busybox, "create", "--name", name, "busybox", "true")
    ref = made.image()
    dk(busybox, "commit", name, ref)
    layers = dk(busybox, "image", "inspect", "-f", "{{len .RootFS.Layers}}", ref)[1].strip()
    assert layers == "1"  # an empty diff adds no layer (empty_layer history entry)
    running = made()
    dk(busybox, "run", "-d", "--name", running, "busybox", "sh", "-c",
       "echo live > /live; sleep 60")
    dk(busybox, "exec", running, "test", "-f", "/live")
    for pause, frozen in (("true", True), ("false", False)):
        live_ref = made.image()
        since = str(time.time())
        dk(busybox, "commit", f"--pause={pause}", running, live_ref)
        seen = dk(busybox, "events", "--since", since, "--until", str(time.time() + 1),
                  "--filter", f"container={running}", "--format", "{{.Action}}")[1].split()
        assert "commit" in seen, seen
        assert ("pause" in seen and "unpause" in seen) is frozen, seen
        assert dk(busybox, "run", "--rm", live_ref, "cat", "/live")[1] == "live\n"
    assert dk(busybox, "inspect", "-f", "{{.State.Running}} {{.State.Paused}}", running)[1] == \
        "true false\n"
    code, _, err = dk(busybox, "commit", "no-such-container", check=False)
    assert code == 1 and "No such container: no-such-container" in err


def test_docker_py_commit_and_diff(busybox, made, api):
    name = made()
    container = api.create_container("busybox", ["sh", "-c", "touch /pyfile"], name=name)
    api.start(container)
    api.wait(container)
    assert {"Path": "/pyfile", "Kind": 1} in api.diff(container)
    repo = made.image().split(":")[0]
    result = api.commit(container, repository=repo, tag="t", message="py", changes=["LABEL via=py"])
    assert result["Id"].startswith("sha256:")
    assert api.inspect_image(f"{repo}:t")["Config"]["Labels"] == {"via": "py"}
    fresh = made()
    api.create_container("busybox", "true", name=fresh)
    assert api.diff(fresh) is None  # nothing changed yet: null, as Docker answers


def test_cp_both_ways_running_and_stopped(busybox, made, tmp_path):
    name = made()
    dk(busybox, "run", "-d", "--name", name, "busybox", "sh", "-c",
       "mkdir -p /srv/tree/sub && echo one > /srv/tree/a && echo two > /srv/tree/sub/b && "
       "ln -s /srv/tree/a /srv/link && sleep 60")
    dk(busybox, "exec", name, "test", "-L", "/srv/link")
    for state in ("running", "stopped"):
        out = tmp_path / state
        out.mkdir()
        dk(busybox, "cp", f"{name}:/srv/tree", str(out))
        assert (out / "tree" / "a").read_text() == "one\n"
        assert (out / "tree" / "sub" / "b").read_text() == "two\n"
        dk(busybox, "cp", f"{name}:/srv/link", str(out / "link"))
        assert os.readlink(out / "link") == "/srv/tree/a"  # the link itself, not its target
        dk(busybox, "cp", "-L", f"{name}:/srv/link", str(out / "followed"))
        assert (out / "followed").read_text() == "one\n"
        src = tmp_path / f"upload-{state}"
        src.mkdir()
        (src / "f.txt").write_text(state)
        dk(busybox, "cp", str(src), f"{name}:/srv/")
        dk(busybox, "cp", str(src / "f.txt"), f"{name}:/srv/renamed.txt")
        code, _, err = dk(busybox, "cp", f"{name}:/nope", str(out), check=False)
        assert code == 1 and "Could not find the file /nope in container " + name in err
        if state == "running":
            assert dk(busybox, "exec", name, "cat", f"/srv/upload-{state}/f.txt")[1] == state
            dk(busybox, "stop", "-t", "0", name)
    # stdin/stdout tar streams, and what the stopped container received
    tarred = dk(busybox, "cp", f"{name}:/srv/renamed.txt", "-")[1]
    assert "stopped" in tarred
    listing = dk(busybox, "cp", f"{name}:/srv", "-")[1]
    assert "upload-running/f.txt" in listing and "upload-stopped/f.txt" in listing


def test_cp_into_volume_of_stopped_container(busybox, made, tmp_path):
    name, volume = made(), f"cpvol-{uuid.uuid4().hex[:8]}"
    try:
        dk(busybox, "run", "--name", name, "-v", f"{volume}:/data", "busybox", "sh", "-c",
           "echo vol > /data/inside")
        dk(busybox, "cp", f"{name}:/data/inside", str(tmp_path / "inside"))
        assert (tmp_path / "inside").read_text() == "vol\n"
        dk(busybox, "cp", f"{name}:/data", str(tmp_path / "whole"))  # the mount point itself
        assert (tmp_path / "whole" / "inside").read_text() == "vol\n"
        (tmp_path / "new").write_text("new")
        dk(busybox, "cp", str(tmp_path / "new"), f"{name}:/data/new")
        assert dk(busybox, "run", "--rm", "-v", f"{volume}:/v", "busybox", "cat", "/v/new")[1] == "new"
    finally:
        dk(busybox, "rm", "-f", name, check=False)
        dk(busybox, "volume", "rm", "-f", volume, check=False)


def test_cp_symlinks_never_leave_the_container(busybox, made, tmp_path):
    name = made()
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "secret").write_text("host secret")
    dk(busybox, "create", "--name", name, "busybox", "true")
    # Entries that go through a symlink pointing at a host directory land inside the root.
    through_link = io.BytesIO()
    with tarfile.open(fileobj=through_link, mode="w") as tar:
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.SYMTYPE, str(host_dir)
        tar.addfile(link)
        info = tarfile.TarInfo("escape/planted")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    dk(busybox, "cp", "-", f"{name}:/tmp", input=through_link.getvalue())
    assert sorted(os.listdir(host_dir)) == ["secret"]
    inside = dk(busybox, "cp", f"{name}:{host_dir}/planted", "-")[1]
    assert "evil" in inside  # at <rootfs>/<host_dir>/planted, as a chroot would put it
    # An entry climbing out with .. is refused; nothing is written anywhere.
    climbing = io.BytesIO()
    with tarfile.open(fileobj=climbing, mode="w") as tar:
        up = tarfile.TarInfo(f"../../../../../..{tmp_path}/planted2")
        up.size = 4
        tar.addfile(up, io.BytesIO(b"evil"))
    code, _, err = dk(busybox, "cp", "-", f"{name}:/tmp", input=climbing.getvalue(), check=False)
    assert code == 1 and "invalid entry name" in err
    assert not (tmp_path / "planted2").exists()
    # Reading through an absolute symlink resolves inside the container root too.
    code, _, err = dk(busybox, "cp", "-L", f"{name}:/tmp/escape/secret", str(tmp_path / "read"),
                      check=False)
    assert code == 1 and "Could not find the file" in err and not (tmp_path / "read").exists()


def test_archive_api_stat_header_uid_gid_and_no_overwrite(busybox, made, api):
    name = made()
    dk(busybox, "create", "--name", name, "--user", "nobody", "busybox", "true")
    dk(busybox, "cp", "/etc/hostname", f"{name}:/etc/")  # make sure /etc is writable
    stream, stat = api.get_archive(name, "/etc/passwd")
    assert stat["name"] == "passwd" and stat["mode"] & 0o777 == 0o644 and stat["size"] > 0
    b"".join(stream)
    resp = api.head(api._url("/containers/{0}/archive", name), params={"path": "/bin/sh"})
    header = json.loads(base64.b64decode(resp.headers["X-Docker-Container-Path-Stat"]))
    assert header["linkTarget"] == "/bin/busybox" and header["mode"] & (1 << 27)
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        info = tarfile.TarInfo("owned")
        info.size, info.uid, info.gid = 2, 1234, 1234
        tar.addfile(info, io.BytesIO(b"hi"))
    assert api.put_archive(name, "/tmp", payload.getvalue())
    resp = api._put(api._url("/containers/{0}/archive", name),
                    params={"path": "/tmp", "copyUIDGID": "1"}, data=_tar_with("mine", b"x"))
    api._raise_for_status(resp)
    _, stat = api.get_archive(name, "/tmp/owned")
    owners = {}
    for entry in ("owned", "mine"):
        stream, _ = api.get_archive(name, f"/tmp/{entry}")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.getmember(entry)
            owners[entry] = (member.uid, member.gid)
    assert owners == {"owned": (1234, 1234), "mine": (65534, 65534)}  # nobody:nogroup
    # noOverwriteDirNonDir: a file may not replace the directory /tmp/dir
    dk(busybox, "cp", "-", f"{name}:/tmp", input=_dir_tar("dir"))
    resp = api._put(api._url("/containers/{0}/archive", name),
                    params={"path": "/tmp", "noOverwriteDirNonDir": "true"}, data=_tar_with("dir", b"f"))
    assert resp.status_code == 400 and "directory" in resp.json()["message"]
    with pytest.raises(docker.errors.NotFound, match="Could not find the file /no/such"):
        api.get_archive(name, "/no/such")
    with pytest.raises(docker.errors.APIError, match="extraction point is not a directory"):
        api.put_archive(name, "/etc/passwd", _tar_with("x", b"x"))


def _tar_with(name, data):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _dir_tar(name):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    return buffer.getvalue()
