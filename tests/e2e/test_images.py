"""The image store through the real docker CLI and docker-py: import, images, inspect,
history, tag, rmi, prune, system df and image events."""

import io
import json
import subprocess
import tarfile
import time
import uuid

import docker
import pytest

from images_harness import busybox_rootfs_tar

pytestmark = pytest.mark.e2e


def dk(daemon, *args, input=None, check=True, timeout=120):
    result = subprocess.run(["docker", *args], env=daemon.env(), capture_output=True,
                            input=input, timeout=timeout)
    out = result.stdout.decode(errors="replace")
    err = result.stderr.decode(errors="replace")
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}): {err}")
    return result.returncode, out, err


def unique(prefix="img"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def small_rootfs(marker: str) -> bytes:
    """A one-file rootfs; different markers give different layers (and image IDs)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        data = marker.encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def import_image(daemon, ref, marker=None, changes=()):
    args = ["import"]
    for change in changes:
        args += ["-c", change]
    _, out, _ = dk(daemon, *args, "-", ref, input=small_rootfs(marker or ref))
    return out.strip()


@pytest.fixture
def refs(busybox):
    """Image references a test creates on the shared daemon; removed afterwards."""
    made = []

    def make(prefix="img"):
        made.append(f"{unique(prefix)}:t")
        return made[-1]

    yield make
    for ref in made:
        dk(busybox, "rmi", "-f", ref, check=False)


@pytest.fixture
def api(busybox):
    client = docker.DockerClient(base_url=busybox.host, version="auto", timeout=120)
    yield client
    client.close()


def test_import_from_file_with_every_change_and_message(busybox, refs, tmp_path):
    ref = refs("imp")
    path = tmp_path / "rootfs.tar"
    path.write_bytes(busybox_rootfs_tar())
    changes = ['CMD ["sh", "-c", "echo $GREETING"]', "ENTRYPOINT []", "ENV GREETING=hello A=1",
               "WORKDIR /srv", "USER nobody", "EXPOSE 8080 53/udp", "LABEL team=berth tier=db",
               "VOLUME /data", "STOPSIGNAL SIGINT",
               "HEALTHCHECK --interval=30s --retries=2 CMD true", "ONBUILD RUN true"]
    args = ["import", "-m", "from a file"]
    for change in changes:
        args += ["-c", change]
    _, out, _ = dk(busybox, *args, str(path), ref)
    image_id = out.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    info = json.loads(dk(busybox, "image", "inspect", ref)[1])[0]
    config = info["Config"]
    assert info["Id"] == image_id and info["RepoTags"] == [ref]
    assert config["Cmd"] == ["sh", "-c", "echo $GREETING"]
    assert config["Entrypoint"] == []
    assert config["Env"] == ["GREETING=hello", "A=1"]
    assert config["WorkingDir"] == "/srv" and config["User"] == "nobody"
    assert config["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert config["Labels"] == {"team": "berth", "tier": "db"}
    assert config["Volumes"] == {"/data": {}} and config["StopSignal"] == "SIGINT"
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000,
                                     "Retries": 2}
    assert config["OnBuild"] == ["RUN true"]
    assert info["Comment"] == "from a file"
    # The imported image runs with its config.
    code, out, _ = dk(busybox, "run", "--rm", "--user", "root", "-w", "/", ref)
    assert out == "hello\n"


def test_import_compressed_layer_from_stdin(busybox, refs):
    import gzip
    ref = refs("gz")
    image_id = dk(busybox, "import", "-", ref, input=gzip.compress(busybox_rootfs_tar()))[1].strip()
    assert dk(busybox, "run", "--rm", ref, "echo", "gz")[1] == "gz\n"
    assert dk(busybox, "image", "inspect", "-f", "{{.Id}}", ref)[1].strip() == image_id


def test_import_errors_are_clean(busybox):
    code, _, err = dk(busybox, "import", "-c", "RUN echo", "-", "x:y", input=b"", check=False)
    assert code == 1 and "run is not a valid change command" in err
    code, _, err = dk(busybox, "import", "-", "x:y", input=b"not a tar at all" * 100, check=False)
    assert code == 1 and "invalid tar header" in err
    assert "x:y" not in dk(busybox, "images", "--format", "{{.Repository}}:{{.Tag}}")[1]


def test_images_formats_and_filters(busybox, refs):
    web, db = refs("web"), refs("db")
    web_id = import_image(busybox, web, changes=["LABEL tier=web"])
    time.sleep(1.1)  # Created has one-second resolution in since/before
    db_id = import_image(busybox, db, changes=["LABEL tier=db"])
    dangling_id = dk(busybox, "import", "-", input=small_rootfs(unique()))[1].strip()
    names = lambda *f: dk(busybox, "images", "--format", "{{.Repository}}:{{.Tag}}", *f)[1].split()
    assert web in names() and db in names()
    assert names("--filter", "label=tier=web") == [web]
    assert names("--filter", f"reference={web.split(':')[0]}*") == [web]
    assert names("--filter", f"since={web}", "--filter", "label=tier") == [db]
    assert names("--filter", f"before={db}", "--filter", "label=tier") == [web]
    quiet = dk(busybox, "images", "-q", "--filter", "label=tier")[1].split()
    assert quiet == [db_id[7:19], web_id[7:19]]  # newest first, short IDs
    full = dk(busybox, "images", "--no-trunc", "-q", "--filter", "label=tier=db")[1].split()
    assert full == [db_id]
    dangling = dk(busybox, "images", "-q", "--no-trunc", "--filter", "dangling=true")[1].split()
    assert dangling_id in dangling and db_id not in dangling
    header = dk(busybox, "images", "--digests")[1].splitlines()[0].split()
    assert header[:3] == ["REPOSITORY", "TAG", "DIGEST"]
    code, _, err = dk(busybox, "images", "--filter", "dangling=maybe", check=False)
    assert code == 1 and "invalid filter 'dangling=[maybe]'" in err
    code, _, err = dk(busybox, "images", "--filter", "color=red", check=False)
    assert "invalid filter 'color'" in err
    dk(busybox, "rmi", dangling_id)


def test_inspect_shape_docker_py(busybox, api):
    image = api.images.get("busybox")
    attrs = image.attrs
    for key in ("Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "DockerVersion",
                "Author", "Config", "Architecture", "Os", "Size", "GraphDriver", "RootFS",
                "Metadata"):
        assert key in attrs, key
    assert attrs["RootFS"]["Type"] == "layers" and attrs["RootFS"]["Layers"][0].startswith("sha256:")
    assert attrs["GraphDriver"]["Name"] in ("overlay2", "vfs")
    assert "busybox:latest" in image.tags and image.id == attrs["Id"]
    assert attrs["Metadata"]["LastTagTime"].endswith("Z")
    low = docker.APIClient(base_url=busybox.host, version="1.43")
    try:  # older API versions still get VirtualSize, ContainerConfig
        old = low.inspect_image("busybox")
        assert old["VirtualSize"] == attrs["Size"] and "ContainerConfig" in old
    finally:
        low.close()
    with pytest.raises(docker.errors.ImageNotFound):
        api.images.get("no-such-image-here")


def test_history_of_imported_image(busybox, refs):
    ref = refs("hist")
    import_image(busybox, ref)
    rows = json.loads("[" + ",".join(dk(busybox, "history", "--format", "{{json .}}", "--no-trunc",
                                        ref)[1].split("\n")[:-1]) + "]")
    assert len(rows) == 1 and rows[0]["Comment"] == "Imported from -"
    assert rows[0]["ID"].startswith("sha256:")


def test_tag_errors_and_docker_py_tag(busybox, api, refs):
    ref = refs("tagged")
    code, _, err = dk(busybox, "tag", "does-not-exist", ref, check=False)
    assert code == 1 and "No such image: does-not-exist:latest" in err
    code, _, err = dk(busybox, "tag", "busybox", "sha256:abc", check=False)
    assert "refusing to create an ambiguous tag using digest algorithm as name" in err
    code, _, err = dk(busybox, "tag", "busybox", "Bad/Name", check=False)
    assert code != 0 and "must be lowercase" in err
    assert api.images.get("busybox").tag(ref.split(":")[0], "t") is True
    assert ref in api.images.get("busybox").tags


def test_rmi_untag_delete_force_and_conflicts(busybox, refs):
    first, second = refs("rmi"), refs("rmi")
    image_id = import_image(busybox, first)
    dk(busybox, "tag", first, second)
    short = image_id[7:19]
    code, _, err = dk(busybox, "rmi", short, check=False)
    assert code == 1 and f"conflict: unable to delete {short} (must be forced) - image is " \
        "referenced in multiple repositories" in err
    assert dk(busybox, "rmi", second)[1] == f"Untagged: {second}\n"
    name = unique("ctr")
    dk(busybox, "create", "--name", name, first, "true")
    try:
        code, _, err = dk(busybox, "rmi", first, check=False)
        cid = dk(busybox, "inspect", "-f", "{{.Id}}", name)[1].strip()
        assert f'conflict: unable to remove repository reference "{first}" (must force) - ' \
            f"container {cid[:12]} is using its referenced image {short}" in err
        code, _, err = dk(busybox, "rmi", short, check=False)
        assert f"unable to delete {short} (must be forced) - image is being used by stopped " \
            f"container {cid[:12]}" in err
    finally:
        dk(busybox, "rm", "-f", name)
    out = dk(busybox, "rmi", first)[1].splitlines()
    assert out[0] == f"Untagged: {first}" and out[1] == f"Deleted: {image_id}"
    assert image_id not in dk(busybox, "images", "-a", "-q", "--no-trunc")[1]


def test_rmi_running_container_cannot_be_forced(busybox, refs):
    ref = refs("running")
    rootfs = busybox_rootfs_tar()
    image_id = dk(busybox, "import", "-", ref, input=rootfs)[1].strip()
    name = unique("run")
    dk(busybox, "run", "-d", "--name", name, ref, "sleep", "60")
    try:
        cid = dk(busybox, "inspect", "-f", "{{.Id}}", name)[1].strip()
        code, _, err = dk(busybox, "rmi", "-f", image_id, check=False)
        assert code == 1 and f"conflict: unable to delete {image_id[7:19]} (cannot be forced) - " \
            f"image is being used by running container {cid[:12]}" in err
        # Forcing by tag only untags: the container keeps its image.
        assert dk(busybox, "rmi", "-f", ref)[1] == f"Untagged: {ref}\n"
    finally:
        dk(busybox, "rm", "-f", name)
    dk(busybox, "rmi", image_id)


def test_prune_dangling_all_and_filters(fresh_berthd):
    daemon = fresh_berthd()
    import_image(daemon, "keep:1", changes=["LABEL keep=yes"])
    old = import_image(daemon, "old:1")
    dangling = dk(daemon, "import", "-", input=small_rootfs("dangling"))[1].strip()
    out = dk(daemon, "image", "prune", "-f")[1]
    assert f"deleted: {dangling}" in out and "Total reclaimed space:" in out
    out = dk(daemon, "image", "prune", "-a", "-f", "--filter", "label=keep=yes",
             "--filter", "until=1h")[1]
    assert out.strip() == "Total reclaimed space: 0B"  # keep:1 is younger than an hour ago
    out = dk(daemon, "image", "prune", "-a", "-f", "--filter", "label!=keep")[1]
    assert "untagged: old:1" in out and f"deleted: {old}" in out and "keep:1" not in out
    client = docker.APIClient(base_url=daemon.host, version="auto")
    try:
        report = client.prune_images(filters={"dangling": False})
        assert {"Untagged": "keep:1"} in report["ImagesDeleted"] and report["SpaceReclaimed"] > 0
    finally:
        client.close()
    assert dk(daemon, "images", "-a", "-q")[1] == ""


def test_system_df_all_three_parts(fresh_berthd):
    daemon = fresh_berthd()
    dk(daemon, "import", "-", "bb:1", input=busybox_rootfs_tar())
    dk(daemon, "volume", "create", "dfvol")
    dk(daemon, "run", "--name", "dfc", "-v", "dfvol:/data", "bb:1",
       "sh", "-c", "echo data > /data/f; echo x > /written")
    out = dk(daemon, "system", "df")[1].splitlines()
    table = {line.split()[0]: line.split() for line in out[1:]}
    assert table["Images"][1:3] == ["1", "1"]
    assert table["Containers"][1:3] == ["1", "0"]
    assert table["Local"][2:4] == ["1", "1"]  # "Local Volumes": total 1, active 1
    verbose = dk(daemon, "system", "df", "-v")[1]
    assert "bb" in verbose and "dfc" in verbose and "dfvol" in verbose
    client = docker.APIClient(base_url=daemon.host, version="auto")
    try:
        df = client.df()
        assert df["LayersSize"] > 1_000_000
        assert df["Images"][0]["Containers"] == 1 and df["Images"][0]["SharedSize"] == 0
        assert df["Containers"][0]["SizeRw"] > 0
        assert df["Volumes"][0]["UsageData"]["Size"] == 5 and df["BuildCache"] == []
    finally:
        client.close()


def test_image_events_carry_dockers_attributes(fresh_berthd, tmp_path):
    daemon = fresh_berthd()
    since = str(time.time())
    image_id = import_image(daemon, "ev:1", changes=["LABEL origin=test"])
    dk(daemon, "tag", "ev:1", "ev:2")
    dk(daemon, "rmi", "ev:2")
    dk(daemon, "save", "-o", str(tmp_path / "ev.tar"), "ev:1")
    dk(daemon, "rmi", "ev:1")
    dk(daemon, "load", "-i", str(tmp_path / "ev.tar"))
    dk(daemon, "image", "prune", "-f")
    until = str(time.time() + 1)
    out = dk(daemon, "events", "--since", since, "--until", until, "--filter", "type=image",
             "--format", "{{json .}}")[1]
    events = [json.loads(line) for line in out.splitlines()]
    seen = [(e["Action"], e["Actor"]["Attributes"].get("name")) for e in events]
    assert seen == [("tag", "ev:1"), ("import", image_id), ("tag", "ev:2"), ("untag", image_id),
                    ("save", image_id), ("untag", image_id), ("delete", image_id),
                    ("load", image_id), ("prune", None)]
    assert all(e["Actor"]["Attributes"].get("origin") == "test" for e in events[:-1])
    assert events[-1]["Actor"]["Attributes"] == {"reclaimed": "0"}


def test_older_api_versions_get_their_shapes(busybox):
    untagged = dk(busybox, "import", "-", input=small_rootfs(unique()))[1].strip()
    old = docker.APIClient(base_url=busybox.host, version="1.41")
    new = docker.APIClient(base_url=busybox.host, version="1.47")
    try:
        entry = next(i for i in old.images() if i["Id"] == untagged)
        assert entry["RepoTags"] == ["<none>:<none>"] and entry["RepoDigests"] == ["<none>@<none>"]
        assert entry["VirtualSize"] == entry["Size"]
        entry = next(i for i in new.images() if i["Id"] == untagged)
        assert entry["RepoTags"] == [] and "VirtualSize" not in entry
        assert "ContainerConfig" not in new.inspect_image(untagged)
    finally:
        old.close()
        new.close()
        dk(busybox, "rmi", untagged)
