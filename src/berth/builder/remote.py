"""Build contexts the daemon fetches itself (``POST /build?remote=<url>``): a git repository
(``https://host/repo.git#ref:subdir``, ``git://...``) cloned with the ``git`` binary, or an
http(s) URL whose body is a tar (plain or compressed) or a bare Dockerfile. Either way the
result is a ``BuildContext`` (the same streamed, indexed and confined form as an upload).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import urllib.request

from berth.builder.context import DEFAULT_LIMIT, BuildContext, ContextError

GIT_TIMEOUT = 300


def is_git_url(url: str) -> bool:
    base = url.split("#", 1)[0]
    return (url.startswith(("git://", "git@", "github.com/")) or base.endswith(".git"))


def fetch(url: str, directory: str, limit: int = DEFAULT_LIMIT) -> BuildContext:
    if is_git_url(url):
        return _from_git(url, directory, limit)
    if not url.startswith(("http://", "https://")):
        raise ContextError(f"unable to prepare context: unsupported remote context URL: {url}")
    try:
        response = urllib.request.urlopen(url, timeout=60)  # noqa: S310 - the client asked
    except OSError as exc:
        code = getattr(exc, "code", None)
        if code:
            raise ContextError(f"unable to prepare context: error downloading remote context "
                               f"{url}: {code} {getattr(exc, 'reason', '')}") from None
        raise ContextError(f"unable to prepare context: Get \"{url}\": "
                           f"{getattr(exc, 'reason', exc)}") from None
    with response:
        return BuildContext.receive(response, directory, limit)


def _from_git(url: str, directory: str, limit: int) -> BuildContext:
    repository, _, fragment = url.partition("#")
    ref, _, subdir = fragment.partition(":")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    checkout = tempfile.mkdtemp(prefix="git-", dir=directory)
    try:
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="/bin/true")
        command = ["git", "clone", "--quiet", "--recurse-submodules", repository, checkout]
        done = subprocess.run(command, capture_output=True, env=env, timeout=GIT_TIMEOUT)
        if done.returncode != 0:
            raise ContextError(f"unable to prepare context: unable to 'git clone' to temporary "
                               f"context directory: error fetching: {done.stderr.decode(errors='replace').strip()}"
                               f": exit status {done.returncode}")
        if ref:
            done = subprocess.run(["git", "-C", checkout, "checkout", "--quiet", ref],
                                  capture_output=True, env=env, timeout=GIT_TIMEOUT)
            if done.returncode != 0:
                raise ContextError(f"unable to prepare context: error checking out {ref}: "
                                   f"{done.stderr.decode(errors='replace').strip()}")
        root = os.path.realpath(os.path.join(checkout, subdir)) if subdir else checkout
        if not root.startswith(os.path.realpath(checkout)) or not os.path.isdir(root):
            raise ContextError(f"unable to prepare context: {subdir} is not a directory in the repository")
        return _receive_directory(root, os.path.join(directory, "context"), limit)
    finally:
        shutil.rmtree(checkout, ignore_errors=True)


def _receive_directory(root: str, directory: str, limit: int) -> BuildContext:
    """A directory as a context: tarred (``.git`` left out) through a pipe."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        with os.fdopen(write_fd, "wb") as out:
            try:
                with tarfile.open(fileobj=out, mode="w|") as tar:
                    for name in sorted(os.listdir(root)):
                        if name == ".git":
                            continue
                        tar.add(os.path.join(root, name), arcname=name, recursive=True,
                                filter=lambda info: None if "/.git/" in f"/{info.name}/" else info)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failure.append(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        with os.fdopen(read_fd, "rb") as reader:
            context = BuildContext.receive(reader, directory, limit)  # type: ignore[arg-type]
    finally:
        thread.join()
    if failure:
        context.close()
        raise ContextError(f"unable to prepare context: {failure[0]}")
    return context

