import asyncio

import pytest

from berth.engine.events import Event, EventBus, EventFilter
from berth.errors import InvalidParameter
from berth.timeutil import parse_duration_ns, parse_time_value, rfc3339_nano


def event(type="container", action="start", actor="abc123", **attrs):
    return Event(type, action, actor, attrs)


@pytest.mark.parametrize("filters,matches", [
    ({"type": ["container"]}, True),
    ({"type": ["image"]}, False),
    ({"event": ["start", "die"]}, True),
    ({"container": ["web"]}, True),
    ({"container": ["abc"]}, True),   # ID prefix
    ({"container": ["db"]}, False),
    ({"image": ["busybox"]}, True),   # container events match on their image
    ({"label": ["tier=front"]}, True),
    ({"label": ["tier"]}, True),
    ({"label": ["tier=back"]}, False),
])
def test_event_filters(filters, matches):
    e = event(name="web", image="busybox", tier="front")
    assert EventFilter(filters).matches(e) is matches


def test_action_prefix_matches_exec_start_and_health():
    assert EventFilter({"event": ["exec_start"]}).matches(event(action="exec_start: sh -c true"))
    assert EventFilter({"event": ["health_status"]}).matches(event(action="health_status: healthy"))


def test_event_json_has_legacy_fields():
    data = event(image="busybox", name="web").to_json()
    assert data["status"] == "start" and data["id"] == "abc123" and data["from"] == "busybox"
    assert data["Actor"]["Attributes"]["name"] == "web"
    assert data["time"] == data["timeNano"] // 10**9
    # moby's events.Message field order (`docker events --format '{{json .}}'` prints it)
    assert list(data) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time",
                          "timeNano"]


def test_subscribe_replays_history_then_streams_live():
    async def scenario():
        bus = EventBus()
        bus.bind_loop(asyncio.get_running_loop())
        first = bus.publish("container", "create", "a")
        stream = bus.subscribe(first.time_nano, None, EventFilter({}))
        got = [await stream.__anext__()]
        bus.publish("container", "start", "a")
        got.append(await asyncio.wait_for(stream.__anext__(), 2))
        await stream.aclose()
        return [e.action for e in got], bus.listener_count

    actions, listeners = asyncio.run(scenario())
    assert actions == ["create", "start"] and listeners == 0


def test_until_in_the_past_ends_stream():
    async def scenario():
        bus = EventBus()
        bus.publish("image", "tag", "x")
        return [e async for e in bus.subscribe(0, 1, EventFilter({}))]
    assert asyncio.run(scenario()) == []


def test_time_values():
    assert parse_time_value("1700000000") == 1700000000 * 10**9
    assert parse_time_value("1700000000.5") == 1700000000_500000000
    assert parse_time_value("2023-11-14T22:13:20Z") == 1700000000 * 10**9
    assert parse_time_value("2023-11-14T23:13:20+01:00") == 1700000000 * 10**9
    assert parse_time_value("10m", now_ns=10**12) == 10**12 - 600 * 10**9
    assert parse_duration_ns("1h30m") == 5400 * 10**9
    assert parse_duration_ns("abc") is None
    with pytest.raises(InvalidParameter, match="failed to parse value as time or duration"):
        parse_time_value("yesterday")
    assert rfc3339_nano(1700000000_000000001) == "2023-11-14T22:13:20.000000001Z"
