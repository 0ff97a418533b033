"""The build cache's records (berth.builder.cache)."""

from __future__ import annotations

import time

import pytest

from berth.builder.cache import CACHE_MOUNT, REGULAR, BuildCache, CacheRecord, select_for_prune, step_key
from berth.errors import InvalidParameter


def test_step_key_depends_on_everything_that_makes_the_step():
    base = step_key("sha256:p", "/bin/sh -c echo", {"config": {"Env": ["A=1"]}})
    assert base == step_key("sha256:p", "/bin/sh -c echo", {"config": {"Env": ["A=1"]}})
    assert base != step_key("sha256:q", "/bin/sh -c echo", {"config": {"Env": ["A=1"]}})
    assert base != step_key("sha256:p", "|1 A=2 /bin/sh -c echo", {"config": {"Env": ["A=1"]}})
    assert base != step_key("sha256:p", "/bin/sh -c echo", {"config": {"Env": ["A=2"]}})


def test_records_survive_a_reopen(tmp_path):
    cache = BuildCache(str(tmp_path))
    cache.record("k1", "sha256:img", "COPY file:abc in /", "")
    cache.hit("k1")
    cache.close()
    again = BuildCache(str(tmp_path))
    assert again.lookup("k1") == "sha256:img"
    [record] = again.steps()
    assert (record.type, record.usage_count, record.description) == (REGULAR, 2, "COPY file:abc in /")
    again.forget("k1")
    assert again.lookup("k1") is None
    again.close()


def test_in_use_while_held(tmp_path):
    cache = BuildCache(str(tmp_path))
    cache.record("k", "sha256:i", "d")
    cache.hold("k")
    assert cache.steps()[0].in_use
    cache.release("k")
    assert not cache.steps()[0].in_use
    cache.close()


def test_cache_mount_directories(tmp_path):
    cache = BuildCache(str(tmp_path))
    path = cache.mount_dir("pip", 'cached mount /root/.cache with id "pip"')
    assert path == cache.mount_dir("pip", "again")
    with open(path + "/f", "wb") as handle:
        handle.write(b"x" * 10000)
    [record] = cache.mounts()
    assert record.type == CACHE_MOUNT and record.size >= 10000 and record.usage_count == 2
    cache.remove_mount(record)
    assert cache.mounts() == []
    private = cache.private_mount_dir("pip")
    cache.close()
    BuildCache(str(tmp_path)).close()  # a restart sweeps private copies
    import os
    assert not os.path.exists(private)


def records() -> list[CacheRecord]:
    now = time.time_ns()
    hour = 3600 * 10**9
    return [
        CacheRecord("a" * 64, REGULAR, "RUN x", "sha256:1", created_ns=now - 48 * hour, last_used_ns=now - 48 * hour),
        CacheRecord("b" * 64, REGULAR, "COPY y", "sha256:2", created_ns=now, last_used_ns=now, shared=True),
        CacheRecord("c" * 64, REGULAR, "RUN z", "sha256:3", created_ns=now, last_used_ns=now, in_use=True),
        CacheRecord("mount-d", CACHE_MOUNT, "cached mount /m", created_ns=now, last_used_ns=now),
    ]


def test_prune_selection_follows_buildkit():
    ids = lambda chosen: sorted(r.id[:1] for r in chosen)  # noqa: E731
    assert ids(select_for_prune(records(), False, {})) == ["a", "m"]          # not shared, not in use
    assert ids(select_for_prune(records(), True, {})) == ["a", "b", "m"]      # -a: shared too
    assert ids(select_for_prune(records(), True, {"until": ["24h"]})) == ["a"]
    assert ids(select_for_prune(records(), True, {"type": ["exec.cachemount"]})) == ["m"]
    assert ids(select_for_prune(records(), True, {"description": ["COPY"]})) == ["b"]
    assert ids(select_for_prune(records(), True, {"shared": ["true"]})) == ["b"]
    assert ids(select_for_prune(records(), True, {"id": ["aaa"]})) == ["a"]
    assert ids(select_for_prune(records(), True, {"label": ["x=y"]})) == []   # records have no labels
    assert ids(select_for_prune(records(), True, {"label!": ["x=y"]})) == ["a", "b", "m"]
    with pytest.raises(InvalidParameter, match="filter 'dangling' is not supported"):
        select_for_prune(records(), False, {"dangling": ["true"]})


def test_api_shape():
    record = records()[0]
    record.parent = "f" * 64
    shown = record.to_api()
    assert shown["ID"] == "a" * 25 and shown["Parents"] == ["f" * 25] and shown["Type"] == "regular"
    assert set(shown) == {"ID", "Parent", "Parents", "Type", "Description", "InUse", "Shared", "Size",
                          "CreatedAt", "LastUsedAt", "UsageCount"}
