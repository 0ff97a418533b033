"""``berth build``: the docker CLI's classic build (``POST /build``).

The context is what docker sends: a directory tarred with ``.dockerignore`` applied
(``berth.patternmatcher``, the rules dockerd's builder uses too), owners set to 0, the
Dockerfile and ``.dockerignore`` always included (the daemon leaves them out of COPY when
excluded); ``-`` reads a tar (or a bare Dockerfile) from stdin; ``-f -`` reads the
Dockerfile from stdin; a Dockerfile outside the context is added under a random name. A
URL (git or tarball) is sent as ``remote=`` for the daemon to fetch. The output is the
daemon's JSON-lines stream rendered as docker's jsonmessage; ``-q`` prints the image ID
only (and the held-back output on failure); ``--iidfile`` gets the ID from the ``aux``
message.
"""

from __future__ import annotations

import io
import os
import posixpath
import secrets
import stat
import tarfile
import threading
from typing import Any, BinaryIO, Iterator

from berth.cli.command import StatusError

SEND = "Sending build context to Docker daemon"


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _is_git(text: str) -> bool:
    base = text.split("#", 1)[0]
    return text.startswith(("git://", "git@", "github.com/")) or (_is_url(text) and base.endswith(".git"))


def read_dockerignore(context_dir: str) -> list[str]:
    from berth.patternmatcher import read_patterns

    try:
        with open(os.path.join(context_dir, ".dockerignore"), "rb") as handle:
            return read_patterns(handle.read())
    except FileNotFoundError:
        return []


def trim_build_files(excludes: list[str], dockerfile: str, from_stdin: bool) -> list[str]:
    """docker's TrimBuildFilesFromExcludes: the Dockerfile and .dockerignore are sent even
    when excluded (the daemon needs them; it leaves them out of COPY itself)."""
    from berth.patternmatcher import PatternMatcher

    matcher = PatternMatcher(excludes)
    out = list(excludes)
    if matcher.matches(".dockerignore"):
        out.append("!.dockerignore")
    if not from_stdin and dockerfile and matcher.matches(dockerfile):
        out.append("!" + dockerfile)
    return out


def walk_context(root: str, excludes: list[str]) -> Iterator[tuple[str, str]]:
    """(host path, name in the tar) of what a directory context sends, in Go's lexical
    walk order; excluded directories are skipped unless an exception may bring back
    something under them."""
    from berth.patternmatcher import PatternMatcher

    matcher = PatternMatcher(excludes)

    def walk(directory: str, prefix: str) -> Iterator[tuple[str, str]]:
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            raise StatusError(f"error checking context: 'can't stat '{directory}''.: {exc}", 1) from None
        for name in names:
            path = os.path.join(directory, name)
            rel = posixpath.join(prefix, name) if prefix else name
            excluded = matcher.matches(rel)
            try:
                info = os.lstat(path)
            except OSError:
                raise StatusError(f"error checking context: 'can't stat '{path}''.", 1) from None
            if stat.S_ISDIR(info.st_mode):
                if excluded and not matcher.may_include_below(rel):
                    continue
                if not excluded:
                    yield path, rel
                yield from walk(path, rel)
            elif not excluded:
                if stat.S_ISREG(info.st_mode) and not os.access(path, os.R_OK):
                    raise StatusError(f"error checking context: 'no permission to read from '{path}''.", 1)
                yield path, rel
    yield from walk(root, "")


def _tar_stream(produce: Any) -> Iterator[bytes]:
    """Run ``produce(out)`` (writes a tar) in a thread; yield what it writes."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def run() -> None:
        with os.fdopen(write_fd, "wb") as out:
            try:
                produce(out)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the reader
                failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    with os.fdopen(read_fd, "rb") as reader:
        while True:
            chunk = reader.read(1 << 16)
            if not chunk:
                break
            yield chunk
    thread.join()
    if failure:
        exc = failure[0]
        if isinstance(exc, StatusError):
            raise exc
        raise StatusError(f"error checking context: {exc}", 1) from None


def directory_tar(root: str, excludes: list[str], extra: dict[str, bytes] | None = None,
                  compress: bool = False) -> Iterator[bytes]:
    """The context as docker's TarWithOptions makes it (owners 0), plus ``extra`` files."""
    entries = list(walk_context(root, excludes))

    def produce(out: BinaryIO) -> None:
        mode = "w|gz" if compress else "w|"
        with tarfile.open(fileobj=out, mode=mode, format=tarfile.PAX_FORMAT) as tar:
            for path, name in entries:
                if extra and name in extra:
                    continue
                info = tar.gettarinfo(path, arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = int(info.mtime)  # whole seconds: no PAX record for it
                if info.isreg():
                    with open(path, "rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
            for name, data in (extra or {}).items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o600
                tar.addfile(info, io.BytesIO(data))
    return _tar_stream(produce)


def _counting(chunks: Iterator[bytes], total: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        total[0] += len(chunk)
        yield chunk


def _context_from_stdin(data: BinaryIO, dockerfile: str) -> tuple[Iterator[bytes], str]:
    """``-``: a tar (maybe compressed) is the context; anything else is a Dockerfile."""
    head = data.read(512)
    magic = head[:6]
    is_archive = magic.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")) or \
        (len(head) >= 262 and head[257:262] == b"ustar")
    if is_archive:
        def chunks() -> Iterator[bytes]:
            yield head
            while True:
                chunk = data.read(1 << 16)
                if not chunk:
                    return
                yield chunk
        return chunks(), dockerfile or "Dockerfile"
    text = head + data.read()
    name = "Dockerfile"

    def produce(out: BinaryIO) -> None:
        with tarfile.open(fileobj=out, mode="w|") as tar:
            info = tarfile.TarInfo(name)
            info.size = len(text)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(text))
    return _tar_stream(produce), name


def run_build(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.jsonmessage import JSONMessageError

    specified = args[0]
    dockerfile = opts.file
    stdin_dockerfile = dockerfile == "-"
    if stdin_dockerfile and specified == "-":
        raise StatusError("invalid argument: can't use stdin for both build context and dockerfile", 1)
    if opts.squash:
        raise StatusError('"--squash" is only supported on a Docker daemon with experimental features enabled', 1)
    if opts.iidfile:  # as docker: an old ID never survives a failed build
        try:
            os.remove(opts.iidfile)
        except FileNotFoundError:
            pass
    client = cli.client()
    stdin = getattr(cli.inp, "buffer", cli.inp)
    remote = ""
    body: Iterator[bytes] | None = None
    rel_dockerfile = ""
    if specified == "-":
        body, rel_dockerfile = _context_from_stdin(stdin, dockerfile)
        if dockerfile:
            rel_dockerfile = dockerfile
    elif _is_git(specified) or _is_url(specified):
        remote = specified
        rel_dockerfile = dockerfile
    elif os.path.isdir(specified):
        context_dir = os.path.abspath(specified)
        extra: dict[str, bytes] = {}
        excludes = read_dockerignore(context_dir)
        if stdin_dockerfile:
            data = stdin.read()
            rel_dockerfile = ".dockerfile." + secrets.token_hex(10)
            extra[rel_dockerfile] = data
        else:
            path = dockerfile or os.path.join(context_dir, "Dockerfile")
            if dockerfile and not os.path.isabs(dockerfile):
                path = os.path.abspath(dockerfile)
            if not os.path.lexists(path) and not dockerfile:
                lower = os.path.join(context_dir, "dockerfile")
                if os.path.lexists(lower):
                    path = lower
            if not os.path.lexists(path):
                raise StatusError("unable to prepare context: unable to evaluate symlinks in "
                                  f"Dockerfile path: lstat {path}: no such file or directory", 1)
            real = os.path.realpath(path)
            relative = os.path.relpath(real, os.path.realpath(context_dir))
            if relative.startswith(".."):
                with open(real, "rb") as handle:
                    extra_name = ".dockerfile." + secrets.token_hex(10)
                    extra[extra_name] = handle.read()
                rel_dockerfile = extra_name
            else:
                rel_dockerfile = relative.replace(os.sep, "/")
        if extra:
            ignore = b""
            try:
                with open(os.path.join(context_dir, ".dockerignore"), "rb") as handle:
                    ignore = handle.read()
            except FileNotFoundError:
                pass
            if ignore and not ignore.endswith(b"\n"):
                ignore += b"\n"
            extra[".dockerignore"] = ignore + "".join(f"{n}\n" for n in extra).encode() + b".dockerignore\n"
        excludes = trim_build_files(excludes, rel_dockerfile, stdin_dockerfile)
        body = directory_tar(context_dir, excludes, extra, compress=opts.compress)
    else:
        raise StatusError(f'unable to prepare context: path "{specified}" not found', 1)

    params = build_params(opts, rel_dockerfile, remote)
    sent = [0]
    out = cli.out
    quiet = opts.quiet
    held = io.StringIO()
    progress = held if quiet else out
    data = _counting(body, sent) if body is not None else None
    from berth.cli.registryauth import build_config
    response = client.build_stream(data, params, registry_config=build_config(cli.config_file().data))
    if data is not None:
        from berth.units import human_size
        progress.write(f"{SEND}  {human_size(sent[0])}\r\r\n")
        progress.flush()
    image_id: list[str] = []

    def aux(message: Any) -> None:
        if isinstance(message, dict) and message.get("ID"):
            image_id.append(message["ID"])

    from berth.cli.jsonmessage import display_stream
    from berth.cli.terminal import is_terminal
    sink = held if quiet else out
    try:
        display_stream(response.iter_json(raise_on_error=False), sink,
                       terminal=not quiet and is_terminal(out), aux=aux)
    except JSONMessageError as exc:
        if quiet:
            cli.err.write(held.getvalue())
            cli.err.flush()
        raise StatusError(exc.message, exc.code or 1) from None
    finally:
        response.close()
    written = image_id[-1] if image_id else ""
    if quiet:
        # docker prints (and writes to --iidfile) the daemon's last line as it came
        text = held.getvalue()
        last = [line for line in text.splitlines(keepends=True) if line.startswith("sha256:")]
        written = last[-1] if last else written + "\n"
        out.write(written)
        out.flush()
    if opts.iidfile:
        if not written:
            raise StatusError(f"Server did not provide an image ID. Cannot write {opts.iidfile}", 1)
        with open(opts.iidfile, "w", encoding="utf-8") as handle:
            handle.write(written)
    return 0


def build_params(opts: Any, dockerfile: str, remote: str) -> dict[str, Any]:
    import json

    from berth.cli.opts.ulimit import ulimit_list

    build_args: dict[str, str | None] = {}
    for item in opts.build_arg:
        key, eq, value = item.partition("=")
        if eq:
            build_args[key] = value
        else:
            build_args[key] = os.environ.get(key)  # docker: the environment's value, or null
    labels = {}
    for item in opts.label:
        key, _, value = item.partition("=")
        labels[key] = value
    params: dict[str, Any] = {
        "t": list(opts.tag) or None,
        "remote": remote or None,
        "dockerfile": dockerfile or None,
        "q": "1" if opts.quiet else None,
        "nocache": "1" if opts.no_cache else None,
        "rm": "1" if opts.rm else "0",
        "forcerm": "1" if opts.force_rm else None,
        "pull": "1" if opts.pull else None,
        "target": opts.target or None,
        "networkmode": opts.network or None,
        "extrahosts": list(opts.add_host) or None,
        "platform": opts.platform or None,
        "isolation": opts.isolation or None,
        "cgroupparent": opts.cgroup_parent or None,
        "cpusetcpus": opts.cpuset_cpus or None,
        "cpusetmems": opts.cpuset_mems or None,
        "cpushares": str(opts.cpu_shares) if opts.cpu_shares else None,
        "cpuquota": str(opts.cpu_quota) if opts.cpu_quota else None,
        "cpuperiod": str(opts.cpu_period) if opts.cpu_period else None,
        "memory": str(opts.memory) if opts.memory else None,
        "memswap": str(opts.memory_swap) if opts.memory_swap else None,
        "shmsize": str(opts.shm_size) if opts.shm_size else None,
        "buildargs": json.dumps(build_args) if build_args else None,
        "labels": json.dumps(labels) if labels else None,
        "cachefrom": json.dumps(list(opts.cache_from)) if opts.cache_from else None,
        "ulimits": json.dumps(ulimit_list(opts.ulimit)) if opts.ulimit else None,
        "version": "1",
    }
    return {k: v for k, v in params.items() if v is not None}
