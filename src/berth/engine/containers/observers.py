"""What follows the lifecycle of containers: restart policies, healthchecks, stats streams and
exec records learn of each start, exit and removal, and of the daemon's shutdown. Each hook
does nothing unless an observer overrides it."""

from __future__ import annotations

from berth.engine.containers.record import Container


class LifecycleObserver:
    def on_start(self, container: Container) -> None:
        """Started, restarted, or followed again after a daemon restart."""

    def on_exit(self, container: Container) -> None:
        """Its exit is recorded (called before the clean-up, under the container's lock)."""

    def on_remove(self, container: Container) -> None:
        """Removed: its record is gone."""

    async def shutdown(self) -> None:
        """The daemon is stopping."""
