"""ContainerRecords, the one owner of container records: lookups as Docker resolves them,
names, persistence across a daemon restart, locks and events."""

from __future__ import annotations

import pytest

from berth.engine.containers.record import Container
from berth.engine.containers.records import ContainerRecords
from berth.engine.events import EventBus, EventFilter
from berth.engine.store import Store
from berth.errors import Conflict, InvalidParameter, NotFound


def container(cid: str, name: str, created: str = "2026-01-01T00:00:00Z") -> Container:
    return Container(id=cid, name=name, created=created, image="busybox",
                     image_id="sha256:" + "b" * 64, config={"Labels": {"a": "1"}},
                     host_config={})


@pytest.fixture
def store(tmp_path):
    made = Store(str(tmp_path / "berth.db"))
    yield made
    made.close()


def test_lookup_by_id_name_and_unique_prefix(store):
    records = ContainerRecords(store, EventBus())
    first = container("ab" + "0" * 62, "web")
    second = container("ac" + "0" * 62, "db")
    for each in (first, second):
        records.add(each)
    assert records.get(first.id) is first
    assert records.get("/web") is first and records.get("db") is second
    assert records.get("ab") is first
    with pytest.raises(InvalidParameter, match="Multiple IDs found with provided prefix: a"):
        records.get("a")
    with pytest.raises(NotFound, match="No such container: nope"):
        records.get("nope")
    assert records.find(first.id) is first and records.find("ab") is None
    assert first.id in records and len(records) == 2


def test_names_are_claimed_once(store):
    records = ContainerRecords(store, EventBus())
    taken = container("a" * 64, "web")
    records.add(taken)
    with pytest.raises(Conflict, match=f'"/web" is already in use by container "{taken.id}"'):
        records.claim_name("web", "b" * 64)
    records.claim_name("web", taken.id)  # its own name
    assert records.generated_name() != "web"


def test_saved_records_come_back_and_deleted_ones_do_not(store):
    records = ContainerRecords(store, EventBus())
    kept, dropped = container("a" * 64, "kept"), container("b" * 64, "dropped")
    for each in (kept, dropped):
        records.add(each)
        records.save(each)
    records.add(container("c" * 64, "never-saved"))
    lock = records.lock(dropped.id)
    assert records.lock(dropped.id) is lock
    records.delete(dropped)
    assert records.lock(dropped.id) is not lock  # the lock went with the record
    again = ContainerRecords(store, EventBus())
    assert [c.name for c in again.all()] == ["kept"]
    assert again.get("kept").to_doc() == kept.to_doc()


def test_all_is_newest_first_and_counts_by_state(store):
    records = ContainerRecords(store, EventBus())
    old = container("a" * 64, "old", "2026-01-01T00:00:00Z")
    new = container("b" * 64, "new", "2026-02-01T00:00:00Z")
    records.add(old)
    records.add(new)
    new.set_running(42)
    assert [c.name for c in records.all()] == ["new", "old"]
    assert records.counts() == {"running": 1, "paused": 0, "stopped": 1}
    records.discard(new.id)
    assert records.ids() == {old.id}


def test_events_carry_labels_image_name_then_extras(store):
    events = EventBus()
    records = ContainerRecords(store, events)
    subject = container("a" * 64, "web")
    records.emit(subject, "kill", signal="9")
    (last,) = events.history(None, None, EventFilter({}))
    assert (last.type, last.action, last.actor_id) == ("container", "kill", subject.id)
    assert list(last.attributes.items()) == [("a", "1"), ("image", "busybox"), ("name", "web"),
                                             ("signal", "9")]
