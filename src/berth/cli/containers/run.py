"""``create`` and ``run``: the create request (pulling a missing image first), then for run
docker's order -- attach (hijack) before start, register the wait before start, start,
stream until the output ends, exit with the container's status.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

from berth.cli.command import PROG, StatusError
from berth.cli.containers.createopts import (
    build_request,
    env_with_proxies,
    localhost_dns_warning,
    proxy_settings,
    validate_pull,
)


def with_help(message: str, command: str) -> str:
    return f"{PROG}: {message}\n\nRun '{PROG} {command} --help' for more information"


def to_status_error(error: BaseException) -> StatusError:
    """docker's toStatusError: 127 for a missing executable, 126 for one that cannot run,
    125 for everything else the daemon refused."""
    text = str(error)
    if "executable file not found" in text or "no such file or directory" in text or "system cannot find the file specified" in text:
        status = 127
    elif "permission denied" in text or "is a directory" in text:
        status = 126
    else:
        status = 125
    return StatusError(with_help(text, "run"), status)


def parse_request(cli: Any, opts: Any, args: list[str], command: str) -> dict:
    """Flags -> create request; docker's usage errors (status 125) on bad values."""
    try:
        validate_pull(opts.pull)
        proxies = proxy_settings(cli.config_file().data, cli.endpoint().host)
        env = env_with_proxies(list(opts.env), proxies)
        return build_request(opts, args[0], args[1:], env=env, server_os="linux")
    except ValueError as e:
        raise StatusError(with_help(str(e), command), 125) from None


# -- create ---------------------------------------------------------------------------------------


class CIDFile:
    """``--cidfile``: refuse an existing file, write the ID, remove the file if no ID came."""

    def __init__(self, path: str):
        self.path = path
        self.written = False
        self.file = None
        if not path:
            return
        if os.path.exists(path):
            raise StatusError(
                f"container ID file found, make sure the other container isn't running or delete {path}", 1
            )
        try:
            self.file = open(path, "w")
        except OSError as e:
            raise StatusError(f"failed to create the container ID file: open {path}: {(e.strerror or '').lower()}", 1) from None

    def write(self, cid: str) -> None:
        if self.file is not None:
            self.file.write(cid)
            self.file.flush()
            self.written = True

    def close(self) -> None:
        if self.file is None:
            return
        self.file.close()
        if not self.written:
            try:
                os.remove(self.path)
            except OSError:
                pass


def pull_image(cli: Any, image: str, platform: str, quiet: bool) -> None:
    """docker's pullImage (for create/run): progress to stderr unless quiet."""
    from berth.cli.images.pull import pull_reference

    pull_reference(cli, image, platform=platform, out=None if quiet else cli.err)


def create_container(cli: Any, request: dict, *, name: str, pull: str, quiet: bool, platform: str) -> str:
    from berth.client.errors import NotFound
    from berth.distribution import reference

    client = cli.client()
    image = request["Image"]
    cid = CIDFile(request["HostConfig"].get("ContainerIDFile", ""))
    try:
        try:
            ref = reference.parse_any_reference(image)
        except reference.ReferenceError as e:
            raise StatusError(str(e), 1) from None
        named = reference.tag_name_only(ref) if ref.is_named else None
        if pull == "always":
            pull_image(cli, image, platform, quiet)
        from berth.cli.terminal import is_terminal, winsize

        if is_terminal(cli.out):
            request["HostConfig"]["ConsoleSize"] = list(winsize(cli.out))
        try:
            response = client.create_container(request, name=name, platform=platform.lower())
        except NotFound:
            if named is None or pull != "missing":
                raise
            if not quiet:
                cli.err.write(f"Unable to find image '{reference.familiar_string(named)}' locally\n")
                cli.err.flush()
            pull_image(cli, image, platform, quiet)
            response = client.create_container(request, name=name, platform=platform.lower())
        warnings = list(response.get("Warnings") or [])
        warning = localhost_dns_warning(request["HostConfig"])
        if warning:
            warnings.append(warning)
        for w in warnings:
            cli.err.write(f"WARNING: {w}\n")
        cid.write(response["Id"])
        return response["Id"]
    finally:
        cid.close()


# -- run -------------------------------------------------------------------------------------------


def check_tty(cli: Any, attach_stdin: bool, tty: bool) -> None:
    """docker's In.CheckTty: a TTY for the container needs one here when stdin is attached."""
    from berth.cli.terminal import is_terminal

    if tty and attach_stdin and not is_terminal(cli.inp):
        raise StatusError("the input device is not a TTY", 1)


def detach_keys_for(cli: Any, flag_value: str) -> str:
    return flag_value or (cli.config_file().data.get("detachKeys") or "")


def start_streamer(cli: Any, conn: Any, config: dict, detach_keys: str, events: queue.Queue) -> Any:
    """Run the IO copy in a thread; its end (or error) is queued as ("stream", error)."""
    from berth.cli.attachio import IOStreamer
    from berth.cli.streams import binary, stdin_fd

    tty = bool(config.get("Tty"))
    stdout = binary(cli.out) if config.get("AttachStdout") else None
    stderr = None
    if config.get("AttachStderr"):
        stderr = binary(cli.out) if tty else binary(cli.err)
    streamer = IOStreamer(
        conn,
        stdin_fd=stdin_fd(cli) if config.get("AttachStdin") else None,
        stdout=stdout,
        stderr=stderr,
        tty=tty,
        detach_keys=detach_keys,
        err_text=cli.err,
    )

    def go() -> None:
        try:
            streamer.run()
            events.put(("stream", None))
        except BaseException as e:  # EscapeError (detach) or a stream failure
            events.put(("stream", e))

    threading.Thread(target=go, name="attach", daemon=True).start()
    return streamer


def wait_status(handle: Any) -> tuple[int, str | None]:
    """docker's waitExitOrRemoved result: (status, error to log); 125 when waiting failed."""
    try:
        result = handle.result()
    except Exception as e:
        return 125, f"error waiting for container: {e}"
    error = result.get("Error")
    if isinstance(error, dict) and error.get("Message"):
        return 125, f"Error waiting for container: {error['Message']}"
    return int(result.get("StatusCode", 0)), None


def report_wait(cli: Any, handle: Any) -> int:
    from berth.cli.logline import log_error

    status, message = wait_status(handle)
    if message:
        log_error(cli.err, message)
    return status


def wait_in_background(handle: Any, events: queue.Queue) -> None:
    def go() -> None:
        events.put(("status", wait_status(handle)))

    threading.Thread(target=go, name="wait", daemon=True).start()


def run(cli: Any, opts: Any, args: list[str]) -> int:
    from berth.cli.escape import EscapeError
    from berth.cli.signals import SignalRouter, forward_signals, monitor_tty_size
    from berth.cli.terminal import is_terminal, winsize
    from berth.client.errors import APIError, ClientError

    config = parse_request(cli, opts, args, "run")  # the request: Config fields + HostConfig...
    if not opts.detach:
        check_tty(cli, bool(config["AttachStdin"]), bool(config["Tty"]))
    else:
        if opts.attach:
            raise StatusError("conflicting options: cannot specify both --attach and --detach", 1)
        config["AttachStdin"] = config["AttachStdout"] = config["AttachStderr"] = False
        config["StdinOnce"] = False

    try:
        cid = create_container(cli, config, name=opts.name, pull=opts.pull, quiet=opts.quiet, platform=opts.platform)
    except (StatusError, ClientError) as e:
        raise to_status_error(e) from None

    client = cli.client()
    router = SignalRouter()
    try:
        if opts.sig_proxy:
            forward_signals(router, client, cid)
        attach = bool(config["AttachStdin"] or config["AttachStdout"] or config["AttachStderr"])
        events: queue.Queue = queue.Queue()
        conn = None
        if not attach:
            cli.out.write(cid + "\n")
            cli.out.flush()
        else:
            conn = client.attach_container(
                cid,
                stdin=bool(config["AttachStdin"]),
                stdout=bool(config["AttachStdout"]),
                stderr=bool(config["AttachStderr"]),
                detach_keys=detach_keys_for(cli, opts.detach_keys),
            )
            start_streamer(cli, conn, config, detach_keys_for(cli, opts.detach_keys), events)
        wait = client.wait_container_start(cid, "removed" if opts.rm else "next-exit")
        try:
            client.start_container(cid)
        except APIError as e:
            if conn is not None:
                conn.close()
            if opts.rm:
                report_wait(cli, wait)
            else:
                wait.close()
            raise to_status_error(e) from None
        if not attach:
            wait.close()
            return 0
        wait_in_background(wait, events)
        if config["Tty"] and is_terminal(cli.out):
            monitor_tty_size(
                router,
                lambda h, w: client.resize_container(cid, h, w),
                lambda: winsize(cli.out),
                cli.err,
            )
        return _finish(cli, config, events, conn, EscapeError)
    finally:
        router.close()


def _finish(cli: Any, config: dict, events: queue.Queue, conn: Any, escape: type) -> int:
    """docker's select on (stream done, container status)."""
    status: tuple[int, str | None] | None = None
    while True:
        kind, value = events.get()
        if kind == "stream":
            if value is not None:
                if isinstance(value, escape):
                    return 0  # detached: the container goes on
                raise value
            if status is None:
                while True:
                    kind, value = events.get()
                    if kind == "status":
                        status = value
                        break
            break
        if kind == "status":
            status = value
            if not config["AttachStdout"] and not config["AttachStderr"]:
                conn.close()
            # the output may still be flowing: wait for the stream to end
            while True:
                kind, value = events.get()
                if kind == "stream":
                    break
            break
    code, message = status
    if message:
        from berth.cli.logline import log_error

        log_error(cli.err, message)
    if code != 0:
        raise StatusError("", code)
    return 0
