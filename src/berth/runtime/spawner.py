"""The shim spawner: a small process that has ``berth.runtime.shimd`` imported already and
forks a shim for each request, so a container start does not pay for a Python start-up
(~15 ms here) on its critical path.

The daemon starts one spawner (``berth.runtime.shim.ShimSpawner``) with a pipe as its stdin
and a listening socket path. Protocol, one request per connection: the daemon sends a state
directory and ``\\n``; the spawner forks, and the child becomes that directory's shim
(``shimd.become_shim``, in a session of its own) and writes its launch line on the
connection, exactly what a ``python -m``-started shim prints, then closes it. Shims outlive
the spawner and the daemon; the spawner reaps those that exit before it does.

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
    os.write(1, b"ready\n")
    poller = select.epoll()
    poller.register(0, select.EPOLLIN)
    poller.register(listener.fileno(), select.EPOLLIN)
    while True:
        for _ in shimd.reaped_children():  # shims that have exited (and children that failed)
            pass
        try:
            events = poller.poll(1.0)
        except InterruptedError:
            continue
        for fd, _ in events:
            if fd == 0:
                if not os.read(0, 4096):  # the daemon is gone
                    _unlink_own(socket_path, own_socket)
                    return
            else:
                conn, _ = listener._accept()
                sealed.refresh()
                pid = os.fork()
                if pid == 0:
                    poller.close()
                    listener.close()
                    _child(conn, containers_dir, sealed.fds())  # never returns
                os.close(conn)


def _child(conn: int, containers_dir: str, sealed_runtimes: dict[str, int]) -> None:
    """Read the state directory, then become its shim."""
    os.dup2(conn, 1)  # until the shim takes over, whatever is written to stdout reaches the daemon
    os.close(conn)
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, os.dup(1))
        sock.settimeout(REQUEST_TIMEOUT)
        request = b""
        while not request.endswith(b"\n") and len(request) < MAX_REQUEST:
            chunk = sock.recv(MAX_REQUEST)
            if not chunk:
                break
            request += chunk
        sock.close()
        state_dir = os.path.realpath(request.strip().decode())
        if os.path.dirname(state_dir) != containers_dir:
            _reply_error("state directory outside exec-root")
            os._exit(1)
        shimd.become_shim(state_dir, os.dup(1), sealed_runtimes)  # never returns
    except BaseException as e:  # report, never leave the daemon waiting
        _reply_error(f"{type(e).__name__}: {e}")
        sys.stderr.write(f"spawner: {type(e).__name__}: {e}\n")
    os._exit(1)


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
