"""``exec``: create an exec instance, start it attached (hijack) or detached, and exit with
the process's status (docker's RunExec)."""

from __future__ import annotations

import queue
from typing import Any

from berth.cli.command import StatusError


def exec_body(cli: Any, opts: Any, command: list[str]) -> dict:
    """docker's parseExec -> the ExecOptions JSON (its field order)."""
    from berth.cli.opts.kvfile import read_env

    try:
        env = read_env(list(opts.env_file), list(opts.env))
    except ValueError as e:
        raise StatusError(str(e), 1) from None
    detach_keys = opts.detach_keys or (cli.config_file().data.get("detachKeys") or "")
    return {
        "User": opts.user,
        "Privileged": opts.privileged,
        "Tty": opts.tty,
        "AttachStdin": bool(opts.interactive and not opts.detach),
        "AttachStderr": not opts.detach,
        "AttachStdout": not opts.detach,
        "Detach": opts.detach,
        "DetachKeys": detach_keys,
        "Env": env or None,
        "WorkingDir": opts.workdir,
        "Cmd": list(command),
    }


def _with_console_size(body: dict, size: list[int]) -> dict:
    out: dict = {}
    for key, value in body.items():
        out[key] = value
        if key == "Tty":
            out["ConsoleSize"] = size
    return out


def run_exec(cli: Any, opts: Any, ref: str, command: list[str]) -> int:
    from berth.cli.containers.run import check_tty, start_streamer
    from berth.cli.escape import EscapeError
    from berth.cli.signals import SignalRouter, monitor_tty_size
    from berth.cli.terminal import is_terminal, winsize
    from berth.client.errors import ClientError, DaemonConnectionError

    body = exec_body(cli, opts, command)
    client = cli.client()
    client.inspect_container(ref)
    if not body["Detach"]:
        check_tty(cli, body["AttachStdin"], body["Tty"])
    if body["Tty"]:
        # ConsoleSize is omitted (Go's nil pointer) without a TTY
        body = _with_console_size(body, list(winsize(cli.out)))
    created = client.exec_create(ref, body)
    exec_id = created.get("Id", "")
    if not exec_id:
        raise StatusError("exec ID empty", 1)
    start = {"Detach": body["Detach"], "Tty": body["Tty"]}
    if "ConsoleSize" in body:
        start["ConsoleSize"] = body["ConsoleSize"]
    if body["Detach"]:
        client.exec_start(exec_id, start)
        return 0
    conn = client.exec_attach(exec_id, start)
    router = SignalRouter()
    try:
        events: queue.Queue = queue.Queue()
        start_streamer(cli, conn, body, body["DetachKeys"], events)
        if body["Tty"] and is_terminal(cli.inp):
            monitor_tty_size(router, lambda h, w: client.exec_resize(exec_id, h, w), lambda: winsize(cli.out), cli.err)
        _, error = events.get()
        conn.close()
        if error is not None:
            if isinstance(error, EscapeError):
                error = StatusError("read escape sequence", 1)
            raise error
    finally:
        router.close()
    try:
        inspected = client.exec_inspect(exec_id)
    except DaemonConnectionError:
        raise StatusError("", -1 & 0xFF) from None
    except ClientError:
        raise
    code = int(inspected.get("ExitCode") or 0)
    if code != 0:
        raise StatusError("", code)
    return 0
