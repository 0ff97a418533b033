"""The shim spawner: a small process that has ``berth.runtime.shimd`` imported already and
forks a shim for each request, so a container start does not pay for a Python start-up
(~15 ms here) on its critical path.

The daemon starts one spawner (``berth.runtime.shim.ShimSpawner``) with a pipe as its stdin
and a listening socket path. Protocol, one request per connection: the daemon sends one
JSON line, ``{"state": <state directory>, "bundle_follows": bool}``, with the shim's
``shim.sock`` (bound and listening) as an SCM_RIGHTS fd; a child the spawner forked in
advance accepts the connection (and the spawner forks the next one), then the child becomes
that directory's shim (``shimd.become_shim``, in a session of its own) and writes its
launch line on the connection, exactly what a ``python -m``-started shim prints, then
closes it (with ``bundle_follows`` it first waits for the daemon's ``go`` on it). Shims
outlive the spawner and the daemon; the spawner reaps those that exit before it does.

It also holds a sealed in-memory copy of each runtime binary named on its command line
(``berth.runtime.sealedexe``), remade when the binary changes on disk; the shims it forks
run runc from it.

The spawner exits when its stdin reaches EOF: the daemon stopped or died. It imports no
more than a shim does (it is the image every shim is forked from).
"""

from __future__ import annotations

import gc
import os
import select
import sys

import _signal
import _socket

from berth.runtime import sealedexe, shimd, wirejson

REQUEST_TIMEOUT = 10.0
MAX_REQUEST = 4096


def main(argv: list[str]) -> None:
    """``spawner <socket-path> <containers-dir> [<runtime-binary>...]``"""
    serve(argv[0], argv[1], argv[2:])


def serve(socket_path: str, containers_dir: str, runtimes: list[str] | None = None) -> None:
    containers_dir = os.path.realpath(containers_dir)
    try:
        os.unlink(socket_path)
    except FileNotFoundError:
        pass
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is created 0600: root's daemon only
    try:
        listener.bind(socket_path)
    finally:
        os.umask(old_umask)
    own_socket = os.stat(socket_path).st_ino
    listener.listen(64)
    shimd.prepare()
    sealed = sealedexe.SealedRuntimes(runtimes or [])
    # Every shim starts as a copy of this process: give back what start-up freed (compiling
    # modules whose bytecode was stale left ~3.5 MB in the heap here).
    gc.collect()
    shimd.trim_heap()
    # A child is forked before each request arrives, so no fork sits on the critical path:
    # it accepts the next connection itself, tells us on ``taken``, and we fork the next one.
    taken_r, taken_w = os.pipe()
    poller = select.epoll()
    poller.register(0, select.EPOLLIN)
    poller.register(taken_r, select.EPOLLIN)
    waiting = _fork_waiting(listener, poller, taken_r, taken_w, containers_dir, sealed)
    os.write(1, b"ready\n")
    while True:
        respawn = False
        for pid, _ in shimd.reaped_children():  # shims that have exited, children that failed
            respawn = respawn or pid == waiting
        try:
            events = poller.poll(1.0)
        except InterruptedError:
            events = []  # and still fork a new waiting child if the old one died
        for fd, _ in events:
            if fd == 0:
                if not os.read(0, 4096):  # the daemon is gone (the waiting child sees it too)
                    _unlink_own(socket_path, own_socket)
                    return
            else:
                os.read(taken_r, 4096)
                respawn = True
        if respawn:
            sealed.refresh()
            waiting = _fork_waiting(listener, poller, taken_r, taken_w, containers_dir, sealed)


def _fork_waiting(listener, parent_poller, taken_r: int, taken_w: int, containers_dir: str,
                  sealed: sealedexe.SealedRuntimes) -> int:
    """Fork the child that serves the next request; returns its pid. It dies with the
    spawner while it waits (so a killed spawner's socket refuses, and the daemon starts a new
    one), not once it has a request to serve."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    parent_poller.close()
    os.close(taken_r)
    try:
        shimd.prctl(shimd.PR_SET_PDEATHSIG, _signal.SIGKILL)
        if os.getppid() != parent:  # it died before that took effect
            os._exit(0)
        poller = select.epoll()
        poller.register(0, select.EPOLLIN)
        poller.register(listener.fileno(), select.EPOLLIN)
        conn = None
        while conn is None:
            for fd, _ in poller.poll():
                if fd == 0 and not os.read(0, 4096):  # the daemon is gone: no more requests
                    os._exit(0)
                if fd == listener.fileno():
                    conn, _ = listener._accept()
        shimd.prctl(shimd.PR_SET_PDEATHSIG, 0)  # from now on a shim, which outlives the spawner
        try:
            os.write(taken_w, b"x")
        except OSError:  # the spawner is gone: serve this request all the same
            pass
        poller.close()
        listener.close()
        os.close(taken_w)
        sealed.refresh()  # a binary may have changed while this child waited
        _child(conn, containers_dir, sealed.fds())  # never returns
    except BaseException as e:
        sys.stderr.write(f"spawner: {type(e).__name__}: {e}\n")
    os._exit(1)


def _child(conn: int, containers_dir: str, sealed_runtimes: dict[str, int]) -> None:
    """Read the state directory (and the shim's listening socket, if the daemon sent one),
    then become its shim."""
    os.dup2(conn, 1)  # until the shim takes over, whatever is written to stdout reaches the daemon
    os.close(conn)
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, os.dup(1))
        sock.settimeout(REQUEST_TIMEOUT)
        line, fds = _read_request(sock)
        sock.close()
        request = wirejson.loads(line)
        state_dir = os.path.realpath(str(request.get("state")))
        if os.path.dirname(state_dir) != containers_dir:
            _reply_error("state directory outside exec-root")
            os._exit(1)
        if len(fds) > 1:
            _reply_error("more than one socket sent")
            os._exit(1)
        shimd.become_shim(state_dir, os.dup(1), sealed_runtimes,  # never returns
                          fds[0] if fds else None, bool(request.get("bundle_follows")))
    except BaseException as e:  # report, never leave the daemon waiting
        _reply_error(f"{type(e).__name__}: {e}")
        sys.stderr.write(f"spawner: {type(e).__name__}: {e}\n")
    os._exit(1)


def _read_request(sock) -> tuple[bytes, list[int]]:
    """One line, and the fds that came with it (SCM_RIGHTS)."""
    request, fds = b"", []
    while not request.endswith(b"\n") and len(request) < MAX_REQUEST:
        chunk, ancillary, _flags, _addr = sock.recvmsg(MAX_REQUEST, _socket.CMSG_SPACE(4 * 4),
                                                       _socket.MSG_CMSG_CLOEXEC)
        fds += shimd.received_fds(ancillary)
        if not chunk:
            break
        request += chunk
    return request, fds


def _reply_error(message: str) -> None:
    try:
        os.write(1, (wirejson.dumps({"ok": False, "error": f"spawner: {message}"}) + "\n").encode())
    except OSError:
        pass


def _unlink_own(path: str, inode: int) -> None:
    """Remove our socket, not one a new daemon's spawner has bound there meanwhile."""
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
