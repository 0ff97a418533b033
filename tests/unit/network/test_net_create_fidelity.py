"""Network create as dockerd answers it, on a real store with the host side faked: duplicate
names before API 1.44 (CheckDuplicate false), databases whose names were UNIQUE, and IPAM
``Options`` kept as given (null when none were)."""

from __future__ import annotations

import asyncio
import json

import pytest

from berth.engine.store import Store
from berth.errors import Conflict, InvalidParameter
from test_net_engine import make_service


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTH_DNS_UPSTREAMS", "127.0.0.1:53535")
    store = Store(str(tmp_path / "berth.db"))
    svc = make_service(tmp_path, store)
    made = []
    monkeypatch.setattr(svc.host, "ensure_network_sync", lambda net: made.append(net.name))
    monkeypatch.setattr(svc.host, "bridge_exists_sync", lambda name: False)
    monkeypatch.setattr(svc.host, "remove_network_sync", lambda net: None)
    svc.made = made
    yield svc
    store.close()


def test_duplicate_names_only_when_the_check_is_off(service, tmp_path):
    async def scenario():
        first = await service.create({"Name": "dup"})
        with pytest.raises(Conflict) as excinfo:
            await service.create({"Name": "dup"})
        assert excinfo.value.message == "network with name dup already exists"
        second = await service.create({"Name": "dup"}, check_duplicate=False)
        return first["Id"], second["Id"]

    first, second = asyncio.run(scenario())
    assert first != second
    with pytest.raises(InvalidParameter) as excinfo:
        service.find("dup")
    assert excinfo.value.message == "network dup is ambiguous (2 matches found on name)"
    assert service.find(second).name == "dup"
    again = make_service(tmp_path, service.store)   # both survive a daemon restart
    assert sorted(n.id for n in again.all() if n.name == "dup") == sorted([first, second])
    asyncio.run(service.remove(first))
    assert service.find("dup").id == second


def test_old_databases_with_unique_names_are_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTH_DNS_UPSTREAMS", "127.0.0.1:53535")
    store = Store(str(tmp_path / "old.db"))
    with store.transaction() as db:
        db.execute("DROP TABLE networks")
        db.execute("CREATE TABLE networks (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)")
        doc = {"id": "a" * 64, "name": "kept", "driver": "bridge", "created": "2026-01-01T00:00:00Z"}
        db.execute("INSERT INTO networks VALUES (?, ?, ?)", (doc["id"], "kept", json.dumps(doc)))
    svc = make_service(tmp_path, store)
    sql = store.query("SELECT sql FROM sqlite_master WHERE name = 'networks'")[0]["sql"]
    assert "UNIQUE" not in sql.upper()
    assert svc.find("kept").id == "a" * 64
    with store.transaction() as db:   # a second row of that name is possible now
        db.execute("INSERT INTO networks VALUES (?, ?, ?)", ("b" * 64, "kept", "{}"))
    store.close()


def test_ipam_options_null_unless_given(service):
    async def scenario():
        plain = await service.create({"Name": "plain"})
        empty = await service.create({"Name": "empty", "IPAM": {"Driver": "default", "Options": {},
                                                                "Config": []}})
        given = await service.create({"Name": "given", "IPAM": {"Options": {"a": "b"}}})
        return [(await service.inspect(n["Id"]))["IPAM"]["Options"] for n in (plain, empty, given)]

    assert asyncio.run(scenario()) == [None, {}, {"a": "b"}]
    assert service.find("plain").ipam_options is None
