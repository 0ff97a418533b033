"""Thin driver of an OCI runtime binary (runc by default) for the daemon side.

Every call is one ``runc --root <root> --log-format json <command>`` subprocess; a failure
raises :class:`OCIRuntimeError` carrying runc's own error message (the last ``error`` entry of
its JSON log on stderr). Blocking: the engine calls these from worker threads.

The shim (``berth.runtime.shimd``) owns every runtime call on a container it runs (create,
start, exec, kill, pause, resume, update); the engine uses this class only where no shim
speaks for the container: to read its state or processes (``ps``) and to clean up containers
whose shim is gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Any, Iterable

from berth.errors import BerthError, Conflict, InvalidParameter, NotFound, SystemError_
from berth.runtime.errorkind import error_kind

DEFAULT_BINARY = "runc"


class OCIRuntimeError(SystemError_):
    """runc failed; ``message`` is runc's error text."""


def runc_error_message(output: str | bytes) -> str:
    """The last error message in runc's output (JSON log lines, or plain text)."""
    if isinstance(output, bytes):
        output = output.decode("utf-8", "replace")
    message = ""
    plain = []
    for line in output.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                plain.append(line)
                continue
            if entry.get("level") in ("error", "fatal") and entry.get("msg"):
                message = entry["msg"]
        else:
            plain.append(line)
    return message or (plain[-1] if plain else "")


def start_error(message: str, op: str = "create") -> tuple[str, int, type]:
    """Docker's text, exit code and error kind for a failed ``runc create``/``runc exec``.

    moby (daemon/errors.go setExitCodeFromError): permission denied -> 126, is a directory
    -> 126 (with ": permission denied" added, which the docker CLI looks for), not a
    directory -> 127 with a hint, command not found / no such file -> 127; those are
    InvalidParameter (400). Anything else -> 128 and a 500.
    """
    if op == "exec":
        full = f"OCI runtime exec failed: {message}: unknown"
    else:
        full = ("failed to create task for container: failed to create shim task: "
                f"OCI runtime create failed: {message}: unknown")
    low = full.lower()
    if "permission denied" in low:
        return full, 126, InvalidParameter
    if "is a directory" in low:
        return full + ": permission denied", 126, InvalidParameter
    if "not a directory" in low:
        return (full + ": Are you trying to mount a directory onto a file (or vice-versa)? "
                "Check if the specified host path exists and is the expected type"), 127, InvalidParameter
    if any(s in low for s in ("executable file not found", "no such file or directory",
                              "system cannot find the file specified",
                              "failed to run runc create/exec call")):
        return full, 127, InvalidParameter
    return full, 128, SystemError_


class StartError(InvalidParameter):
    """A container or exec process could not be started; ``exit_code`` is what Docker records
    (126/127/128). ``status`` follows Docker: 400 for 126/127, 500 otherwise."""

    def __init__(self, message: str, exit_code: int, status: int = 400):
        super().__init__(message)
        self.exit_code = exit_code
        self.status = status


def make_start_error(runc_message: str, op: str = "create") -> StartError:
    text, code, kind = start_error(runc_message, op)
    return StartError(text, code, kind.status)


def write_bundle(bundle_dir: str, spec: dict[str, Any]) -> str:
    """Write ``config.json`` atomically into ``bundle_dir`` (created 0711); returns its path.
    Not fsynced: a bundle lives in exec-root, whose state a reboot voids."""
    os.makedirs(bundle_dir, mode=0o711, exist_ok=True)
    path = os.path.join(bundle_dir, "config.json")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(spec))  # one write: json.dump writes piece by piece (~4x slower)
    os.replace(tmp, path)
    return path


def _as_start_error(err: BerthError, op: str) -> BerthError:
    """The process could not be started (vs. e.g. no such container): Docker's start error."""
    if "unable to start container process" in err.message:
        return make_start_error(err.message, op)
    return err


def _devnull_stdio() -> tuple[int, int, int]:
    return (subprocess.DEVNULL,) * 3


class Runtime:
    """One OCI runtime: its binary and its state directory (``--root``, under exec-root)."""

    def __init__(self, binary: str = DEFAULT_BINARY, root: str = "/run/berth/runc",
                 extra_args: Iterable[str] = (), timeout: float = 60.0):
        self.binary = binary
        self.root = root
        self.extra_args = list(extra_args)
        self.timeout = timeout

    def global_args(self) -> list[str]:
        return [self.binary, "--root", self.root, "--log-format", "json", *self.extra_args]

    def _run(self, args: list[str], input: bytes | None = None, timeout: float | None = None,
             stdio: tuple[int, int, int] | None = None) -> subprocess.CompletedProcess:
        """Run one runc command. With ``stdio`` (create/exec: runc hands its stdio to the
        container) output is not captured and runc's errors are read from a ``--log`` file,
        since the container may hold those fds open long after runc has exited."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        argv = self.global_args()
        log_path = None
        if stdio is not None:
            fd, log_path = tempfile.mkstemp(prefix=".runc-", suffix=".log", dir=self.root)
            os.close(fd)
            argv += ["--log", log_path]
        try:
            if stdio is None:
                proc = subprocess.run(argv + args, input=input, capture_output=True,
                                      timeout=timeout or self.timeout)
                errors = proc.stderr
            else:
                proc = subprocess.run(argv + args, stdin=stdio[0], stdout=stdio[1],
                                      stderr=stdio[2], timeout=timeout or self.timeout)
                with open(log_path, "rb") as f:
                    errors = f.read()
        except FileNotFoundError as e:
            raise OCIRuntimeError(f"OCI runtime binary not found: {self.binary}") from e
        except subprocess.TimeoutExpired as e:
            raise OCIRuntimeError(f"{self.binary} {args[0]} timed out") from e
        finally:
            if log_path:
                os.unlink(log_path)
        if proc.returncode != 0:
            message = runc_error_message(errors) or f"{self.binary} {args[0]} failed"
            kind = error_kind(message)
            if kind == "NotFound":
                raise NotFound(message)
            if kind == "Conflict":
                raise Conflict(message)
            raise OCIRuntimeError(message)
        return proc

    # Lifecycle (the shim does create/start/exec for real containers).
    def create(self, container_id: str, bundle: str, pid_file: str,
               console_socket: str | None = None,
               stdio: tuple[int, int, int] | None = None) -> None:
        """``runc create``; the container's stdio are ``stdio`` (default /dev/null)."""
        args = ["create", "--bundle", bundle, "--pid-file", pid_file]
        if console_socket:
            args += ["--console-socket", console_socket]
        try:
            self._run(args + [container_id], stdio=stdio or _devnull_stdio())
        except (OCIRuntimeError, NotFound) as e:
            raise _as_start_error(e, "create") from e

    def start(self, container_id: str) -> None:
        self._run(["start", container_id])

    def state(self, container_id: str) -> dict[str, Any]:
        return json.loads(self._run(["state", container_id]).stdout)

    def list(self) -> list[dict[str, Any]]:
        out = self._run(["list", "--format", "json"]).stdout.strip()
        return (json.loads(out) or []) if out else []

    def kill(self, container_id: str, sig: int | str = 15, all: bool = False) -> None:
        self._run(["kill"] + (["--all"] if all else []) + [container_id, str(sig)])

    def delete(self, container_id: str, force: bool = False) -> None:
        self._run(["delete"] + (["--force"] if force else []) + [container_id])

    def pause(self, container_id: str) -> None:
        self._run(["pause", container_id])

    def resume(self, container_id: str) -> None:
        self._run(["resume", container_id])

    def exec(self, container_id: str, process_file: str, pid_file: str, detach: bool = True,
             console_socket: str | None = None,
             stdio: tuple[int, int, int] | None = None) -> None:
        """``runc exec --process``; the process's stdio are ``stdio`` (default /dev/null)."""
        args = ["exec", "--process", process_file, "--pid-file", pid_file]
        if detach:
            args.append("--detach")
        if console_socket:
            args += ["--console-socket", console_socket]
        try:
            self._run(args + [container_id], stdio=stdio or _devnull_stdio())
        except (OCIRuntimeError, NotFound) as e:
            raise _as_start_error(e, "exec") from e

    def update(self, container_id: str, resources: dict[str, Any]) -> None:
        """Apply OCI ``linux.resources`` (memory, cpu, pids, blockIO) to a running container."""
        self._run(["update", "--resources", "-", container_id],
                  input=json.dumps(resources).encode())

    def ps(self, container_id: str) -> list[int]:
        out = self._run(["ps", "--format", "json", container_id]).stdout.strip()
        return (json.loads(out) or []) if out else []

    def stats(self, container_id: str) -> dict[str, Any]:
        """One ``runc events --stats`` sample: ``{"type": "stats", "id": .., "data": {...}}``."""
        return json.loads(self._run(["events", "--stats", container_id]).stdout)
