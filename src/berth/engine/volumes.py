"""Volumes: the engine's volume records, references, per-name locks, filters and events.

Metadata (driver, labels, options, creation time) and container references live in SQLite;
the data lives where the ``local`` driver keeps it, ``<data-root>/volumes/<name>/_data``
(the Mountpoint): creating, mounting, sizing, copy-up and removal on disk are
:mod:`berth.storage.volumes`. Behaviour and error texts follow moby's ``volume/service``
and ``volume/local`` (Docker 28).

Safety rules:
- every create/remove/mount/unmount of a name runs under that name's lock, so a removal racing
  a mount either sees the mount (and refuses) or wins (and the mount then finds no volume);
- a volume referenced by a container, or mounted, is never removed (``force`` only makes a
  missing volume a success, as in Docker);
- removal never crosses a mount point inside the volume directory (the driver checks).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import replace
from typing import Any, Iterable, Iterator, Mapping, Sequence

from berth.engine.mounts import (ANONYMOUS_LABEL, DEFAULT_VOLUME_DRIVER, ORIGIN_BINDS,
                                 ORIGIN_CONFIG_VOLUMES, ORIGIN_MOUNTS, ORIGIN_VOLUMES_FROM,
                                 MountPlan, volume_name_error)
from berth.engine.events import EventBus
from berth.engine.store import Store, register_schema
from berth.errors import BerthError, Conflict, InvalidParameter, NotFound, SystemError_
from berth.goquote import quote as go_quote
from berth.storage.volumes import (LocalVolumeDriver, copy_up, make_bind_source, needs_mount,
                                   refuse_file_target, resolve_subpath, validate_local_options)
from berth.units import go_rfc3339

register_schema("""
CREATE TABLE IF NOT EXISTS volumes (
    name       TEXT PRIMARY KEY,
    driver     TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    labels     TEXT,      -- JSON object, or NULL when the client sent none
    options    TEXT       -- JSON object (driver options), or NULL
);
CREATE TABLE IF NOT EXISTS volume_refs (
    name         TEXT NOT NULL REFERENCES volumes(name) ON DELETE CASCADE,
    container_id TEXT NOT NULL,
    PRIMARY KEY (name, container_id)
);
""")

SCOPE = "local"
KNOWN_DRIVERS = (DEFAULT_VOLUME_DRIVER,)


# -- per-name locks -------------------------------------------------------------------------
class NameLocks:
    """One lock per volume name, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(name, (threading.Lock(), 0))
            self._locks[name] = (lock, users + 1)
        lock.acquire()
        try:
            yield
        finally:
            lock.release()
            with self._guard:
                lock, users = self._locks[name]
                if users == 1:
                    del self._locks[name]
                else:
                    self._locks[name] = (lock, users - 1)


# -- the service ----------------------------------------------------------------------------
class VolumeService:
    """The engine's volumes. Thread-safe; blocking calls (remove, prune, mount, copy-up) are
    meant to run in worker threads."""

    def __init__(self, store: Store, events: EventBus, data_root: str):
        self.store = store
        self.events = events
        self.root = os.path.join(data_root, "volumes")
        self.driver = LocalVolumeDriver(self.root)
        self._locks = NameLocks()
        self._active: dict[str, Counter[str]] = {}   # name -> mount refs (in memory)
        self._mounted: set[str] = set()               # names whose options are mounted
        self._prune_running = threading.Lock()
        self._reconcile()

    # -- paths and records ----------------------------------------------------------------
    def mountpoint(self, name: str) -> str:
        return self.driver.path(name)

    def _row(self, name: str) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM volumes WHERE name = ?", (name,))
        if not rows:
            return None
        row = rows[0]
        return {"name": row["name"], "driver": row["driver"], "created_ns": row["created_ns"],
                "labels": json.loads(row["labels"]) if row["labels"] is not None else None,
                "options": json.loads(row["options"]) if row["options"] is not None else None}

    def _rows(self) -> list[dict[str, Any]]:
        names = [r["name"] for r in self.store.query("SELECT name FROM volumes ORDER BY name")]
        return [row for row in map(self._row, names) if row is not None]

    def _require(self, name: str) -> dict[str, Any]:
        row = self._row(name)
        if row is None:
            raise NotFound(f"get {name}: no such volume")
        return row

    def _to_api(self, row: Mapping[str, Any]) -> dict[str, Any]:
        created = go_rfc3339(row["created_ns"] // 1_000_000_000)
        return {"CreatedAt": created, "Driver": row["driver"],
                "Labels": row["labels"], "Mountpoint": self.mountpoint(row["name"]),
                "Name": row["name"], "Options": row["options"], "Scope": SCOPE}

    def _reconcile(self) -> None:
        """Startup: adopt volume directories the database lacks (as Docker's local driver
        lists what is on disk), drop records whose directory is gone unless a container
        still refers to them, and notice option volumes that are still mounted."""
        on_disk = self.driver.names()
        known = {row["name"]: row for row in self._rows()}
        with self.store.transaction() as db:
            for name in sorted(on_disk - set(known)):
                created = self.driver.created_ns(name)
                db.execute("INSERT INTO volumes (name, driver, created_ns) VALUES (?, ?, ?)",
                           (name, DEFAULT_VOLUME_DRIVER, created))
            for name in sorted(set(known) - on_disk):
                if db.execute("SELECT 1 FROM volume_refs WHERE name = ?", (name,)).fetchone():
                    self.driver.ensure(name)
                else:
                    db.execute("DELETE FROM volumes WHERE name = ?", (name,))
        for name, row in known.items():
            if name in on_disk and needs_mount(row["options"]) and self.driver.is_mounted(name):
                self._mounted.add(name)

    # -- create / get / list ---------------------------------------------------------------
    def create(self, name: str | None = None, driver: str | None = None,
               driver_opts: Mapping[str, str] | None = None,
               labels: Mapping[str, str] | None = None, *, anonymous: bool = False,
               reference: str | None = None) -> dict[str, Any]:
        """``docker volume create``. No name (or ``anonymous``): the anonymous label, and a
        generated name if none is given (as Docker >= 23). An existing name is returned as
        is. ``reference`` (a container id) is added atomically, protecting it from removal."""
        labels = dict(labels) if labels is not None else None
        if not name or anonymous:
            name = name or secrets.token_hex(32)
            labels = dict(labels or {})
            labels[ANONYMOUS_LABEL] = ""
        driver = driver or ""
        with self._locks.hold(name):
            row = self._row(name)
            if driver and driver not in KNOWN_DRIVERS:
                raise NotFound(f"create {name}: error looking up volume plugin {driver}: "
                               f"plugin {go_quote(driver)} not found")
            if row is not None:
                if driver and row["driver"] != driver:
                    raise Conflict(f"create {name}: driver '{row['driver']}' already has volume "
                                   f"'{name}': volume name must be unique")
                if reference:
                    self._add_ref(name, reference)
                return self._to_api(row)
            error = volume_name_error(name)
            if error:
                raise InvalidParameter(f"create {name}: {error}")
            options = dict(driver_opts) if driver_opts is not None else None
            try:
                validate_local_options(options)
            except BerthError as exc:
                raise type(exc)(f"create {name}: {exc.message}") from None
            row = {"name": name, "driver": DEFAULT_VOLUME_DRIVER, "created_ns": time.time_ns(),
                   "labels": labels, "options": options}
            try:
                self.driver.create(name)
            except SystemError_ as exc:
                raise SystemError_(f"create {name}: {exc.message}") from None
            try:
                with self.store.transaction() as db:
                    db.execute("INSERT INTO volumes (name, driver, created_ns, labels, options) "
                               "VALUES (?, ?, ?, ?, ?)",
                               (name, row["driver"], row["created_ns"],
                                None if labels is None else json.dumps(labels),
                                None if options is None else json.dumps(options)))
                    if reference:
                        db.execute("INSERT OR IGNORE INTO volume_refs VALUES (?, ?)",
                                   (name, reference))
            except BaseException:
                self.driver.discard(name)
                raise
        self.events.publish("volume", "create", name, {"driver": row["driver"]})
        return self._to_api(row)

    def get(self, name: str) -> dict[str, Any]:
        return self._to_api(self._require(name))

    def exists(self, name: str) -> bool:
        return self._row(name) is not None

    def list_volumes(self, filters: Mapping[str, Sequence[str]] | None = None
                     ) -> tuple[list[dict[str, Any]], list[str]]:
        """``GET /volumes``: (volumes, warnings). Filters dangling, name, driver, label."""
        filters = {k: list(v) for k, v in (filters or {}).items()}
        _check_filter_keys(filters, ("dangling", "name", "driver", "label"))
        dangling = _bool_filter(filters, "dangling")
        referenced = self._referenced_names()
        out = []
        for row in self._rows():
            if "driver" in filters and filters["driver"] and row["driver"] not in filters["driver"]:
                continue
            if "name" in filters and not _name_matches(filters["name"], row["name"]):
                continue
            if not _labels_match(filters, row["labels"]):
                continue
            if dangling is not None and (row["name"] in referenced) == dangling:
                continue
            out.append(self._to_api(row))
        return out, []

    # -- references ------------------------------------------------------------------------
    def add_reference(self, name: str, container_id: str) -> None:
        """Mark ``name`` used by ``container_id`` (persisted); NotFound if it does not exist."""
        with self._locks.hold(name):
            self._require(name)
            self._add_ref(name, container_id)

    def _add_ref(self, name: str, container_id: str) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO volume_refs VALUES (?, ?)", (name, container_id))

    def remove_reference(self, name: str, container_id: str) -> None:
        """Docker's Release: the container no longer uses the volume (missing is fine)."""
        with self._locks.hold(name):
            with self.store.transaction() as db:
                db.execute("DELETE FROM volume_refs WHERE name = ? AND container_id = ?",
                           (name, container_id))

    def in_use(self, name: str) -> list[str]:
        """Ids of the containers referencing ``name``."""
        rows = self.store.query("SELECT container_id FROM volume_refs WHERE name = ? "
                                "ORDER BY container_id", (name,))
        return [r["container_id"] for r in rows]

    def release_all_but(self, known: set[str]) -> None:
        """After a crash: drop the references of containers that no longer exist, and their
        anonymous volumes once unused (as ``docker rm -v`` would have)."""
        rows = self.store.query("SELECT name, container_id FROM volume_refs")
        for row in rows:
            if row["container_id"] in known:
                continue
            name = row["name"]
            self.remove_reference(name, row["container_id"])
            try:
                labels = self.get(name).get("Labels") or {}
                if ANONYMOUS_LABEL in labels and not self.in_use(name):
                    self.remove(name)
            except BerthError:
                pass

    def _referenced_names(self) -> set[str]:
        return {r["name"] for r in self.store.query("SELECT DISTINCT name FROM volume_refs")}

    # -- remove / prune --------------------------------------------------------------------
    def remove(self, name: str, force: bool = False) -> None:
        """``docker volume rm``. In use -> 409 (``force`` does not override that); missing
        -> 404 unless ``force``."""
        with self._locks.hold(name):
            row = self._row(name)
            if row is None:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            refs = self.in_use(name)
            if refs:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(refs)}]")
            if sum(self._active.get(name, Counter()).values()) > 0:
                raise SystemError_(f"remove {name}: volume has active mounts")
            self._delete_data(name, row)
            with self.store.transaction() as db:
                db.execute("DELETE FROM volumes WHERE name = ?", (name,))
            self._active.pop(name, None)
        self.events.publish("volume", "destroy", name, {"driver": row["driver"]})

    def _delete_data(self, name: str, row: Mapping[str, Any]) -> None:
        if name in self._mounted or (needs_mount(row["options"]) and self.driver.has_mounts(name)):
            self.driver.unmount(name)
            self._mounted.discard(name)
        try:
            self.driver.remove(name)
        except SystemError_ as exc:
            raise SystemError_(f"remove {name}: {exc.message}") from None

    def prune(self, filters: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
        """``POST /volumes/prune``: unused local volumes without driver options; only
        anonymous ones unless the ``all`` filter is true (Docker >= 23)."""
        wanted: dict[str, list[str]] = {k: list(v) for k, v in (filters or {}).items()}
        if not self._prune_running.acquire(blocking=False):
            raise Conflict("a prune operation is already running")
        try:
            _check_filter_keys(wanted, ("label", "label!", "all"))
            if not _prune_all(wanted.get("all")):
                wanted.setdefault("label", []).append(ANONYMOUS_LABEL)
            referenced = self._referenced_names()
            deleted, reclaimed = [], 0
            for row in self._rows():
                if row["driver"] != DEFAULT_VOLUME_DRIVER or row["name"] in referenced:
                    continue
                if row["options"] or not _labels_match(wanted, row["labels"]):
                    continue
                size = self.driver.size(row["name"])
                try:
                    self.remove(row["name"])
                except BerthError:
                    continue  # became used meanwhile, or failed: keep going like Docker
                deleted.append(row["name"])
                reclaimed += size
        finally:
            self._prune_running.release()
        self.events.publish("volume", "prune", "", {"reclaimed": str(reclaimed)})
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    # -- mount / unmount -------------------------------------------------------------------
    def mount(self, name: str, ref: str, *, destination: str = "", read_write: bool = True,
              propagation: str = "", event: bool = True) -> str:
        """Make the volume's data available and count the use; returns the host path.
        Volumes with driver options (type/device) are mounted on first use. ``ref`` is the
        container id (one count per call: pair every mount with an unmount)."""
        with self._locks.hold(name):
            row = self._require(name)
            path = self.mountpoint(name)
            if needs_mount(row["options"]) and name not in self._mounted:
                self.driver.mount(name, row["options"])
                self._mounted.add(name)
            self._active.setdefault(name, Counter())[ref] += 1
        if event:
            self.events.publish("volume", "mount", name, {
                "driver": row["driver"], "container": ref, "destination": destination,
                "read/write": str(bool(read_write)).lower(), "propagation": propagation})
        return path

    def restore_mount(self, name: str, ref: str) -> None:
        """Live-restore: a running container already uses the volume; count it again."""
        with self._locks.hold(name):
            row = self._require(name)
            if needs_mount(row["options"]):
                self._mounted.add(name)
            self._active.setdefault(name, Counter())[ref] += 1

    def unmount(self, name: str, ref: str, *, event: bool = True) -> None:
        """Drop one use; the last one unmounts an option volume. Unknown volume: no-op."""
        with self._locks.hold(name):
            row = self._row(name)
            if row is None:
                return
            uses = self._active.get(name, Counter())
            if uses[ref] <= 0:
                uses.pop(ref, None)
                return  # never mounted for this ref: nothing to undo (Docker logs and goes on)
            uses[ref] -= 1
            if uses[ref] == 0:
                del uses[ref]
            if not uses:
                self._active.pop(name, None)
                if name in self._mounted:
                    self.driver.unmount(name)
                    self._mounted.discard(name)
        if event:
            self.events.publish("volume", "unmount", name,
                                {"driver": row["driver"], "container": ref})

    def active_mounts(self, name: str) -> int:
        return sum(self._active.get(name, Counter()).values())

    # -- sizes (system df) -----------------------------------------------------------------
    def size(self, name: str) -> int:
        self._require(name)
        return self.driver.size(name)

    def usage(self) -> list[dict[str, Any]]:
        """``docker system df -v``: local volumes without driver options, with UsageData."""
        counts = Counter(r["name"] for r in self.store.query("SELECT name FROM volume_refs"))
        out = []
        for row in self._rows():
            if row["driver"] != DEFAULT_VOLUME_DRIVER or row["options"]:
                continue
            try:
                size = self.driver.size(row["name"])
            except OSError:
                size = -1
            volume = self._to_api(row)
            volume["UsageData"] = {"Size": size, "RefCount": counts[row["name"]]}
            out.append(volume)
        return out

    # -- container glue: plans from berth.engine.mounts ------------------------------------
    def attach(self, container_id: str, plans: Sequence[MountPlan], *,
               rootfs: str | None = None) -> list[MountPlan]:
        """At container create: create (or find) every volume the plans use, reference it
        for ``container_id`` and fill in name/source/driver. All or nothing: on error the
        references are dropped and anonymous volumes made here are removed. With ``rootfs``,
        a VOLUME over an existing file is refused as Docker does."""
        done: list[MountPlan] = []
        created: list[str] = []
        try:
            for plan in plans:
                if plan.type != "volume":
                    done.append(replace(plan))
                    continue
                if plan.origin == ORIGIN_CONFIG_VOLUMES and rootfs:
                    refuse_file_target(rootfs, plan.destination)
                if plan.origin == ORIGIN_VOLUMES_FROM:
                    self.add_reference(plan.name, container_id)
                    row = self._require(plan.name)
                    done.append(replace(plan, source=self.mountpoint(plan.name),
                                        driver=row["driver"]))
                    continue
                fresh = not plan.name or not self.exists(plan.name)
                volume = self.create(plan.name or None, plan.driver or None,
                                     plan.driver_options, plan.labels, reference=container_id)
                if fresh and plan.anonymous:
                    created.append(volume["Name"])
                mode = plan.mode
                if not mode and volume["Driver"] == DEFAULT_VOLUME_DRIVER \
                        and plan.origin in (ORIGIN_BINDS, ORIGIN_MOUNTS):
                    mode = "z"  # moby setBindModeIfNull
                done.append(replace(plan, name=volume["Name"], source=volume["Mountpoint"],
                                    driver=volume["Driver"], mode=mode))
        except BaseException:
            self.detach(container_id, done)
            for name in created:
                with contextlib.suppress(BerthError):
                    self.remove(name)
            raise
        return done

    def detach(self, container_id: str, plans: Iterable[MountPlan], *,
               remove_anonymous: bool = False) -> list[str]:
        """At container removal: drop the references; with ``remove_anonymous`` (docker
        rm -v) also remove volumes the user never named, unless still in use elsewhere.
        Returns error texts (Docker joins them under "Error removing volumes:")."""
        errors = []
        for plan in plans:
            if plan.type != "volume" or not plan.name:
                continue
            self.remove_reference(plan.name, container_id)
            if remove_anonymous and plan.anonymous:
                try:
                    self.remove(plan.name)
                except Conflict:
                    pass  # another container still uses it: not an error
                except NotFound:
                    pass
                except BerthError as exc:
                    errors.append(exc.message)
        return errors

    def mount_plans(self, container_id: str, plans: Sequence[MountPlan]) -> list[MountPlan]:
        """At container start: mount the volumes (events ``mount``), create missing ``-v``
        bind sources, resolve volume subpaths. Returns copies whose ``source`` is the host
        path to bind (feed them to ``mounts.oci_mounts``). All or nothing."""
        out: list[MountPlan] = []
        mounted: list[MountPlan] = []
        try:
            for plan in plans:
                if plan.type == "volume" and plan.name:
                    path = self.mount(plan.name, container_id, destination=plan.destination,
                                      read_write=plan.rw, propagation=plan.propagation)
                    mounted.append(plan)
                    if plan.subpath:
                        path = resolve_subpath(path, plan.subpath)
                    out.append(replace(plan, source=path))
                    continue
                if plan.type == "bind" and plan.create_source:
                    make_bind_source(plan.source)
                out.append(replace(plan))
        except BaseException:
            self.unmount_plans(container_id, mounted)
            raise
        return out

    def unmount_plans(self, container_id: str, plans: Iterable[MountPlan]) -> None:
        """At container stop: undo ``mount_plans`` (events ``unmount``)."""
        for plan in plans:
            if plan.type == "volume" and plan.name:
                self.unmount(plan.name, container_id)

    def populate(self, container_id: str, plans: Iterable[MountPlan], rootfs: str) -> None:
        """At container create, with the rootfs mounted: copy-up the image content under
        each volume destination into the volume if the volume is empty (not with nocopy)."""
        for plan in plans:
            if plan.type != "volume" or not plan.name or not plan.copy_data:
                continue
            path = self.mount(plan.name, container_id, event=False)
            try:
                target = resolve_subpath(path, plan.subpath) if plan.subpath else path
                copy_up(rootfs, plan.destination, target)
            finally:
                self.unmount(plan.name, container_id, event=False)


# -- helpers for the service ----------------------------------------------------------------
def _check_filter_keys(filters: Mapping[str, Sequence[str]], accepted: Sequence[str]) -> None:
    for key in filters:
        if key not in accepted:
            raise InvalidParameter(f"invalid filter '{key}'")


def _bool_filter(filters: Mapping[str, Sequence[str]], key: str) -> bool | None:
    """filters.GetBoolOrDefault."""
    if key not in filters:
        return None
    values = set(filters[key])
    if not values:
        raise InvalidParameter(f"invalid filter '{key}'")
    is_true = bool(values & {"1", "true"})
    is_false = bool(values & {"0", "false"})
    if is_true == is_false:
        raise InvalidParameter(f"invalid filter '{key}=[{' '.join(filters[key])}]'")
    return is_true


def _prune_all(values: Sequence[str] | None) -> bool:
    if not values:
        return False
    if len(values) > 1:
        raise InvalidParameter(f"invalid filter 'all=[{' '.join(values)}]': "
                               "only one value is expected")
    value = values[0]
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InvalidParameter(f"invalid filter 'all': strconv.ParseBool: parsing "
                           f"{go_quote(value)}: invalid syntax")


def _name_matches(patterns: Sequence[str], name: str) -> bool:
    """filters.Match: exact, or the value as a (Go) regular expression found in the name."""
    for pattern in patterns:
        if pattern == name:
            return True
        try:
            if re.search(pattern, name):
                return True
        except re.error:
            continue
    return False


def _labels_match(filters: Mapping[str, Sequence[str]], labels: Mapping[str, str] | None) -> bool:
    """``label`` (all must match) and ``label!`` (none may match), filters.MatchKVList."""
    labels = labels or {}

    def matches(values: Sequence[str]) -> bool:
        if not values:
            return True
        if not labels:
            return False
        for value in values:
            key, eq, wanted = value.partition("=")
            if key not in labels or (eq and labels[key] != wanted):
                return False
        return True

    if not matches(filters.get("label") or []):
        return False
    negated = filters.get("label!") or []
    if negated and matches(negated):
        return False
    return True
