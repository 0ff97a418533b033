"""Mount specs -> plans: Docker's parsing rules and error texts, OCI and inspect shapes."""

import pytest

from berth.engine import mounts
from berth.engine.mounts import MountPlan, parse_bind, parse_mount, plan_mounts
from berth.errors import InvalidParameter, NotFound


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(InvalidParameter) as info:
        fn(*args, **kwargs)
    return info.value.message


# -- -v / Binds ---------------------------------------------------------------------------
def test_bind_named_volume_defaults():
    plan = parse_bind("data:/srv/data/")
    assert (plan.type, plan.name, plan.destination) == ("volume", "data", "/srv/data")
    assert plan.rw and plan.copy_data and not plan.anonymous
    assert plan.mode == "" and plan.propagation == "" and plan.source == ""


def test_bind_named_volume_modes():
    plan = parse_bind("data:/data:ro,nocopy")
    assert not plan.rw and not plan.copy_data and plan.mode == "ro,nocopy"


def test_bind_host_path_with_label_and_propagation():
    plan = parse_bind("/host//dir/:/c:ro,Z,rshared")
    assert plan.type == "bind" and plan.source == "/host/dir" and plan.destination == "/c"
    assert not plan.rw and plan.propagation == "rshared" and plan.explicit_propagation
    assert plan.create_source  # -v creates a missing host directory at start
    assert plan.mode == "ro,Z,rshared"


def test_bind_host_path_default_propagation_is_rprivate():
    plan = parse_bind("/host:/c")
    assert plan.rw and plan.propagation == "rprivate" and not plan.explicit_propagation


def test_bind_destination_only_is_anonymous_volume():
    plan = parse_bind("/data")
    assert plan.type == "volume" and plan.anonymous and plan.name == ""


def test_bind_volume_driver_applies_to_volumes_only():
    assert parse_bind("v1:/d", "local").driver == "local"
    assert parse_bind("/h:/d", "local").driver == ""


@pytest.mark.parametrize("raw, message", [
    ("/a:rw", "invalid volume specification: '/a:rw'"),
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
    (":/x", "invalid volume specification: ':/x'"),
    ("/a:/b:bogus", "invalid mode: bogus"),
    ("/a:/b:ro,rw", "invalid mode: ro,rw"),
    ("/a:/b:z,Z", "invalid mode: z,Z"),
    ("/a:rel", "invalid volume specification: '/a:rel': invalid mount config for type "
               "\"bind\": invalid mount path: 'rel' mount path must be absolute"),
    ("/a:/", "invalid volume specification: '/a:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
    ("v1:/x/..", "invalid volume specification: 'v1:/x/..': invalid mount config for type "
                 "\"volume\": invalid specification: destination can't be '/'"),
    ("/a:/b:nocopy", "invalid volume specification: '/a:/b:nocopy': invalid mount config for "
                     "type \"bind\": field VolumeOptions must not be specified"),
    ("vol:/b:rshared", "invalid volume specification: 'vol:/b:rshared': invalid mount config "
                       "for type \"volume\": field BindOptions must not be specified"),
])
def test_bind_errors(raw, message):
    assert error_of(parse_bind, raw) == message


# -- --mount / Mounts ---------------------------------------------------------------------
def test_mount_relative_target():
    spec = {"Type": "bind", "Source": "/tmp", "Target": "x"}
    assert error_of(parse_mount, spec) == (
        "invalid mount config for type \"bind\": invalid mount path: 'x' mount path must be absolute")


def test_mount_root_target():
    spec = {"Type": "volume", "Source": "v1", "Target": "/"}
    assert error_of(parse_mount, spec) == (
        "invalid mount config for type \"volume\": invalid specification: destination can't be '/'")


def test_mount_bind_source_must_exist_unless_create_mountpoint():
    spec = {"Type": "bind", "Source": "/nope", "Target": "/x"}
    assert error_of(parse_mount, spec, lambda p: False) == (
        "invalid mount config for type \"bind\": bind source path does not exist: /nope")
    spec["BindOptions"] = {"CreateMountpoint": True}
    plan = parse_mount(spec, lambda p: False)
    assert plan.create_source and plan.source == "/nope"


def test_mount_bind_relative_source_and_missing_fields():
    assert error_of(parse_mount, {"Type": "bind", "Source": "rel", "Target": "/x"}) == (
        "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute")
    assert error_of(parse_mount, {"Type": "bind", "Target": "/x"}) == (
        "invalid mount config for type \"bind\": field Source must not be empty")
    assert error_of(parse_mount, {"Type": "volume", "Source": "v"}) == (
        "invalid mount config for type \"volume\": field Target must not be empty")


def test_mount_bind_options():
    plan = parse_mount({"Type": "bind", "Source": "/src", "Target": "/dst", "ReadOnly": True,
                        "BindOptions": {"Propagation": "rslave", "NonRecursive": True,
                                        "ReadOnlyNonRecursive": True}}, lambda p: True)
    assert plan.propagation == "rslave" and plan.non_recursive and plan.readonly_non_recursive
    assert not plan.rw and not plan.create_source and plan.mode == ""
    assert error_of(parse_mount, {"Type": "bind", "Source": "/s", "Target": "/d",
                                  "BindOptions": {"Propagation": "sideways"}}) == (
        "invalid mount config for type \"bind\": invalid propagation mode: sideways")
    assert error_of(parse_mount, {"Type": "bind", "Source": "/s", "Target": "/d",
                                  "BindOptions": {"ReadOnlyNonRecursive": True}}) == (
        "mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive")


def test_mount_options_of_another_type_are_refused():
    spec = {"Type": "volume", "Source": "v1", "Target": "/d", "BindOptions": {}}
    assert error_of(parse_mount, spec) == (
        "invalid mount config for type \"volume\": field BindOptions must not be specified")
    spec = {"Type": "bind", "Source": "/s", "Target": "/d", "TmpfsOptions": {"SizeBytes": 1}}
    assert error_of(parse_mount, spec) == (
        "invalid mount config for type \"bind\": field TmpfsOptions must not be specified")


def test_mount_unknown_type():
    assert error_of(parse_mount, {"Type": "npipe", "Source": "x", "Target": "/d"}) == (
        "invalid mount config for type \"npipe\": mount type unknown")
    assert error_of(parse_mount, {"Target": "/d"}) == (
        "invalid mount config for type \"\": mount type unknown")


def test_mount_volume_options():
    plan = parse_mount({"Type": "volume", "Source": "v1", "Target": "/d",
                        "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"},
                                          "DriverConfig": {"Name": "local",
                                                           "Options": {"type": "tmpfs"}},
                                          "Subpath": "sub/dir"}})
    assert plan.name == "v1" and plan.driver == "local" and not plan.copy_data
    assert plan.labels == {"a": "b"} and plan.driver_options == {"type": "tmpfs"}
    assert plan.subpath == "sub/dir"
    anon = parse_mount({"Type": "volume", "Target": "/d"})
    assert anon.anonymous and anon.copy_data and anon.name == ""


def test_mount_volume_subpath_rules():
    assert error_of(parse_mount, {"Type": "volume", "Target": "/d",
                                  "VolumeOptions": {"Subpath": "x"}}) == (
        "invalid mount config for type \"volume\": must not set Subpath when using anonymous volumes")
    assert error_of(parse_mount, {"Type": "volume", "Source": "v1", "Target": "/d",
                                  "VolumeOptions": {"Subpath": "a/../../b"}}) == (
        "invalid mount config for type \"volume\": subpath must be a relative path within the volume")


def test_mount_tmpfs_options():
    plan = parse_mount({"Type": "tmpfs", "Target": "/t", "ReadOnly": True,
                        "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1777,
                                         "Options": [["noexec"]]}})
    assert plan.tmpfs_data == "ro,mode=1777,size=64m,noexec" and not plan.rw
    assert parse_mount({"Type": "tmpfs", "Target": "/t",
                        "TmpfsOptions": {"SizeBytes": 1000}}).tmpfs_data == "size=1000"
    assert parse_mount({"Type": "tmpfs", "Target": "/t",
                        "TmpfsOptions": {"SizeBytes": 3 << 30}}).tmpfs_data == "size=3g"
    assert error_of(parse_mount, {"Type": "tmpfs", "Target": "/t", "Source": "x"}) == (
        "invalid mount config for type \"tmpfs\": field Source must not be specified")
    assert error_of(parse_mount, {"Type": "tmpfs", "Target": "/t",
                                  "TmpfsOptions": {"Options": [["nosuid"]]}}) == (
        "invalid mount config for type \"tmpfs\": invalid option: nosuid")


# -- volumes-from ------------------------------------------------------------------------
def test_volumes_from_modes():
    assert mounts.parse_volumes_from("web") == ("web", "rw")
    assert mounts.parse_volumes_from("web:ro") == ("web", "ro")
    assert error_of(mounts.parse_volumes_from, "web:rshared") == "invalid mode: rshared"
    assert error_of(mounts.parse_volumes_from, "web:nocopy") == "invalid mode: nocopy"
    assert error_of(mounts.parse_volumes_from, "") == (
        "volumes-from specification cannot be an empty string")


# -- the whole container -------------------------------------------------------------------
def test_plan_order_and_precedence():
    theirs = [MountPlan(type="volume", destination="/shared", name="v1", source="/vol/v1",
                        driver="local", origin=mounts.ORIGIN_BINDS, mode="z"),
              MountPlan(type="volume", destination="/over", name="v2", source="/vol/v2",
                        driver="local", origin=mounts.ORIGIN_BINDS),
              MountPlan(type="tmpfs", destination="/run", origin=mounts.ORIGIN_TMPFS)]
    plans = plan_mounts(
        {"Volumes": {"/shared": {}, "/anon": {}, "/tmp/x": {}}},
        {"VolumesFrom": ["other:ro"], "Binds": ["n1:/over"],
         "Mounts": [{"Type": "tmpfs", "Target": "/scratch"}], "Tmpfs": {"/tmp/x": "size=1m"}},
        volumes_from=lambda name: theirs if name == "other" else [])
    by_dest = {p.destination: p for p in plans}
    assert [p.destination for p in plans] == ["/shared", "/over", "/scratch", "/tmp/x", "/anon"]
    shared = by_dest["/shared"]
    assert shared.origin == mounts.ORIGIN_VOLUMES_FROM and not shared.rw and shared.mode == ""
    assert not shared.copy_data and shared.name == "v1"
    assert by_dest["/over"].name == "n1" and by_dest["/over"].origin == mounts.ORIGIN_BINDS
    assert by_dest["/tmp/x"].origin == mounts.ORIGIN_TMPFS  # Config.Volumes skipped there
    assert by_dest["/anon"].anonymous and by_dest["/anon"].origin == mounts.ORIGIN_CONFIG_VOLUMES
    assert "/run" not in by_dest  # tmpfs mounts are not shared by volumes-from


def test_plan_duplicates():
    assert error_of(plan_mounts, {}, {"Binds": ["a1:/data", "/h:/data/"]}) == (
        "Duplicate mount point: /data")
    assert error_of(plan_mounts, {}, {"Binds": ["a1:/data"],
                                      "Mounts": [{"Type": "volume", "Target": "/data/"}]}) == (
        "Duplicate mount point: /data/")
    assert error_of(plan_mounts, {}, {"Binds": ["a1:/run"], "Tmpfs": {"/run": ""}}) == (
        "Duplicate mount point: /run")
    assert error_of(plan_mounts, {}, {"Mounts": [{"Type": "tmpfs", "Target": "/t"},
                                                 {"Type": "volume", "Target": "/t"}]}) == (
        "Duplicate mount point: /t")


def test_plan_invalid_volume_names_fail_before_anything_is_created():
    assert error_of(plan_mounts, {}, {"Binds": ["x/y:/data"]}) == (
        'create x/y: "x/y" includes invalid characters for a local volume name, only '
        '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
        'use absolute path')
    assert error_of(plan_mounts, {}, {"Binds": ["a:/data"]}) == (
        "create a: volume name is too short, names should be at least two alphanumeric characters")


def test_plan_tmpfs_and_config_volume_destinations():
    assert error_of(plan_mounts, {}, {"Tmpfs": {"run": ""}}) == (
        "invalid mount path: 'run' mount path must be absolute")
    assert error_of(plan_mounts, {}, {"Tmpfs": {"/": ""}}) == (
        "invalid specification: destination can't be '/'")
    assert error_of(plan_mounts, {"Volumes": {"rel": {}}}, {}) == (
        "invalid mount path: 'rel' mount path must be absolute")


def test_plan_volumes_from_unknown_container_is_400():
    def lookup(name):
        raise NotFound(f"No such container: {name}")
    assert error_of(plan_mounts, {}, {"VolumesFrom": ["ghost"]}, volumes_from=lookup) == (
        "No such container: ghost")


def test_plan_binds_overlapping_data_root_get_rslave():
    plans = plan_mounts({}, {"Binds": ["/:/host", "/srv:/srv"]}, data_root="/var/lib/berth")
    assert [p.propagation for p in plans] == ["rslave", "rprivate"]
    ok = plan_mounts({}, {"Binds": ["/var/lib/berth/x:/x:rshared"]}, data_root="/var/lib/berth")
    assert ok[0].propagation == "rshared"
    assert error_of(plan_mounts, {}, {"Binds": ["/var/lib/berth/x:/x:private"]},
                    data_root="/var/lib/berth") == (
        'invalid mount config: must use either propagation mode "rslave" or "rshared" when '
        'mount source is within the daemon root, daemon root: "/var/lib/berth", bind mount '
        'source: "/var/lib/berth/x", propagation: "private"')


def test_plan_old_api_read_only_binds_are_non_recursive():
    plans = plan_mounts({}, {"Binds": ["/h:/d:ro"]}, default_readonly_non_recursive=True)
    assert plans[0].readonly_non_recursive
    assert mounts.oci_mount(plans[0], recursive_readonly=True)["options"] == [
        "rbind", "ro", "rprivate"]


def test_validate_host_config_mounts_checks_sources():
    hc = {"Mounts": [{"Type": "bind", "Source": "/definitely/missing", "Target": "/x"}]}
    assert "bind source path does not exist" in error_of(
        mounts.validate_host_config_mounts, hc, lambda p: False)
    mounts.validate_host_config_mounts(hc, None)


# -- outputs ----------------------------------------------------------------------------------
def test_oci_entries():
    bind = MountPlan(type="bind", destination="/c", source="/h", rw=False, propagation="rprivate")
    assert mounts.oci_mount(bind) == {"destination": "/c", "type": "bind", "source": "/h",
                                      "options": ["rbind", "ro", "rprivate"]}
    assert mounts.oci_mount(bind, recursive_readonly=True)["options"] == [
        "rbind", "rro", "rprivate"]
    flat = MountPlan(type="bind", destination="/c", source="/h", non_recursive=True,
                     propagation="rslave")
    assert mounts.oci_mount(flat)["options"] == ["bind", "rslave"]
    vol = MountPlan(type="volume", destination="/v", source="/vol/_data", name="v1")
    assert mounts.oci_mount(vol)["options"] == ["rbind"]
    tmp = MountPlan(type="tmpfs", destination="/t", tmpfs_data="mode=1777,size=64m,exec")
    entry = mounts.oci_mount(tmp)
    assert entry["type"] == "tmpfs" and entry["source"] == "tmpfs"
    assert entry["options"] == ["nosuid", "nodev", "rprivate", "mode=1777", "size=64m", "exec"]
    with pytest.raises(ValueError):
        mounts.oci_mount(MountPlan(type="volume", destination="/v", name="x"))
    forced = MountPlan(type="bind", destination="/c", source="/h", rw=False,
                       readonly_force_recursive=True)
    assert mounts.oci_mount(forced, recursive_readonly=True)["options"] == ["rbind", "rro"]
    assert "rro is not supported" in error_of(mounts.oci_mount, forced)


def test_oci_mounts_sorted_and_host_tmpfs_left_to_the_spec_builder():
    plans = [MountPlan(type="bind", destination="/a/b/c", source="/1"),
             MountPlan(type="tmpfs", destination="/run", origin=mounts.ORIGIN_TMPFS),
             MountPlan(type="bind", destination="/a", source="/2")]
    assert [m["destination"] for m in mounts.oci_mounts(plans)] == ["/a", "/a/b/c"]
    assert [m["destination"] for m in mounts.oci_mounts(plans, include_host_tmpfs=True)] == [
        "/run", "/a", "/a/b/c"]


def test_inspect_mounts_shape():
    plans = [MountPlan(type="volume", destination="/data", name="v1", source="/d/v1/_data",
                       driver="local", mode="z"),
             MountPlan(type="bind", destination="/c", source="/h", rw=False, mode="ro",
                       propagation="rprivate"),
             MountPlan(type="tmpfs", destination="/t", origin=mounts.ORIGIN_MOUNTS),
             MountPlan(type="tmpfs", destination="/run", origin=mounts.ORIGIN_TMPFS)]
    assert mounts.inspect_mounts(plans) == [
        {"Type": "volume", "Name": "v1", "Source": "/d/v1/_data", "Destination": "/data",
         "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""},
        {"Type": "bind", "Source": "/h", "Destination": "/c", "Mode": "ro", "RW": False,
         "Propagation": "rprivate"},
        {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": True,
         "Propagation": ""},
    ]
    assert mounts.matches_volume_filter(plans, ["v1"])
    assert mounts.matches_volume_filter(plans, ["/c"]) and mounts.matches_volume_filter(plans, ["/h"])
    assert not mounts.matches_volume_filter(plans, ["/run", "nothing"])


def test_rootfs_propagation():
    plain = MountPlan(type="bind", destination="/a", source="/a", propagation="rprivate")
    slave = MountPlan(type="bind", destination="/b", source="/b", propagation="rslave")
    shared = MountPlan(type="bind", destination="/c", source="/c", propagation="shared")
    assert mounts.rootfs_propagation([plain]) is None
    assert mounts.rootfs_propagation([plain, slave]) == "rslave"
    assert mounts.rootfs_propagation([slave, shared]) == "shared"


def test_container_mount_docs_round_trip():
    plans = plan_mounts({}, {"Binds": ["/h:/c:ro"], "Tmpfs": {"/run": ""},
                             "Mounts": [{"Type": "tmpfs", "Target": "/t"}]})
    docs = mounts.container_mount_docs(plans)
    assert [d["Destination"] for d in docs] == ["/c", "/t"]
    assert docs[0]["Mode"] == "ro" and docs[0]["Plan"]["origin"] == mounts.ORIGIN_BINDS
    assert plans[2].origin == mounts.ORIGIN_TMPFS
    assert mounts.plans_from_docs(docs) == plans[:2]
    assert mounts.plans_from_docs([{"Destination": "/old"}]) == []


def test_plan_doc_round_trip():
    plan = parse_mount({"Type": "volume", "Source": "v1", "Target": "/d",
                        "VolumeOptions": {"Labels": {"a": "b"}}})
    doc = plan.to_doc()
    assert MountPlan.from_doc({**doc, "future_field": 1}) == plan


@pytest.mark.parametrize("raw, clean", [("//a//b/", "/a/b"), ("/a/../..", "/"),
                                        ("a/./b/..", "a"), ("", "."), ("/x/.", "/x")])
def test_go_clean(raw, clean):
    assert mounts.go_clean(raw) == clean
