"""Signals while attached to a container: forward them (``--sig-proxy``) and follow the
terminal's size (SIGWINCH -> ``POST /resize``).

Python runs signal handlers in the main thread only, so handlers just queue the signal; a
worker thread makes the API calls (a handler must never block on the network).
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from typing import Any, Callable

# docker's names (moby/sys/signal SignalMap keys) for the kill API
_NAMES = {
    signal.SIGABRT: "ABRT", signal.SIGALRM: "ALRM", signal.SIGBUS: "BUS", signal.SIGCHLD: "CHLD",
    signal.SIGCONT: "CONT", signal.SIGFPE: "FPE", signal.SIGHUP: "HUP", signal.SIGILL: "ILL",
    signal.SIGINT: "INT", signal.SIGIO: "IO", signal.SIGKILL: "KILL", signal.SIGPIPE: "PIPE",
    signal.SIGPROF: "PROF", signal.SIGPWR: "PWR", signal.SIGQUIT: "QUIT", signal.SIGSEGV: "SEGV",
    signal.SIGSTKFLT: "STKFLT", signal.SIGSTOP: "STOP", signal.SIGSYS: "SYS", signal.SIGTERM: "TERM",
    signal.SIGTRAP: "TRAP", signal.SIGTSTP: "TSTP", signal.SIGTTIN: "TTIN", signal.SIGTTOU: "TTOU",
    signal.SIGURG: "URG", signal.SIGUSR1: "USR1", signal.SIGUSR2: "USR2", signal.SIGVTALRM: "VTALRM",
    signal.SIGWINCH: "WINCH", signal.SIGXCPU: "XCPU", signal.SIGXFSZ: "XFSZ",
}
# Not forwarded: docker skips CHLD, PIPE and its runtime's URG; KILL/STOP cannot be caught;
# synchronous fault signals are left to Python.
_NOT_FORWARDED = {
    signal.SIGCHLD, signal.SIGPIPE, signal.SIGURG, signal.SIGKILL, signal.SIGSTOP,
    signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP,
}
FORWARDED = sorted(s for s in _NAMES if s not in _NOT_FORWARDED)


class SignalRouter:
    """Installs handlers that queue signals for a worker thread; ``close()`` restores."""

    def __init__(self) -> None:
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._actions: dict[int, list[Callable[[int], None]]] = {}
        self._saved: dict[int, Any] = {}
        self._worker: threading.Thread | None = None

    def on(self, signum: int, action: Callable[[int], None]) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # handlers can only be set from the main thread (in-process tests)
        self._actions.setdefault(signum, []).append(action)
        if signum not in self._saved:
            try:
                self._saved[signum] = signal.signal(signum, self._handle)
            except (OSError, ValueError):
                self._actions.pop(signum, None)
                return
        if self._worker is None:
            self._worker = threading.Thread(target=self._run, name="signals", daemon=True)
            self._worker.start()

    def _handle(self, signum: int, frame: Any) -> None:
        self._queue.put(signum)

    def _run(self) -> None:
        while True:
            signum = self._queue.get()
            if signum is None:
                return
            for action in list(self._actions.get(signum, ())):
                try:
                    action(signum)
                except Exception:  # as docker: a failed forward is only logged (debug)
                    pass

    def close(self) -> None:
        for signum, previous in self._saved.items():
            try:
                signal.signal(signum, previous)
            except (OSError, ValueError):
                pass
        self._saved.clear()
        if self._worker is not None:
            self._queue.put(None)


def forward_signals(router: SignalRouter, client: Any, container_id: str) -> None:
    """docker's ForwardAllSignals: every signal the CLI gets is sent to the container."""

    def send(signum: int) -> None:
        client.kill_container(container_id, _NAMES[signum])

    for signum in FORWARDED:
        router.on(signum, send)


def monitor_tty_size(router: SignalRouter, resize: Callable[[int, int], None], size: Callable[[], tuple[int, int]], err: Any) -> None:
    """docker's MonitorTtySize: resize now (retrying a few times: the process may not have
    started yet), then on every SIGWINCH."""

    def resize_now() -> bool:
        height, width = size()
        if height == 0 and width == 0:
            return True
        try:
            resize(height, width)
            return True
        except Exception:
            return False

    if not resize_now():

        def retry() -> None:
            for attempt in range(10):
                time.sleep((attempt + 1) * 0.01)
                if resize_now():
                    return
            try:
                err.write("failed to resize tty, using default size\n")
                err.flush()
            except (OSError, ValueError):
                pass

        threading.Thread(target=retry, name="resize-retry", daemon=True).start()
    router.on(signal.SIGWINCH, lambda _signum: resize_now())
