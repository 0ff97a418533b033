"""The build cache: which image a build step made, by a key of what went into it; and the
directories of ``RUN --mount=type=cache``.

A step's key (``step_key``) is a sha256 over: the parent image ID, the step as the image
history records it (the instruction after expansion, with the build args a RUN sees, and for
COPY/ADD the hash of the sources: names, types, permission bits, sizes, link targets and
contents, not times), and what else changes the result (``--chown``/``--chmod``, mounts,
network, the platform). The result is an ordinary image (the step's intermediate image, as
dockerd's classic builder keeps them), so the cache survives daemon restarts with the image
store, and an entry whose image was deleted (``docker rmi``, ``image prune``) is dropped
when next seen.

Records live in ``<root>/cache.db`` (SQLite, WAL), cache mounts in ``<root>/mounts/<n>``.
``docker builder prune`` and ``docker system df`` see them as BuildKit's records:
``regular`` for steps (their size: the step's layer), ``exec.cachemount`` for mounts (their
size: the directory's). A step record is *shared* when its image is still needed by a tagged
image or a container (pruning it frees nothing); a record is *in use* while a build uses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

from berth.errors import InvalidParameter
from berth.timeutil import parse_time_value

REGULAR = "regular"
CACHE_MOUNT = "exec.cachemount"
PRUNE_FILTERS = {"until", "id", "type", "description", "inuse", "shared", "private", "parent",
                 "label", "label!"}


def step_key(parent: str, description: str, extra: dict[str, Any] | None = None) -> str:
    payload = json.dumps({"v": 1, "parent": parent, "step": description, "extra": extra or {}},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class CacheRecord:
    id: str
    type: str
    description: str
    image_id: str = ""
    parent: str = ""
    created_ns: int = 0
    last_used_ns: int = 0
    usage_count: int = 0
    size: int = 0
    in_use: bool = False
    shared: bool = False
    path: str = ""

    def to_api(self) -> dict[str, Any]:
        """The record as ``/system/df`` shows it (BuildKit's BuildCache shape)."""
        from berth.timeutil import rfc3339_nano
        return {
            "ID": self.id[:25] if self.type == REGULAR else self.id,
            "Parent": self.parent[:25] if self.parent else "",
            "Parents": [self.parent[:25]] if self.parent else None,
            "Type": self.type,
            "Description": self.description,
            "InUse": self.in_use,
            "Shared": self.shared,
            "Size": self.size,
            "CreatedAt": rfc3339_nano(self.created_ns),
            "LastUsedAt": rfc3339_nano(self.last_used_ns) if self.last_used_ns else None,
            "UsageCount": self.usage_count,
        }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (
    key          TEXT PRIMARY KEY,
    image_id     TEXT NOT NULL,
    parent_key   TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL,
    created_ns   INTEGER NOT NULL,
    last_used_ns INTEGER NOT NULL,
    usage_count  INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS steps_image ON steps (image_id);
CREATE TABLE IF NOT EXISTS mounts (
    id           TEXT PRIMARY KEY,
    dir          TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_ns   INTEGER NOT NULL,
    last_used_ns INTEGER NOT NULL,
    usage_count  INTEGER NOT NULL DEFAULT 1
);
"""


class BuildCache:
    def __init__(self, root: str):
        self.root = root
        self.mounts_root = os.path.join(root, "mounts")
        os.makedirs(self.mounts_root, mode=0o700, exist_ok=True)
        self._db = sqlite3.connect(os.path.join(root, "cache.db"), check_same_thread=False,
                                   isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._in_use: dict[str, int] = {}          # step keys / mount ids a build holds
        self._mount_locks: dict[str, threading.Lock] = {}
        self._sweep_mounts()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- steps ---------------------------------------------------------------------------
    def lookup(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT image_id FROM steps WHERE key = ?", (key,)).fetchone()
        return row["image_id"] if row else None

    def hit(self, key: str) -> None:
        with self._lock:
            self._db.execute("UPDATE steps SET last_used_ns = ?, usage_count = usage_count + 1 "
                             "WHERE key = ?", (time.time_ns(), key))

    def record(self, key: str, image_id: str, description: str, parent_key: str = "") -> None:
        now = time.time_ns()
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO steps (key, image_id, parent_key, description, "
                             "created_ns, last_used_ns, usage_count) VALUES (?, ?, ?, ?, ?, ?, 1)",
                             (key, image_id, parent_key, description, now, now))

    def forget(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM steps WHERE key = ?", (key,))

    def forget_images(self, image_ids: set[str]) -> None:
        with self._lock:
            for image_id in image_ids:
                self._db.execute("DELETE FROM steps WHERE image_id = ?", (image_id,))

    def steps(self) -> list[CacheRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM steps ORDER BY created_ns").fetchall()
            in_use = dict(self._in_use)
        return [CacheRecord(row["key"], REGULAR, row["description"], row["image_id"],
                            row["parent_key"], row["created_ns"], row["last_used_ns"],
                            row["usage_count"], in_use=row["key"] in in_use) for row in rows]

    @contextlib.contextmanager
    def using(self, key: str) -> Iterator[None]:
        with self._lock:
            self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_use[key] -= 1
                if not self._in_use[key]:
                    del self._in_use[key]

    def hold(self, key: str) -> None:
        with self._lock:
            self._in_use[key] = self._in_use.get(key, 0) + 1

    def release(self, key: str) -> None:
        with self._lock:
            count = self._in_use.get(key, 0) - 1
            if count > 0:
                self._in_use[key] = count
            else:
                self._in_use.pop(key, None)

    # -- cache mounts ----------------------------------------------------------------------
    def mount_dir(self, mount_id: str, description: str) -> str:
        """The directory of cache mount ``mount_id`` (made on first use)."""
        now = time.time_ns()
        with self._lock:
            row = self._db.execute("SELECT dir FROM mounts WHERE id = ?", (mount_id,)).fetchone()
            if row:
                self._db.execute("UPDATE mounts SET last_used_ns = ?, usage_count = usage_count + 1 "
                                 "WHERE id = ?", (now, mount_id))
                path = os.path.join(self.mounts_root, row["dir"])
                os.makedirs(path, mode=0o755, exist_ok=True)
                return path
            name = hashlib.sha256(mount_id.encode()).hexdigest()[:32]
            path = os.path.join(self.mounts_root, name)
            os.makedirs(path, mode=0o755, exist_ok=True)
            self._db.execute("INSERT INTO mounts (id, dir, description, created_ns, last_used_ns) "
                             "VALUES (?, ?, ?, ?, ?)", (mount_id, name, description, now, now))
            return path

    def mount_lock(self, mount_id: str) -> threading.Lock:
        with self._lock:
            return self._mount_locks.setdefault(mount_id, threading.Lock())

    def private_mount_dir(self, mount_id: str) -> str:
        """A throwaway directory for ``sharing=private`` when the shared one is busy."""
        path = os.path.join(self.mounts_root, "private-" + os.urandom(8).hex())
        os.makedirs(path, mode=0o755)
        return path

    def mounts(self) -> list[CacheRecord]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM mounts ORDER BY created_ns").fetchall()
            in_use = dict(self._in_use)
        records = []
        for row in rows:
            path = os.path.join(self.mounts_root, row["dir"])
            records.append(CacheRecord(
                "mount-" + hashlib.sha256(row["id"].encode()).hexdigest()[:19], CACHE_MOUNT,
                row["description"], "", "", row["created_ns"], row["last_used_ns"],
                row["usage_count"], _du(path), in_use=("mount:" + row["id"]) in in_use,
                path=path))
        return records

    def remove_mount(self, record: CacheRecord) -> None:
        with self._lock:
            name = os.path.basename(record.path)
            self._db.execute("DELETE FROM mounts WHERE dir = ?", (name,))
        shutil.rmtree(record.path, ignore_errors=True)

    def _sweep_mounts(self) -> None:
        """Private copies left by a crash go at start."""
        for name in os.listdir(self.mounts_root):
            if name.startswith("private-"):
                shutil.rmtree(os.path.join(self.mounts_root, name), ignore_errors=True)


def _du(path: str) -> int:
    total = 0
    for directory, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                pass
    return total


def check_prune_filters(filters: dict[str, list[str]]) -> None:
    for key in filters:
        if key not in PRUNE_FILTERS:
            raise InvalidParameter(f"filter '{key}' is not supported")


def select_for_prune(records: list[CacheRecord], all_: bool, filters: dict[str, list[str]],
                     now_ns: int | None = None) -> list[CacheRecord]:
    """What ``docker builder prune`` removes (BuildKit's rules): never what is in use;
    without ``all_`` not what is shared; ``until`` (last used before), ``id``, ``type``,
    ``description``, ``inuse``, ``shared``, ``private``, ``parent``; ``label=`` matches no
    record (they have no labels) and ``label!=`` every one, so ``docker system prune
    --filter label=...`` prunes containers, images and networks and leaves the cache."""
    check_prune_filters(filters)
    now_ns = now_ns or time.time_ns()
    until = None
    for value in filters.get("until", []):
        until = parse_time_value(value, "until", now_ns)
    chosen = []
    for record in records:
        if record.in_use:
            continue
        if record.shared and not all_:
            continue
        if until is not None and (record.last_used_ns or record.created_ns) > until:
            continue
        if not _matches(record, filters):
            continue
        chosen.append(record)
    return chosen


def _matches(record: CacheRecord, filters: dict[str, list[str]]) -> bool:
    def any_of(key: str, value: str, prefix: bool = False) -> bool:
        wanted = filters.get(key)
        if not wanted:
            return True
        return any(value.startswith(w) if prefix else value == w for w in wanted)

    if filters.get("label"):
        return False  # cache records carry no labels (`system prune --filter label=...`)
    if not any_of("id", record.id, prefix=True) or not any_of("type", record.type):
        return False
    if filters.get("description") and not any(w in record.description for w in filters["description"]):
        return False
    if not any_of("parent", record.parent, prefix=True):
        return False
    for key, actual in (("inuse", record.in_use), ("shared", record.shared),
                        ("private", not record.shared)):
        values = filters.get(key)
        if values and any(v.lower() in ("", "true", "1") for v in values) != actual:
            return False
    return True
