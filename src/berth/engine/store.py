"""The engine's metadata database: SQLite in WAL mode under the data-root.

Each object kind's module declares its own tables through ``register_schema``; the store
creates them on open. Writes go through ``transaction()`` so a crash leaves either the old or
the new state, never a mix.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from typing import Iterator

_SCHEMAS: list[str] = []


def register_schema(sql: str) -> None:
    """Called at import time by engine modules that own tables (CREATE TABLE IF NOT EXISTS)."""
    _SCHEMAS.append(sql)


class Store:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self.ensure_schemas()

    def ensure_schemas(self) -> None:
        # executescript commits on its own; the statements are idempotent (IF NOT EXISTS).
        with self._lock:
            for sql in _SCHEMAS:
                self._db.executescript(sql)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()
