"""The builder through docker-py, docker-compose 1.29 and the raw API: multi-stage builds,
BuildKit's RUN mounts, ADD from 127.0.0.1, remote contexts, the cache across a daemon
restart, hostile contexts, a 1 GB context and a client that goes away mid-build."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import uuid

import docker
import pytest

from images_harness import import_busybox

pytestmark = pytest.mark.e2e


def tar_of(files: dict[str, bytes | str | tarfile.TarInfo]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            if isinstance(data, tarfile.TarInfo):
                tar.addfile(data)
                continue
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


def symlink(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def api(daemon, method: str, path: str, body: bytes = b"", timeout: float = 120) -> tuple[int, bytes]:
    """One request on the unix socket; (status, body with chunked framing removed)."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    sock.connect(daemon.socket_path)
    try:
        head = (f"{method} {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        sock.sendall(head + body)
        data = bytearray()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    header, _, rest = bytes(data).partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    if b"chunked" in header.lower():
        out = bytearray()
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            out += rest[:size]
            rest = rest[size + 2:]
        rest = bytes(out)
    return status, rest


def lines(body: bytes) -> list[dict]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def stream_text(body: bytes) -> str:
    return "".join(m.get("stream", "") for m in lines(body))


@pytest.fixture
def client(busybox):
    api_client = docker.DockerClient(base_url=busybox.host, version="auto", timeout=300)
    made: list[str] = []
    api_client.made = made  # type: ignore[attr-defined]
    api_client.host = busybox.host  # type: ignore[attr-defined]
    yield api_client
    for tag in made:
        try:
            api_client.images.remove(tag, force=True)
        except docker.errors.APIError:
            pass
    api_client.close()


def tag(client) -> str:
    name = f"btb-{uuid.uuid4().hex[:10]}:latest"
    client.made.append(name)
    return name


def build(client, **options):
    """docker-py's images.build, with --rm (docker-py's own default keeps intermediate
    containers, as old docker did)."""
    options.setdefault("rm", True)
    return client.images.build(**options)


def run(client, image: str, command: str) -> str:
    """The output of ``sh -c command`` in a container of ``image`` (the docker CLI's
    attached run: it reads the output as it is written)."""
    done = subprocess.run(["docker", "run", "--rm", image, "sh", "-c", command],
                          env=dict(os.environ, DOCKER_HOST=client.host), capture_output=True, text=True,
                          timeout=60)
    return done.stdout


def test_docker_py_build_returns_the_image_and_its_logs(client, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY hello /hello\nRUN cat /hello\n")
    (tmp_path / "hello").write_text("hi there\n")
    name = tag(client)
    image, logs = build(client, path=str(tmp_path), tag=name)
    logs = list(logs)
    assert name in image.tags
    assert {"aux": {"ID": image.id}} in logs
    text = "".join(item.get("stream", "") for item in logs)
    assert "hi there\n" in text and f"Successfully tagged {name}" in text
    with pytest.raises(docker.errors.BuildError) as caught:
        build(client, fileobj=io.BytesIO(b"FROM busybox\nRUN exit 7\n"))
    assert caught.value.msg == "The command '/bin/sh -c exit 7' returned a non-zero code: 7"
    quiet, logs = build(client, fileobj=io.BytesIO(b"FROM busybox\nENV Q=1\n"), quiet=True)
    assert list(logs) == [{"stream": quiet.id + "\n"}]
    with pytest.raises(docker.errors.APIError) as caught:
        build(client, fileobj=io.BytesIO(b"FROM busybox\nBOGUS x\n"))
    assert caught.value.status_code == 400 and "dockerfile parse error line 2: unknown instruction: BOGUS" \
        in str(caught.value)


def test_multi_stage_with_target_skips_what_it_does_not_need(client):
    dockerfile = ("ARG BASE=busybox\n"
                  "FROM ${BASE} AS builder\nRUN echo built > /artifact\n"
                  "FROM busybox AS unused\nRUN echo SHOULD-NOT-RUN\n"
                  "FROM scratch AS empty\n"
                  "FROM busybox AS final\nCOPY --from=builder /artifact /artifact\n"
                  "COPY --from=0 /artifact /again\nRUN cat /artifact /again\n"
                  "FROM final AS extended\nENV EXTENDED=1\n")
    context = tar_of({"Dockerfile": dockerfile})
    name = tag(client)
    image, logs = build(client, fileobj=io.BytesIO(context), custom_context=True, tag=name,
                                      target="final")
    text = "".join(item.get("stream", "") for item in logs)
    assert "SHOULD-NOT-RUN" not in text and "built\nbuilt\n" in text
    assert text.startswith("Step 1/6 : FROM ${BASE} AS builder\n")
    assert "EXTENDED=1" not in " ".join(image.attrs["Config"]["Env"])
    assert run(client, name, "cat /artifact") == "built\n"
    image, _ = build(client, fileobj=io.BytesIO(context), custom_context=True, tag=name)
    assert "EXTENDED=1" in image.attrs["Config"]["Env"]


def test_run_mounts_cache_bind_tmpfs_and_network(client):
    dockerfile = ("FROM busybox AS tools\nRUN echo tool > /tool\n"
                  "FROM busybox\n"
                  "RUN --mount=type=cache,target=/var/cache/app,id=e2e-mounts "
                  "sh -c 'date +%s%N >> /var/cache/app/runs; wc -l < /var/cache/app/runs'\n"
                  "RUN --mount=type=bind,source=data,target=/data cat /data/file > /copied\n"
                  "RUN --mount=type=bind,from=tools,source=/tool,target=/t cat /t > /from-stage\n"
                  "RUN --mount=type=tmpfs,target=/scratch sh -c 'mount | grep -q \" /scratch \" && "
                  "touch /scratch/x && echo tmpfs-ok'\n"
                  "RUN --network=none sh -c 'ls /sys/class/net'\n")
    context = tar_of({"Dockerfile": dockerfile, "data/file": "from the context\n"})
    name = tag(client)
    _, logs = build(client, fileobj=io.BytesIO(context), custom_context=True, tag=name, nocache=True)
    text = "".join(item.get("stream", "") for item in logs)
    assert "tmpfs-ok\n" in text and "lo\n" in text and "eth0" not in text
    first = int([line for line in text.splitlines() if line.strip().isdigit()][0])
    _, logs = build(client, fileobj=io.BytesIO(context), custom_context=True, tag=name, nocache=True)
    text = "".join(item.get("stream", "") for item in logs)
    second = int([line for line in text.splitlines() if line.strip().isdigit()][0])
    assert second == first + 1  # the cache mount kept its content between builds
    # what the mounts held stays out of the image (their mount points are left, empty)
    assert run(client, name, "cat /copied /from-stage; find /var/cache/app /scratch /data /t -type f -size +0") \
        == "from the context\ntool\n"


def test_cache_survives_restart_and_follows_content_not_time(fresh_berthd, tmp_path):
    daemon = fresh_berthd()
    import_busybox(daemon.env())
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY f /f\nRUN cat /f\n")
    (tmp_path / "f").write_text("one\n")

    def build(*extra: str) -> str:
        result = subprocess.run(["docker", "build", *extra, str(tmp_path)], env=daemon.env(),
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
        return result.stdout

    build()
    os.utime(tmp_path / "f", (1, 1))  # a new mtime, same content: still cached
    assert build().count("Using cache") == 2
    daemon.stop()
    daemon = fresh_berthd(root=daemon.root)
    assert build().count("Using cache") == 2
    assert build("--no-cache").count("Using cache") == 0
    (tmp_path / "f").write_text("two\n")
    out = build()
    assert out.count("Using cache") == 0 and "two\n" in out


def test_cache_from_an_image_without_its_build_history(busybox, client):
    """An image that came from elsewhere (saved and loaded: no intermediate images, no cache
    records) serves as cache with --cache-from, as with dockerd's classic builder."""
    context = tar_of({"Dockerfile": "FROM busybox\nRUN echo expensive > /made\nENV AFTER=1\n"
                                    "COPY file /file\n", "file": "content\n"})
    name = tag(client)
    original, _ = build(client, fileobj=io.BytesIO(context), custom_context=True, tag=name)
    archive = b"".join(client.api.get_image(name))
    client.images.remove(name, force=True)
    client.images.load(archive)
    _, logs = build(client, fileobj=io.BytesIO(context), custom_context=True, cache_from=[name])
    text = "".join(item.get("stream", "") for item in logs)
    assert text.count(" ---> Using cache") == 3 and "Running in" not in text, text
    _, logs = build(client, fileobj=io.BytesIO(context), custom_context=True)
    assert " ---> Using cache" in "".join(item.get("stream", "") for item in logs)  # recorded now
    _, logs = build(client, fileobj=io.BytesIO(context), custom_context=True, nocache=True)
    assert "Using cache" not in "".join(item.get("stream", "") for item in logs)


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def http_root(tmp_path):
    """A static HTTP server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **kw: _Files(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_add_downloads_checks_and_extracts(client, http_root):
    root, base = http_root
    (root / "payload.txt").write_bytes(b"downloaded\n")
    digest = hashlib.sha256(b"downloaded\n").hexdigest()
    archive = tar_of({"inner/one": "1", "inner/two": "2"})
    dockerfile = (f"FROM busybox\nADD {base}/payload.txt /dl/\n"
                  f"ADD --checksum=sha256:{digest} {base}/payload.txt /checked\n"
                  "ADD bundle.tar.gz /unpacked/\nADD --chown=1:1 plain.txt /plain\n")
    context = tar_of({"Dockerfile": dockerfile, "bundle.tar.gz": gzip.compress(archive), "plain.txt": "p"})
    name = tag(client)
    build(client, fileobj=io.BytesIO(context), custom_context=True, tag=name)
    out = run(client, name, "cat /dl/payload.txt /checked /unpacked/inner/one /unpacked/inner/two; "
                            "stat -c '%a %u' /dl/payload.txt /plain")
    assert out == "downloaded\ndownloaded\n12600 0\n644 1\n"
    bad = tar_of({"Dockerfile": f"FROM busybox\nADD --checksum=sha256:{'0' * 64} {base}/payload.txt /x\n"})
    with pytest.raises(docker.errors.BuildError) as caught:
        build(client, fileobj=io.BytesIO(bad), custom_context=True)
    assert f"digest mismatch sha256:{'0' * 64}: sha256:{digest}" in caught.value.msg


def test_remote_contexts_tar_and_git(client, http_root, tmp_path):
    root, base = http_root
    (root / "context.tar.gz").write_bytes(gzip.compress(tar_of({
        "Dockerfile": "FROM busybox\nCOPY message /message\n", "message": "from a tarball\n"})))
    name = tag(client)
    build(client, path=f"{base}/context.tar.gz", tag=name)
    assert run(client, name, "cat /message") == "from a tarball\n"
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    work = tmp_path / "work"
    work.mkdir()
    (work / "sub").mkdir()
    (work / "sub" / "Dockerfile").write_text("FROM busybox\nCOPY note /note\n")
    (work / "sub" / "note").write_text("from git\n")
    git = lambda *args, cwd=work: subprocess.run(["git", *args], cwd=cwd, check=True,  # noqa: E731
                                                 capture_output=True)
    git("init", "-q", "-b", "main")
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "x")
    git("clone", "-q", "--bare", str(work), str(root / "repo.git"), cwd=tmp_path)
    git("update-server-info", cwd=root / "repo.git")  # dumb HTTP, from the static server
    name = tag(client)
    build(client, path=f"{base}/repo.git#main:sub", tag=name)
    assert run(client, name, "cat /note") == "from git\n"


def test_hostile_contexts_read_nothing_outside(busybox, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("HOST-SECRET-" + uuid.uuid4().hex)
    context = tar_of({
        "Dockerfile": "FROM busybox\nCOPY . /ctx/\nRUN cat /ctx/* 2>&1; ls -la /ctx\n",
        "../escaped": "confined",
        "/absolute": "also confined",
        "up": symlink("up", "../../../../../../" + str(secret)),
        "abs": symlink("abs", str(secret)),
    })
    status, body = api(busybox, "POST", "/build?rm=1", context)
    text = stream_text(body)
    assert status == 200 and "Successfully built" in text, body
    assert "HOST-SECRET" not in text
    assert "also confinedconfined" in text  # ../escaped and /absolute, kept inside
    for link_name in ("up", "abs"):  # followed inside the context: nothing there
        status, body = api(busybox, "POST", "/build", tar_of({
            "Dockerfile": f"FROM busybox\nCOPY {link_name} /x\n",
            link_name: symlink(link_name, str(secret) if link_name == "abs" else "../../" + str(secret))}))
        assert "COPY failed: file not found in build context" in body.decode(), body
    status, body = api(busybox, "POST", "/build", tar_of({
        "Dockerfile": "FROM busybox\n", "hard": symlink("hard", "../../etc/passwd", hard=True)}))
    assert status == 400 and b"no such file or directory" in body


def test_a_1gb_context_streams_to_disk_and_leaves_nothing(busybox):
    """1 GiB of zeros, gzipped (1 MB on the wire): written to disk as it comes, never held in
    memory; the daemon's memory stays flat and its temporary files go with the build."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        data = b"FROM busybox\nCOPY small /small\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("small")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"small"))

        class Zeros(io.RawIOBase):
            def __init__(self, size):
                self.left = size

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = bytes(n)
                self.left -= n
                return n
        info = tarfile.TarInfo("big")
        info.size = 1 << 30
        tar.addfile(info, io.BufferedReader(Zeros(1 << 30), 1 << 20))
    body = buffer.getvalue()
    assert len(body) < 8 << 20
    pid = busybox.process.pid

    def rss() -> int:
        with open(f"/proc/{pid}/status") as handle:
            return int([line for line in handle if line.startswith("VmRSS")][0].split()[1]) * 1024
    before = rss()
    status, reply = api(busybox, "POST", "/build", body, timeout=300)
    assert status == 200 and "Successfully built" in stream_text(reply), reply[-500:]
    assert rss() - before < 200 << 20
    tmp = os.path.join(busybox.data_root, "builder", "tmp")
    assert os.listdir(tmp) == []


def test_a_client_that_disconnects_stops_the_build(busybox):
    before = subprocess.run(["docker", "ps", "-aq"], env=busybox.env(), capture_output=True,
                            text=True).stdout.split()
    context = tar_of({"Dockerfile": "FROM busybox\nRUN echo started; sleep 60\n"})
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(60)
    sock.connect(busybox.socket_path)
    sock.sendall((f"POST /build?nocache=1 HTTP/1.1\r\nHost: d\r\nContent-Length: {len(context)}\r\n\r\n")
                 .encode() + context)
    seen = b""
    while b'"started\\n"' not in seen:
        chunk = sock.recv(4096)
        assert chunk, seen
        seen += chunk
    running = subprocess.run(["docker", "ps", "-q"], env=busybox.env(), capture_output=True,
                             text=True).stdout.split()
    assert running  # the step's container
    sock.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = subprocess.run(["docker", "ps", "-aq"], env=busybox.env(), capture_output=True,
                             text=True).stdout.split()
        if now == before:
            break
        time.sleep(0.2)
    assert now == before  # killed and removed well before its 60 s
    assert os.listdir(os.path.join(busybox.data_root, "builder", "tmp")) == []


def test_compose_build(busybox, tmp_path):
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (scripts/debian-packages.txt has it)")
    project = f"btc{uuid.uuid4().hex[:8]}"
    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text("FROM busybox\nARG GREETING=hello\nRUN echo \"$GREETING\" > /greeting\n"
                                    "CMD [\"cat\", \"/greeting\"]\n")
    (tmp_path / "docker-compose.yml").write_text(
        "version: \"3.7\"\nservices:\n  web:\n    build:\n      context: ./app\n      args:\n"
        f"        GREETING: bonjour\n      labels:\n        com.example.built: \"yes\"\n"
        f"    image: {project}_web:latest\n")
    env = busybox.env()
    result = subprocess.run(["docker-compose", "-p", project, "build"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    try:
        assert result.returncode == 0, result.stderr
        assert f"Successfully tagged {project}_web:latest" in result.stdout
        out = subprocess.run(["docker", "run", "--rm", f"{project}_web:latest"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.stdout == "bonjour\n"
        labels = subprocess.run(["docker", "image", "inspect", "-f", "{{json .Config.Labels}}",
                                 f"{project}_web:latest"], env=env, capture_output=True, text=True)
        assert json.loads(labels.stdout) == {"com.example.built": "yes"}
    finally:
        subprocess.run(["docker", "rmi", "-f", f"{project}_web:latest"], env=env, capture_output=True)
