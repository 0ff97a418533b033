"""``attach`` and ``start -a/-i``: connect the local stdio to a container's streams."""

from __future__ import annotations

import queue
from typing import Any

from berth.cli.command import StatusError


def _check_state(container: dict) -> None:
    state = container.get("State") or {}
    if not state.get("Running"):
        raise StatusError("You cannot attach to a stopped container, start it first", 1)
    if state.get("Paused"):
        raise StatusError("You cannot attach to a paused container, unpause it first", 1)
    if state.get("Restarting"):
        raise StatusError("You cannot attach to a restarting container, wait until it is running", 1)


def attach(cli: Any, opts: Any, ref: str) -> int:
    """docker's RunAttach."""
    from berth.cli.containers.run import check_tty, detach_keys_for, start_streamer
    from berth.cli.escape import EscapeError
    from berth.cli.signals import SignalRouter, forward_signals, monitor_tty_size
    from berth.cli.terminal import is_terminal, winsize
    from berth.client.errors import ClientError

    client = cli.client()
    # the wait is registered first, so an exit while attaching is not missed
    wait = client.wait_container_start(ref)
    try:
        container = client.inspect_container(ref)
        _check_state(container)
        config = container.get("Config") or {}
        tty = bool(config.get("Tty"))
        check_tty(cli, not opts.no_stdin, tty)
        keys = detach_keys_for(cli, opts.detach_keys)
        stdin = not opts.no_stdin and bool(config.get("OpenStdin"))
        router = SignalRouter()
        try:
            if opts.sig_proxy and not tty:
                forward_signals(router, client, container["Id"])
            conn = client.attach_container(ref, stdin=stdin, stdout=True, stderr=True, detach_keys=keys)
            try:
                _check_state(client.inspect_container(ref))
            except StatusError:
                conn.close()
                raise
            if tty and is_terminal(cli.out):
                height, width = winsize(cli.out)
                # docker nudges the size (so the shell redraws its prompt), then sets it
                try:
                    client.resize_container(ref, height + 1, width + 1)
                except ClientError:
                    pass
                monitor_tty_size(router, lambda h, w: client.resize_container(ref, h, w), lambda: winsize(cli.out), cli.err)
            events: queue.Queue = queue.Queue()
            attach_config = {"Tty": tty, "AttachStdin": stdin, "AttachStdout": True, "AttachStderr": True}
            start_streamer(cli, conn, attach_config, keys, events)
            _, error = events.get()
            if error is not None:
                if isinstance(error, EscapeError):
                    wait.close()
                    return 0
                raise error
        finally:
            router.close()
        result = wait.result()
    except BaseException:
        wait.close()
        raise
    if isinstance(result.get("Error"), dict) and result["Error"].get("Message"):
        raise StatusError(result["Error"]["Message"], 1)
    code = int(result.get("StatusCode", 0))
    if code != 0:
        raise StatusError("", code)
    return 0


def start_attached(cli: Any, opts: Any, ref: str) -> int:
    """docker's RunStart with --attach/--interactive."""
    from berth.cli.containers.run import detach_keys_for, start_streamer, wait_in_background
    from berth.cli.escape import EscapeError
    from berth.cli.signals import SignalRouter, forward_signals, monitor_tty_size
    from berth.cli.terminal import is_terminal, winsize
    from berth.client.errors import APIError

    client = cli.client()
    container = client.inspect_container(ref)
    cid = container["Id"]
    config = container.get("Config") or {}
    tty = bool(config.get("Tty"))
    router = SignalRouter()
    try:
        if not tty:
            forward_signals(router, client, cid)
        keys = detach_keys_for(cli, opts.detach_keys)
        stdin = bool(opts.interactive and config.get("OpenStdin"))
        conn = client.attach_container(cid, stdin=stdin, stdout=True, stderr=True, detach_keys=keys)
        events: queue.Queue = queue.Queue()
        attach_config = {"Tty": tty, "AttachStdin": stdin, "AttachStdout": True, "AttachStderr": True}
        start_streamer(cli, conn, attach_config, keys, events)
        auto_remove = bool((container.get("HostConfig") or {}).get("AutoRemove"))
        wait = client.wait_container_start(cid, "removed" if auto_remove else "next-exit")
        try:
            client.start_container(cid)
        except APIError:
            conn.close()
            if auto_remove:
                from berth.cli.containers.run import report_wait

                report_wait(cli, wait)
            else:
                wait.close()
            raise
        if tty and is_terminal(cli.out):
            monitor_tty_size(router, lambda h, w: client.resize_container(cid, h, w), lambda: winsize(cli.out), cli.err)
        kind, error = events.get()
        if error is not None:
            wait.close()
            if isinstance(error, EscapeError):
                return 0
            raise error
        status_events: queue.Queue = queue.Queue()
        wait_in_background(wait, status_events)
        _, (code, message) = status_events.get()
        if message:
            from berth.cli.logline import log_error

            log_error(cli.err, message)
        if code != 0:
            raise StatusError("", code)
        return 0
    finally:
        router.close()

