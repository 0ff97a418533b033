"""Restart policies: ``no``, ``always``, ``unless-stopped``, ``on-failure[:N]``, with Docker's rules.

The decision (pure, below) follows moby's restart manager:

- the back-off delay starts at 100 ms and doubles on each restart, up to one minute; a run of
  10 s or more resets it to 100 ms;
- ``always`` restarts whatever the exit; ``unless-stopped`` unless the user stopped the
  container; ``on-failure`` on a non-zero exit code, at most N times (0: no limit);
- a container the user stopped or killed (its stop signal or SIGKILL) is never restarted
  until it is started again ("exit on next"): that cancels the manager;
- ``docker start`` (and a daemon start) resets RestartCount and the manager.

While it waits, the container is ``restarting`` (State.Running and State.Restarting true, no
Pid); ``die`` is emitted for the exit and ``start`` when it runs again, as dockerd does.

:class:`RestartManager` is an observer of the container lifecycle (``on_exit``/``on_remove``),
is told when the user stops, kills or starts a container, and starts a container again
through the ``start`` it is given.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from berth.engine.containers.observers import LifecycleObserver
from berth.engine.containers.record import Container
from berth.engine.containers.records import ContainerRecords
from berth.engine.containers.waits import ExitWaits
from berth.errors import InvalidParameter
from berth.timeutil import parse_time_value

log = logging.getLogger("berth.restart")

DEFAULT_DELAY = 0.1      # seconds
MAX_DELAY = 60.0
BACKOFF_MULTIPLIER = 2
RESET_AFTER = 10.0       # a run this long resets the back-off


@dataclass(frozen=True)
class Policy:
    name: str = "no"
    maximum_retry_count: int = 0

    @classmethod
    def of(cls, host_config: dict[str, Any]) -> "Policy":
        policy = host_config.get("RestartPolicy") or {}
        return cls(policy.get("Name") or "no", int(policy.get("MaximumRetryCount") or 0))

    @property
    def is_none(self) -> bool:
        return self.name in ("no", "")


def validate_policy(policy: Any) -> tuple[str, int]:
    """moby's ValidateRestartPolicy, with its texts; returns (name, retries)."""
    if policy is None:
        return "", 0
    if not isinstance(policy, dict):
        raise InvalidParameter("invalid restart policy")
    name = policy.get("Name") or ""
    try:
        retries = int(policy.get("MaximumRetryCount") or 0)
    except (TypeError, ValueError):
        raise InvalidParameter("invalid restart policy: invalid maximum retry count") from None
    if name in ("always", "unless-stopped", "no"):
        if retries != 0:
            message = "invalid restart policy: maximum retry count can only be used with 'on-failure'"
            if retries < 0:
                message += " and cannot be negative"
            raise InvalidParameter(message)
    elif name == "on-failure":
        if retries < 0:
            raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    elif name != "":
        raise InvalidParameter(f"invalid restart policy: unknown policy '{name}'; use one of "
                               "'no', 'always', 'on-failure', or 'unless-stopped'")
    return name, retries


def next_delay(previous: float, ran_for: float) -> float:
    """The wait before the next restart, given the last one and how long the run lasted."""
    if ran_for >= RESET_AFTER:
        previous = 0.0
    if previous == 0.0:
        delay = DEFAULT_DELAY
    elif previous < MAX_DELAY:
        delay = previous * BACKOFF_MULTIPLIER
    else:
        delay = previous
    return min(delay, MAX_DELAY)


def should_restart(policy: Policy, exit_code: int, manually_stopped: bool,
                   restart_count: int) -> bool:
    """moby's decision (before the manager's cancel flag and the daemon shutdown)."""
    if policy.is_none:
        return False
    if policy.name == "always":
        return True
    if policy.name == "unless-stopped":
        return not manually_stopped
    if policy.name == "on-failure":
        limit = policy.maximum_retry_count
        if limit == 0 or restart_count < limit:
            return exit_code != 0
    return False


def run_seconds(container: Container) -> float:
    """How long the last run lasted (FinishedAt - StartedAt); 0 when unknown."""
    started, finished = container.state.get("StartedAt"), container.state.get("FinishedAt")
    if not started or not finished or started.startswith("0001-") or finished.startswith("0001-"):
        return 0.0
    try:
        return max(0.0, (parse_time_value(finished) - parse_time_value(started)) / 1e9)
    except InvalidParameter:
        return 0.0


class RestartManager(LifecycleObserver):
    """Applies each container's restart policy when it exits (an observer of the service)."""

    def __init__(self, records: ContainerRecords, waits: ExitWaits,
                 start: Callable[[Container], Awaitable[None]]):
        self.records = records
        self.waits = waits
        self._start = start
        self._shutting_down = False                # a daemon going down restarts nothing
        self._delays: dict[str, float] = {}
        self._canceled: set[str] = set()          # "exit on next": stopped or killed by the user
        self._pending: dict[str, asyncio.Task] = {}

    # -- called by the service -------------------------------------------------------------
    def reset(self, container_id: str) -> None:
        """A user (or daemon) start: a fresh manager, as dockerd's ResetRestartManager."""
        self._canceled.discard(container_id)
        self._delays.pop(container_id, None)

    def exit_on_next(self, container_id: str) -> None:
        """The user stopped or killed the container: do not restart it (moby ExitOnNext)."""
        self._canceled.add(container_id)

    def is_pending(self, container_id: str) -> bool:
        return container_id in self._pending

    def cancel(self, container: Container) -> bool:
        """Stop waiting to restart ``container``; it becomes ``exited`` with the code of its
        last run. True if it was restarting."""
        self._canceled.add(container.id)
        task = self._pending.pop(container.id, None)
        if task is not None:
            task.cancel()
        if not container.restarting:
            return False
        container.set_stopped(int(container.state.get("ExitCode") or 0),
                              container.state.get("FinishedAt"),
                              oom_killed=bool(container.state.get("OOMKilled")),
                              error=container.state.get("Error") or "")
        self.records.save(container)
        self.waits.exited(container.id)  # `docker wait` on a restarting container ends here
        return True

    # -- observer ----------------------------------------------------------------------------
    def on_exit(self, container: Container) -> None:
        if container.id not in self.records or container.removal_in_progress:
            return
        if container.running:  # already started again by someone else
            return
        policy = Policy.of(container.host_config)
        if policy.is_none:
            return
        delay = next_delay(self._delays.get(container.id, 0.0), run_seconds(container))
        self._delays[container.id] = delay
        if self._shutting_down or container.id in self._canceled:
            return
        code = int(container.state.get("ExitCode") or 0)
        if not should_restart(policy, code, container.has_been_manually_stopped,
                              container.restart_count):
            return
        container.restart_count += 1
        container.set_restarting(code, container.state.get("FinishedAt"))
        self.records.save(container)
        log.info("restarting container %s (policy %s, count %d, in %.1fs)", container.id[:12],
                 policy.name, container.restart_count, delay)
        self._pending[container.id] = asyncio.ensure_future(self._restart_after(container, delay))

    def on_remove(self, container: Container) -> None:
        task = self._pending.pop(container.id, None)
        if task is not None:
            task.cancel()
        self._delays.pop(container.id, None)
        self._canceled.discard(container.id)

    async def _restart_after(self, container: Container, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            return
        if self._pending.get(container.id) is not asyncio.current_task():
            return
        self._pending.pop(container.id, None)
        try:
            await self._start(container)
        except Exception:  # noqa: BLE001 - logged; the container is left exited
            log.exception("restarting %s failed", container.id[:12])

    async def shutdown(self) -> None:
        """Daemon exit: forget pending restarts (the record stays ``restarting``; the next
        daemon decides from it) and start no more."""
        self._shutting_down = True
        tasks = list(self._pending.values())
        self._pending.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
