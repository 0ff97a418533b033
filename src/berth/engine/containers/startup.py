"""A container's start, as one conversation with its new shim (runs in a worker thread).

The shim is forked first, and the bundle (rootfs mount, spec) is written while it starts
up. ``runc run`` takes most of a start (25-35 ms here), and the shim can take requests while
it runs: the daemon binds the shim's socket itself (``shim.launch_shim``), so what the start
needs is sent at once and waits for the shim there. In order: the streams of clients that
attached before the start (each registered before anything else, so none misses the first
byte of output), the wait for the container's exit (the monitor's, told as soon as the shim
knows), then ``start``, which the shim answers once runc has created the container. The
launch line (runc's result) is read last: a start costs no round trip after runc.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from berth.runtime import shim as shimlib

# stdin, stdout, stderr of one attached client
Attach = tuple[bool, bool, bool]


@dataclass
class Started:
    client: shimlib.ShimClient
    info: dict[str, Any] = field(default_factory=dict)       # pid, started_at
    streams: list[Any] = field(default_factory=list)         # ShimStream or the exception
    exit_wait: shimlib.PendingExit | None = None

    def close(self) -> None:
        """Drop what the start opened (after a failure)."""
        for stream in self.streams:
            if not isinstance(stream, Exception):
                stream.close()
        if self.exit_wait is not None:
            self.exit_wait.close()


def launch_and_start(state: str, options: shimlib.ShimOptions, spawner: shimlib.ShimSpawner,
                     write_bundle: Callable[[], None], attaches: list[Attach], stdin_once: bool,
                     wait_exit: bool, end_shim: Callable[[shimlib.ShimClient], None]) -> Started:
    """Launch the shim of ``state`` and start its container; raises what ``start_shim``
    raises for a create that fails. ``write_bundle`` runs while the shim starts up. After a
    failure past the create, ``end_shim`` kills what runs already."""
    launch = shimlib.launch_shim(state, options, spawner=spawner, write_bundle=write_bundle)
    started = Started(launch.client)
    start = None
    try:
        try:
            started.streams = [attach(launch.client, a, stdin_once) for a in attaches]
            if wait_exit:
                started.exit_wait = launch.client.request_wait_exited()
            start = launch.client.request_start()
        except shimlib.ShimGone:
            launch.result()  # the shim quit (its create failed): its launch line says why
            raise
        launch.result()
        started.info = start.result()
    except BaseException:
        started.close()
        if start is not None:
            start.close()
        if launch.created():
            end_shim(launch.client)
        raise
    return started


def attach(client: shimlib.ShimClient, wanted: Attach, stdin_once: bool) -> Any:
    """A stream of the container's stdio for one client, or why there is none."""
    stdin, stdout, stderr = wanted
    try:
        return client.attach(stdin, stdout, stderr, stdin_once)
    except Exception as exc:  # noqa: BLE001 - handed to that client
        return exc
