"""Copy between the local stdio and a hijacked attach/exec connection (docker's
hijackedIOStreamer).

- output: with a TTY the stream is raw and goes to stdout; without, it is framed and split
  to stdout/stderr;
- input: stdin is copied to the connection; its EOF half-closes the connection (the
  container sees EOF); with a TTY, stdin is put in raw mode and the detach keys are watched
  for (on a match: ``EscapeError``, nothing of the sequence is sent);
- it ends when the output ends, or stdin ends and there is no output to wait for, or on
  detach. The terminal is restored as soon as the output ends.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any, BinaryIO

from berth.cli.escape import DEFAULT_KEYS, EscapeError, EscapeProxy, to_bytes
from berth.cli.terminal import RawMode

_CHUNK = 32 * 1024


def _writer(stream: BinaryIO | None):
    if stream is None:
        return None

    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()

    return write


class IOStreamer:
    def __init__(
        self,
        conn: Any,
        *,
        stdin_fd: int | None,
        stdout: BinaryIO | None,
        stderr: BinaryIO | None,
        tty: bool,
        detach_keys: str = "",
        err_text: Any = None,
    ):
        self.conn = conn
        self.stdin_fd = stdin_fd
        self.stdout = stdout
        self.stderr = stderr
        self.tty = tty
        self.detach_keys = detach_keys
        self.err_text = err_text  # for docker's warning about bad detach keys
        self._events: queue.Queue[tuple[str, BaseException | None]] = queue.Queue()
        self._raw: RawMode | None = None

    # -- setup ------------------------------------------------------------------------------
    def _escape_keys(self) -> bytes:
        if not self.detach_keys:
            return DEFAULT_KEYS
        try:
            return to_bytes(self.detach_keys)
        except ValueError as e:
            if self.err_text is not None:
                self.err_text.write(f"invalid detach escape keys, using default: {e}\n")
            return DEFAULT_KEYS

    def _setup_input(self) -> EscapeProxy | None:
        if self.stdin_fd is None or not self.tty:
            return None
        if os.isatty(self.stdin_fd):
            self._raw = RawMode(self.stdin_fd).enter()
        return EscapeProxy(self._escape_keys())

    def restore(self) -> None:
        if self._raw is not None:
            self._raw.restore()

    # -- the two directions -------------------------------------------------------------------
    def _output(self) -> None:
        error: BaseException | None = None
        try:
            if self.tty:
                write = _writer(self.stdout)
                while True:
                    data = self.conn.recv(_CHUNK)
                    if not data:
                        break
                    if write is not None:
                        write(data)
                self.restore()  # as soon as possible, so what follows prints normally
            else:
                from berth.client.stdcopy import copy_frames

                copy_frames(self._chunks(), _writer(self.stdout), _writer(self.stderr))
        except OSError as e:
            error = None if self.conn_closed() else e
        except Exception as e:  # a frame error, a daemon error on stream 3
            error = e
        self._events.put(("output", error))

    def conn_closed(self) -> bool:
        return bool(getattr(self.conn, "closed", False))

    def _chunks(self):
        while True:
            data = self.conn.recv(_CHUNK)
            if not data:
                return
            yield data

    def _input(self, proxy: EscapeProxy | None) -> None:
        if self.stdin_fd is not None:
            try:
                while True:
                    data = os.read(self.stdin_fd, _CHUNK)
                    if not data:
                        break
                    if proxy is not None:
                        try:
                            data = proxy.feed(data)
                        except EscapeError as e:
                            before = e.args[0] if e.args else b""
                            if before:
                                self.conn.sendall(before)
                            self.restore()
                            self._events.put(("detached", EscapeError()))
                            return
                    if data:
                        self.conn.sendall(data)
            except OSError:
                pass  # the connection went away: the output side reports it
            self.restore()
        try:
            self.conn.shutdown_write()
        except OSError:
            pass
        self._events.put(("input", None))

    # -- running ------------------------------------------------------------------------------
    def run(self) -> None:
        """Block until done; raises EscapeError on detach, or the output's error."""
        proxy = self._setup_input()
        try:
            has_output = self.stdout is not None or self.stderr is not None
            if has_output:
                threading.Thread(target=self._output, name="attach-output", daemon=True).start()
            threading.Thread(target=self._input, args=(proxy,), name="attach-input", daemon=True).start()
            while True:
                kind, error = self._events.get()
                if kind == "output":
                    if error is not None:
                        raise error
                    return
                if kind == "detached":
                    raise EscapeError()
                if kind == "input" and not has_output:
                    return
        finally:
            self.restore()
