"""Copy stdin -> stream and stream -> stdout with half-close, for ``system dial-stdio``.

As docker's dial-stdio: stdin EOF half-closes the stream's write side (the daemon sees EOF,
its answer still comes back); the stream's EOF ends the proxy (stdout is closed so the
reader, e.g. ssh, sees EOF too).
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any


def _half_close(stream: Any) -> None:
    try:
        if hasattr(stream, "shutdown_write"):
            stream.shutdown_write()
        else:
            stream.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def proxy_stdio(stream: Any, stdin_fd: int = 0, stdout_fd: int = 1, bufsize: int = 65536) -> None:
    def stdin_to_stream() -> None:
        try:
            while True:
                data = os.read(stdin_fd, bufsize)
                if not data:
                    break
                stream.sendall(data)
        except OSError:
            pass
        finally:
            _half_close(stream)

    pump = threading.Thread(target=stdin_to_stream, name="stdin-to-stream", daemon=True)
    pump.start()
    try:
        while True:
            data = stream.recv(bufsize)
            if not data:
                break
            view = memoryview(data)
            while view:
                n = os.write(stdout_fd, view)
                view = view[n:]
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        # The reader must see EOF now, not at process exit; dup2 (not close) keeps the fd
        # number valid for the interpreter's final flush of sys.stdout.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stdout_fd)
            os.close(devnull)
        except OSError:
            pass
