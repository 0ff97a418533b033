"""The volume service on a temporary data-root: records, references, prune, mounts, copy-up,
container glue. (Its HTTP routes: ``tests/unit/api/test_routes_volumes.py``.)"""

import os
import re
import stat
import threading

import pytest

from berth.engine import mounts, volumes
from berth.engine.events import EventBus, EventFilter
from berth.engine.store import Store
from berth.errors import Conflict, InvalidParameter, NotFound, SystemError_
from berth.storage.drivers.mount import is_mountpoint, unmount

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, chown)")


class FakeEngine:
    def __init__(self, data_root):
        self.data_root = str(data_root)
        self.store = Store(os.path.join(self.data_root, "berth.db"))
        self.events = EventBus()


@pytest.fixture
def engine(tmp_path):
    eng = FakeEngine(tmp_path)
    yield eng
    eng.store.close()


@pytest.fixture
def service(engine):
    svc = volumes.VolumeService(engine.store, engine.events, engine.data_root)
    yield svc
    for name in list(svc._mounted):  # never leave a test mount behind
        unmount(svc.mountpoint(name))


def events(engine, type_="volume"):
    return [(e.action, e.actor_id, e.attributes)
            for e in engine.events.history(None, None, EventFilter({"type": [type_]}))]


# -- create / get / list ----------------------------------------------------------------------
def test_create_named_volume(service, engine):
    vol = service.create("data1", labels={"team": "a"})
    mountpoint = os.path.join(engine.data_root, "volumes", "data1", "_data")
    assert vol == {"CreatedAt": vol["CreatedAt"], "Driver": "local", "Labels": {"team": "a"},
                   "Mountpoint": mountpoint, "Name": "data1", "Options": None, "Scope": "local"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", vol["CreatedAt"])
    assert stat.S_IMODE(os.stat(mountpoint).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.dirname(mountpoint)).st_mode) == 0o701
    assert service.get("data1") == vol
    assert events(engine) == [("create", "data1", {"driver": "local"})]
    # Creating it again returns the same volume and publishes nothing.
    assert service.create("data1", "local", labels={"other": "x"}) == vol
    assert len(events(engine)) == 1


def test_create_without_name_is_anonymous(service):
    vol = service.create()
    assert re.fullmatch(r"[0-9a-f]{64}", vol["Name"])
    assert vol["Labels"] == {mounts.ANONYMOUS_LABEL: ""}
    named = service.create("anon-named", labels={"a": "b"}, anonymous=True)
    assert named["Labels"] == {"a": "b", mounts.ANONYMOUS_LABEL: ""}


@pytest.mark.parametrize("kwargs, kind, message", [
    ({"name": "x/y"}, InvalidParameter,
     'create x/y: "x/y" includes invalid characters for a local volume name, only '
     '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use '
     'absolute path'),
    ({"name": "a"}, InvalidParameter,
     "create a: volume name is too short, names should be at least two alphanumeric characters"),
    ({"name": "v1", "driver_opts": {"foo": "bar"}}, InvalidParameter,
     'create v1: invalid option: "foo"'),
    ({"name": "v1", "driver_opts": {"type": "tmpfs"}}, InvalidParameter,
     'create v1: missing required option: "device"'),
    ({"name": "v1", "driver_opts": {"o": "size=1m", "device": "tmpfs"}}, InvalidParameter,
     'create v1: missing required option: "type"'),
    ({"name": "v1", "driver_opts": {"size": "10m"}}, InvalidParameter,
     "create v1: quota size requested but no quota support"),
    ({"name": "v1", "driver_opts": {"size": "lots"}}, InvalidParameter,
     "create v1: invalid size: 'lots'"),
    ({"name": "v1", "driver_opts": {"type": "cifs", "device": "//srv:445/share"}},
     InvalidParameter, "create v1: port not allowed in CIFS device URL, include 'port' in 'o='"),
    ({"name": "v1", "driver": "flocker"}, NotFound,
     'create v1: error looking up volume plugin flocker: plugin "flocker" not found'),
])
def test_create_errors(service, engine, kwargs, kind, message):
    with pytest.raises(kind) as info:
        service.create(**kwargs)
    assert info.value.message == message
    assert not os.path.exists(os.path.join(engine.data_root, "volumes", kwargs["name"]))
    assert events(engine) == []


def test_get_missing(service):
    with pytest.raises(NotFound) as info:
        service.get("nothing")
    assert info.value.message == "get nothing: no such volume"


def test_list_filters(service):
    service.create("alpha", labels={"tier": "db", "env": "prod"})
    service.create("beta", labels={"tier": "web"})
    service.create("gamma")
    service.add_reference("beta", "c1")

    def names(filters):
        return [v["Name"] for v in service.list_volumes(filters)[0]]

    assert names({}) == ["alpha", "beta", "gamma"]
    assert names({"name": ["al"]}) == ["alpha"]
    assert names({"name": ["^b", "mm"]}) == ["beta", "gamma"]
    assert names({"label": ["tier"]}) == ["alpha", "beta"]
    assert names({"label": ["tier=db", "env"]}) == ["alpha"]
    assert names({"driver": ["local"]}) == ["alpha", "beta", "gamma"]
    assert names({"driver": ["other"]}) == []
    assert names({"dangling": ["true"]}) == ["alpha", "gamma"]
    assert names({"dangling": ["0"]}) == ["beta"]
    with pytest.raises(InvalidParameter) as info:
        service.list_volumes({"dangling": ["maybe"]})
    assert info.value.message == "invalid filter 'dangling=[maybe]'"
    with pytest.raises(InvalidParameter) as info:
        service.list_volumes({"color": ["red"]})
    assert info.value.message == "invalid filter 'color'"


# -- references and removal -------------------------------------------------------------------
def test_remove_refused_while_referenced_even_with_force(service, engine):
    service.create("busy")
    service.add_reference("busy", "c2")
    service.add_reference("busy", "c1")
    assert service.in_use("busy") == ["c1", "c2"]
    for force in (False, True):
        with pytest.raises(Conflict) as info:
            service.remove("busy", force=force)
        assert info.value.message == "remove busy: volume is in use - [c1, c2]"
    service.remove_reference("busy", "c1")
    service.remove_reference("busy", "c2")
    service.remove_reference("busy", "c2")  # releasing twice is harmless
    service.remove("busy")
    assert not os.path.exists(os.path.join(engine.data_root, "volumes", "busy"))
    assert events(engine)[-1] == ("destroy", "busy", {"driver": "local"})


def test_remove_missing(service):
    with pytest.raises(NotFound) as info:
        service.remove("ghost")
    assert info.value.message == "get ghost: no such volume"
    service.remove("ghost", force=True)


def test_add_reference_to_missing_volume(service):
    with pytest.raises(NotFound):
        service.add_reference("ghost", "c1")


def test_records_and_references_survive_restart(engine, tmp_path):
    first = volumes.VolumeService(engine.store, engine.events, engine.data_root)
    first.create("keep", labels={"k": "v"}, driver_opts=None)
    first.add_reference("keep", "c9")
    engine.store.close()
    again = FakeEngine(tmp_path)
    try:
        second = volumes.VolumeService(again.store, again.events, again.data_root)
        assert second.get("keep")["Labels"] == {"k": "v"}
        assert second.in_use("keep") == ["c9"]
    finally:
        again.store.close()


def test_reconcile_adopts_directories_and_drops_missing(engine, tmp_path):
    svc = volumes.VolumeService(engine.store, engine.events, engine.data_root)
    svc.create("gone")
    svc.create("held")
    svc.add_reference("held", "c1")
    for name in ("gone", "held"):
        os.rename(os.path.join(svc.root, name), os.path.join(str(tmp_path), name + "-moved"))
    os.makedirs(os.path.join(svc.root, "orphan", "_data"))
    os.makedirs(os.path.join(svc.root, "not-a-volume"))
    fresh = volumes.VolumeService(engine.store, engine.events, engine.data_root)
    assert [v["Name"] for v in fresh.list_volumes()[0]] == ["held", "orphan"]
    assert os.path.isdir(fresh.mountpoint("held"))  # referenced: kept, directory recreated


def test_remove_does_not_follow_a_symlinked_data_dir(service, tmp_path):
    service.create("sneaky")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("x")
    data = service.mountpoint("sneaky")
    os.rmdir(data)
    os.symlink(str(outside), data)
    with pytest.raises(SystemError_) as info:
        service.remove("sneaky")
    assert "outside of the local volume root" in info.value.message
    assert (outside / "precious").exists()


# -- prune ----------------------------------------------------------------------------------
def test_prune_anonymous_by_default_then_all(service, engine):
    anon = service.create()["Name"]
    used_anon = service.create()["Name"]
    service.add_reference(used_anon, "c1")
    service.create("named", labels={"keep": "yes"})
    service.create("named2")
    service.create("with-opts", driver_opts={"type": "tmpfs", "device": "tmpfs"})
    with open(os.path.join(service.mountpoint(anon), "blob"), "wb") as f:
        f.write(b"x" * 1500)
    report = service.prune({})
    assert report == {"VolumesDeleted": [anon], "SpaceReclaimed": 1500}
    assert events(engine)[-1] == ("prune", "", {"reclaimed": "1500"})
    report = service.prune({"all": ["true"], "label!": ["keep"]})
    assert report["VolumesDeleted"] == ["named2"]
    report = service.prune({"all": ["1"], "label": ["keep=yes"]})
    assert report["VolumesDeleted"] == ["named"]
    # Referenced volumes and volumes with driver options are never pruned.
    assert sorted(v["Name"] for v in service.list_volumes()[0]) == sorted([used_anon, "with-opts"])


@pytest.mark.parametrize("filters, message", [
    ({"all": ["maybe"]}, "invalid filter 'all': strconv.ParseBool: parsing \"maybe\": invalid syntax"),
    ({"all": ["true", "false"]}, "invalid filter 'all=[true false]': only one value is expected"),
    ({"dangling": ["true"]}, "invalid filter 'dangling'"),
])
def test_prune_filter_errors(service, filters, message):
    with pytest.raises(InvalidParameter) as info:
        service.prune(filters)
    assert info.value.message == message


# -- mounts ---------------------------------------------------------------------------------
def test_mount_counts_and_blocks_removal(service, engine):
    service.create("plain")
    path = service.mount("plain", "c1", destination="/data", read_write=False)
    assert path == service.mountpoint("plain")
    service.mount("plain", "c2")
    with pytest.raises(SystemError_) as info:
        service.remove("plain")
    assert info.value.message == "remove plain: volume has active mounts"
    service.unmount("plain", "c1")
    service.unmount("plain", "c1")  # an unmatched unmount does nothing
    assert service.active_mounts("plain") == 1
    service.unmount("plain", "c2")
    service.remove("plain")
    assert ("mount", "plain", {"driver": "local", "container": "c1", "destination": "/data",
                               "read/write": "false", "propagation": ""}) in events(engine)
    assert ("unmount", "plain", {"driver": "local", "container": "c2"}) in events(engine)


def test_mount_missing_volume(service):
    with pytest.raises(NotFound):
        service.mount("ghost", "c1")


@root_only
def test_tmpfs_option_volume_is_mounted_on_first_use_only(service):
    service.create("fast", driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=4m,uid=1000"})
    path = service.mountpoint("fast")
    assert not is_mountpoint(path)
    service.mount("fast", "c1")
    assert is_mountpoint(path) and os.stat(path).st_uid == 1000
    service.mount("fast", "c2")
    service.unmount("fast", "c1")
    assert is_mountpoint(path)
    service.unmount("fast", "c2")
    assert not is_mountpoint(path)
    service.remove("fast")


@root_only
def test_bind_option_volume_removal_keeps_the_device_data(service, tmp_path):
    device = tmp_path / "device"
    device.mkdir()
    service.create("bound", driver_opts={"type": "none", "device": str(device), "o": "bind"})
    path = service.mount("bound", "c1")
    with open(os.path.join(path, "file"), "w") as f:
        f.write("kept")
    service.unmount("bound", "c1")
    service.remove("bound")
    assert (device / "file").read_text() == "kept"


@root_only
def test_read_only_bind_option_volume(service, tmp_path):
    device = tmp_path / "ro-device"
    device.mkdir()
    service.create("robind", driver_opts={"type": "none", "device": str(device), "o": "bind,ro"})
    path = service.mount("robind", "c1")
    try:
        with pytest.raises(OSError):
            open(os.path.join(path, "nope"), "w")
    finally:
        service.unmount("robind", "c1")


@root_only
def test_mount_failure_message(service):
    service.create("broken", driver_opts={"type": "none", "device": "/nonexistent-src", "o": "bind"})
    path = service.mountpoint("broken")
    with pytest.raises(SystemError_) as info:
        service.mount("broken", "c1")
    assert info.value.message == (
        f"error while mounting volume '{path}': failed to mount local volume: mount "
        f"/nonexistent-src:{path}, flags: 0x1000: no such file or directory")
    assert service.active_mounts("broken") == 0


def test_removal_racing_mounts_never_deletes_mounted_data(service):
    """One thread mounts, writes and checks its file; another keeps removing the volume."""
    service.create("contested")
    stop = threading.Event()
    failures = []
    removals = []

    def user():
        try:
            for i in range(300):
                try:
                    path = service.mount("contested", "c1", event=False)
                except NotFound:
                    service.create("contested")
                    continue
                marker = os.path.join(path, f"m{i}")
                try:
                    with open(marker, "w") as f:
                        f.write("x")
                    if not os.path.exists(marker):
                        failures.append(i)
                except OSError as exc:  # the directory vanished under a mount
                    failures.append(exc)
                service.unmount("contested", "c1", event=False)
        finally:
            stop.set()

    def remover():
        while not stop.is_set():
            try:
                service.remove("contested")
                removals.append(1)
            except (NotFound, SystemError_):
                pass

    threads = [threading.Thread(target=user), threading.Thread(target=remover)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert removals  # the race really happened


# -- sizes ----------------------------------------------------------------------------------
def test_usage_and_size(service):
    service.create("sized")
    service.create("opts", driver_opts={"type": "tmpfs", "device": "tmpfs"})
    data = service.mountpoint("sized")
    with open(os.path.join(data, "a"), "wb") as f:
        f.write(b"1" * 300)
    os.link(os.path.join(data, "a"), os.path.join(data, "hardlink"))
    os.symlink("a", os.path.join(data, "link"))
    service.add_reference("sized", "c1")
    assert service.size("sized") == 301
    usage = service.usage()
    assert [v["Name"] for v in usage] == ["sized"]
    assert usage[0]["UsageData"] == {"Size": 301, "RefCount": 1}


# -- container glue -----------------------------------------------------------------------
def container_plans():
    return mounts.plan_mounts(
        {"Volumes": {"/anon": {}}},
        {"Binds": ["named1:/named", "/srv/host-src:/host:ro"],
         "Mounts": [{"Type": "volume", "Target": "/tagged",
                     "VolumeOptions": {"Labels": {"app": "x"}}}]})


def test_attach_detach_flow(service):
    plans = service.attach("c1", container_plans())
    by_dest = {p.destination: p for p in plans}
    named, anon, tagged = by_dest["/named"], by_dest["/anon"], by_dest["/tagged"]
    assert named.name == "named1" and named.mode == "z" and named.source == service.mountpoint("named1")
    assert anon.anonymous and re.fullmatch(r"[0-9a-f]{64}", anon.name) and anon.mode == ""
    assert service.get(tagged.name)["Labels"] == {"app": "x", mounts.ANONYMOUS_LABEL: ""}
    assert by_dest["/host"].source == "/srv/host-src"
    for plan in (named, anon, tagged):
        assert service.in_use(plan.name) == ["c1"]
    entry = [m for m in mounts.inspect_mounts(plans) if m["Destination"] == "/named"][0]
    assert entry == {"Type": "volume", "Name": "named1", "Source": service.mountpoint("named1"),
                     "Destination": "/named", "Driver": "local", "Mode": "z", "RW": True,
                     "Propagation": ""}

    # A second container shares them through volumes-from, read-only.
    shared = mounts.plan_mounts({}, {"VolumesFrom": ["c1:ro"]}, volumes_from=lambda _: plans)
    shared = service.attach("c2", shared)
    assert all(not p.rw for p in shared)
    assert service.in_use("named1") == ["c1", "c2"]

    # docker rm -v c1: anonymous volumes still used by c2 stay; named ones always stay.
    assert service.detach("c1", plans, remove_anonymous=True) == []
    assert service.exists(anon.name)
    assert service.detach("c2", shared, remove_anonymous=True) == []
    assert not service.exists(anon.name) and not service.exists(tagged.name)
    assert service.exists("named1") and service.in_use("named1") == []


def test_attach_rolls_back_on_error(service):
    plans = mounts.plan_mounts({"Volumes": {"/anon": {}}},
                               {"Binds": ["good1:/a"],
                                "Mounts": [{"Type": "volume", "Source": "bad1", "Target": "/b",
                                            "VolumeOptions": {"DriverConfig": {"Name": "nope"}}}]})
    with pytest.raises(NotFound):
        service.attach("c1", plans)
    assert service.in_use("good1") == []
    assert [v["Name"] for v in service.list_volumes()[0]] == ["good1"]  # named volumes are kept


def test_attach_refuses_volume_over_a_file(service, tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "conf").write_text("x")
    plans = mounts.plan_mounts({"Volumes": {"/etc/conf": {}}}, {})
    with pytest.raises(InvalidParameter) as info:
        service.attach("c1", plans, rootfs=str(rootfs))
    assert info.value.message == (
        f"cannot mount volume over existing file, file exists {rootfs}/etc/conf")
    assert service.list_volumes()[0] == []


def test_mount_plans_creates_bind_sources_and_resolves_subpaths(service, tmp_path):
    service.create("withsub")
    os.makedirs(os.path.join(service.mountpoint("withsub"), "inner", "dir"))
    host = tmp_path / "made" / "by" / "v"
    plans = mounts.plan_mounts({}, {
        "Binds": [f"{host}:/h"],
        "Mounts": [{"Type": "volume", "Source": "withsub", "Target": "/s",
                    "VolumeOptions": {"Subpath": "inner/dir"}}]})
    plans = service.attach("c1", plans)
    started = service.mount_plans("c1", plans)
    assert host.is_dir()
    sub = [p for p in started if p.destination == "/s"][0]
    assert sub.source == os.path.join(service.mountpoint("withsub"), "inner", "dir")
    assert [p for p in plans if p.destination == "/s"][0].source == service.mountpoint("withsub")
    oci = mounts.oci_mounts(started)
    assert {m["destination"]: m["source"] for m in oci}["/s"] == sub.source
    assert service.active_mounts("withsub") == 1
    service.unmount_plans("c1", started)
    assert service.active_mounts("withsub") == 0


def test_mount_plans_missing_subpath_unmounts_everything(service):
    service.create("first")
    service.create("second")
    plans = service.attach("c1", mounts.plan_mounts({}, {
        "Binds": ["first:/a"],
        "Mounts": [{"Type": "volume", "Source": "second", "Target": "/b",
                    "VolumeOptions": {"Subpath": "missing"}}]}))
    with pytest.raises(InvalidParameter) as info:
        service.mount_plans("c1", plans)
    assert "cannot access path" in info.value.message
    assert service.active_mounts("first") == 0 and service.active_mounts("second") == 0


@root_only
def test_populate_copies_up_unless_nocopy(service, tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "seed").mkdir(parents=True)
    (rootfs / "seed" / "x").write_text("seeded")
    plans = service.attach("c1", mounts.plan_mounts({"Volumes": {"/seed": {}}}, {
        "Binds": ["nocopy1:/seed2:nocopy"]}))
    os.symlink("seed", rootfs / "seed2")
    service.populate("c1", plans, str(rootfs))
    by_dest = {p.destination: p for p in plans}
    assert open(os.path.join(by_dest["/seed"].source, "x")).read() == "seeded"
    assert os.listdir(by_dest["/seed2"].source) == []
    assert all(service.active_mounts(p.name) == 0 for p in plans)
