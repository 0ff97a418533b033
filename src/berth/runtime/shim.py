"""Daemon side of the per-container shim: launch it, find it again, talk to it.

The shim process itself is ``berth.runtime.shimd`` (kept apart so it imports nothing heavy);
``ShimSpawner`` keeps a ``berth.runtime.spawner`` process to fork shims from.

Files in a container's state directory ``<exec-root>/containers/<id>/`` (also the OCI bundle):
``config.json`` (spec, written by the engine), ``shim.json`` (these options), ``shim.pid``,
``init.pid``, ``shim.sock`` (bound by the daemon and handed to a spawned shim, see
``launch_shim``), ``shim.log`` (the shim's own diagnostics) and, once the container
is gone, ``exit.json`` (``{"exit_code", "finished_at", "finished_at_ns", "started_at",
"oom_killed", "pid", "id"}``, written atomically). The shim runs ``runc delete`` itself before
writing ``exit.json``; a daemon that was down reads the file when it comes back.

Socket protocol (``shim.sock``, unix stream, one request per connection):

- request: one JSON object and ``\\n``: ``{"op": "<op>", ...}``
- reply: one JSON line, ``{"ok": true, ...}`` or ``{"ok": false, "error": "<text>", "kind":
  "NotFound"|"Conflict"|"InvalidParameter"|"SystemError"|"StartError"}``
- ops: ``state`` (status, pid, paused...); ``pause``, ``resume``, ``update`` {resources} (the
  container's runtime calls: the daemon never runs them itself for a container that has a
  shim); ``start`` (asked while runc still creates the container: answered once it
  is created, or with the create's error); ``kill`` {signal, all, exec_id?}; ``wait`` {exec_id?, early?} (the
  reply comes when the process has exited: exit_code, finished_at...; for the container, once
  the shim is done. With ``early``, a first line ``{"ok": true, "early": true, ...}`` comes as
  soon as the exit record is known, before ``runc delete``); ``resize`` {height, width,
  exec_id?}; ``close_stdin`` {exec_id?}; ``attach`` {stdin, stdout, stderr, close_stdin};
  ``exec`` {exec_id, stdin, stdout, stderr, tty, detach} (the OCI process is read from
  ``exec-<exec_id>.json`` in the state directory, written by the client).
- ``attach`` and non-detached ``exec`` turn into a stream after the reply line. Shim to client:
  frames of an 8-byte header ``[stream, 0, 0, 0, uint32 big-endian length]`` and the payload,
  stream 1 = stdout (all output with a TTY), 2 = stderr, 4 = end, whose payload is
  ``{"exit_code": N}``; then the shim closes. Client to shim: raw stdin bytes; a half-close
  (shutdown SHUT_WR) is stdin EOF, which closes the process's stdin when ``close_stdin`` was
  asked (exec: always). A client that reads slowly makes the shim stop reading the process's
  output (as Docker's attach does), so nothing is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from berth.errors import (BerthError, Conflict, InvalidParameter, NotFound, SystemError_,
                          Unavailable)
from berth.runtime import oci

log = logging.getLogger("berth.shim")

STREAM_STDOUT, STREAM_STDERR, STREAM_EXIT = 1, 2, 4
SOCKET_NAME = "shim.sock"
EXIT_FILE = "exit.json"
_KINDS = {"NotFound": NotFound, "Conflict": Conflict, "InvalidParameter": InvalidParameter,
          "SystemError": SystemError_}


class ShimGone(Unavailable):
    """The shim is not running (it finished, or died)."""


class ShimTimeout(SystemError_, TimeoutError):
    """The shim did not answer in time (for ``wait``: the process is still running)."""


def states_root(exec_root: str) -> str:
    """Where the state directory of every container is."""
    return os.path.join(exec_root, "containers")


def state_dir(exec_root: str, container_id: str) -> str:
    return os.path.join(states_root(exec_root), container_id)


@dataclass
class ShimOptions:
    """What the shim needs besides config.json. ``oom`` is ``cgroups.oom_probe(...)``."""

    container_id: str
    runtime_root: str
    runtime: str = "runc"
    runtime_args: list[str] = field(default_factory=list)
    stdin: bool = False          # Config.OpenStdin: a stdin pipe (else /dev/null)
    tty: bool = False            # Config.Tty
    log_driver: str = "json-file"
    log_path: str | None = None
    log_opts: dict[str, str] = field(default_factory=dict)
    log_attrs: dict[str, str] | None = None
    oom: dict[str, str] | None = None
    python: str | None = None    # interpreter for the shim; default: BERTH_SHIM_PYTHON or ours
    # `runc run --detach` at once rather than `runc create` (saves a runc call on the way to a
    # running container); the init's output is held until `start`, so nothing is missed
    run: bool = False

    def to_json(self, bundle: str) -> dict[str, Any]:
        return {"id": self.container_id, "bundle": bundle, "runtime": runtime_path(self.runtime),
                "runtime_root": self.runtime_root, "runtime_args": list(self.runtime_args),
                "stdin": self.stdin, "tty": self.tty, "log_driver": self.log_driver,
                "log_path": self.log_path, "log_opts": dict(self.log_opts),
                "log_attrs": self.log_attrs, "oom": self.oom, "run": self.run}


def runtime_path(runtime: str) -> str:
    """The runtime binary as the shim runs it (and as the spawner's sealed copies are named)."""
    return shutil.which(runtime) or runtime


def _boot_code(module: str, function: str) -> str:
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return (f"import sys; sys.path.insert(0, {src!r}); "
            f"from berth.runtime.{module} import {function}; {function}(sys.argv[1:])")


def _python_command(module: str, function: str, python: str | None, *args: str) -> list[str]:
    """``-S -E -s``: no site-packages, no PYTHON* variables: a small, predictable shim."""
    python = python or os.environ.get("BERTH_SHIM_PYTHON") or sys.executable
    return [python, "-S", "-E", "-s", "-c", _boot_code(module, function), *args]


def shim_command(state: str, python: str | None = None) -> list[str]:
    return _python_command("shimd", "main", python, state)


class ShimSpawner:
    """The daemon's handle on ``berth.runtime.spawner``: shims forked from a process that has
    them imported already. Started lazily; a spawner that died is started again; one that
    cannot start at all is not tried again, and shims start the slow way (an interpreter each).
    ``runtime_paths`` gives, when the spawner starts, the runtime binaries it keeps a sealed
    copy of (``berth.runtime.sealedexe``)."""

    def __init__(self, exec_root: str, runtime_paths: Callable[[], list[str]] = list):
        self.socket_path = os.path.join(exec_root, "shim-spawner.sock")
        self.containers_dir = states_root(exec_root)
        self.runtime_paths = runtime_paths
        self._proc: subprocess.Popen | None = None
        self._broken = False
        self._lock = threading.Lock()

    def launch(self, state: str, timeout: float, listener: socket.socket,
               bundle_follows: bool = False) -> socket.socket | None:
        """Have a shim forked for ``state``, serving on ``listener`` (its bound ``shim.sock``);
        returns the connection its launch line comes on, or None if no spawner could be used.
        With ``bundle_follows`` the shim waits for ``go`` on that connection before runc."""
        request = {"state": state, "bundle_follows": bundle_follows}
        for _ in range(2):
            if not self._ensure_running():
                return None
            try:
                return self._request(request, timeout, listener)
            except (FileNotFoundError, ConnectionRefusedError):
                self._forget()  # it died: start a new one once
        return None

    def _request(self, request: dict[str, Any], timeout: float, listener: socket.socket) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(self.socket_path)
            socket.send_fds(sock, [json.dumps(request).encode() + b"\n"], [listener.fileno()])
        except BaseException:
            sock.close()
            raise
        return sock

    def _ensure_running(self) -> bool:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return True
            if self._broken:
                return False
            os.makedirs(self.containers_dir, mode=0o700, exist_ok=True)
            _fresh_bytecode()
            command = _python_command("spawner", "main", None, self.socket_path, self.containers_dir,
                                      *self.runtime_paths())
            try:
                proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        close_fds=True, start_new_session=True, cwd="/")
            except OSError as e:
                return self._give_up(str(e))
            if proc.stdout.readline() != b"ready\n":  # it failed before listening
                proc.wait()
                return self._give_up(f"exit status {proc.returncode}")
            proc.stdout.close()
            self._proc = proc
            return True

    def _give_up(self, why: str) -> bool:
        log.warning("shim spawner failed to start (%s): starting each shim on its own", why)
        self._broken = True
        return False

    def _forget(self) -> None:
        with self._lock:
            if self._proc is not None:
                self._proc.stdin.close()
                self._proc.wait()
                self._proc = None

    def close(self) -> None:
        """Stop the spawner (EOF on its stdin). Shims it started keep running."""
        self._forget()


def _fresh_bytecode() -> None:
    """Compile what the spawner imports, here: a spawner that compiles its modules itself
    keeps the compiler's garbage in its heap (~3.5 MB), and every shim forked from it too."""
    import compileall
    runtime = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(os.path.dirname(runtime), "__init__.py"),
                 *(os.path.join(runtime, name) for name in
                   ("__init__.py", "spawner.py", "shimd.py", "logs.py", "wirejson.py",
                    "sealedexe.py"))):
        compileall.compile_file(path, quiet=2)  # skips what is up to date; a read-only tree is fine


def start_shim(state: str, opts: ShimOptions, timeout: float = 60.0,
               spawner: ShimSpawner | None = None) -> "ShimClient":
    """Launch the shim for the bundle in ``state`` (config.json already written) and return
    once ``runc create`` (``runc run`` with ``opts.run``) is done; the container is then
    ``created`` and waits for ``start`` (with ``opts.run``: its output waits).
    With a ``spawner`` (and no ``opts.python`` of its own) the shim is forked from it.

    A failed create raises ``oci.StartError`` with Docker's text and exit code (127 for a
    missing command, 126 for a non-executable one).
    """
    launch = launch_shim(state, opts, timeout, spawner)
    launch.result()
    return launch.client


class Launch:
    """A shim on its way up (``launch_shim``). Its ``client`` takes requests at once: while
    runc still creates the container they wait in the socket's backlog, and the shim serves
    them as soon as runc runs (``start`` is answered once the container is created).
    ``result`` waits for the create and raises what ``start_shim`` raises."""

    def __init__(self, client: "ShimClient", timeout: float, conn: socket.socket | None = None,
                 output: bytes = b"", detail: bytes = b""):
        self.client, self._timeout, self._conn = client, timeout, conn
        self._output, self._detail = output, detail
        self._error: BaseException | None = None
        self._checked = False

    def result(self) -> None:
        """Wait for runc's create; raises its failure (again, when called again)."""
        if not self._checked:
            try:
                self._read_result()
            except BaseException as e:
                self._error = e
            self._checked = True
        if self._error is not None:
            raise self._error

    def created(self) -> bool:
        """Whether the container was created (waits for it, as ``result``)."""
        try:
            self.result()
        except BaseException:  # noqa: BLE001 - the answer is no
            return False
        return True

    def _read_result(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with conn:
                try:
                    got = _recv_line(conn)
                except socket.timeout as e:
                    raise SystemError_(f"shim for {os.path.basename(self.client.dir)} did not "
                                       f"start in {self._timeout}s") from e
            self._output = got[0] + b"\n" if got else b""
        _check_launch_output(self._output, self._detail)


def launch_shim(state: str, opts: ShimOptions, timeout: float = 60.0,
                spawner: ShimSpawner | None = None,
                write_bundle: Callable[[], None] | None = None) -> Launch:
    """Launch the shim for the bundle in ``state`` without waiting for runc (see ``Launch``).
    With a ``spawner``, the socket is bound here and handed to the shim, so requests can be
    sent before the shim runs; without one, the shim starts as its own interpreter and this
    returns once it is up.

    ``write_bundle``, if given, writes config.json (the engine mounts the rootfs for it): a
    spawned shim starts up meanwhile and runs runc once told the bundle is there (``go`` on
    the launch connection; closing it instead ends the shim)."""
    _prepare_state(state, opts)
    client = ShimClient(os.path.join(state, SOCKET_NAME))
    if spawner and not opts.python:
        listener = _bind_listener(client)
        try:
            conn = spawner.launch(state, timeout, listener, bundle_follows=write_bundle is not None)
        finally:
            listener.close()
        if conn is not None:
            if write_bundle is not None:
                try:
                    write_bundle()
                    conn.sendall(b"go\n")
                except BaseException:
                    conn.close()
                    raise
            return Launch(client, timeout, conn)
        _unlink_quietly(client.socket_path)  # no spawner: the shim binds its own
    if write_bundle is not None:
        write_bundle()
    try:
        proc = subprocess.run(shim_command(state, opts.python), capture_output=True,
                              timeout=timeout, close_fds=True, start_new_session=True)
    except subprocess.TimeoutExpired as e:
        raise SystemError_(f"shim for {opts.container_id} did not start in {timeout}s") from e
    return Launch(client, timeout, output=proc.stdout, detail=proc.stderr)


def _prepare_state(state: str, opts: ShimOptions) -> None:
    """Check the options, clear what a previous run left, write shim.json."""
    from berth.runtime.logs import validate_log_opts
    try:
        validate_log_opts(opts.log_driver, opts.log_opts)
    except ValueError as e:
        raise InvalidParameter(str(e)) from e
    if opts.log_driver == "json-file" and not opts.log_path:
        raise InvalidParameter("json-file log driver needs a log path")
    for name in (EXIT_FILE, SOCKET_NAME, "init.pid", "shim.pid"):
        _unlink_quietly(os.path.join(state, name))
    tmp = os.path.join(state, "shim.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(opts.to_json(state), f)
    os.replace(tmp, os.path.join(state, "shim.json"))


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _bind_listener(client: "ShimClient") -> socket.socket:
    """The shim's ``shim.sock``, bound (mode 0600: root's daemon only) and listening."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with client.socket_address() as address:
            old_umask = os.umask(0o177)
            try:
                listener.bind(address)
            finally:
                os.umask(old_umask)
        listener.listen(64)
    except BaseException:
        listener.close()
        raise
    return listener


def _check_launch_output(output: bytes, detail: bytes) -> None:
    """Raise what a failed launch line (or no line at all) means."""
    line = output.split(b"\n", 1)[0]
    try:
        result = json.loads(line)
    except ValueError:
        detail = (detail or output).decode("utf-8", "replace").strip()
        raise SystemError_(f"shim failed to start: {detail[-2000:]}") from None
    if not result.get("ok"):
        if result.get("stage") == "create":
            raise oci.make_start_error(result.get("error", ""), "create")
        raise SystemError_(result.get("error") or "shim failed to start")


def find_shims(exec_root: str) -> dict[str, "ShimClient"]:
    """Every container state directory under ``exec_root`` with a shim socket or an exit
    record, by container id: what a restarted daemon reattaches to (live-restore)."""
    found: dict[str, ShimClient] = {}
    base = states_root(exec_root)
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return found
    for name in names:
        d = os.path.join(base, name)
        if os.path.exists(os.path.join(d, SOCKET_NAME)) or os.path.exists(os.path.join(d, EXIT_FILE)):
            found[name] = ShimClient(os.path.join(d, SOCKET_NAME))
    return found


def _error_from_reply(reply: dict[str, Any]) -> BerthError:
    kind = reply.get("kind")
    message = reply.get("error") or "shim error"
    if kind == "StartError":
        return oci.make_start_error(message, "exec")
    return _KINDS.get(kind, SystemError_)(message)


class ShimStream:
    """An attach or exec stream: frames from the shim, raw stdin to it."""

    def __init__(self, sock: socket.socket, buffered: bytes, reply: dict[str, Any]):
        self.sock = sock
        self.buf = bytearray(buffered)
        self.reply = reply
        self.tty = bool(reply.get("tty"))
        self.exit_code: int | None = None
        self.ended = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def _fill(self, n: int) -> bool:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.buf += chunk
        return True

    def read_frame(self) -> tuple[int, bytes] | None:
        """The next (stream, data); None at the end (``exit_code`` is then set, or stays None
        if the shim went away without a proper end)."""
        if self.ended:
            return None
        if not self._fill(8):
            self.ended = True
            return None
        stream, size = self.buf[0], int.from_bytes(self.buf[4:8], "big")
        if not self._fill(8 + size):
            self.ended = True
            return None
        data = bytes(self.buf[8:8 + size])
        del self.buf[:8 + size]
        if stream == STREAM_EXIT:
            self.exit_code = json.loads(data).get("exit_code")
            self.ended = True
            return None
        return stream, data

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        while (frame := self.read_frame()) is not None:
            yield frame

    def read_all(self) -> tuple[bytes, bytes]:
        out, err = bytearray(), bytearray()
        for stream, data in self:
            (err if stream == STREAM_STDERR else out).extend(data)
        return bytes(out), bytes(err)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_stdin(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "ShimStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _recv_line(sock: socket.socket, buf: bytes = b"") -> tuple[bytes, bytes] | None:
    """One ``\\n``-ended line from ``sock`` (``buf``: what was read of it already) and what
    came after it; None if the peer closed first."""
    data = bytearray(buf)
    while b"\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    line, _, rest = bytes(data).partition(b"\n")
    return line, rest


class ExitNotice:
    """A container's exit, told before the shim's own clean-up (``ShimClient.wait_exited``)."""

    def __init__(self, client: "ShimClient", record: dict[str, Any],
                 sock: socket.socket | None, rest: bytes):
        self.client, self.record, self._sock, self._rest = client, record, sock, rest

    def wait_ended(self) -> dict[str, Any]:
        """Block until the shim has finished (``runc delete`` done, exit.json written); returns
        the final exit record."""
        taken = self.take_socket()
        if taken is None:
            return self.record
        sock, rest = taken
        try:
            sock.settimeout(None)
            got = _recv_line(sock, rest)
        except OSError:
            got = None
        finally:
            sock.close()
        return self.ended_from(got)

    def take_socket(self) -> tuple[socket.socket, bytes] | None:
        """The connection the final record comes on, and what was read of it; None if the
        record is final already. For a caller that reads it itself (the engine, async)."""
        if self._sock is None:
            return None
        sock, self._sock = self._sock, None
        return sock, self._rest

    def ended_from(self, got: tuple[bytes, bytes] | None) -> dict[str, Any]:
        """The final record from the line read (None: the connection ended first)."""
        if got is None:  # the shim died before its last word
            return self.client.read_exit() or self.record
        try:
            return json.loads(got[0])
        except ValueError:
            return self.record


class PendingReply:
    """A request sent to a shim, its reply line not read yet."""

    def __init__(self, client: "ShimClient", sock: socket.socket, request: dict[str, Any]):
        self._client, self.sock, self._request = client, sock, request

    def reply(self) -> tuple[dict[str, Any], socket.socket, bytes]:
        """(reply, socket, what followed the line); raises as ``ShimClient._call`` does."""
        return self._client._receive(self.sock, self._request)

    def reply_from(self, got: tuple[bytes, bytes] | None) -> tuple[dict[str, Any], socket.socket, bytes]:
        """``reply``, from the line the caller read itself (None: the connection ended)."""
        return self._client._reply_from(self.sock, got)

    def result(self) -> dict[str, Any]:
        reply, sock, _ = self.reply()
        sock.close()
        return reply

    def close(self) -> None:
        self.sock.close()


class PendingExit:
    """A container's exit, asked for (``ShimClient.request_wait_exited``)."""

    def __init__(self, client: "ShimClient", pending: PendingReply | None):
        self._client, self._pending = client, pending

    @property
    def socket(self) -> socket.socket | None:
        """Where the notice comes (None: the shim was gone already), for a caller that reads
        the line itself and hands it to ``notice_from``."""
        return self._pending.sock if self._pending is not None else None

    def notice(self) -> ExitNotice:
        """Block until the exit is known (from exit.json if the shim is gone already)."""
        return self._notice(lambda pending: pending.reply())

    def notice_from(self, got: tuple[bytes, bytes] | None) -> ExitNotice:
        """``notice``, from the line read on ``socket`` (None: the connection ended)."""
        return self._notice(lambda pending: pending.reply_from(got))

    def _notice(self, reply_of: Callable[[PendingReply], tuple[dict[str, Any], socket.socket, bytes]]
                ) -> ExitNotice:
        client = self._client
        try:
            if self._pending is None:
                raise ShimGone(f"shim of {os.path.basename(client.dir)} is not running")
            reply, sock, rest = reply_of(self._pending)
        except ShimGone:
            record = client.read_exit()
            if record is None:
                raise
            return ExitNotice(client, record, None, b"")
        if not reply.get("early"):
            sock.close()
            return ExitNotice(client, reply, None, b"")
        return ExitNotice(client, reply, sock, rest)

    def close(self) -> None:
        if self._pending is not None:
            self._pending.close()


class ShimClient:
    """Synchronous client of one shim; safe to use from several threads (one connection per
    call)."""

    def __init__(self, socket_path: str):
        self.socket_path = socket_path
        self.dir = os.path.dirname(socket_path)

    @contextlib.contextmanager
    def socket_address(self) -> Iterator[str]:
        """The socket's path as bind/connect take it: through the directory's fd when it is
        longer than sun_path's 108 bytes."""
        if len(self.socket_path.encode()) <= 107:
            yield self.socket_path
            return
        dir_fd = os.open(self.dir, os.O_PATH | os.O_CLOEXEC)
        try:
            yield f"/proc/self/fd/{dir_fd}/{SOCKET_NAME}"
        finally:
            os.close(dir_fd)

    def _connect(self, timeout: float | None) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            with self.socket_address() as address:
                sock.connect(address)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            sock.close()
            raise ShimGone(f"shim of {os.path.basename(self.dir)} is not running") from e
        return sock

    def _call(self, request: dict[str, Any], timeout: float | None = 30.0
              ) -> tuple[dict[str, Any], socket.socket, bytes]:
        return self._receive(self._send(request, timeout), request)

    def _closed(self) -> ShimGone:
        return ShimGone(f"shim of {os.path.basename(self.dir)} closed the connection")

    def _send(self, request: dict[str, Any], timeout: float | None) -> socket.socket:
        sock = self._connect(timeout)
        try:
            sock.sendall(json.dumps(request).encode() + b"\n")
        except BaseException as e:
            sock.close()
            if isinstance(e, (ConnectionResetError, BrokenPipeError)):
                raise self._closed() from e
            raise
        return sock

    def _receive(self, sock: socket.socket, request: dict[str, Any]
                 ) -> tuple[dict[str, Any], socket.socket, bytes]:
        """The reply line to ``request``, sent on ``sock``."""
        try:
            got = _recv_line(sock)
        except socket.timeout as e:
            sock.close()
            raise ShimTimeout(f"shim did not answer {request.get('op')!r} in time") from e
        except (ConnectionResetError, BrokenPipeError) as e:
            # The shim exited between accepting and answering: the same as not being there.
            sock.close()
            raise self._closed() from e
        except BaseException:
            sock.close()
            raise
        return self._reply_from(sock, got)

    def _reply_from(self, sock: socket.socket, got: tuple[bytes, bytes] | None
                    ) -> tuple[dict[str, Any], socket.socket, bytes]:
        if got is None:
            sock.close()
            raise self._closed()
        line, rest = got
        reply = json.loads(line)
        if not reply.get("ok"):
            sock.close()
            raise _error_from_reply(reply)
        return reply, sock, rest

    def _simple(self, request: dict[str, Any], timeout: float | None = 30.0) -> dict[str, Any]:
        reply, sock, _ = self._call(request, timeout)
        sock.close()
        return reply

    # queries and control
    def state(self) -> dict[str, Any]:
        """status (created|starting|running|stopped), paused, pid, shim_pid, tty, exit_code,
        started_at, finished_at, execs {id: {pid, running, exit_code}}."""
        return self._simple({"op": "state"})

    def start(self) -> dict[str, Any]:
        """``runc start`` (with ``ShimOptions.run``: release the held output); returns
        {pid, started_at}."""
        return self.request_start().result()

    def request_start(self) -> "PendingReply":
        """``start`` sent, its answer to come (a shim still creating the container answers
        once it has)."""
        request = {"op": "start"}
        return PendingReply(self, self._send(request, 60.0), request)

    def kill(self, signal: int = 15, all: bool = False, exec_id: str | None = None) -> None:
        self._simple({"op": "kill", "signal": int(signal), "all": all, "exec_id": exec_id})

    def pause(self) -> None:
        """Freeze the container (``runc pause``, run by the shim)."""
        self._simple({"op": "pause"}, timeout=60.0)

    def resume(self) -> None:
        """Thaw it (``runc resume``)."""
        self._simple({"op": "resume"}, timeout=60.0)

    def update(self, resources: dict[str, Any]) -> None:
        """Apply OCI ``linux.resources`` (memory, cpu, pids, blockIO) to the running
        container (``runc update``)."""
        self._simple({"op": "update", "resources": resources}, timeout=60.0)

    def resize(self, height: int, width: int, exec_id: str | None = None) -> None:
        self._simple({"op": "resize", "height": height, "width": width, "exec_id": exec_id})

    def close_stdin(self, exec_id: str | None = None) -> None:
        self._simple({"op": "close_stdin", "exec_id": exec_id})

    def wait(self, timeout: float | None = None, exec_id: str | None = None) -> dict[str, Any]:
        """Block until the container (or exec) has exited; {exit_code, finished_at, ...}.
        Falls back to exit.json when the shim is already gone."""
        try:
            return self._simple({"op": "wait", "exec_id": exec_id}, timeout=timeout)
        except ShimGone:
            if exec_id is None:
                # a shim going away closes its connections just before it writes exit.json
                record = self.read_exit_when_gone()
                if record is not None:
                    return record
            raise

    def wait_exited(self) -> ExitNotice:
        """Block until the container has exited and its exit record is known, which the shim
        tells before ``runc delete``: the notice's ``wait_ended`` waits for the rest. (An older
        shim answers only once done; its notice is then complete.)"""
        return self.request_wait_exited().notice()

    def request_wait_exited(self) -> "PendingExit":
        """``wait_exited`` in two steps: the request is sent now (the shim tells of the exit
        as soon as it knows), ``PendingExit.notice`` blocks for it."""
        request = {"op": "wait", "early": True}
        try:
            return PendingExit(self, PendingReply(self, self._send(request, None), request))
        except ShimGone:
            return PendingExit(self, None)

    def read_exit(self) -> dict[str, Any] | None:
        """The exit record the shim left, if the container is gone."""
        try:
            with open(os.path.join(self.dir, EXIT_FILE), encoding="utf-8") as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def read_exit_when_gone(self, wait: float = 5.0) -> dict[str, Any] | None:
        """The exit record of a shim that is going away: it stops answering just before it
        writes exit.json, so poll for the file while the shim still lives (up to ``wait``)."""
        deadline = time.monotonic() + wait
        while True:
            record = self.read_exit()
            if record is not None or not self.is_alive() or time.monotonic() > deadline:
                return record if record is not None else self.read_exit()
            time.sleep(0.02)

    def shim_pid(self) -> int | None:
        try:
            with open(os.path.join(self.dir, "shim.pid"), encoding="ascii") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def is_alive(self) -> bool:
        """The shim process still runs: its pid, working in our state directory (shims
        forked by the spawner carry the spawner's command line, so that cannot tell)."""
        pid = self.shim_pid()
        if not pid:
            return False
        try:
            return os.readlink(f"/proc/{pid}/cwd") == os.path.realpath(self.dir)
        except OSError:
            return False

    # streams
    def attach(self, stdin: bool = False, stdout: bool = True, stderr: bool = True,
               close_stdin: bool = False) -> ShimStream:
        """Live output from now on (no replay: the engine reads the log for that)."""
        reply, sock, rest = self._call({"op": "attach", "stdin": stdin, "stdout": stdout,
                                        "stderr": stderr, "close_stdin": close_stdin}, None)
        sock.settimeout(None)
        return ShimStream(sock, rest, reply)

    def exec(self, exec_id: str, process: dict[str, Any], stdin: bool = False,
             stdout: bool = True, stderr: bool = True, tty: bool = False,
             detach: bool = False) -> tuple[int, ShimStream | None]:
        """Start an exec process (OCI process dict, see ``spec.build_exec_process``).
        Returns its pid and, unless ``detach``, its stream (ends with its exit code).
        A command that cannot start raises ``oci.StartError`` (exit code 126/127)."""
        path = os.path.join(self.dir, f"exec-{exec_id}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(process, f)
        try:
            reply, sock, rest = self._call({"op": "exec", "exec_id": exec_id, "stdin": stdin,
                                            "stdout": stdout, "stderr": stderr, "tty": tty,
                                            "detach": detach}, timeout=60.0)
        except BaseException:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            raise
        if detach:
            sock.close()
            return reply["pid"], None
        sock.settimeout(None)
        return reply["pid"], ShimStream(sock, rest, reply)
