"""Runs a Dockerfile's steps through a ``BuildBackend`` (the engine implements it).

``Build(backend, cache, context, options, emit, cancel).run()`` parses the Dockerfile
(errors there are raised before anything is emitted, so the API answers them as plain HTTP
errors, as dockerd does), picks the target and the stages it needs (the others are
skipped), then builds those stages, each as soon as the stages it reads are built
(independent stages at the same time, their output delivered in file order, steps numbered
in file order; the first failure stops the others), each step as dockerd's classic builder
does it and says it (``Step 2/5 : RUN ...``, `` ---> Running in ...``, `` ---> Using
cache``, `` ---> <id>``, ``Successfully built``, ``Successfully tagged``):

- FROM: an image (``backend.from_image``: local, else the pull hook), a previous stage, or
  ``scratch``; the base image's ONBUILD triggers run first;
- metadata steps (ENV, LABEL, CMD, ...) make an image with one more history entry and no
  layer; no container is made for them;
- COPY, ADD and WORKDIR (when the directory is missing) make a layer directly
  (``berth.builder.copier``), registered by ``backend.create_image``;
- RUN runs a container (``backend.run``), its output streamed, then commits it and removes
  it. ``--mount=type=cache|bind|tmpfs`` and ``--network`` are honoured (BuildKit's
  syntax, through every client).

Each step's result is looked up first in the cache (``berth.builder.cache``) unless
``no_cache``. Everything the backend is asked to do is blocking; the build runs in a worker
thread. ``cancel`` (a ``threading.Event``) stops it between steps and kills a running step.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import posixpath
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO, Callable, ContextManager, Iterator, Protocol

from berth.builder import copier, dockerfile
from berth.builder.cache import BuildCache, step_key
from berth.builder.context import DIR, REG, BuildContext, ContextError, clean_name
from berth.builder.dockerfile import DockerfileError, Instruction, Stage, Stages
from berth.builder.dockerignore import excluded_paths, read_patterns
from berth.builder.shell import Lexer, ShellError, env_map
from berth.errors import BerthError, InvalidParameter, NotFound
from berth.goquote import quote, quote_rune
from berth.units import go_duration_string, parse_go_duration

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]
PROXY_ARGS = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
              "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
SIGNALS = {"ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
           "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
           "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU",
           "XFSZ"}
MAX_DOWNLOAD = 4 << 30


# -- what the builder needs from the engine --------------------------------------------------

@dataclass
class ImageInfo:
    """An image as the builder sees it: its ID and its whole config document (``config``,
    ``history``, ``rootfs``, ``os``, ``architecture``)."""

    id: str
    document: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        return self.document.get("config") or {}


@dataclass
class RunSpec:
    """A RUN step's container: ``config`` (Image, Cmd, Env, User, WorkingDir, ...) and
    ``host_config`` (NetworkMode, Mounts, Tmpfs, ExtraHosts, ShmSize, Ulimits, resources)."""

    config: dict[str, Any]
    host_config: dict[str, Any]


@dataclass
class RunResult:
    container_id: str
    exit_code: int
    error: str = ""  # the container could not start (the runtime's words)


@dataclass
class NewImage:
    """An image a step makes: on ``parent`` ("" for none), with ``config``, one more
    ``history`` entry, the ``container_config`` inspect shows, an optional ``author``, and
    (``create_image``) an optional new layer as a tar stream."""

    parent: str
    config: dict[str, Any]
    history: dict[str, Any]
    container_config: dict[str, Any]
    author: str = ""
    os: str = "linux"
    architecture: str = ""
    reuse_layer: str | None = None  # a diff ID of a layer the store has on the parent (--cache-from)


Output = Callable[[int, bytes], None]  # (1 stdout | 2 stderr, bytes)


class BuildBackend(Protocol):
    """What a build asks of the engine (blocking calls, from the build's worker thread)."""

    def from_image(self, ref: str, pull: bool, platform: str, emit: Callable[[dict], None],
                   auth: dict[str, dict[str, str]] | None = None) -> ImageInfo:
        """FROM's image: the local one (``pull``: always ask the registry first), else the
        pull hook, with the client's registry credentials (``auth``: server address ->
        auth config, from ``X-Registry-Config``); Docker's errors when neither has it."""

    def image(self, image_id: str) -> ImageInfo | None:
        """A local image by ID (cache results are checked with it), or None."""

    def create_image(self, spec: NewImage, layer: BinaryIO | None) -> ImageInfo:
        """A new image on ``spec.parent``: with ``layer`` (a tar), that layer on top."""

    def run(self, spec: RunSpec, output: Output, cancel: threading.Event,
            created: Callable[[str], None]) -> RunResult:
        """Create the container (``created(id)`` then), start it with its output sent to
        ``output``, wait for its exit (``cancel`` kills it). The container stays until
        ``remove_container`` (also when it failed to start: ``RunResult.error``)."""

    def commit(self, container_id: str, spec: NewImage) -> ImageInfo:
        """The container's changes as a layer on ``spec.parent``."""

    def remove_container(self, container_id: str) -> None: ...

    def mount_image(self, image_id: str) -> ContextManager[str]:
        """A read-only view of an image's filesystem (a directory) while in use."""

    def tag(self, image_id: str, ref: str) -> str:
        """Tag; returns the familiar reference (``name:tag``)."""


# -- options ------------------------------------------------------------------------------

@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str | None] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    rm: bool = True
    force_rm: bool = False
    quiet: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    network_mode: str = ""
    extra_hosts: list[str] = field(default_factory=list)
    shm_size: int = 0
    ulimits: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, Any] = field(default_factory=dict)  # Memory, CpuShares, ...
    cache_from: list[str] = field(default_factory=list)
    platform: str = ""
    architecture: str = "amd64"
    dockerfile_text: bytes | None = None  # given outside the context (a remote Dockerfile)
    registry_auth: dict[str, dict[str, str]] = field(default_factory=dict)  # X-Registry-Config


class BuildError(BerthError):
    """A step failed: the message is the error line; ``code`` the exit code of a RUN."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code


class Cancelled(BerthError):
    pass


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _go_list(items: list[str]) -> str:
    """Go's ``%q`` of a []string: ``["a" "b"]``."""
    return "[" + " ".join(quote(item) for item in items) + "]"


def _now() -> str:
    from datetime import datetime, timezone
    stamp = time.time_ns()
    base = datetime.fromtimestamp(stamp // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{stamp % 1_000_000_000:09d}".rstrip("0")
    return base + ("." + frac if frac else "") + "Z"


# -- the state of a stage -----------------------------------------------------------------

@dataclass
class StageState:
    stage: Stage
    image: ImageInfo | None = None
    config: dict[str, Any] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)     # declared ARGs with a value
    declared: set[str] = field(default_factory=set)
    cmd_set: bool = False
    author: str = ""
    os: str = "linux"
    architecture: str = ""
    cache_key: str = ""  # key of the step that made ``image`` (for the record's parent)
    cache_valid: bool = True  # a cache miss earlier in the stage ends lookups? (no: per step)

    @property
    def image_id(self) -> str:
        return self.image.id if self.image else ""

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    def env(self) -> dict[str, str]:
        """What ``$VAR`` sees: the ARGs, then the ENV (which wins)."""
        values = dict(self.args)
        values.update(env_map(self.config.get("Env")))
        return values


class Build:
    def __init__(self, backend: BuildBackend, cache: BuildCache | None, context: BuildContext,
                 options: BuildOptions, emit: Callable[[dict], None],
                 cancel: threading.Event | None = None, workdir: str | None = None):
        self.backend = backend
        self.cache = cache
        self.context = context
        self.options = options
        self._emit = emit
        self.cancel = cancel or threading.Event()
        self.workdir = workdir or context.directory
        self.quiet_buffer: list[dict] = []
        self._local = threading.local()  # the stage a thread builds: its output position, its step
        self._ordered: _OrderedOutput | None = None
        self._quiet_lock = threading.Lock()
        self._failed = threading.Event()  # a stage failed: the others stop
        self.total = 0
        self.consumed: set[str] = set()
        self.results: dict[int, StageState] = {}
        self.held: list[str] = []
        self.lexer = Lexer()
        self.meta: dict[str, str] = {}
        self.stages: Stages | None = None
        self._cache_sources: list[ImageInfo] | None = None

    # -- output ------------------------------------------------------------------------------
    def emit(self, message: dict) -> None:
        position = getattr(self._local, "position", None)
        if position is not None and self._ordered is not None:
            self._ordered.write(position, message)
        else:
            self._deliver(message)

    def _deliver(self, message: dict) -> None:
        if self.options.quiet:
            with self._quiet_lock:
                self.quiet_buffer.append(message)
        else:
            self._emit(message)

    def say(self, text: str) -> None:
        self.emit({"stream": text})

    def flush_quiet(self) -> None:
        """On failure in quiet mode: what was held back, so the error has its context."""
        for message in self.quiet_buffer:
            self._emit(message)
        self.quiet_buffer = []

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("the build was cancelled: the client went away")
        if self._failed.is_set():
            raise Cancelled("another stage of the build failed")

    # -- the whole build -----------------------------------------------------------------------
    def prepare(self) -> list[int]:
        """Read the Dockerfile and pick the stages: every error here comes before output."""
        text = self._dockerfile_text()
        parsed = dockerfile.parse(text)
        self.lexer = Lexer(parsed.escape)
        stages = self.stages = dockerfile.stages(parsed)
        self._apply_dockerignore()
        self.meta = self._meta_args(stages)
        target = stages.target_index(self.options.target)
        if self.options.labels:
            line = stages.stages[target].instructions[-1].end if stages.stages[target].instructions \
                else stages.stages[target].from_instruction.end  # type: ignore[union-attr]
            words = [f"{quote(k)}={quote(v)}" for k, v in sorted(self.options.labels.items())]
            label = Instruction("label", "LABEL " + " ".join(words), words, start=line, end=line,
                                raw_args=" ".join(words))
            stages.stages[target].instructions.append(label)
        needed = dockerfile.needed_stages(stages, target, self._expand_meta)
        self.total = sum(1 + len(stages.stages[i].instructions) for i in needed)
        return needed

    def run(self) -> str:
        needed = self.prepare()
        assert self.stages is not None
        try:
            self._build_stages(needed)
            final = self.results[needed[-1]]
            if final.image is None:
                raise BuildError("No image was generated. Is your Dockerfile empty?")
            image_id = final.image.id
            self.emit({"aux": {"ID": image_id}})
            unused = sorted(set(self.options.build_args) - self.consumed - PROXY_ARGS)
            if unused:
                self.say(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
            self.say(f"Successfully built {_short(image_id)}\n")
            for tag in self.options.tags:
                shown = self.backend.tag(image_id, tag)
                self.say(f"Successfully tagged {shown}\n")
            if self.options.quiet:
                self._emit({"stream": image_id + "\n"})
            return image_id
        except BaseException:
            if self.options.quiet:
                self.flush_quiet()
            raise
        finally:
            if self.cache is not None:
                for key in self.held:
                    self.cache.release(key)

    def _dockerfile_text(self) -> bytes:
        if self.options.dockerfile_text is not None:
            return self.options.dockerfile_text
        if self.context.plain_dockerfile is not None:
            return self.context.plain_dockerfile
        name = self.options.dockerfile or "Dockerfile"
        entry = self.context.resolve(name)
        if entry is None and name == "Dockerfile":
            entry = self.context.resolve("dockerfile")
        if entry is None or entry.type != REG:
            raise InvalidParameter(f"Cannot locate specified Dockerfile: {name}")
        if entry.size > 16 << 20:
            raise InvalidParameter("the Dockerfile is larger than 16 MiB")
        return self.context.read(entry)

    def _apply_dockerignore(self) -> None:
        entry = self.context.resolve(".dockerignore")
        if entry is None or entry.type != REG:
            return
        patterns = read_patterns(self.context.read(entry, 1 << 20))
        self.context.exclude(excluded_paths(self.context.paths(), patterns))

    # -- args ----------------------------------------------------------------------------------
    def _meta_args(self, stages: Stages) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in stages.meta_args:
            for word in instruction.args:
                name, eq, default = word.partition("=")
                if name in self.options.build_args and self.options.build_args[name] is not None:
                    values[name] = self.options.build_args[name] or ""
                    self.consumed.add(name)
                elif eq:
                    values[name] = self.lexer.process_word(default, values)
                self.consumed.add(name)
        values.setdefault("TARGETPLATFORM", f"linux/{self.options.architecture}")
        values.setdefault("TARGETOS", "linux")
        values.setdefault("TARGETARCH", self.options.architecture)
        values.setdefault("BUILDPLATFORM", f"linux/{self.options.architecture}")
        values.setdefault("BUILDOS", "linux")
        values.setdefault("BUILDARCH", self.options.architecture)
        return values

    def _expand_meta(self, word: str) -> str:
        try:
            return self.lexer.process_word(word, self.meta)
        except ShellError:
            return word

    def expand(self, state: StageState, word: str) -> str:
        try:
            return self.lexer.process_word(word, state.env())
        except ShellError as exc:
            raise BuildError(exc.message) from None

    # -- stages --------------------------------------------------------------------------------
    def _build_stage(self, stage: Stage) -> StageState:
        state = StageState(stage, architecture=self.options.architecture)
        assert stage.from_instruction is not None
        self._from(state, stage.from_instruction)
        for instruction in stage.instructions:
            self.check_cancel()
            self._step_header(instruction)
            self._dispatch(state, instruction)
        return state

    def _step_header(self, instruction: Instruction) -> None:
        self._local.step += 1
        self.say(f"Step {self._local.step}/{self.total} : {instruction.text()}")
        self.say("\n")

    def _build_stages(self, needed: list[int]) -> None:
        """The needed stages, each as soon as the stages it reads are built: independent
        stages at the same time (a thread each). Their output comes out in file order, as
        if built one after the other (a later stage's is held until the earlier ones end);
        steps are numbered in file order. The first failure stops the others."""
        assert self.stages is not None
        stages = self.stages
        first_step: dict[int, int] = {}
        count = 0
        for index in needed:
            first_step[index] = count
            count += 1 + len(stages.stages[index].instructions)
        deps = {index: dockerfile.stage_dependencies(stages.stages[index], stages, self._expand_meta)
                for index in needed}
        if len(needed) == 1 or _chain(needed, deps):  # nothing could run at once
            for index in needed:
                self.check_cancel()
                self._local.step = first_step[index]
                self.results[index] = self._build_stage(stages.stages[index])
            return
        self._ordered = _OrderedOutput(self._deliver, len(needed))
        done = {index: threading.Event() for index in needed}
        errors: list[BaseException] = []

        def build(position: int, index: int) -> None:
            self._local.position = position
            self._local.step = first_step[index]
            try:
                for dep in deps[index]:
                    while not done[dep].wait(0.1):
                        self.check_cancel()
                    if dep not in self.results:
                        raise Cancelled("a stage this one needs failed")
                self.check_cancel()
                self.results[index] = self._build_stage(stages.stages[index])
            except BaseException as exc:  # noqa: BLE001 - the first is raised by run()
                errors.append(exc)
                self._failed.set()
            finally:
                done[index].set()
                assert self._ordered is not None
                self._ordered.finish(position)

        threads = [threading.Thread(target=build, args=(position, index), daemon=True,
                                    name=f"berth-build-stage-{index}")
                   for position, index in enumerate(needed)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._ordered = None
        if errors:
            real = [e for e in errors if not isinstance(e, Cancelled)]
            raise (real or errors)[0]

    def _from(self, state: StageState, instruction: Instruction) -> None:
        self._step_header(instruction)
        stage = state.stage
        base = self._expand_meta(stage.base)
        if not base:
            raise BuildError("base name (" + stage.base + ") should not be blank")
        platform = self._expand_meta(stage.platform) if stage.platform else self.options.platform
        self._check_platform(platform)
        assert self.stages is not None
        previous = self.stages.find(base, before=stage.index)
        if base.lower() == "scratch":
            state.image = None
            state.config = {}
            self.say(" ---> \n")
        elif previous is not None:
            built = self.results.get(previous.index)
            if built is None:
                raise BuildError(f"stage {base} was not built")
            state.image = built.image
            state.config = copy.deepcopy(built.config)
            state.author = built.author
            self.say(f" ---> {_short(state.image_id)}\n")
        else:
            try:
                info = self.backend.from_image(base, self.options.pull, platform, self.emit,
                                               self.options.registry_auth)
            except NotFound as exc:
                raise BuildError(exc.message) from None
            state.image = info
            state.config = copy.deepcopy(info.config)
            state.author = info.document.get("author", "")
            state.os = info.document.get("os") or "linux"
            state.architecture = info.document.get("architecture") or state.architecture
            self._check_image_platform(platform, info)
            self.say(f" ---> {_short(info.id)}\n")
        env = list(state.config.get("Env") or [])
        if not any(item.startswith("PATH=") for item in env):
            state.config["Env"] = env + [DEFAULT_PATH]
        state.cache_key = ""  # the first step's record has no parent record
        triggers = list(state.config.get("OnBuild") or [])
        if triggers:
            state.config["OnBuild"] = None
            self.say(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) != 1 else ''}\n")
            for text in triggers:
                parsed = dockerfile.parse(text)
                for trigger in parsed.instructions:
                    if trigger.keyword in ("onbuild", "from", "maintainer"):
                        raise BuildError(f"{trigger.keyword.upper()} isn't allowed as an ONBUILD trigger")
                    self._dispatch(state, trigger)

    def _check_platform(self, platform: str) -> None:
        if not platform:
            return
        wanted = platform.lower().split("/")
        if wanted[0] != "linux" or (len(wanted) > 1 and wanted[1] not in (self.options.architecture,)):
            raise BuildError(f"\"{platform}\": unsupported platform: berthd builds for "
                             f"linux/{self.options.architecture} only")

    def _check_image_platform(self, platform: str, info: ImageInfo) -> None:
        if not platform:
            return
        wanted = platform.lower()
        actual = f"{info.document.get('os') or 'linux'}/{info.document.get('architecture') or ''}"
        if "/" in wanted and wanted.split("/")[1] != actual.split("/")[1]:
            raise BuildError(f"image with reference {info.id} was found but does not match the "
                             f"specified platform: wanted {wanted}, actual: {actual}")

    # -- dispatch ------------------------------------------------------------------------------
    def _dispatch(self, state: StageState, instruction: Instruction) -> None:
        handler = getattr(self, "_do_" + instruction.keyword)
        try:
            handler(state, instruction)
        except (BuildError, Cancelled):
            raise
        except ShellError as exc:
            raise BuildError(exc.message) from None
        except (InvalidParameter, ContextError) as exc:
            raise BuildError(exc.message) from None

    def _commit_metadata(self, state: StageState, description: str, two_spaces: bool = True) -> None:
        """A step that only changes the config: an image with one more history entry."""
        comment = ("#(nop) " + " " + description) if two_spaces else "#(nop) " + description
        cmd = state.shell + [comment]
        created_by = " ".join(cmd)
        key = step_key(state.image_id, created_by, self._key_extra(state, {"config": state.config}))
        if self._use_cache(state, key, created_by):
            return
        spec = self._new_image(state, created_by, cmd, empty=True)
        info = self.backend.create_image(spec, None)
        self._finish_step(state, info, key, created_by)

    def _key_extra(self, state: StageState, extra: dict[str, Any]) -> dict[str, Any]:
        extra = dict(extra)
        extra["author"] = state.author
        extra["platform"] = f"{state.os}/{state.architecture}"
        return extra

    def _new_image(self, state: StageState, created_by: str, cmd: list[str], empty: bool,
                   container_config: dict[str, Any] | None = None) -> NewImage:
        history: dict[str, Any] = {"created": _now(), "created_by": created_by}
        if state.author:
            history["author"] = state.author
        if empty:
            history["empty_layer"] = True
        if container_config is None:
            container_config = _container_config(state.config, cmd, state.image_id)
        return NewImage(state.image_id, copy.deepcopy(state.config), history, container_config,
                        state.author, state.os, state.architecture)

    def _use_cache(self, state: StageState, key: str, created_by: str) -> bool:
        if self.cache is None or self.options.no_cache:
            return False
        image_id = self.cache.lookup(key)
        info = self.backend.image(image_id) if image_id else None
        if image_id and info is None:
            self.cache.forget(key)
        if info is None:
            info = self._from_cache_sources(state, created_by)
            if info is None:
                return False
            self.cache.record(key, info.id, created_by, state.cache_key)
        self.cache.hit(key)
        self.cache.hold(key)
        self.held.append(key)
        self.say(" ---> Using cache\n")
        self.say(f" ---> {_short(info.id)}\n")
        state.image = info
        state.cache_key = key
        return True

    def _from_cache_sources(self, state: StageState, created_by: str) -> ImageInfo | None:
        """``--cache-from``: an image whose history continues the parent's with this very
        step (dockerd's classic rule: same history so far, same layers, then an entry made
        by the same command) gives the step's result: the source itself when it is that
        step's image, else an image rebuilt from the parent and the source's layer (the
        same config, history and layers: the same ID as the original)."""
        if self._cache_sources is None:
            self._cache_sources = []
            for ref in self.options.cache_from:
                try:
                    self._cache_sources.append(self.backend.from_image(ref, False, "", lambda m: None))
                except BerthError:
                    continue  # as dockerd: a cache source that is not there is no source
        if not self._cache_sources:
            return None
        parent_doc = state.image.document if state.image else {}
        parent_history = list(parent_doc.get("history") or [])
        parent_layers = list((parent_doc.get("rootfs") or {}).get("diff_ids") or [])
        n = len(parent_history)
        for source in self._cache_sources:
            history = list(source.document.get("history") or [])
            layers = list((source.document.get("rootfs") or {}).get("diff_ids") or [])
            if len(history) <= n or layers[:len(parent_layers)] != parent_layers:
                continue
            if [h.get("created_by") for h in history[:n]] != [h.get("created_by") for h in parent_history]:
                continue
            entry = history[n]
            if entry.get("created_by") != created_by:
                continue
            reuse = None
            if not entry.get("empty_layer"):
                if len(layers) <= len(parent_layers):
                    continue
                reuse = layers[len(parent_layers)]
            spec = NewImage(state.image_id, copy.deepcopy(state.config), dict(entry),
                            _container_config(state.config, [], state.image_id), state.author,
                            source.document.get("os") or state.os,
                            source.document.get("architecture") or state.architecture,
                            reuse_layer=reuse)
            return self.backend.create_image(spec, None)
        return None

    def _finish_step(self, state: StageState, info: ImageInfo, key: str, created_by: str) -> None:
        if self.cache is not None:
            self.cache.record(key, info.id, created_by, state.cache_key)
            self.cache.hold(key)
            self.held.append(key)
        state.image = info
        state.cache_key = key
        self.say(f" ---> {_short(info.id)}\n")

    # -- metadata instructions -----------------------------------------------------------------
    def _do_env(self, state: StageState, instruction: Instruction) -> None:
        env = state.env()
        pairs = [(self.lexer.process_word(k, env), self.lexer.process_word(v, env))
                 for k, v in dockerfile.pairs(instruction)]
        current = list(state.config.get("Env") or [])
        for key, value in pairs:
            current = [item for item in current if item.partition("=")[0] != key]
            current.append(f"{key}={value}")
        state.config["Env"] = current
        self._commit_metadata(state, "ENV " + " ".join(f"{k}={v}" for k, v in pairs))

    def _do_label(self, state: StageState, instruction: Instruction) -> None:
        env = state.env()
        pairs = [(self.lexer.process_word(k, env), self.lexer.process_word(v, env))
                 for k, v in dockerfile.pairs(instruction)]
        labels = dict(state.config.get("Labels") or {})
        for key, value in pairs:
            labels[key] = value
        state.config["Labels"] = labels
        self._commit_metadata(state, "LABEL " + " ".join(f"{k}={v}" for k, v in pairs))

    def _do_arg(self, state: StageState, instruction: Instruction) -> None:
        for word in instruction.args:
            name, eq, default = word.partition("=")
            if not name:
                raise BuildError("ARG names can not be blank")
            given = self.options.build_args.get(name)
            if name in self.options.build_args and given is not None:
                value: str | None = given
            elif eq:
                value = self.lexer.process_word(default, state.env())
            else:
                value = self.meta.get(name)
            state.declared.add(name)
            self.consumed.add(name)
            if value is not None:
                state.args[name] = value
        self._commit_metadata(state, "ARG " + " ".join(instruction.args))

    def _do_cmd(self, state: StageState, instruction: Instruction) -> None:
        cmd = instruction.args if instruction.json else state.shell + instruction.args
        state.config["Cmd"] = cmd
        state.cmd_set = True
        self._commit_metadata(state, "CMD " + _go_list(cmd))

    def _do_entrypoint(self, state: StageState, instruction: Instruction) -> None:
        if instruction.json:
            entrypoint = instruction.args
        elif instruction.args and instruction.args[0]:
            entrypoint = state.shell + instruction.args
        else:
            entrypoint = None
        state.config["Entrypoint"] = entrypoint
        if not state.cmd_set:
            state.config["Cmd"] = None
        self._commit_metadata(state, "ENTRYPOINT " + _go_list(entrypoint or []))

    def _do_expose(self, state: StageState, instruction: Instruction) -> None:
        env = state.env()
        words = [self.lexer.process_word(word, env) for word in instruction.args]
        ports = dict(state.config.get("ExposedPorts") or {})
        for word in words:
            for port in _expand_ports(word):
                ports[port] = {}
        state.config["ExposedPorts"] = ports
        self._commit_metadata(state, "EXPOSE " + " ".join(sorted(words)))

    def _do_user(self, state: StageState, instruction: Instruction) -> None:
        user = self.expand(state, instruction.args[0])
        state.config["User"] = user
        self._commit_metadata(state, "USER " + user)

    def _do_volume(self, state: StageState, instruction: Instruction) -> None:
        env = state.env()
        volumes = [self.lexer.process_word(word, env) for word in instruction.args]
        current = dict(state.config.get("Volumes") or {})
        for volume in volumes:
            if not volume.strip():
                raise BuildError("VOLUME specified can not be an empty string")
            current[volume] = {}
        state.config["Volumes"] = current
        self._commit_metadata(state, "VOLUME [" + " ".join(volumes) + "]")

    def _do_stopsignal(self, state: StageState, instruction: Instruction) -> None:
        signal = self.expand(state, instruction.args[0])
        name = signal.upper().removeprefix("SIG")
        if not (signal.isdigit() and 0 < int(signal) < 65) and name not in SIGNALS and \
                not re.fullmatch(r"RTM(IN|AX)([+-]\d+)?", name):
            raise BuildError(f"Invalid signal: {signal}")
        state.config["StopSignal"] = signal
        self._commit_metadata(state, "STOPSIGNAL " + signal)

    def _do_healthcheck(self, state: StageState, instruction: Instruction) -> None:
        kind = instruction.args[0].upper()
        if kind == "NONE":
            health: dict[str, Any] = {"Test": ["NONE"]}
            description = "HEALTHCHECK &{[\"NONE\"] \"0s\" \"0s\" \"0s\" '\\x00'}"
        else:
            rest = instruction.raw_args.split(None, 1)[1] if len(instruction.raw_args.split(None, 1)) > 1 else ""
            parsed = dockerfile.maybe_json(rest)  # the JSON-form rule of the parser
            test = ["CMD"] + parsed if parsed is not None else ["CMD-SHELL", rest]
            health = {"Test": test}
            durations = {}
            for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                              ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
                value = instruction.flag(flag)
                nanos = 0
                if value:
                    try:
                        nanos = parse_go_duration(value)
                    except ValueError as exc:
                        raise BuildError(str(exc)) from None
                    if 0 < nanos < 1_000_000:
                        raise BuildError(f"Interval \"{flag}\" cannot be less than 1ms")
                    if nanos:
                        health[key] = nanos
                durations[key] = nanos
            retries = instruction.flag("retries")
            count = 0
            if retries:
                try:
                    count = int(retries)
                except ValueError:
                    raise BuildError(f"strconv.ParseInt: parsing {quote(retries)}: invalid syntax") from None
                if count < 0:
                    raise BuildError("--retries cannot be negative")
                if count:
                    health["Retries"] = count
            description = (f"HEALTHCHECK &{{{_go_list(test)} "
                           f"{quote(go_duration_string(durations['Interval']))} "
                           f"{quote(go_duration_string(durations['Timeout']))} "
                           f"{quote(go_duration_string(durations['StartPeriod']))} "
                           f"{quote_rune(count)}}}")
        state.config["Healthcheck"] = health
        self._commit_metadata(state, description)

    def _do_shell(self, state: StageState, instruction: Instruction) -> None:
        if not instruction.args:
            raise BuildError("SHELL requires at least one argument")
        state.config["Shell"] = list(instruction.args)
        self._commit_metadata(state, "SHELL [" + " ".join(instruction.args) + "]")

    def _do_onbuild(self, state: StageState, instruction: Instruction) -> None:
        text = instruction.args[0]
        keyword = text.split(None, 1)[0].upper()
        if keyword in ("ONBUILD",):
            raise BuildError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if keyword in ("FROM", "MAINTAINER"):
            raise BuildError(f"{keyword} isn't allowed as an ONBUILD trigger")
        state.config["OnBuild"] = list(state.config.get("OnBuild") or []) + [text]
        self._commit_metadata(state, "ONBUILD " + text)

    def _do_maintainer(self, state: StageState, instruction: Instruction) -> None:
        state.author = instruction.raw_args.strip()
        self._commit_metadata(state, "MAINTAINER " + state.author)

    def _do_from(self, state: StageState, instruction: Instruction) -> None:
        raise BuildError("FROM isn't allowed here")

    # -- WORKDIR --------------------------------------------------------------------------------
    def _do_workdir(self, state: StageState, instruction: Instruction) -> None:
        path = self.expand(state, instruction.args[0])
        if not path.startswith("/"):
            path = posixpath.join(state.config.get("WorkingDir") or "/", path)
        path = posixpath.normpath(path)
        if path.startswith("//"):
            path = path[1:]
        state.config["WorkingDir"] = path
        description = "WORKDIR " + path
        created_by = " ".join(state.shell + ["#(nop) " + description])
        key = step_key(state.image_id, created_by, self._key_extra(state, {"config": state.config}))
        if self._use_cache(state, key, created_by):
            return
        cmd = state.shell + ["#(nop) " + description]
        with self._view(state.image_id) as view:
            resolved = view.resolve(path)
            info = view.lstat(resolved)
            if info is not None:
                import stat as stat_module
                if not stat_module.S_ISDIR(info.st_mode):
                    raise BuildError(f"mkdir {path}: not a directory")
                spec = self._new_image(state, created_by, cmd, empty=True)
                image = self.backend.create_image(spec, None)
            else:
                spec = self._new_image(state, created_by, cmd, empty=False)
                image = self._layer_image(spec, view, (0, 0), None,
                                          [copier.Item(path, DIR, 0o755, time.time())])
        self._finish_step(state, image, key, created_by)

    @contextlib.contextmanager
    def _view(self, image_id: str) -> Iterator[copier.RootView]:
        if not image_id:
            yield copier.RootView(None)
            return
        with self.backend.mount_image(image_id) as root:
            yield copier.RootView(root)

    def _layer_image(self, spec: NewImage, view: copier.RootView, owner: tuple[int, int],
                     chmod: int | None, items: Any) -> ImageInfo:
        """Write ``items`` as a layer tar through a pipe while the image store reads it."""
        read_fd, write_fd = os.pipe()
        failure: list[BaseException] = []

        def produce() -> None:
            with os.fdopen(write_fd, "wb", buffering=1 << 20) as out:
                try:
                    writer = copier.LayerWriter(out, view, owner, chmod)
                    for item in items:
                        writer.add(item)
                    writer.close()
                except BaseException as exc:  # noqa: BLE001 - reported by the consumer
                    failure.append(exc)

        producer = threading.Thread(target=produce, name="berth-build-layer", daemon=True)
        producer.start()
        try:
            with os.fdopen(read_fd, "rb", buffering=1 << 20) as reader:
                try:
                    image = self.backend.create_image(spec, reader)
                except BaseException:
                    if failure:
                        raise failure[0] from None
                    raise
        finally:
            producer.join()
        if failure:
            raise failure[0]
        return image

    # -- COPY / ADD ----------------------------------------------------------------------------
    def _do_copy(self, state: StageState, instruction: Instruction) -> None:
        self._copy(state, instruction, add=False)

    def _do_add(self, state: StageState, instruction: Instruction) -> None:
        self._copy(state, instruction, add=True)

    def _copy(self, state: StageState, instruction: Instruction, add: bool) -> None:
        name = "ADD" if add else "COPY"
        env = state.env()
        words = [self.lexer.process_word(word, env) if not word.startswith("<<") else word
                 for word in instruction.args]
        sources, dest = words[:-1], words[-1]
        if instruction.heredocs and len(words) == 1:
            sources, dest = [], words[0]
        chown = self.lexer.process_word(instruction.flag("chown") or "", env)
        chmod_text = self.lexer.process_word(instruction.flag("chmod") or "", env)
        chmod = copier.parse_chmod(chmod_text) if chmod_text else None
        source_stage = self.lexer.process_word(instruction.flag("from") or "", env)
        checksum = instruction.flag("checksum") or ""
        if source_stage and add:
            raise BuildError("ADD does not support --from")
        if checksum and not all(_is_url(s) for s in sources):
            raise BuildError("checksum can't be specified for non-HTTP(S) sources")
        workdir = state.config.get("WorkingDir") or "/"
        dest_dir_form = dest.endswith("/") or dest in (".", "..") or dest.endswith("/.")
        if not dest.startswith("/"):
            dest = posixpath.join(workdir, dest)
        dest = posixpath.normpath(dest)
        if dest.startswith("//"):
            dest = dest[1:]
        heredocs = {doc.name: doc for doc in instruction.heredocs}

        with contextlib.ExitStack() as stack:
            # the sources: (label for the key, hash, list of items factory, is_dir, basename)
            resolved: list[tuple[str, str, Callable[[str], Iterator[copier.Item]], bool, str]] = []
            source_view: copier.RootView | None = None
            source_image = ""
            if source_stage:
                source_image = self._from_source(source_stage)
                source_view = stack.enter_context(self._view(source_image))
            for source in sources:
                if source.startswith("<<") and source[2:].lstrip("-").strip("\"'") in heredocs:
                    doc = heredocs[source[2:].lstrip("-").strip("\"'")]
                    content = doc.content
                    if doc.expand:
                        content = _expand_heredoc(self.lexer, content, env)
                    data = content.encode()
                    digest = hashlib.sha256(data).hexdigest()
                    resolved.append((f"heredoc:{doc.name}", digest,
                                     lambda d, data=data: iter([copier.Item(d, REG, 0o644, time.time(), len(data),
                                                                            open=lambda: io.BytesIO(data))]),
                                     False, doc.name))
                elif _is_url(source):
                    if not add:
                        raise BuildError("source can't be a URL for COPY")
                    path, digest, base, mtime = self._download(source, checksum, stack)
                    resolved.append((f"url:{source}", digest,
                                     lambda d, p=path, m=mtime: iter([_file_item(p, d, 0o600, m)]),
                                     False, base))
                elif source_view is not None:
                    resolved.extend(self._image_sources(source_view, source_image, source, name))
                else:
                    resolved.extend(self._context_sources(source, name, add))
            if not resolved:
                raise BuildError(f"{name} failed: no source files were specified")
            if (len(resolved) > 1 or any(copier.has_wildcards(s) for s in sources)) and not dest_dir_form:
                if len(resolved) > 1:
                    raise BuildError(f"When using {name} with more than one source file, the "
                                     "destination must be a directory and end with a /")
            kind = "multi" if len(resolved) > 1 else ("dir" if resolved[0][3] else "file")
            source_hash = hashlib.sha256("\n".join(f"{label}:{digest}" for label, digest, *_ in resolved)
                                         .encode()).hexdigest() if kind == "multi" else resolved[0][1]
            flags = ""
            if chown:
                flags += f"--chown={chown} "
            if chmod_text:
                flags += f"--chmod={chmod_text} "
            shown_dest = dest + ("/" if dest_dir_form and not dest.endswith("/") else "")
            description = f"{name} {flags}{kind}:{source_hash} in {shown_dest} "
            cmd = state.shell + ["#(nop) " + description]
            created_by = " ".join(cmd)
            key = step_key(state.image_id, created_by,
                           self._key_extra(state, {"config": state.config, "from": source_image}))
            if self._use_cache(state, key, created_by):
                return
            with self._view(state.image_id) as view:
                owner = copier.parse_chown(chown, view) if chown else (0, 0)
                dest_is_dir = dest_dir_form or len(resolved) > 1
                if not dest_is_dir:
                    info = view.lstat(view.resolve(dest))
                    import stat as stat_module
                    dest_is_dir = info is not None and stat_module.S_ISDIR(info.st_mode)

                def items() -> Iterator[copier.Item]:
                    for label, _digest, factory, is_dir, base in resolved:
                        if is_dir:
                            target = dest
                        elif dest_is_dir:
                            target = posixpath.join(dest, base)
                        else:
                            target = dest
                        yield from factory(target)

                spec = self._new_image(state, created_by, cmd, empty=False)
                image = self._layer_image(spec, view, owner, chmod, items())
        self._finish_step(state, image, key, created_by)

    def _from_source(self, ref: str) -> str:
        assert self.stages is not None
        stage = self.stages.find(ref)
        if stage is not None:
            built = self.results.get(stage.index)
            if built is None or (built.image is None and stage.base.lower() != "scratch"):
                raise BuildError(f"invalid from flag value {ref}: stage not built")
            return built.image_id
        try:
            return self.backend.from_image(ref, False, "", self.emit, self.options.registry_auth).id
        except BerthError as exc:
            raise BuildError(f"invalid from flag value {ref}: {exc.message}") from None

    def _context_sources(self, source: str, name: str, add: bool) -> list[tuple[str, str, Any, bool, str]]:
        context = self.context
        cleaned = posixpath.normpath("/" + source).lstrip("/")
        logical = posixpath.normpath(source)
        if logical == ".." or logical.startswith("../"):
            raise BuildError(f"{name} failed: forbidden path outside the build context: {source} ()")
        out = []
        if copier.has_wildcards(cleaned):
            matches = [p for p in context.paths()
                       if p not in context.excluded and copier.go_match(cleaned, p)]
            for path in sorted(matches):
                entry = context.resolve(path)
                if entry is not None:
                    out.append(self._context_source(entry, posixpath.basename(path), add))
            return out
        entry = context.resolve(cleaned)
        if entry is None:
            raise BuildError(f"{name} failed: file not found in build context or excluded by "
                             f".dockerignore: stat {source}: file does not exist")
        base = posixpath.basename(cleaned) or posixpath.basename(entry.path)
        return [self._context_source(entry, base, add)]

    def _context_source(self, entry: Any, base: str, add: bool) -> tuple[str, str, Any, bool, str]:
        context = self.context
        if entry.type == DIR:
            digest = context.tree_digest(entry)
            return (f"dir:{entry.path}", digest,
                    lambda d, e=entry: copier.context_items(context, e, d), True, base)
        if add and entry.type == REG and copier.is_archive(context.read(entry, 262)):
            digest = context.content_digest(entry)

            def extract(d: str, e: Any = entry) -> Iterator[copier.Item]:
                with context.open(e) as stream:
                    yield from copier.archive_items(stream, d)
            return (f"archive:{entry.path}", digest, extract, True, base)
        digest = context.tree_digest(entry)
        return (f"file:{entry.path}", digest, lambda d, e=entry: copier.context_items(context, e, d),
                False, base)

    def _image_sources(self, view: copier.RootView, image_id: str, source: str,
                       name: str) -> list[tuple[str, str, Any, bool, str]]:
        import stat as stat_module
        if copier.has_wildcards(source):
            directory, pattern = posixpath.split(posixpath.normpath("/" + source))
            parent = view.resolve(directory)
            try:
                names = sorted(os.listdir(view.host(parent)))
            except OSError:
                names = []
            sources = [posixpath.join(directory, n) for n in names if copier.go_match(pattern, n)]
        else:
            sources = [source]
        out = []
        for path in sources:
            resolved = view.resolve(path)
            info = view.lstat(resolved)
            if info is None:
                raise BuildError(f"{name} failed: stat {path}: file does not exist")
            is_dir = stat_module.S_ISDIR(info.st_mode)
            digest = hashlib.sha256(f"{image_id}:{resolved}".encode()).hexdigest()
            base = posixpath.basename(posixpath.normpath(path)) or posixpath.basename(resolved)
            out.append((f"image:{path}", digest,
                        lambda d, p=path: copier.view_items(view, p, d), is_dir, base))
        return out

    def _download(self, url: str, checksum: str, stack: contextlib.ExitStack) -> tuple[str, str, str, float]:
        """ADD <url>: the file, downloaded into the build's directory; its sha256, the
        name it gets (the URL's last path element), its time (Last-Modified)."""
        directory = stack.enter_context(tempfile.TemporaryDirectory(dir=self.workdir))
        path = os.path.join(directory, "download")
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as out:  # noqa: S310
                total = 0
                while True:
                    self.check_cancel()
                    chunk = response.read(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > MAX_DOWNLOAD:
                        raise BuildError(f"ADD failed: {url} is larger than {MAX_DOWNLOAD} bytes")
                    digest.update(chunk)
                    out.write(chunk)
                modified = response.headers.get("Last-Modified")
        except OSError as exc:
            reason = getattr(exc, "reason", None) or exc
            code = getattr(exc, "code", None)
            if code:
                raise BuildError(f"failed to GET {url} with status {code} {getattr(exc, 'reason', '')}: ") from None
            raise BuildError(f"Get \"{url}\": {reason}") from None
        hexdigest = digest.hexdigest()
        if checksum:
            algorithm, _, expected = checksum.partition(":")
            if algorithm != "sha256" or not expected:
                raise BuildError(f"unsupported digest algorithm: {checksum}")
            if expected != hexdigest:
                raise BuildError(f"digest mismatch {checksum}: sha256:{hexdigest}")
        mtime = time.time()
        if modified:
            try:
                mtime = parsedate_to_datetime(modified).timestamp()
            except (TypeError, ValueError):
                pass
        base = posixpath.basename(urllib.parse.urlparse(url).path) or "__unnamed__"
        return path, hexdigest, base, mtime

    # -- RUN ------------------------------------------------------------------------------------
    def _do_run(self, state: StageState, instruction: Instruction) -> None:
        env = state.env()
        if instruction.json:
            cmd = list(instruction.args)
        else:
            text = instruction.args[0] if instruction.args else ""
            if instruction.heredocs:
                cmd = state.shell + [_heredoc_script(text, instruction.heredocs, self.lexer, env)]
            else:
                cmd = state.shell + [text]
        network = instruction.flag("network") or ""
        if network not in ("", "default", "none", "host"):
            raise BuildError(f"unsupported network mode: {network}")
        security = instruction.flag("security") or ""
        if security not in ("", "sandbox"):
            raise BuildError("security=insecure is not allowed: berthd runs RUN steps sandboxed")
        mounts = dockerfile.mount_specs(instruction)
        # the build args a RUN sees (declared, not overridden by ENV), as dockerd lists them
        image_env = env_map(state.config.get("Env"))
        args = {k: v for k, v in state.args.items() if k not in image_env}
        proxies = {k: v for k, v in self.options.build_args.items()
                   if k in PROXY_ARGS and v is not None and k not in args}
        shown = [f"{k}={v}" for k, v in sorted(args.items())]
        saved_cmd = (["|" + str(len(shown))] + shown if shown else []) + cmd
        created_by = " ".join(saved_cmd)
        mount_key = [dict(sorted(m.items())) for m in mounts]
        key = step_key(state.image_id, created_by, self._key_extra(state, {
            "config": state.config, "mounts": mount_key, "network": network}))
        if self._use_cache(state, key, created_by):
            return
        run_env = list(state.config.get("Env") or []) + [f"{k}={v}" for k, v in sorted(args.items())] + \
            [f"{k}={v}" for k, v in sorted(proxies.items())]
        config = {
            "Image": state.image_id or "",
            "Cmd": cmd,
            "Entrypoint": [""],
            "Env": run_env,
            "User": state.config.get("User") or "",
            "WorkingDir": state.config.get("WorkingDir") or "",
            "Labels": {},
            "Healthcheck": {"Test": ["NONE"]},
            "AttachStdout": True,
            "AttachStderr": True,
        }
        if not state.image_id:
            raise BuildError("Please provide a source image with `from` prior to run")
        host_config = self._host_config(network)
        with contextlib.ExitStack() as stack:
            host_config["Mounts"], host_config["Tmpfs"] = self._mounts(state, mounts, stack, env)
            spec = RunSpec(config, host_config)

            def output(stream: int, data: bytes) -> None:
                text = data.decode("utf-8", errors="replace")
                if stream == 2:
                    text = "\x1b[91m" + text + "\x1b[0m"
                self.emit({"stream": text})

            started: list[str] = []

            def created(container_id: str) -> None:
                started.append(container_id)
                self.say(f" ---> Running in {container_id[:12]}\n")

            try:
                result = self.backend.run(spec, output, _Either(self.cancel, self._failed), created)
                self.check_cancel()
                if result.error:
                    raise BuildError(result.error)
                if result.exit_code != 0:
                    raise BuildError(f"The command '{' '.join(cmd)}' returned a non-zero code: "
                                     f"{result.exit_code}", result.exit_code)
                container_config = _container_config(state.config, saved_cmd, state.image_id)
                spec_image = self._new_image(state, created_by, saved_cmd, empty=False,
                                             container_config=container_config)
                image = self.backend.commit(result.container_id, spec_image)
                if self.options.rm or self.options.force_rm:
                    self.backend.remove_container(result.container_id)
                    self.say(f"Removing intermediate container {result.container_id[:12]}\n")
                started.clear()
            finally:
                for container_id in started:
                    if container_id and (self.options.rm or self.options.force_rm or self.cancel.is_set()):
                        with contextlib.suppress(BerthError):
                            self.backend.remove_container(container_id)
        self._finish_step(state, image, key, created_by)

    def _host_config(self, network: str) -> dict[str, Any]:
        options = self.options
        mode = options.network_mode or "default"
        if network and network != "default":
            mode = network
        host: dict[str, Any] = {"NetworkMode": mode}
        if options.extra_hosts:
            host["ExtraHosts"] = list(options.extra_hosts)
        if options.shm_size:
            host["ShmSize"] = options.shm_size
        if options.ulimits:
            host["Ulimits"] = list(options.ulimits)
        host.update(options.resources)
        return host

    def _mounts(self, state: StageState, specs: list[dict[str, str]], stack: contextlib.ExitStack,
                env: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        mounts: list[dict[str, Any]] = []
        tmpfs: dict[str, str] = {}
        for raw in specs:
            spec = {k: self.lexer.process_word(v, env) for k, v in raw.items()}
            kind = spec.get("type", "bind")
            target = spec.get("target") or spec.get("dst") or spec.get("destination") or ""
            if not target:
                raise BuildError("mount destination (target) is required")
            if not target.startswith("/"):
                target = posixpath.join(state.config.get("WorkingDir") or "/", target)
            readonly = spec.get("ro", spec.get("readonly", "false")) in ("true", "1", "")
            if "rw" in spec or "readwrite" in spec:
                readonly = False
            if kind == "cache":
                mounts.append(self._cache_mount(spec, target, stack))
            elif kind == "tmpfs":
                size = spec.get("size") or spec.get("tmpfs-size")
                tmpfs[target] = f"size={size}" if size else ""
            elif kind == "bind":
                if "rw" not in spec and "readwrite" not in spec:
                    readonly = True
                mounts.append(self._bind_mount(spec, target, readonly, stack))
            elif kind in ("secret", "ssh"):
                raise BuildError(f"mount type {kind} is not supported by berthd's builder")
            else:
                raise BuildError(f"unsupported mount type \"{kind}\"")
        return mounts, tmpfs

    def _cache_mount(self, spec: dict[str, str], target: str, stack: contextlib.ExitStack) -> dict[str, Any]:
        if self.cache is None:
            raise BuildError("cache mounts need the build cache")
        mount_id = spec.get("id") or target
        sharing = spec.get("sharing", "shared")
        if sharing not in ("shared", "private", "locked"):
            raise BuildError(f"unsupported sharing value \"{sharing}\"")
        description = f"cached mount {target} with id \"{mount_id}\""
        path = self.cache.mount_dir(mount_id, description)
        hold = "mount:" + mount_id
        if sharing == "locked":
            lock = self.cache.mount_lock(mount_id)
            lock.acquire()
            stack.callback(lock.release)
        elif sharing == "private":
            lock = self.cache.mount_lock(mount_id)
            if lock.acquire(blocking=False):
                stack.callback(lock.release)
            else:
                path = self.cache.private_mount_dir(mount_id)
                stack.callback(shutil.rmtree, path, True)
        self.cache.hold(hold)
        stack.callback(self.cache.release, hold)
        uid, gid, mode = spec.get("uid"), spec.get("gid"), spec.get("mode")
        if uid or gid or mode:
            try:
                owner = (int(uid or 0), int(gid or 0))
                bits = int(mode, 8) if mode else None
            except ValueError:
                raise BuildError(f"invalid cache mount options: uid={uid} gid={gid} mode={mode}") from None
            if not os.listdir(path):  # a new cache directory takes them, as BuildKit's
                os.chown(path, *owner)
                if bits is not None:
                    os.chmod(path, bits)
        return {"Type": "bind", "Source": path, "Target": target,
                "ReadOnly": spec.get("ro", spec.get("readonly", "false")) in ("true", "1")}

    def _bind_mount(self, spec: dict[str, str], target: str, readonly: bool,
                    stack: contextlib.ExitStack) -> dict[str, Any]:
        source = spec.get("source") or spec.get("src") or "/"
        origin = spec.get("from")
        directory = stack.enter_context(tempfile.TemporaryDirectory(dir=self.workdir))
        copy_dir = os.path.join(directory, "mnt")
        if origin:
            image_id = self._from_source(origin)
            view = stack.enter_context(self._view(image_id))
            if view.root is None:
                raise BuildError(f"failed to mount {source} from {origin}: the stage is empty")
            resolved = view.resolve(source)
            if view.lstat(resolved) is None:
                raise BuildError(f"failed to compute cache key: \"{source}\" not found")
            if readonly:
                return {"Type": "bind", "Source": view.host(resolved), "Target": target, "ReadOnly": True}
            _copy_tree(view.host(resolved), copy_dir)
            return {"Type": "bind", "Source": copy_dir, "Target": target, "ReadOnly": False}
        entry = self.context.resolve(clean_name(source))
        if entry is None:
            raise BuildError(f"failed to compute cache key: \"{source}\" not found")
        if entry.type == DIR:
            os.makedirs(copy_dir)
            self.context.materialize(entry, copy_dir)
        else:
            self.context.materialize(entry, copy_dir)
        return {"Type": "bind", "Source": copy_dir, "Target": target, "ReadOnly": readonly}


def _chain(needed: list[int], deps: dict[int, set[int]]) -> bool:
    """Does each stage need only stages before it that are already built in order (no two
    stages could run at once)?"""
    for position, index in enumerate(needed):
        if position and not deps[index] & {needed[position - 1]}:
            return False
    return True


class _Either:
    """Set when either event is (the client went away, or another stage failed)."""

    def __init__(self, *events: threading.Event):
        self.events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)


class _OrderedOutput:
    """The messages of stages built at once, delivered in stage order: those of the first
    unfinished stage as they come, a later stage's when every stage before it is done."""

    def __init__(self, deliver: Callable[[dict], None], count: int):
        self.deliver = deliver
        self.held: list[list[dict]] = [[] for _ in range(count)]
        self.finished = [False] * count
        self.current = 0
        self.lock = threading.Lock()

    def write(self, position: int, message: dict) -> None:
        with self.lock:
            if position == self.current:
                self.deliver(message)
            else:
                self.held[position].append(message)

    def finish(self, position: int) -> None:
        with self.lock:
            self.finished[position] = True
            while self.current < len(self.finished) and self.finished[self.current]:
                self.current += 1
                if self.current < len(self.held):
                    for message in self.held[self.current]:
                        self.deliver(message)
                    self.held[self.current] = []


def _copy_tree(source: str, destination: str) -> None:
    if os.path.isdir(source):
        shutil.copytree(source, destination, symlinks=True)
    else:
        shutil.copy2(source, destination, follow_symlinks=False)


def _container_config(config: dict[str, Any], cmd: list[str], parent: str) -> dict[str, Any]:
    """The ``container_config`` of a step's image (``ContainerConfig`` in inspect)."""
    out = {"Hostname": "", "Domainname": "", "User": config.get("User") or "",
           "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
           "ExposedPorts": config.get("ExposedPorts"), "Tty": False, "OpenStdin": False,
           "StdinOnce": False, "Env": config.get("Env"), "Cmd": cmd,
           "Healthcheck": config.get("Healthcheck"), "Image": parent,
           "Volumes": config.get("Volumes"), "WorkingDir": config.get("WorkingDir") or "",
           "Entrypoint": config.get("Entrypoint"), "OnBuild": config.get("OnBuild"),
           "Labels": config.get("Labels"), "StopSignal": config.get("StopSignal"),
           "Shell": config.get("Shell")}
    return {k: v for k, v in out.items() if v is not None or k in ("Cmd", "Entrypoint", "OnBuild", "Labels")}


def _expand_ports(word: str) -> list[str]:
    port, _, proto = word.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise BuildError(f"Invalid proto: {proto}")
    if "-" in port:
        low, _, high = port.partition("-")
        if not (low.isdigit() and high.isdigit()) or int(low) > int(high):
            raise BuildError(f"Invalid containerPort: {port}")
        return [f"{p}/{proto}" for p in range(int(low), int(high) + 1)]
    if ":" in port:
        port = port.rsplit(":", 1)[1]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BuildError(f"Invalid containerPort: {port}")
    return [f"{int(port)}/{proto}"]


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _file_item(path: str, dest: str, mode: int, mtime: float) -> copier.Item:
    size = os.path.getsize(path)
    return copier.Item(dest, REG, mode, mtime, size, open=lambda: open(path, "rb"))


def _expand_heredoc(lexer: Lexer, content: str, env: dict[str, str]) -> str:
    """A heredoc's body with ``$VAR`` expanded (quotes kept: they are content)."""
    out = []
    for line in content.splitlines(keepends=True):
        out.append(re.sub(r"\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)",
                          lambda m: _expand_one(lexer, m.group(0), env), line))
    return "".join(out)


def _expand_one(lexer: Lexer, token: str, env: dict[str, str]) -> str:
    try:
        return lexer.process_word(token, env)
    except ShellError:
        return token


def _heredoc_script(text: str, heredocs: list[Any], lexer: Lexer, env: dict[str, str]) -> str:
    """A shell-form RUN with heredocs as one script for the shell. ``RUN <<EOF`` alone runs
    the body as the script; otherwise the shell reads the heredocs itself."""
    stripped = text.strip()
    if len(heredocs) == 1 and re.fullmatch(r"<<-?\s*['\"]?" + re.escape(heredocs[0].name) + r"['\"]?", stripped):
        return heredocs[0].content
    parts = [text]
    for doc in heredocs:
        parts.append(doc.content + doc.name)
    return "\n".join(parts) + "\n"


__all__ = ["Build", "BuildBackend", "BuildOptions", "BuildError", "Cancelled", "ImageInfo",
           "NewImage", "RunSpec", "RunResult", "DockerfileError"]
