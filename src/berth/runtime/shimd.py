"""The per-container shim process (the daemon side is ``berth.runtime.shim``).

One shim per container, like containerd-shim. Started with the container's state directory
(``<exec-root>/containers/<id>``, which is also the OCI bundle: config.json and shim.json are
there), either as its own interpreter or forked from the daemon's spawner
(``berth.runtime.spawner``), ``main`` forks once and the child, in its own session and as
child subreaper:

- runs ``runc create`` (or, with ``run`` in shim.json, ``runc run --detach``, holding the
  init's output until ``start``) with the container's stdio (pipes, or a pty received on
  ``--console-socket``) and reports ``{"ok":..}`` on the launch pipe, then the parent exits;
- serves ``shim.sock`` (protocol in ``berth.runtime.shim``): start, attach, resize, exec,
  kill, wait, close_stdin, state. Forked from the spawner, it gets the socket bound already
  from the daemon and serves it while runc runs: a ``start`` asked before the container is
  created is answered once it is;
- writes the log driver output itself (``berth.runtime.logs``);
- reaps every child (runc, the container's init, exec processes, orphans);
- when init has exited and its output is drained: reads the OOM counter, tells the waiters
  that asked early (``wait`` with ``early``) that it has exited, runs ``runc delete --force``
  (the shim owns deletion, so a restarted container id is free once the shim is gone),
  unlinks its socket, writes ``exit.json`` atomically, answers all waiters and exits.

The daemon may die at any time; nothing here depends on it. Memory matters (one per
container), so only C-level stdlib modules are imported: no socket/selectors/signal/json/
subprocess wrappers, an epoll loop, and posix_spawn (fork and exec where runc starts a
container process) for runc.
"""

from __future__ import annotations

import os
import select
import sys
import time

import _signal
import _socket
import fcntl
import termios

from berth.runtime import logs, sealedexe, wirejson
from berth.runtime.errorkind import error_kind

STREAM_STDOUT, STREAM_STDERR, STREAM_EXIT = 1, 2, 4
HIGH_WATER = 1 << 20      # pause a source while a consumer has this much unsent
STDIN_HIGH_WATER = 1 << 18
DRAIN_TIMEOUT = 2.0       # after a process exits, wait this long for its output to end
PTY_SETTLE = 0.03         # after a TTY process exits, keep its pty open this long (see Proc)
TIOCGPTPEER = 0x5441
MAX_REQUEST = 1 << 20
MAX_EXEC_RESULTS = 256
EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP = select.EPOLLIN, select.EPOLLOUT, select.EPOLLERR, select.EPOLLHUP
SIGCHLD = _signal.SIGCHLD
# Every signal starts at its default in runc and what it starts, as under dockerd: ignored
# signals survive exec, and not only those the shim ignores (INT, TERM, HUP) or Python does
# (PIPE, XFSZ): glibc's posix_spawn gives a child SIG_IGN for its internal signals (32, 33)
# when the parent blocks them, and runc's Go runtime leaves those alone, so the container's
# processes would start with them ignored.
RESET_IN_CHILDREN = tuple(sig for sig in range(1, _signal.NSIG)
                          if sig not in (_signal.SIGKILL, _signal.SIGSTOP))


def _now_ns() -> int:
    return time.time_ns()


_LIBC_FUNCTIONS: dict = {}


def _libc_call(name: str, *args: int) -> int:
    """Call an int-returning libc function through _ctypes (the ctypes package costs memory).
    Functions are made once per process (that takes a millisecond or two): the spawner makes
    the shim's in advance (``prepare``)."""
    key = (name, len(args))
    func = _LIBC_FUNCTIONS.get(key)
    if func is None:
        func = _LIBC_FUNCTIONS[key] = _libc_function(name, len(args))
    return func(*args)


def _libc_function(name: str, nargs: int):
    import _ctypes

    class CInt(_ctypes._SimpleCData):
        _type_ = "i"

    class CULong(_ctypes._SimpleCData):
        _type_ = "L"

    class Lib:
        _handle = _ctypes.dlopen(None, os.RTLD_NOW)

    class Func(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = CInt

    func = Func((name, Lib))
    func.argtypes = (CInt,) + (CULong,) * (nargs - 1)
    return func


def prepare() -> None:
    """Make, in a process that forks shims, what each shim would otherwise make itself."""
    _LIBC_FUNCTIONS[("prctl", 5)] = _libc_function("prctl", 5)
    _LIBC_FUNCTIONS[("malloc_trim", 1)] = _libc_function("malloc_trim", 1)


PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36


def prctl(option: int, value: int) -> None:
    """prctl(2) with one argument; raises OSError on failure."""
    if _libc_call("prctl", option, value, 0, 0, 0) != 0:
        raise OSError(f"prctl({option}, {value}) failed")


def _set_subreaper() -> None:
    """Orphaned container processes (the init once ``runc create`` exits, exec processes)
    are re-parented to us, so we can wait() for them."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def trim_heap() -> None:
    """Give memory freed during start-up back to the system (glibc malloc_trim)."""
    try:
        _libc_call("malloc_trim", 0)
    except (OSError, AttributeError):
        pass


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def received_fds(ancillary: list) -> list[int]:
    """The fds a ``recvmsg`` got as SCM_RIGHTS ancillary data."""
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(data[i:i + 4], sys.byteorder)
                    for i in range(0, len(data) - len(data) % 4, 4)]
    return fds


def reaped_children():
    """(pid, status) of each child that has exited, without blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def _write_atomic(path: str, data: str) -> None:
    """Readers see the whole file or none. Not fsynced: exec-root state means nothing after
    a reboot (it is a tmpfs on most hosts), and a daemon that dies reads it from the page
    cache; each fsync cost ~1 ms on a container's start or exit here."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _set_nonblock(fd: int) -> None:
    os.set_blocking(fd, False)


def _frame(stream: int, data: bytes) -> bytes:
    return bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big") + data


class Source:
    """One output fd (a pipe or a pty master) of the container or of an exec process."""

    def __init__(self, shim: "Shim", fd: int, stream: int, owner: "Proc"):
        self.shim, self.fd, self.stream, self.owner = shim, fd, stream, owner
        self.paused = owner.hold  # exec output waits until its client has the reply line
        self.splitter = logs.LineSplitter()
        _set_nonblock(fd)
        shim.register(fd, EPOLLIN, self.on_event, watch=not self.paused)

    def on_event(self, events: int) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: pty slave side closed
            data = b""
        if data:
            self.owner.output(self, data)
        else:
            self.close()

    def set_paused(self, paused: bool) -> None:
        # Out of epoll while paused: a hang-up is reported even with no events asked for,
        # and reading then would hand the output to no one.
        if self.fd >= 0 and paused != self.paused:
            self.paused = paused
            self.shim.watch(self.fd, EPOLLIN, not paused)

    def close(self) -> None:
        if self.fd < 0:
            return
        self.shim.unregister(self.fd)
        os.close(self.fd)
        self.fd = -1
        self.owner.output_closed(self)


class Proc:
    """A process whose stdio the shim owns: the container's init or an exec process."""

    def __init__(self, shim: "Shim", name: str, tty: bool):
        self.shim, self.name, self.tty = shim, name, tty
        self.pid = 0
        self.sources: list[Source] = []
        self.stdin_fd = -1
        self.stdin_buf = bytearray()
        self.stdin_close_pending = False
        self.console_fd = -1      # pty master kept for resize
        self.console_listener = None  # --console-socket until runc has sent the master
        # Our own fd on the pty's slave side: when the last slave fd closes, output the
        # master has not read yet is dropped by the kernel (a short-lived `tty` loses its
        # output). Holding the slave until the process has exited and the output settled
        # avoids that.
        self.peer_fd = -1
        self.peer_close_at = 0.0
        self.exit_code: int | None = None
        self.finished_ns = 0
        self.drain_deadline = 0.0
        self.done = False
        self.hold = False
        self.clients: list[Conn] = []
        self.waiters: list[Conn] = []

    # stdio
    def add_stdin(self, fd: int) -> None:
        self.stdin_fd = fd
        _set_nonblock(fd)
        self.shim.register(fd, 0, self.on_stdin_writable)

    def write_stdin(self, data: bytes) -> None:
        if self.stdin_fd < 0:
            return
        self.stdin_buf += data
        self.shim.modify(self.stdin_fd, EPOLLOUT)

    def on_stdin_writable(self, events: int) -> None:
        try:
            while self.stdin_buf:
                n = os.write(self.stdin_fd, self.stdin_buf)
                del self.stdin_buf[:n]
        except BlockingIOError:
            return
        except OSError:  # reader gone: drop input
            self.stdin_buf.clear()
        if not self.stdin_buf:
            self.shim.modify(self.stdin_fd, 0)
            for c in self.shim.conns:
                c.update_events()
            if self.stdin_close_pending:
                self.close_stdin()

    def stdin_full(self) -> bool:
        return len(self.stdin_buf) >= STDIN_HIGH_WATER

    def close_stdin(self) -> None:
        """EOF on the process's stdin (pipes only: a pty has no EOF, like Docker)."""
        if self.stdin_fd < 0 or self.tty:
            return
        if self.stdin_buf:
            self.stdin_close_pending = True
            return
        self.shim.unregister(self.stdin_fd)
        os.close(self.stdin_fd)
        self.stdin_fd = -1

    def output(self, source: Source, data: bytes) -> None:
        frame = _frame(source.stream, data)
        for c in self.clients:
            if source.stream in c.streams:
                c.send(frame)
        self.apply_backpressure()

    def apply_backpressure(self) -> None:
        full = self.hold or any(c.pending() > HIGH_WATER for c in self.clients)
        for s in self.sources:
            s.set_paused(full)

    def output_closed(self, source: Source) -> None:
        self.check_done()

    def outputs_open(self) -> bool:
        return self.console_listener is not None or any(s.fd >= 0 for s in self.sources)

    # lifecycle
    def exited(self, status: int) -> None:
        self.exit_code = _exit_code(status)
        self.finished_ns = _now_ns()
        self.drain_deadline = time.monotonic() + DRAIN_TIMEOUT
        self.peer_close_at = time.monotonic() + PTY_SETTLE
        self.check_done()

    def release(self) -> None:
        """End ``hold``: the output flows from now on (and has its drain time from now)."""
        self.hold = False
        if self.exit_code is not None:
            self.drain_deadline = max(self.drain_deadline, time.monotonic() + DRAIN_TIMEOUT)
        self.apply_backpressure()

    def next_deadline(self) -> float | None:
        if self.done or self.exit_code is None or self.hold:
            return None
        return self.peer_close_at if self.peer_fd >= 0 else self.drain_deadline

    def close_peer(self) -> None:
        if self.peer_fd >= 0:
            os.close(self.peer_fd)
            self.peer_fd = -1

    def check_done(self) -> None:
        if self.done or self.exit_code is None or self.hold:  # held output is not drained yet
            return
        if self.peer_fd >= 0:
            if time.monotonic() < self.peer_close_at:
                return
            self.close_peer()  # from now on, EIO on the master means the output ended
        if self.outputs_open() and time.monotonic() < self.drain_deadline:
            return
        for s in list(self.sources):
            s.close()
        self.done = True
        self.finish()

    def finish(self) -> None:
        self.release_stdio()
        self.end_streams()
        for w in self.waiters:
            w.reply({"ok": True, "exit_code": self.exit_code})
            w.close_after_flush()
        self.waiters = []
        self.shim.exec_finished(self)

    def end_streams(self) -> None:
        end = _frame(STREAM_EXIT, wirejson.dumps({"exit_code": self.exit_code}).encode())
        for c in self.clients:
            c.send(end)
            c.close_after_flush()
        self.clients = []

    def release_stdio(self) -> None:
        self.close_peer()
        if self.console_listener is not None:
            self.shim.close_console_listener(self)
        if self.stdin_fd >= 0:
            self.shim.unregister(self.stdin_fd)
            os.close(self.stdin_fd)
            self.stdin_fd = -1
        if self.console_fd >= 0:
            os.close(self.console_fd)
            self.console_fd = -1

    def resize(self, height: int, width: int) -> None:
        if self.console_fd < 0:
            raise ShimError("the process does not have a TTY", "Conflict")
        # struct winsize {rows, cols, xpixel, ypixel}, unsigned shorts
        winsize = b"".join(v.to_bytes(2, sys.byteorder) for v in (height, width, 0, 0))
        fcntl.ioctl(self.console_fd, termios.TIOCSWINSZ, winsize)


class Container(Proc):
    """The container's init: its output goes to the log and to attached clients."""

    def __init__(self, shim: "Shim", tty: bool, writer):
        super().__init__(shim, "init", tty)
        self.writer = writer
        self.status = "creating"
        self.started_ns = 0
        self.oom_killed = False
        self.exit_known = False  # the exit record is final; only runc delete is left

    def output(self, source: Source, data: bytes) -> None:
        lines = source.splitter.feed(data)
        if lines:
            self.shim.log(self.writer, source, lines)
        super().output(source, data)

    def output_closed(self, source: Source) -> None:
        rest = source.splitter.flush()
        if rest:
            self.shim.log(self.writer, source, rest)
        super().output_closed(source)

    def finish(self) -> None:
        self.status = "stopped"
        self.release_stdio()
        self.end_streams()
        self.shim.container_finished()  # waiters are answered once exit.json is written


class ShimError(Exception):
    def __init__(self, message: str, kind: str = "SystemError", exit_code: int | None = None):
        super().__init__(message)
        self.message, self.kind, self.exit_code = message, kind, exit_code


class Conn:
    """A client connection: one JSON request line, then a reply, maybe a stream."""

    def __init__(self, shim: "Shim", sock):
        self.shim, self.sock = shim, sock
        self.fd = sock.fileno()
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.mode = "request"      # request | exec-starting | stream | wait | closing
        self.proc: Proc | None = None   # stream target (stdin) / output source
        self.streams: tuple[int, ...] = ()
        self.stdin = False
        self.close_stdin_on_eof = False
        self.read_eof = False
        self.hup = False
        self.closed = False
        self.early = False         # a container waiter that is told of the exit before runc delete
        sock.setblocking(False)
        shim.register(self.fd, EPOLLIN, self.on_event)
        shim.conns.append(self)

    def pending(self) -> int:
        return len(self.outbuf)

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        self.outbuf += data
        self.flush()

    def reply(self, obj: dict) -> None:
        self.send(wirejson.dumps(obj).encode() + b"\n")

    def flush(self) -> None:
        try:
            while self.outbuf:
                n = self.sock.send(self.outbuf)
                del self.outbuf[:n]
        except BlockingIOError:
            pass
        except OSError:
            self.close()
            return
        if self.mode == "closing" and not self.outbuf:
            self.close()
            return
        self.update_events()
        if self.proc is not None and self.pending() <= HIGH_WATER:
            self.proc.apply_backpressure()

    def close_after_flush(self) -> None:
        self.mode = "closing"
        self.flush()

    def update_events(self) -> None:
        if self.closed:
            return
        want = 0
        if not self.read_eof and self.mode != "closing":
            if not (self.mode == "stream" and self.proc is not None and self.proc.stdin_full()):
                want |= EPOLLIN
        if self.outbuf:
            want |= EPOLLOUT
        self.shim.modify(self.fd, want)

    def on_event(self, events: int) -> None:
        if events & EPOLLOUT:
            self.flush()
        if self.closed:
            return
        if events & (EPOLLHUP | EPOLLERR):
            self.hup = True  # peer closed both ways: read what is left, then drop it
        if events & (EPOLLIN | EPOLLHUP | EPOLLERR):
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.on_read_eof()
            elif self.mode == "request":
                self.inbuf += data
                self.try_request()
            elif self.mode == "stream":
                self.on_stdin(bytes(data))
            elif self.mode == "exec-starting":
                self.inbuf += data
            # other modes: input ignored

    def on_read_eof(self) -> None:
        self.read_eof = True
        if self.mode == "stream" and self.stdin and self.close_stdin_on_eof and self.proc:
            self.proc.close_stdin()
        if self.hup or self.mode in ("request", "wait"):
            self.close()
            return
        self.update_events()

    def on_stdin(self, data: bytes) -> None:
        if self.stdin and self.proc is not None:
            self.proc.write_stdin(data)
            self.update_events()

    def try_request(self) -> None:
        i = self.inbuf.find(b"\n")
        if i < 0:
            if len(self.inbuf) > MAX_REQUEST:
                self.reply({"ok": False, "error": "request too large", "kind": "InvalidParameter"})
                self.close_after_flush()
            return
        line, rest = bytes(self.inbuf[:i]), bytes(self.inbuf[i + 1:])
        self.inbuf.clear()
        try:
            request = wirejson.loads(line)
            if not isinstance(request, dict):
                raise ValueError("request is not an object")
        except ValueError as e:
            self.reply({"ok": False, "error": f"bad request: {e}", "kind": "InvalidParameter"})
            self.close_after_flush()
            return
        try:
            self.shim.dispatch(self, request)
        except ShimError as e:
            self.fail(e)
            return
        except Exception as e:  # a bug must not kill the shim (and the container's stdio)
            self.fail(ShimError(f"shim: {type(e).__name__}: {e}"))
            return
        if rest and self.mode == "stream":
            self.on_stdin(rest)
        elif rest and self.mode == "exec-starting":
            self.inbuf += rest

    def fail(self, err: ShimError) -> None:
        out = {"ok": False, "error": err.message, "kind": err.kind}
        if err.exit_code is not None:
            out["exit_code"] = err.exit_code
        self.reply(out)
        self.close_after_flush()

    def start_stream(self, proc: Proc, streams: tuple[int, ...], stdin: bool, close_stdin: bool) -> None:
        self.mode = "stream"
        self.proc = proc
        self.streams = streams
        self.stdin = stdin
        self.close_stdin_on_eof = close_stdin
        proc.clients.append(self)
        self.update_events()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.shim.unregister(self.fd)
        try:
            self.sock.close()
        except OSError:
            pass
        if self in self.shim.conns:
            self.shim.conns.remove(self)
        for p in self.shim.procs():
            if self in p.clients:
                p.clients.remove(self)
                p.apply_backpressure()
            if self in p.waiters:
                p.waiters.remove(self)


class Shim:
    def __init__(self, state_dir: str, cfg: dict, ready_fd: int, runtime_fd: int | None = None,
                 listener_fd: int | None = None, bundle_follows: bool = False):
        self.dir = state_dir
        self.cfg = cfg
        self.id = cfg["id"]
        self.ready_fd = ready_fd
        self.listener_fd = listener_fd  # shim.sock, bound by the daemon (see serve)
        self.bundle_follows = bundle_follows
        self.start_requests: list[Conn] = []  # start asked for while runc still creates
        self.paused = False                   # frozen by a pause request (runc pause)
        # a sealed copy of the runtime binary (berth.runtime.sealedexe), kept for the shim's life
        self.runtime_exe = sealedexe.exec_path(runtime_fd) if runtime_fd is not None else None
        self.ep = select.epoll()
        self.handlers: dict = {}
        self.children: dict = {}     # pid -> callback(status) for runc invocations
        self.reaped: dict = {}       # pid -> status for pids not known yet
        self.conns: list[Conn] = []
        self.execs: dict[str, Proc] = {}      # running (or draining) exec processes
        self.exec_results: dict[str, dict] = {}  # finished ones, the most recent only
        self.exec_pids: dict[int, Proc] = {}
        self.seq = 0
        self.quit = False
        self.devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        self.env = {"PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")}
        driver = cfg.get("log_driver") or "json-file"
        max_size, max_files, compress = logs.validate_log_opts(driver, cfg.get("log_opts"))
        if driver == "json-file":
            attrs = cfg.get("log_attrs")
            writer = logs.JSONFileWriter(cfg["log_path"], max_size, max_files, compress,
                                         logs.attrs_object(attrs) if attrs else b"")
        else:
            writer = logs.NullWriter()
        self.container = Container(self, bool(cfg.get("tty")), writer)
        # SIGCHLD -> wakeup pipe -> epoll
        self.sig_r, sig_w = os.pipe()
        _set_nonblock(self.sig_r)
        _set_nonblock(sig_w)
        _signal.signal(SIGCHLD, lambda s, f: None)
        _signal.set_wakeup_fd(sig_w)
        self.register(self.sig_r, EPOLLIN, self.on_sigchld)

    # epoll plumbing
    def register(self, fd: int, events: int, handler, watch: bool = True) -> None:
        self.handlers[fd] = handler
        if watch:
            self.ep.register(fd, events)

    def watch(self, fd: int, events: int, on: bool) -> None:
        """Put a registered fd into epoll, or take it out (its handler stays)."""
        if fd in self.handlers:
            if on:
                self.ep.register(fd, events)
            else:
                self.ep.unregister(fd)

    def modify(self, fd: int, events: int) -> None:
        if fd in self.handlers:
            self.ep.modify(fd, events)

    def unregister(self, fd: int) -> None:
        if self.handlers.pop(fd, None) is not None:
            try:
                self.ep.unregister(fd)
            except OSError:
                pass

    def procs(self) -> list[Proc]:
        return [self.container, *self.execs.values()]

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    # children
    def runc(self, args: list[str], on_done, stdio: tuple[int, int, int] | None = None) -> None:
        """Spawn ``runc <args>``; ``on_done(error_message_or_None)`` once it has exited."""
        self.seq += 1
        log = self.path(f"runc-{self.seq}.log")
        argv = [self.cfg["runtime"], "--root", self.cfg["runtime_root"], "--log", log,
                "--log-format", "json", *self.cfg.get("runtime_args", []), *args]
        if stdio is not None:  # the runc whose child becomes a container process: create, exec
            pid = self._fork_exec(argv, stdio)
        else:
            pid = self._spawn(argv)

        def done(status: int) -> None:
            error = None
            if status != 0:
                error = _runc_error(log) or f"{argv[0]} {args[0]} failed ({_exit_code(status)})"
            _unlink(log)
            on_done(error)

        self.children[pid] = done

    def _spawn(self, argv: list[str]) -> int:
        """A runc that starts no container process: posix_spawn, the cheapest way."""
        fds = (self.devnull, self.devnull, self.devnull)
        actions = [(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(fds)]
        options = {"file_actions": actions, "setsigdef": RESET_IN_CHILDREN, "setsigmask": ()}
        if self.runtime_exe:
            try:
                return os.posix_spawn(self.runtime_exe, argv, self.env, **options)
            except OSError as e:
                sys.stderr.write(f"running {argv[0]} from its sealed copy failed ({e}): using its path\n")
                self.runtime_exe = None
        return os.posix_spawnp(argv[0], argv, self.env, **options)

    def _fork_exec(self, argv: list[str], stdio: tuple[int, int, int]) -> int:
        """A runc whose child becomes a container process: fork and exec, not posix_spawn,
        which gives the child SIG_IGN for glibc's internal signals (see RESET_IN_CHILDREN)
        that the container would inherit. About a millisecond more per start or exec."""
        paths = [self.runtime_exe] if self.runtime_exe else []
        paths += _on_path(argv[0], self.env.get("PATH", ""))
        pid = os.fork()
        if pid:
            return pid
        try:  # the child: nothing here may return into the shim
            for i, fd in enumerate(stdio):
                os.dup2(fd, i)
                os.set_inheritable(i, True)
            for sig in RESET_IN_CHILDREN:
                try:
                    _signal.signal(sig, _signal.SIG_DFL)
                except (OSError, ValueError):
                    pass  # glibc's own signals: at their default here already
            _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
            for path in paths:
                try:
                    os.execve(path, argv, self.env)
                except OSError:
                    continue
        finally:
            os._exit(127)

    def on_sigchld(self, events: int) -> None:
        try:
            while os.read(self.sig_r, 512):
                pass
        except BlockingIOError:
            pass
        self.reap()

    def reap(self) -> None:
        for pid, status in reaped_children():
            self.child_exited(pid, status)

    def child_exited(self, pid: int, status: int) -> None:
        callback = self.children.pop(pid, None)
        if callback is not None:
            callback(status)
        elif pid == self.container.pid:
            self.container.exited(status)
        elif pid in self.exec_pids:
            self.exec_pids.pop(pid).exited(status)
        else:
            self.reaped[pid] = status
            if len(self.reaped) > 4096:  # orphans reparented to us; keep only recent ones
                self.reaped.pop(next(iter(self.reaped)))

    def adopt(self, proc: Proc, pid: int) -> None:
        """``pid`` now belongs to ``proc``; it may already have been reaped."""
        proc.pid = pid
        if pid in self.reaped:
            proc.exited(self.reaped.pop(pid))
        elif proc is not self.container:
            self.exec_pids[pid] = proc

    # stdio setup shared by create and exec
    def setup_stdio(self, proc: Proc, stdin: bool, stdout: bool, stderr: bool, tag: str):
        """Returns (runc stdio fds, console socket path or None, fds to close after spawn)."""
        if proc.tty:
            sock_path = f"{tag}.console"  # relative: the shim runs in its state dir
            try:
                os.unlink(sock_path)
            except FileNotFoundError:
                pass
            lsock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            lsock.bind(sock_path)
            lsock.listen(1)
            lsock.setblocking(False)
            proc.console_listener = (lsock, sock_path)

            def on_console(events: int) -> None:
                try:
                    fd, _ = lsock._accept()
                except BlockingIOError:
                    return
                conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fd)
                conn.settimeout(5)
                try:
                    _msg, anc, _flags, _addr = conn.recvmsg(4096, _socket.CMSG_SPACE(4))
                    fds = received_fds(anc)
                    for extra in fds[1:]:
                        os.close(extra)
                    if fds:
                        self.attach_console(proc, fds[0], stdin)
                finally:
                    conn.close()
                    self.close_console_listener(proc)

            self.register(lsock.fileno(), EPOLLIN, on_console)
            return (self.devnull, self.devnull, self.devnull), sock_path, []
        child_fds, close_after = [], []
        if stdin:
            r, w = os.pipe()
            proc.add_stdin(w)
            child_fds.append(r)
            close_after.append(r)
        else:
            child_fds.append(self.devnull)
        for want, stream in ((stdout, STREAM_STDOUT), (stderr, STREAM_STDERR)):
            if want:
                r, w = os.pipe()
                proc.sources.append(Source(self, r, stream, proc))
                child_fds.append(w)
                close_after.append(w)
            else:
                child_fds.append(self.devnull)
        return tuple(child_fds), None, close_after

    def close_console_listener(self, proc: Proc) -> None:
        lsock, sock_path = proc.console_listener
        proc.console_listener = None
        self.unregister(lsock.fileno())
        lsock.close()
        _unlink(sock_path)

    def attach_console(self, proc: Proc, master: int, stdin: bool) -> None:
        os.set_inheritable(master, False)
        proc.console_fd = master
        try:
            proc.peer_fd = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:  # kernel < 4.13: live with the race
            proc.peer_fd = -1
        proc.sources.append(Source(self, os.dup(master), STREAM_STDOUT, proc))
        if stdin:
            proc.add_stdin(os.dup(master))

    # container lifecycle
    def create(self) -> None:
        """``runc create``; or, with ``run`` in shim.json, ``runc run --detach`` (one runc call
        less on the way to a running container) with the init's output held until ``start``,
        so that clients attaching in between miss nothing."""
        c = self.container
        run = bool(self.cfg.get("run"))
        c.hold = run
        stdio, console, close_after = self.setup_stdio(c, bool(self.cfg.get("stdin")), True, True, "init")
        args = ["run", "--detach"] if run else ["create"]
        args += ["--bundle", self.cfg.get("bundle", self.dir), "--pid-file", self.path("init.pid")]
        if console:
            args += ["--console-socket", console]

        def created(error: str | None) -> None:
            for fd in close_after:
                os.close(fd)
            if error:
                for s in list(c.sources):
                    s.close()
                c.release_stdio()
                self.unregister(self.listener.fileno())
                self.listener.close()
                _unlink(self.path("shim.sock"))
                if run:  # the create step as clients know it (Docker's text)
                    error = error.replace("runc run failed: ", "runc create failed: ", 1)
                self.report_ready({"ok": False, "error": error, "stage": "create"})
                for conn in self.start_requests:
                    conn.fail(ShimError(error))
                self.start_requests = []
                self.quit = True
                return
            with open(self.path("init.pid")) as f:
                pid = int(f.read().strip())
            c.status = "created"
            if run:
                c.started_ns = _now_ns()
            self.adopt(c, pid)
            self.report_ready({"ok": True, "pid": pid, "shim_pid": os.getpid()})
            for conn in self.start_requests:
                try:
                    self.op_start(conn, {})
                except ShimError as e:
                    conn.fail(e)
            self.start_requests = []
            trim_heap()

        self.runc(args + [self.id], created, stdio)

    def _bundle_written(self) -> bool:
        """Wait for the daemon's ``go`` (config.json is written) on the launch connection;
        False if it closed that instead. It writes the bundle while we start up."""
        os.set_blocking(self.ready_fd, True)  # the spawner read the request with a timeout
        said = b""
        while not said.endswith(b"\n") and len(said) < 16:
            chunk = os.read(self.ready_fd, 16)
            if not chunk:
                break
            said += chunk
        return said == b"go\n"

    def report_ready(self, obj: dict) -> None:
        if self.ready_fd >= 0:
            try:
                os.write(self.ready_fd, (wirejson.dumps(obj) + "\n").encode())
            finally:
                os.close(self.ready_fd)
                self.ready_fd = -1

    def log(self, writer, source: Source, lines: list[bytes]) -> None:
        try:
            writer.write("stdout" if source.stream == STREAM_STDOUT else "stderr", lines, _now_ns())
        except OSError as e:  # a full disk must not stop the container
            sys.stderr.write(f"log write failed: {e}\n")

    def container_finished(self) -> None:
        c = self.container
        oom = self.cfg.get("oom") or {}
        if oom.get("file"):
            c.oom_killed = _read_counter(oom["file"], oom.get("key", "oom_kill")) > 0
        c.exit_known = True
        for w in c.waiters:
            if w.early:
                self.tell_exited(w)

        def deleted(error: str | None) -> None:
            if error:
                sys.stderr.write(f"runc delete: {error}\n")
            self.finalize()

        self.runc(["delete", "--force", self.id], deleted)

    def exit_record(self) -> dict:
        c = self.container
        return {"id": self.id, "pid": c.pid, "exit_code": c.exit_code,
                "finished_at": logs.format_time(c.finished_ns), "finished_at_ns": c.finished_ns,
                "started_at": logs.format_time(c.started_ns) if c.started_ns else "",
                "oom_killed": c.oom_killed}

    def tell_exited(self, conn: Conn) -> None:
        """An early waiter's first line; the final record follows once runc delete is done."""
        conn.reply({"ok": True, "early": True, **self.exit_record()})

    def finalize(self) -> None:
        # Socket first: a new shim for the same container may bind it as soon as the exit
        # is visible.
        self.unregister(self.listener.fileno())
        self.listener.close()
        _unlink(self.path("shim.sock"))
        record = self.exit_record()
        _write_atomic(self.path("exit.json"), wirejson.dumps(record))
        self.container.writer.close()
        for w in list(self.container.waiters):
            w.reply({"ok": True, **record})
            w.close_after_flush()
        self.container.waiters = []
        self.quit = True

    # requests
    def dispatch(self, conn: Conn, req: dict) -> None:
        op = req.get("op")
        handler = getattr(self, "op_" + str(op), None)
        if handler is None:
            raise ShimError(f"unknown op {op!r}", "InvalidParameter")
        handler(conn, req)

    def _proc(self, req: dict) -> Proc:
        exec_id = req.get("exec_id")
        if not exec_id:
            return self.container
        proc = self.execs.get(exec_id)
        if proc is None:
            if exec_id in self.exec_results:
                raise ShimError(f"exec {exec_id} is not running", "Conflict")
            raise ShimError(f"No such exec instance: {exec_id}", "NotFound")
        return proc

    def exec_finished(self, proc: Proc) -> None:
        """Forget a finished exec process, keeping its result (healthchecks exec forever)."""
        self.execs.pop(proc.name, None)
        self.exec_results[proc.name] = {"pid": proc.pid, "running": False, "exit_code": proc.exit_code}
        while len(self.exec_results) > MAX_EXEC_RESULTS:
            self.exec_results.pop(next(iter(self.exec_results)))

    def op_state(self, conn: Conn, req: dict) -> None:
        c = self.container
        execs = dict(self.exec_results)
        execs.update({k: {"pid": p.pid, "running": p.exit_code is None, "exit_code": p.exit_code}
                      for k, p in self.execs.items()})
        conn.reply({"ok": True, "id": self.id, "status": c.status, "pid": c.pid,
                    "shim_pid": os.getpid(), "tty": c.tty, "exit_code": c.exit_code,
                    "paused": self.paused,
                    "started_at": logs.format_time(c.started_ns) if c.started_ns else "",
                    "finished_at": logs.format_time(c.finished_ns) if c.finished_ns else "",
                    "execs": execs})
        conn.close_after_flush()

    def op_start(self, conn: Conn, req: dict) -> None:
        c = self.container
        if c.status == "creating":  # answered once runc has created it (see create)
            self.start_requests.append(conn)
            return
        if c.status != "created":
            raise ShimError(f"container {self.id} is {c.status}, not created", "Conflict")
        c.status = "starting"
        if self.cfg.get("run"):  # runc has started it already: let its output go
            if c.exit_code is None:
                c.status = "running"
            elif c.finished_ns < c.started_ns:
                c.started_ns = c.finished_ns
            c.release()
            conn.reply({"ok": True, "pid": c.pid, "started_at": logs.format_time(c.started_ns)})
            conn.close_after_flush()
            return

        def started(error: str | None) -> None:
            if error:
                c.status = "created" if c.exit_code is None else "stopped"
                conn.fail(ShimError(error))
                return
            if c.exit_code is None and c.status == "starting":
                c.status = "running"
            c.started_ns = _now_ns()
            conn.reply({"ok": True, "pid": c.pid, "started_at": logs.format_time(c.started_ns)})
            conn.close_after_flush()

        self.runc(["start", self.id], started)

    def op_kill(self, conn: Conn, req: dict) -> None:
        sig = int(req.get("signal") or 15)
        proc = self._proc(req)
        if proc is not self.container:
            if proc.exit_code is not None:
                raise ShimError(f"exec {req.get('exec_id')} is not running", "Conflict")
            os.kill(proc.pid, sig)
            conn.reply({"ok": True})
            conn.close_after_flush()
            return
        if self.container.hold:  # killed instead of started: nothing will release it
            self.container.release()
        if self.container.exit_code is not None:
            raise ShimError(f"container {self.id} is not running", "Conflict")

        def killed(error: str | None) -> None:
            if error and self.container.exit_code is None:
                conn.fail(ShimError(error, "Conflict" if "not running" in error else "SystemError"))
            else:
                conn.reply({"ok": True})
                conn.close_after_flush()

        self.runc(["kill"] + (["--all"] if req.get("all") else []) + [self.id, str(sig)], killed)

    def op_wait(self, conn: Conn, req: dict) -> None:
        result = self.exec_results.get(req.get("exec_id") or "")
        if result is not None:
            conn.reply({"ok": True, "exit_code": result["exit_code"]})
            conn.close_after_flush()
            return
        proc = self._proc(req)
        conn.mode = "wait"
        if proc is self.container:
            conn.early = bool(req.get("early"))
            if conn.early and proc.exit_known:
                self.tell_exited(conn)
            proc.waiters.append(conn)  # answered (again, for early ones) in finalize()
            return
        if proc.done:
            conn.reply({"ok": True, "exit_code": proc.exit_code})
            conn.close_after_flush()
        else:
            proc.waiters.append(conn)

    # pause, resume and update: the container's runtime calls go through its shim, as
    # containerd routes every task call through the task's shim
    def op_pause(self, conn: Conn, req: dict) -> None:
        self._control(conn, ["pause", self.id], paused=True)

    def op_resume(self, conn: Conn, req: dict) -> None:
        self._control(conn, ["resume", self.id], paused=False)

    def op_update(self, conn: Conn, req: dict) -> None:
        """``runc update`` with OCI ``linux.resources`` given in the request."""
        resources = req.get("resources")
        if not isinstance(resources, dict):
            raise ShimError("update needs a resources object", "InvalidParameter")
        self.seq += 1
        path = self.path(f"update-{self.seq}.json")
        with open(path, "w") as f:
            f.write(wirejson.dumps(resources))
        self._control(conn, ["update", "--resources", path, self.id], cleanup=path)

    def _control(self, conn: Conn, args: list[str], paused: bool | None = None,
                 cleanup: str | None = None) -> None:
        if self.container.exit_code is not None or self.container.status != "running":
            if cleanup:
                _unlink(cleanup)
            raise ShimError(f"container {self.id} is not running", "Conflict")

        def done(error: str | None) -> None:
            if cleanup:
                _unlink(cleanup)
            if error:
                conn.fail(ShimError(error, error_kind(error)))
                return
            if paused is not None:
                self.paused = paused
            conn.reply({"ok": True})
            conn.close_after_flush()

        self.runc(args, done)

    def op_attach(self, conn: Conn, req: dict) -> None:
        c = self.container
        streams = tuple(s for s, key in ((STREAM_STDOUT, "stdout"), (STREAM_STDERR, "stderr"))
                        if req.get(key, True))
        conn.reply({"ok": True, "tty": c.tty})
        if c.done:
            conn.send(_frame(STREAM_EXIT, wirejson.dumps({"exit_code": c.exit_code}).encode()))
            conn.close_after_flush()
            return
        conn.start_stream(c, streams, bool(req.get("stdin")), bool(req.get("close_stdin")))

    def op_close_stdin(self, conn: Conn, req: dict) -> None:
        self._proc(req).close_stdin()
        conn.reply({"ok": True})
        conn.close_after_flush()

    def op_resize(self, conn: Conn, req: dict) -> None:
        self._proc(req).resize(int(req["height"]), int(req["width"]))
        conn.reply({"ok": True})
        conn.close_after_flush()

    def op_exec(self, conn: Conn, req: dict) -> None:
        """Start ``exec-<exec_id>.json`` (written by the client) with ``runc exec --detach``."""
        exec_id = str(req.get("exec_id") or "")
        if not exec_id or not all(ch.isalnum() or ch in "-_" for ch in exec_id):
            raise ShimError("invalid exec id", "InvalidParameter")
        if exec_id in self.execs or exec_id in self.exec_results:
            raise ShimError(f"exec {exec_id} already exists", "Conflict")
        if self.container.status != "running":
            raise ShimError(f"Container {self.id} is not running", "Conflict")
        process_file = self.path(f"exec-{exec_id}.json")
        if not os.path.exists(process_file):
            raise ShimError(f"no process spec for exec {exec_id}", "InvalidParameter")
        detach = bool(req.get("detach"))
        proc = Proc(self, exec_id, bool(req.get("tty")) and not detach)
        proc.hold = True
        self.execs[exec_id] = proc
        if detach:  # like Docker: a detached exec's stdio goes nowhere
            stdio, console, close_after = (self.devnull,) * 3, None, []
        else:
            self.seq += 1
            stdio, console, close_after = self.setup_stdio(
                proc, bool(req.get("stdin")), bool(req.get("stdout", True)),
                bool(req.get("stderr", True)), f"x{self.seq}")
            conn.mode = "exec-starting"  # stdin sent meanwhile is kept in conn.inbuf
        pid_file = self.path(f"exec-{exec_id}.pid")
        args = ["exec", "--process", process_file, "--pid-file", pid_file, "--detach"]
        if console:
            args += ["--console-socket", console]

        def started(error: str | None) -> None:
            for fd in close_after:
                os.close(fd)
            _unlink(process_file)
            if error:
                for s in list(proc.sources):
                    s.close()
                proc.release_stdio()
                del self.execs[exec_id]
                conn.mode = "request"
                conn.fail(ShimError(error, "StartError"))
                return
            with open(pid_file) as f:
                pid = int(f.read().strip())
            _unlink(pid_file)
            conn.reply({"ok": True, "pid": pid, "tty": proc.tty})
            proc.hold = False
            if detach or conn.closed:
                conn.close_after_flush()
            else:
                streams = tuple(s for s, key in ((STREAM_STDOUT, "stdout"),
                                                 (STREAM_STDERR, "stderr")) if req.get(key, True))
                conn.start_stream(proc, streams, bool(req.get("stdin")), True)
                if conn.inbuf:
                    data = bytes(conn.inbuf)
                    conn.inbuf.clear()
                    conn.on_stdin(data)
                if conn.read_eof:
                    proc.close_stdin()
            proc.apply_backpressure()
            self.adopt(proc, pid)

        self.runc(args + [self.id], started, stdio)

    # main loop
    def serve(self) -> None:
        if self.listener_fd is not None:
            # bound and listening already: the daemon queues its requests (attach, start,
            # wait) on it while runc creates the container
            self.listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, self.listener_fd)
        else:
            sock_path = "shim.sock"  # relative: the shim runs in its state dir
            try:
                os.unlink(sock_path)
            except FileNotFoundError:
                pass
            self.listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            self.listener.bind(sock_path)
            os.chmod(sock_path, 0o600)
            self.listener.listen(64)
        self.listener.setblocking(False)
        self.register(self.listener.fileno(), EPOLLIN, self.on_accept)
        if self.bundle_follows and not self._bundle_written():
            return  # the daemon gave up on this start
        self.create()
        quit_deadline = 0.0
        while True:
            if self.quit:
                # Let replies and final frames reach their readers, but not forever.
                quit_deadline = quit_deadline or time.monotonic() + 2.0
                # a runc call still running (`start` of a container that
                # exited at once) must answer its client before the shim goes
                busy = any(c.outbuf for c in self.conns) or self.children
                if not busy or time.monotonic() > quit_deadline:
                    break
            try:
                events = self.ep.poll(self.next_timeout())
            except InterruptedError:
                continue
            for fd, ev in events:
                handler = self.handlers.get(fd)
                if handler is not None:
                    handler(ev)
            for p in self.procs():
                p.check_done()
        for c in list(self.conns):
            c.close()

    def next_timeout(self) -> float:
        if self.quit:
            return 0.2
        deadlines = [d for p in self.procs() if (d := p.next_deadline()) is not None]
        if not deadlines:
            return -1
        return max(0.0, min(deadlines) - time.monotonic()) + 0.01

    def on_accept(self, events: int) -> None:
        while True:
            try:
                fd, _ = self.listener._accept()
            except BlockingIOError:
                return
            except OSError:
                return
            Conn(self, _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fd))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _on_path(name: str, search: str) -> list[str]:
    """Where ``name`` may be, as execvp looks for it."""
    if "/" in name:
        return [name]
    return [os.path.join(d or ".", name) for d in search.split(":")]


def _runc_error(log_path: str) -> str:
    """The last error message of a runc JSON log file."""
    message = ""
    try:
        with open(log_path, "rb") as f:
            for line in f:
                try:
                    entry = wirejson.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
                    message = entry.get("msg") or message
    except OSError:
        pass
    return message


def _read_counter(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _keep_own_runtime(sealed_runtimes: dict[str, int], runtime: str | None) -> int | None:
    """The fd of this container's runtime's sealed copy; the other copies are closed, so a
    shim never pins a binary it does not run."""
    own = None
    for path, fd in sealed_runtimes.items():
        if path == runtime:
            own = fd
        else:
            os.close(fd)
    return own


def main(argv: list[str]) -> None:
    """``shimd <state-dir>``: fork the shim, print its launch result, exit 0/1."""
    state_dir = os.path.abspath(argv[0])
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(ready_w)
        chunks = []
        while chunk := os.read(ready_r, 65536):
            chunks.append(chunk)
        out = b"".join(chunks) or b'{"ok":false,"error":"shim exited during start"}\n'
        os.write(1, out)
        os._exit(0 if out.startswith(b'{"ok":true') else 1)
    os.close(ready_r)
    become_shim(state_dir, ready_w)


def become_shim(state_dir: str, ready_fd: int, sealed_runtimes: dict[str, int] | None = None,
                listener_fd: int | None = None, bundle_follows: bool = False) -> None:
    """Turn this process into the shim of ``state_dir``, in a session of its own; the launch
    result (one JSON line) goes to ``ready_fd``. Never returns. ``sealed_runtimes`` (from the
    spawner): runtime path -> fd of its sealed copy. ``listener_fd``: ``shim.sock``, bound
    and listening (from the daemon, through the spawner); without it the shim binds it.
    ``bundle_follows``: config.json is being written; ``go`` on ``ready_fd`` says it is."""
    os.setsid()
    # Sockets are bound by names relative to the state dir (and runc, our child, connects to
    # the console socket the same way): absolute paths can exceed AF_UNIX's 108 bytes.
    os.chdir(state_dir)
    null = os.open("/dev/null", os.O_RDWR)
    log = os.open(os.path.join(state_dir, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    for sig in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP):
        _signal.signal(sig, _signal.SIG_IGN)
    try:
        with open(os.path.join(state_dir, "shim.json"), "rb") as f:
            cfg = wirejson.loads(f.read())
        runtime_fd = _keep_own_runtime(sealed_runtimes or {}, cfg.get("runtime"))
        _set_subreaper()
        _write_atomic(os.path.join(state_dir, "shim.pid"), str(os.getpid()))
        shim = Shim(state_dir, cfg, ready_fd, runtime_fd, listener_fd, bundle_follows)
        shim.serve()
    except BaseException as e:  # report, never hang the launcher
        try:
            os.write(ready_fd, (wirejson.dumps({"ok": False, "error": f"shim: {e}"}) + "\n").encode())
        except OSError:
            pass
        sys.stderr.write(f"shim failed: {type(e).__name__}: {e}\n")
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
