"""The executor (berth.builder.executor) against a fake BuildBackend: no daemon, no root."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
import threading

import pytest

from berth.builder.cache import BuildCache
from berth.builder.context import BuildContext
from berth.builder.dockerfile import DockerfileError
from berth.builder.executor import (Build, BuildBackend, BuildError, BuildOptions, ImageInfo, NewImage,
                                    RunResult, RunSpec)
from berth.errors import InvalidParameter, NotFound


class FakeBackend:
    """Images in memory; an image's filesystem is a dict (path -> bytes | "dir") made from
    its parent's plus its layer; RUN calls ``script(spec) -> (exit code, output, changes)``."""

    def __init__(self, root: str):
        self.root = root
        self.images: dict[str, ImageInfo] = {}
        self.files: dict[str, dict[str, object]] = {}
        self.tags: dict[str, str] = {}
        self.calls: list[tuple] = []
        self.layers: dict[str, list[tarfile.TarInfo]] = {}
        self.containers: dict[str, str] = {}  # id -> image
        self.removed: list[str] = []
        self.script = lambda spec: (0, b"", {})
        self.counter = 0
        base = self._add("", {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                         {"etc/passwd": b"root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
                          "etc/group": b"root:x:0:\nappg:x:1002:\n", "bin": "dir", "etc": "dir"})
        self.tags["busybox"] = base

    def _add(self, parent: str, config: dict, files: dict, history: dict | None = None) -> str:
        self.counter += 1
        image_id = "sha256:" + hashlib.sha256(f"{self.counter}".encode()).hexdigest()
        parent_doc = self.images[parent].document if parent else {"history": []}
        document = {"config": config, "os": "linux", "architecture": "amd64",
                    "history": list(parent_doc.get("history", [])) + ([history] if history else [])}
        self.images[image_id] = ImageInfo(image_id, document)
        self.files[image_id] = files
        return image_id

    # -- BuildBackend ----------------------------------------------------------------------
    def from_image(self, ref, pull, platform, emit, auth=None):
        self.calls.append(("from", ref, pull, auth))
        image_id = self.tags.get(ref) or (ref if ref in self.images else None)
        if image_id is None:
            raise NotFound(f"pull access denied for {ref}, repository does not exist or may require 'docker login'")
        return self.images[image_id]

    def image(self, image_id):
        return self.images.get(image_id)

    def create_image(self, spec: NewImage, layer):
        files = dict(self.files.get(spec.parent, {}))
        members = []
        if layer is not None:
            with tarfile.open(fileobj=layer, mode="r|") as tar:
                for member in tar:
                    members.append(member)
                    files[member.name.rstrip("/")] = "dir" if member.isdir() else (
                        tar.extractfile(member).read() if member.isreg() else member)
        image_id = self._add(spec.parent, spec.config, files, spec.history)
        self.layers[image_id] = members
        self.calls.append(("create", spec.history["created_by"]))
        return self.images[image_id]

    def run(self, spec: RunSpec, output, cancel, created):
        self.counter += 1
        container_id = hashlib.sha256(f"c{self.counter}".encode()).hexdigest()
        created(container_id)
        self.containers[container_id] = spec.config["Image"]
        self.calls.append(("run", spec.config["Cmd"], spec.host_config))
        code, out, changes = self.script(spec)
        if out:
            output(1, out)
        self.pending = changes
        return RunResult(container_id, code)

    def commit(self, container_id, spec):
        files = dict(self.files.get(spec.parent, {}))
        files.update(self.pending)
        image_id = self._add(spec.parent, spec.config, files, spec.history)
        self.calls.append(("commit", spec.history["created_by"]))
        return self.images[image_id]

    def remove_container(self, container_id):
        self.removed.append(container_id)
        self.containers.pop(container_id, None)

    @contextlib.contextmanager
    def mount_image(self, image_id):
        root = os.path.join(self.root, "mnt-" + image_id[7:19])
        os.makedirs(root, exist_ok=True)
        for path, data in self.files[image_id].items():
            target = os.path.join(root, path)
            if data == "dir":
                os.makedirs(target, exist_ok=True)
            elif isinstance(data, bytes):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as handle:
                    handle.write(data)
        yield root

    def tag(self, image_id, ref):
        self.tags[ref] = image_id
        return ref if ":" in ref else ref + ":latest"


def test_fake_backend_is_a_build_backend():
    for name in ("from_image", "image", "create_image", "run", "commit", "remove_container",
                 "mount_image", "tag"):
        assert hasattr(BuildBackend, name) and hasattr(FakeBackend, name)


def context_tar(files: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o640
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def env(tmp_path):
    backend = FakeBackend(str(tmp_path / "fake"))
    cache = BuildCache(str(tmp_path / "cache"))
    made = []

    def build(dockerfile: str, files: dict | None = None, **options):
        files = dict(files or {})
        files["Dockerfile"] = dockerfile.encode()
        context = BuildContext.receive(io.BytesIO(context_tar(files)), str(tmp_path / f"ctx{len(made)}"))
        made.append(context)
        lines: list[dict] = []
        builder = Build(backend, cache, context, BuildOptions(**options), lines.append)
        try:
            image_id = builder.run()
        except BuildError as exc:
            exc.lines = lines  # type: ignore[attr-defined]
            raise
        return image_id, lines

    yield backend, build
    for context in made:
        context.close()
    cache.close()


def text(lines: list[dict]) -> str:
    return "".join(line.get("stream", "") for line in lines)


def test_steps_output_and_history(env):
    backend, build = env
    backend.script = lambda spec: (0, b"hi\n", {"out": b"hi"})
    image_id, lines = build("FROM busybox\nENV A=1 B=\"x y\"\nRUN echo hi\nCMD [\"sh\"]\n", tags=["t:1"])
    out = text(lines)
    assert out.startswith("Step 1/4 : FROM busybox\n ---> ")
    assert "Step 2/4 : ENV A=1 B=\"x y\"\n ---> " in out
    assert " ---> Running in " in out and "hi\nRemoving intermediate container " in out
    assert out.endswith(f"Successfully built {image_id[7:19]}\nSuccessfully tagged t:1\n")
    assert {"aux": {"ID": image_id}} in lines
    history = [h["created_by"] for h in backend.images[image_id].document["history"]]
    assert history == ['/bin/sh -c #(nop)  ENV A=1 B=x y', "/bin/sh -c echo hi", '/bin/sh -c #(nop)  CMD ["sh"]']
    config = backend.images[image_id].config
    assert config["Env"] == ["PATH=/bin", "A=1", "B=x y"] and config["Cmd"] == ["sh"]
    assert backend.removed and not backend.containers  # the intermediate container went


def test_unchanged_steps_come_from_the_cache(env):
    backend, build = env
    first, _ = build("FROM busybox\nCOPY a /a\nRUN echo\n", {"a": b"1"})
    second, lines = build("FROM busybox\nCOPY a /a\nRUN echo\n", {"a": b"1"})
    assert first == second and text(lines).count(" ---> Using cache\n") == 2
    third, lines = build("FROM busybox\nCOPY a /a\nRUN echo\n", {"a": b"2"})
    assert third != first and " ---> Using cache" not in text(lines)
    fourth, lines = build("FROM busybox\nCOPY a /a\nRUN echo\n", {"a": b"1"}, no_cache=True)
    assert fourth != first and " ---> Using cache" not in text(lines)


def test_build_args_reach_run_and_its_history(env):
    backend, build = env
    image_id, lines = build("ARG V=base\nFROM ${V}box\nARG A=1\nARG V\nRUN echo $A\n",
                            build_args={"A": "2", "HTTP_PROXY": "http://p", "UNUSED": "x", "V": "busy"})
    run = [c for c in backend.calls if c[0] == "run"][0]
    assert run[1] == ["/bin/sh", "-c", "echo $A"]
    history = backend.images[image_id].document["history"][-1]["created_by"]
    assert history == "|2 A=2 V=busy /bin/sh -c echo $A"  # proxies are not recorded
    assert "[Warning] One or more build-args [UNUSED] were not consumed\n" in text(lines)


def test_copy_makes_a_layer_with_owner_mode_and_parent_dirs(env):
    backend, build = env
    image_id, _ = build("FROM busybox\nWORKDIR /app\nCOPY --chown=app:appg --chmod=600 src/ ./dst/\n"
                        "COPY one two /multi/\n",
                        {"src/x": b"X", "src/sub/y": b"Y", "one": b"1", "two": b"2"})
    [copy_layer] = [members for members in backend.layers.values()
                    if any(m.name == "app/dst/x" for m in members)]
    names = {m.name: m for m in copy_layer}
    assert names["app/dst/x"].uid == 1000 and names["app/dst/x"].gid == 1002
    assert names["app/dst/x"].mode == 0o600 and names["app/dst/sub/y"].mode == 0o600
    assert "app" in names and names["app"].isdir()  # the existing parent, as the image has it
    files = backend.files[image_id]
    assert files["app/dst/x"] == b"X" and files["multi/one"] == b"1" and files["multi/two"] == b"2"


def test_copy_errors(env):
    _, build = env
    cases = [
        ("FROM busybox\nCOPY nope /x\n", "COPY failed: file not found in build context or excluded by "
                                         ".dockerignore: stat nope: file does not exist"),
        ("FROM busybox\nCOPY no* /x/\n", "COPY failed: no source files were specified"),
        ("FROM busybox\nCOPY ../a /x\n", "COPY failed: forbidden path outside the build context: ../a ()"),
        ("FROM busybox\nCOPY a b /x\n", "When using COPY with more than one source file, the destination "
                                        "must be a directory and end with a /"),
        ("FROM busybox\nCOPY http://127.0.0.1:1/x /x\n", "source can't be a URL for COPY"),
        ("FROM busybox\nCOPY --chown=nobody a /x\n", "unable to convert uid/gid chown string to host mapping: "
                                                      "can't find uid for user nobody: no such user: nobody"),
        ("FROM busybox\nCOPY link /x\n", "COPY failed: file not found in build context or excluded by "
                                         ".dockerignore: stat link: file does not exist"),
    ]
    for dockerfile, message in cases:
        with pytest.raises(BuildError) as caught:
            build(dockerfile, {"a": b"a", "b": b"b", "link": "../../../etc/passwd"})
        assert caught.value.message == message, dockerfile


def test_dockerignore_hides_files_from_copy(env):
    backend, build = env
    with pytest.raises(BuildError, match="file not found in build context"):
        build("FROM busybox\nCOPY secret /x\n", {".dockerignore": b"secret\n", "secret": b"s"})
    image_id, _ = build("FROM busybox\nCOPY . /ctx/\n", {".dockerignore": b"secret\nDockerfile\n", "secret": b"s",
                                                         "kept": b"k"})
    files = backend.files[image_id]
    assert "ctx/kept" in files and "ctx/secret" not in files and "ctx/Dockerfile" not in files


def test_failing_run_reports_code_and_removes_its_container(env):
    backend, build = env
    backend.script = lambda spec: (3, b"oops\n", {})
    with pytest.raises(BuildError) as caught:
        build("FROM busybox\nRUN exit 3\n")
    assert caught.value.message == "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert caught.value.code == 3 and not backend.containers


def test_parse_errors_come_before_any_output(env):
    _, build = env
    with pytest.raises(DockerfileError, match="line 2: unknown instruction: NOPE"):
        build("FROM busybox\nNOPE\n")
    with pytest.raises(InvalidParameter, match="failed to reach build target x in Dockerfile"):
        build("FROM busybox\n", target="x")


def test_multi_stage_target_skips_unneeded_stages(env):
    backend, build = env
    backend.script = lambda spec: (0, b"", {"built": spec.config["Cmd"][-1].encode()})
    image_id, lines = build("FROM busybox AS a\nRUN echo a\n"
                            "FROM busybox AS unused\nRUN echo unused\n"
                            "FROM busybox AS final\nCOPY --from=a /built /from-a\nRUN echo final\n",
                            target="final")
    commands = [c[1][-1] for c in backend.calls if c[0] == "run"]
    assert commands == ["echo a", "echo final"]
    assert text(lines).startswith("Step 1/5 : FROM busybox AS a\n")
    assert backend.files[image_id]["from-a"] == b"echo a"


def test_run_mounts_and_network(env, tmp_path):
    backend, build = env
    build("FROM busybox\nRUN --mount=type=cache,target=/root/.cache,id=c1 "
          "--mount=type=tmpfs,target=/t --mount=type=bind,source=ctx,target=/src --network=none true\n",
          {"ctx/f": b"data"})
    run = [c for c in backend.calls if c[0] == "run"][0]
    host = run[2]
    assert host["NetworkMode"] == "none" and host["Tmpfs"] == {"/t": ""}
    cache_mount, bind = host["Mounts"]
    assert cache_mount["Target"] == "/root/.cache" and os.path.isdir(cache_mount["Source"])
    assert bind["Target"] == "/src" and bind["ReadOnly"] is True


def test_heredocs(env):
    backend, build = env
    image_id, _ = build("FROM busybox\nARG WHO=world\nCOPY <<EOF /greeting\nhello $WHO\nEOF\nRUN <<EOF\necho a\necho b\nEOF\n")
    assert backend.files[image_id]["greeting"] == b"hello world\n"
    run = [c for c in backend.calls if c[0] == "run"][0]
    assert run[1] == ["/bin/sh", "-c", "echo a\necho b\n"]


def test_metadata_instructions(env):
    backend, build = env
    image_id, _ = build("FROM busybox\nMAINTAINER me\nEXPOSE 80 53/udp\nVOLUME /data\nUSER app\n"
                        "STOPSIGNAL SIGINT\nHEALTHCHECK --interval=5s --retries=2 CMD true\n"
                        "SHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT echo hi\nONBUILD RUN x\nLABEL a=b\n",
                        labels={"extra": "1"})
    info = backend.images[image_id]
    config = info.config
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}} and config["Volumes"] == {"/data": {}}
    assert config["User"] == "app" and config["StopSignal"] == "SIGINT"
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 2}
    assert config["Entrypoint"] == ["/bin/bash", "-c", "echo hi"] and config["Cmd"] is None
    assert config["OnBuild"] == ["RUN x"] and config["Labels"] == {"a": "b", "extra": "1"}
    history = [h["created_by"] for h in info.document["history"]]
    assert history[0] == "/bin/sh -c #(nop)  MAINTAINER me"
    assert "/bin/sh -c #(nop)  EXPOSE 53/udp 80" in history
    assert history[-1] == "/bin/bash -c #(nop)  LABEL extra=1"


def test_onbuild_triggers_run_after_from(env):
    backend, build = env
    parent, _ = build("FROM busybox\nONBUILD ENV TRIGGERED=yes\n", tags=["base-with-trigger"])
    image_id, lines = build("FROM base-with-trigger\nRUN true\n")
    assert "# Executing 1 build trigger\n" in text(lines)
    config = backend.images[image_id].config
    assert "TRIGGERED=yes" in config["Env"] and not config.get("OnBuild")


def test_quiet_prints_only_the_id_and_flushes_output_on_failure(env):
    backend, build = env
    image_id, lines = build("FROM busybox\nENV A=1\n", quiet=True)
    assert lines == [{"stream": image_id + "\n"}]
    backend.script = lambda spec: (1, b"boom\n", {})
    with pytest.raises(BuildError) as caught:
        build("FROM busybox\nRUN false\n", quiet=True)
    assert "boom\n" in text(caught.value.lines)  # type: ignore[attr-defined]


def test_cancel_stops_between_steps(env):
    backend, build = env
    cancel = threading.Event()

    def script(spec):
        cancel.set()
        return 0, b"", {}
    backend.script = script
    # the fixture's build has no cancel: run one by hand
    from berth.builder.executor import Cancelled
    files = {"Dockerfile": b"FROM busybox\nRUN a\nRUN b\n"}
    context = BuildContext.receive(io.BytesIO(context_tar(files)), backend.root + "-ctx")
    try:
        with pytest.raises(Cancelled):
            Build(backend, None, context, BuildOptions(), lambda m: None, cancel).run()
    finally:
        context.close()
    assert not backend.containers  # the step's container was removed
    assert len([c for c in backend.calls if c[0] == "run"]) == 1


def test_from_a_missing_image_fails_with_the_pull_error(env):
    _, build = env
    with pytest.raises(BuildError, match="pull access denied for nosuch, repository does not exist"):
        build("FROM nosuch\n")



def test_cache_from_an_image_whose_history_continues_the_parent(env, tmp_path):
    backend, build = env
    source, _ = build("FROM busybox\nENV A=1\nLABEL b=2\n", tags=["src:1"])
    fresh = BuildCache(str(tmp_path / "other-cache"))  # no records: only --cache-from can help
    context = BuildContext.receive(io.BytesIO(context_tar({"Dockerfile": b"FROM busybox\nENV A=1\nLABEL b=2\n"})),
                                   str(tmp_path / "ctx-cf"))
    lines: list[dict] = []
    try:
        image_id = Build(backend, fresh, context, BuildOptions(cache_from=["src:1", "missing:1"]),
                         lines.append).run()
    finally:
        context.close()
        fresh.close()
    assert text(lines).count(" ---> Using cache\n") == 2
    history = [h["created_by"] for h in backend.images[image_id].document["history"]]
    assert history == [h["created_by"] for h in backend.images[source].document["history"]]


def test_independent_stages_build_at_once_and_print_in_order(env):
    backend, build = env
    started = {"a": threading.Event(), "b": threading.Event()}

    def script(spec):
        name = spec.config["Cmd"][-1].split()[-1]
        started[name].set()
        other = started["b" if name == "a" else "a"]
        assert other.wait(5), "the stages ran one after the other"
        return 0, f"output of {name}\n".encode(), {name: name.encode()}
    backend.script = script
    image_id, lines = build("FROM busybox AS a\nRUN echo a\n"
                            "FROM busybox AS b\nRUN echo b\n"
                            "FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n")
    out = text(lines)
    steps = [line for line in out.splitlines() if line.startswith("Step ")]
    assert steps == ["Step 1/7 : FROM busybox AS a", "Step 2/7 : RUN echo a", "Step 3/7 : FROM busybox AS b",
                     "Step 4/7 : RUN echo b", "Step 5/7 : FROM busybox", "Step 6/7 : COPY --from=a /a /a",
                     "Step 7/7 : COPY --from=b /b /b"]
    assert out.index("output of a") < out.index("Step 3/7") < out.index("output of b")
    assert backend.files[image_id]["a"] == b"a" and backend.files[image_id]["b"] == b"b"


def test_a_failing_stage_stops_the_others(env):
    backend, build = env
    release = threading.Event()

    def script(spec):
        if "fail" in spec.config["Cmd"][-1]:
            return 9, b"", {}
        release.wait(5)  # the slow stage: stopped by the failure, not by its end
        return 0, b"", {}
    backend.script = script
    with pytest.raises(BuildError) as caught:
        build("FROM busybox AS slow\nRUN sleep\nRUN after-sleep\n"
              "FROM busybox AS bad\nRUN fail\n"
              "FROM busybox\nCOPY --from=slow /x /x\nCOPY --from=bad /y /y\n")
    release.set()
    assert caught.value.code == 9
    assert not any(c[0] == "run" and c[1][-1] == "after-sleep" for c in backend.calls)
