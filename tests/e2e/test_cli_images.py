"""Image commands against the docker CLI: list, inspect, history, tag, rmi, import, save/load,
prune, and pull/push error reporting."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import pytest

from test_cli_common import BERTH, berth, compare, unique

pytestmark = pytest.mark.e2e


def rootfs_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def repo(busybox):
    """A repository name unique to the test; its tags are removed afterwards."""
    name = unique("btimg")
    yield name
    listed = berth(busybox, "images", name, "--format", "{{.Repository}}:{{.Tag}}").out.split()
    if listed:
        berth(busybox, "rmi", "-f", *listed)


@pytest.mark.parametrize(
    "extra",
    [[], ["-q"], ["--no-trunc"], ["--digests"], ["-a"], ["--format", "json"], ["--format", "{{.Repository}}:{{.Tag}} {{.Size}}"],
     ["--format", "table {{.ID}}\t{{.Repository}}"], ["--format", "{{.Nope}}"], ["-f", "dangling=false"]],
)
def test_images_lists_like_docker(busybox, extra):
    compare(busybox, "images", "busybox", *extra, loose=True)


def test_tag_inspect_history_rmi(busybox, repo):
    compare(busybox, "tag", "busybox", f"{repo}:v1")
    compare(busybox, "image", "inspect", f"{repo}:v1")
    compare(busybox, "image", "inspect", "-f", "{{.Id}} {{json .RepoTags}}", f"{repo}:v1", "busybox")
    compare(busybox, "image", "inspect", "no-such-image-xyz")
    compare(busybox, "inspect", "--type", "image", f"{repo}:v1")
    history = berth(busybox, "history", f"{repo}:v1")
    assert history.code == 0 and history.out.startswith("IMAGE "), history
    compare(busybox, "history", f"{repo}:v1", loose=True)
    compare(busybox, "history", "--no-trunc", "-H=false", f"{repo}:v1")
    compare(busybox, "history", "-q", "--format", "{{.ID}}", f"{repo}:v1")
    compare(busybox, "tag", "busybox", "Bad:Name")
    compare(busybox, "tag", "no-such-image-xyz", f"{repo}:v2")
    berth(busybox, "tag", "busybox", f"{repo}:v2")
    removed = berth(busybox, "rmi", f"{repo}:v1", f"{repo}:v2")
    assert (removed.code, removed.out) == (0, f"Untagged: {repo}:v1\nUntagged: {repo}:v2\n")
    compare(busybox, "rmi", f"{repo}:v1")
    compare(busybox, "rmi", "-f", f"{repo}:v1")


def test_images_hint_for_subcommand_names(busybox):
    compare(busybox, "images", "ls")
    compare(busybox, "image", "ls", "ls")


def test_import_file_stdin_and_changes(busybox, repo, tmp_path):
    data = rootfs_tar({"hello.txt": b"imported\n"})
    path = tmp_path / "rootfs.tar"
    path.write_bytes(data)
    result = berth(busybox, "import", "-c", "ENV FOO=bar", "-c", 'CMD ["cat", "/hello.txt"]', "-m", "a message",
                   str(path), f"{repo}:file")
    assert result.code == 0 and result.out.startswith("sha256:"), result
    info = json.loads(berth(busybox, "image", "inspect", f"{repo}:file").out)[0]
    assert info["Comment"] == "a message" and "FOO=bar" in info["Config"]["Env"]
    assert info["Config"]["Cmd"] == ["cat", "/hello.txt"]
    piped = berth(busybox, "import", "-", f"{repo}:stdin", input=data)
    assert piped.code == 0 and piped.out.startswith("sha256:"), piped
    compare(busybox, "import", str(tmp_path / "missing.tar"))
    compare(busybox, "import", str(path), "Bad:Name")


def test_save_and_load_round_trip(busybox, repo, tmp_path):
    berth(busybox, "tag", "busybox", f"{repo}:saved")
    out = tmp_path / "image.tar"
    saved = berth(busybox, "save", "-o", str(out), f"{repo}:saved")
    assert saved.code == 0, saved
    with tarfile.open(out) as tar:
        assert "manifest.json" in tar.getnames()
    assert berth(busybox, "rmi", f"{repo}:saved").code == 0
    loaded = berth(busybox, "load", "-i", str(out))
    assert loaded.code == 0 and f"Loaded image: {repo}:saved" in loaded.out, loaded
    assert berth(busybox, "rmi", f"{repo}:saved").code == 0
    with open(out, "rb") as f:
        piped = subprocess.run(BERTH + ["load"], stdin=f, env=busybox.env(), capture_output=True, timeout=120)
    assert piped.returncode == 0 and f"Loaded image: {repo}:saved".encode() in piped.stdout
    streamed = subprocess.run(BERTH + ["save", f"{repo}:saved"], env=busybox.env(), capture_output=True, timeout=120)
    with tarfile.open(fileobj=io.BytesIO(streamed.stdout)) as tar:
        assert "manifest.json" in tar.getnames()
    compare(busybox, "save", "-o", str(tmp_path / "nodir" / "x.tar"), "busybox")
    compare(busybox, "load", "-i", str(tmp_path / "missing.tar"))


def test_image_prune(busybox, repo):
    cancelled = berth(busybox, "image", "prune", input="n\n")
    assert (cancelled.code, cancelled.out) == (0, "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] ")
    cancelled = berth(busybox, "image", "prune", "-a", "--filter", "label=x", input="\n")
    assert cancelled.out.startswith("WARNING! This will remove all images without at least one container associated to them.")
    label = unique("prune")
    berth(busybox, "import", "-c", f"LABEL p={label}", "-", f"{repo}:prunable", input=rootfs_tar({"f": b"x"}))
    pruned = berth(busybox, "image", "prune", "-a", "-f", "--filter", f"label=p={label}")
    assert pruned.code == 0 and pruned.out.startswith("Deleted Images:\nuntagged: "), pruned
    assert pruned.out.splitlines()[-1].startswith("Total reclaimed space: ")


def test_pull_and_push_report_daemon_errors_like_docker(busybox):
    # Docker Hub is unreachable here: the daemon's words name it, as dockerd's would
    compare(busybox, "pull", "no-such-image-xyz", stderr_as_berth=False)
    compare(busybox, "pull", "-q", "no-such-image-xyz:1", stderr_as_berth=False)
    compare(busybox, "pull", "BAD")
    compare(busybox, "pull", "-a", "busybox:1")
    compare(busybox, "push", "busybox", stderr_as_berth=False)
    compare(busybox, "push", "busybox@sha256:" + "a" * 64)
