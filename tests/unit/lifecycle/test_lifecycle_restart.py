"""Restart policy decisions and back-off (pure), and the manager's state changes."""

import asyncio

import pytest

from berth.engine.containers.record import Container
from berth.engine.containers.waits import ExitWaits
from berth.engine.containers.restart import (DEFAULT_DELAY, MAX_DELAY, Policy, RestartManager,
                                             next_delay, run_seconds, should_restart,
                                             validate_policy)
from berth.errors import InvalidParameter


def test_delay_starts_at_100ms_doubles_and_caps_at_a_minute():
    delays, previous = [], 0.0
    for _ in range(12):
        previous = next_delay(previous, 0.5)
        delays.append(previous)
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == MAX_DELAY and max(delays) == MAX_DELAY


def test_delay_resets_after_ten_seconds_of_running():
    assert next_delay(12.8, 9.99) == 25.6
    assert next_delay(12.8, 10.0) == DEFAULT_DELAY


@pytest.mark.parametrize("policy,code,manual,count,expected", [
    (Policy("no"), 1, False, 0, False),
    (Policy("always"), 0, False, 5, True),
    (Policy("always"), 0, True, 0, True),          # the manager's cancel flag stops these
    (Policy("unless-stopped"), 0, False, 0, True),
    (Policy("unless-stopped"), 1, True, 0, False),
    (Policy("on-failure"), 0, False, 0, False),
    (Policy("on-failure"), 2, False, 99, True),     # no maximum
    (Policy("on-failure", 3), 2, False, 2, True),
    (Policy("on-failure", 3), 2, False, 3, False),
])
def test_should_restart(policy, code, manual, count, expected):
    assert should_restart(policy, code, manual, count) is expected


def test_validate_policy_texts():
    assert validate_policy({"Name": "on-failure", "MaximumRetryCount": 5}) == ("on-failure", 5)
    assert validate_policy({"Name": "", "MaximumRetryCount": 3}) == ("", 3)
    with pytest.raises(InvalidParameter, match="unknown policy 'sometimes'; use one of 'no', "
                                               "'always', 'on-failure', or 'unless-stopped'"):
        validate_policy({"Name": "sometimes"})
    with pytest.raises(InvalidParameter, match="can only be used with 'on-failure'$"):
        validate_policy({"Name": "always", "MaximumRetryCount": 2})
    with pytest.raises(InvalidParameter, match="'on-failure' and cannot be negative"):
        validate_policy({"Name": "no", "MaximumRetryCount": -1})
    with pytest.raises(InvalidParameter, match="maximum retry count cannot be negative"):
        validate_policy({"Name": "on-failure", "MaximumRetryCount": -1})


def _container(policy="always", code=1, started="2026-01-01T00:00:00.000000000Z",
               finished="2026-01-01T00:00:02.500000000Z"):
    c = Container(id="a" * 64, name="c", created="2026-01-01T00:00:00Z", image="busybox",
                  image_id="sha256:" + "b" * 64, config={}, host_config={
                      "RestartPolicy": {"Name": policy, "MaximumRetryCount": 0}})
    c.state.update(Status="exited", ExitCode=code, StartedAt=started, FinishedAt=finished,
                   Running=False)
    c.has_been_started = True
    return c


class FakeRecords:
    """What the restart manager uses of ContainerRecords."""

    def __init__(self, container):
        self.containers = {container.id: container}
        self.saved = 0

    def __contains__(self, container_id):
        return container_id in self.containers

    def save(self, container):
        self.saved += 1


class Lifecycle:
    """The start the manager is given, and its collaborators."""

    def __init__(self, container):
        self.records = FakeRecords(container)
        self.waits = ExitWaits()
        self.started = []

    async def start(self, container):
        self.started.append(container.id)
        container.set_running(42)

    def manager(self):
        return RestartManager(self.records, self.waits, self.start)


def test_run_seconds():
    assert run_seconds(_container()) == pytest.approx(2.5)
    assert run_seconds(_container(started="0001-01-01T00:00:00Z")) == 0.0


def test_manager_marks_restarting_then_starts_after_the_delay():
    async def scenario():
        container = _container("on-failure", code=3)
        service = Lifecycle(container)
        manager = service.manager()
        manager.on_exit(container)
        assert container.restarting and container.running and container.restart_count == 1
        assert container.state["Status"] == "restarting" and container.state["Pid"] == 0
        assert container.human_status().startswith("Restarting (3) ")
        assert manager.is_pending(container.id)
        await asyncio.sleep(DEFAULT_DELAY + 0.1)
        assert service.started == [container.id] and not container.restarting
    asyncio.run(scenario())


def test_manager_cancel_leaves_the_last_exit_and_exit_on_next_prevents_restart():
    async def scenario():
        container = _container("always", code=9)
        service = Lifecycle(container)
        manager = service.manager()
        manager.on_exit(container)
        assert manager.cancel(container) is True
        assert container.state["Status"] == "exited" and container.state["ExitCode"] == 9
        await asyncio.sleep(DEFAULT_DELAY + 0.1)
        assert service.started == []
        # stopped by the user: even `always` is not restarted until a new start resets it
        container.state.update(ExitCode=0)
        manager.exit_on_next(container.id)
        manager.on_exit(container)
        assert not container.restarting
        manager.reset(container.id)
        manager.on_exit(container)
        assert container.restarting
        await manager.shutdown()
        assert not manager.is_pending(container.id)
    asyncio.run(scenario())


def test_manager_does_nothing_while_the_daemon_shuts_down():
    async def scenario():
        container = _container("always")
        manager = Lifecycle(container).manager()
        await manager.shutdown()
        manager.on_exit(container)
        assert not container.restarting and container.restart_count == 0
    asyncio.run(scenario())
