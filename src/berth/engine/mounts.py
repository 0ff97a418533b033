"""A container's mount requests -> an ordered list of mount plans, with Docker's validation.

Inputs are the Engine API shapes: ``HostConfig.Binds`` (``-v``), ``HostConfig.Mounts``
(``--mount``), ``HostConfig.Tmpfs`` (``--tmpfs``), ``HostConfig.VolumesFrom`` and
``Config.Volumes`` (``VOLUME`` / ``-v /path``: anonymous volumes). The rules and error texts
follow moby's ``volume/mounts/linux_parser.go`` and ``daemon/volumes.go`` (registerMountPoints).

Pure: nothing here touches the filesystem except through the ``exists`` callable the caller
passes (the ``--mount type=bind`` source check). Creating volumes, mounting them and copy-up
live in ``berth.engine.volumes``; this module only decides *what* to mount *where*.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from berth.errors import BerthError, InvalidParameter
from berth.goquote import quote as go_quote

PROPAGATION_MODES = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
DEFAULT_PROPAGATION = "rprivate"
_RW_MODES = ("rw", "ro")
_LABEL_MODES = ("z", "Z")
_COPY_MODES = {"nocopy": False}  # mode word -> copy data?
_CONSISTENCY_MODES = ("consistent", "cached", "delegated")
_TMPFS_EXTRA_OPTIONS = ("exec", "noexec")
_MOUNT_TYPES = ("bind", "volume", "tmpfs")

DEFAULT_VOLUME_DRIVER = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
VOLUME_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"

# Where a plan came from; HostConfig.Tmpfs entries ("tmpfs") are not shown in inspect Mounts
# and the OCI spec builder already adds them (berth.runtime.spec.tmpfs_mounts).
ORIGIN_VOLUMES_FROM = "volumes-from"
ORIGIN_BINDS = "binds"
ORIGIN_MOUNTS = "mounts"
ORIGIN_TMPFS = "tmpfs"
ORIGIN_CONFIG_VOLUMES = "volumes"


@dataclass
class MountPlan:
    """One mount of a container, resolved from the request. Persist it with ``to_doc``."""

    type: str                       # "bind" | "volume" | "tmpfs"
    destination: str                # cleaned absolute container path
    source: str = ""                # bind: host path; volume: its Mountpoint once attached
    name: str = ""                  # volume name ("" until an anonymous volume is created)
    driver: str = ""                # volume driver ("" means the default, local)
    rw: bool = True
    mode: str = ""                  # the user's mode words (-v a:/b:ro,z); inspect "Mode"
    propagation: str = ""           # binds only: rprivate by default
    copy_data: bool = False         # volumes: fill a new empty volume from the image
    anonymous: bool = False         # not named by the user: `docker rm -v` removes it
    create_source: bool = False     # bind: create a missing host source at start (-v)
    non_recursive: bool = False     # bind: "bind" instead of "rbind"
    readonly_non_recursive: bool = False
    readonly_force_recursive: bool = False
    subpath: str = ""               # volume: mount this directory of the volume
    tmpfs_data: str = ""            # tmpfs: mount data ("size=64m,mode=1777")
    driver_options: dict[str, str] | None = None  # volume: create options (--mount volume-opt)
    labels: dict[str, str] | None = None          # volume: create labels (--mount volume-label)
    origin: str = ""                # one of the ORIGIN_* values
    explicit_propagation: bool = False  # the user chose the propagation (no daemon-root fallback)

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> "MountPlan":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


# -- small helpers ------------------------------------------------------------------------
def go_clean(path: str) -> str:
    """Go's path.Clean: lexical, '//a' -> '/a', '' -> '.'."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def _is_abs(path: str) -> bool:
    return path.replace("\\", "/").startswith("/")


def _is_local(path: str) -> bool:
    """Go's filepath.IsLocal: relative, non-empty, never climbing out."""
    if not path or path.startswith("/"):
        return False
    depth = 0
    for part in path.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in ("", "."):
            depth += 1
    return True


def valid_mode(mode: str) -> bool:
    """moby's linuxValidMountMode: known words, at most one of each kind."""
    if mode == "":
        return True
    counts = {"rw": 0, "label": 0, "propagation": 0, "copy": 0, "consistency": 0}
    for word in mode.split(","):
        if word in _RW_MODES:
            counts["rw"] += 1
        elif word in _LABEL_MODES:
            counts["label"] += 1
        elif word in PROPAGATION_MODES:
            counts["propagation"] += 1
        elif word in _COPY_MODES:
            counts["copy"] += 1
        elif word in _CONSISTENCY_MODES:
            counts["consistency"] += 1
        else:
            return False
    return all(n <= 1 for n in counts.values())


def mode_is_rw(mode: str) -> bool:
    return valid_mode(mode) and "ro" not in mode.split(",")


def _mode_propagation(mode: str) -> str | None:
    for word in mode.split(","):
        if word in PROPAGATION_MODES:
            return word
    return None


def _mode_copy(mode: str) -> bool | None:
    for word in mode.split(","):
        if word in _COPY_MODES:
            return _COPY_MODES[word]
    return None


def volume_name_error(name: str) -> str | None:
    """The local driver's name check (without the ``create <name>:`` prefix)."""
    if len(name) == 1:
        return "volume name is too short, names should be at least two alphanumeric characters"
    if not VOLUME_NAME.match(name):
        return (f"{go_quote(name)} includes invalid characters for a local volume name, only "
                f"{go_quote(VOLUME_NAME_CHARS)} are allowed. If you intended to pass a host "
                "directory, use absolute path")
    return None


def validate_volume_name(name: str) -> None:
    error = volume_name_error(name)
    if error:
        raise InvalidParameter(f"create {name}: {error}")


class _MountConfigError(Exception):
    """``invalid mount config for type "<type>": <reason>``."""

    def __init__(self, mount_type: str, reason: str):
        super().__init__(f"invalid mount config for type {go_quote(mount_type)}: {reason}")


def _abs_reason(path: str) -> str:
    return f"invalid mount path: '{path.replace(chr(92), '/')}' mount path must be absolute"


ROOT_DESTINATION = "invalid specification: destination can't be '/'"


def _check_destination(path: str) -> str | None:
    """The reason ``path`` is not a valid container destination, or None."""
    if go_clean(path.replace("\\", "/")) == "/":
        return ROOT_DESTINATION
    if not _is_abs(path):
        return _abs_reason(path)
    return None


def validate_tmpfs_destination(dest: str) -> None:
    reason = _check_destination(dest)
    if reason:
        raise InvalidParameter(reason)


def tmpfs_data(options: Mapping[str, Any] | None, read_only: bool) -> str:
    """moby's ConvertTmpfsOptions: TmpfsOptions -> mount data ("ro,mode=1777,size=64m")."""
    words: list[str] = []
    if read_only:
        words.append("ro")
    options = options or {}
    mode = int(options.get("Mode") or 0)
    if mode:
        words.append(f"mode={mode:o}")
    size = int(options.get("SizeBytes") or 0)
    if size:
        for suffix, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % divisor == 0:
                words.append(f"size={size // divisor}{suffix}")
                break
        else:
            words.append(f"size={size}")
    for opt in options.get("Options") or []:
        if not isinstance(opt, list) or not 1 <= len(opt) <= 2:
            raise ValueError("invalid option array length")
        if opt[0] not in _TMPFS_EXTRA_OPTIONS:
            raise ValueError(f"invalid option: {opt[0]}")
        words.append(opt[0] if len(opt) == 1 else f"{opt[0]}={opt[1]}")
    return ",".join(words)


# -- one Mount (API shape) ----------------------------------------------------------------
def _opt(spec: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParameter(f"invalid {key} in mount: expected an object")
    return value


def _validate_spec(spec: Mapping[str, Any], exists: Callable[[str], bool] | None) -> None:
    """moby's validateMountConfigImpl. ``exists`` None skips the bind source check (-v)."""
    mtype = spec.get("Type") or ""
    for key, owner in (("BindOptions", "bind"), ("VolumeOptions", "volume"),
                       ("TmpfsOptions", "tmpfs"), ("ImageOptions", "image"),
                       ("ClusterOptions", "cluster")):
        if mtype != owner and _opt(spec, key) is not None:
            raise _MountConfigError(mtype, f"field {key} must not be specified")
    target = spec.get("Target") or ""
    if not target:
        raise _MountConfigError(mtype, "field Target must not be empty")
    reason = _check_destination(target)
    if reason:
        raise _MountConfigError(mtype, reason)
    source = spec.get("Source") or ""
    if mtype == "bind":
        if not source:
            raise _MountConfigError(mtype, "field Source must not be empty")
        bind = _opt(spec, "BindOptions") or {}
        propagation = bind.get("Propagation") or ""
        if propagation and propagation not in PROPAGATION_MODES:
            raise _MountConfigError(mtype, f"invalid propagation mode: {propagation}")
        if not _is_abs(source):
            raise _MountConfigError(mtype, _abs_reason(source))
        if exists is not None and not exists(source) and not bind.get("CreateMountpoint"):
            raise _MountConfigError(mtype, f"bind source path does not exist: {source}")
    elif mtype == "volume":
        subpath = (_opt(spec, "VolumeOptions") or {}).get("Subpath") or ""
        if subpath:
            if not source:
                raise _MountConfigError(mtype, "must not set Subpath when using anonymous volumes")
            if not _is_local(subpath):
                raise _MountConfigError(mtype, "subpath must be a relative path within the volume")
    elif mtype == "tmpfs":
        if source:
            raise _MountConfigError(mtype, "field Source must not be specified")
        try:
            tmpfs_data(_opt(spec, "TmpfsOptions"), bool(spec.get("ReadOnly")))
        except ValueError as exc:
            raise _MountConfigError(mtype, str(exc)) from None
    else:
        raise _MountConfigError(mtype, "mount type unknown")


def _spec_to_plan(spec: Mapping[str, Any], origin: str) -> MountPlan:
    """moby's parseMountSpec after validation."""
    mtype = spec["Type"]
    plan = MountPlan(type=mtype, destination=go_clean(spec["Target"].replace("\\", "/")),
                     rw=not spec.get("ReadOnly"), origin=origin)
    if mtype == "volume":
        source = spec.get("Source") or ""
        options = _opt(spec, "VolumeOptions") or {}
        driver = _opt(options, "DriverConfig") or {}
        plan.name = source
        plan.anonymous = not source
        plan.driver = driver.get("Name") or ""
        plan.copy_data = not options.get("NoCopy")
        plan.subpath = options.get("Subpath") or ""
        if driver.get("Options") is not None:
            plan.driver_options = {str(k): str(v) for k, v in driver["Options"].items()}
        if options.get("Labels") is not None:
            plan.labels = {str(k): str(v) for k, v in options["Labels"].items()}
    elif mtype == "bind":
        bind = _opt(spec, "BindOptions") or {}
        plan.source = go_clean(spec["Source"].replace("\\", "/"))
        plan.propagation = bind.get("Propagation") or DEFAULT_PROPAGATION
        plan.explicit_propagation = bool(bind.get("Propagation"))
        plan.non_recursive = bool(bind.get("NonRecursive"))
        plan.readonly_non_recursive = bool(bind.get("ReadOnlyNonRecursive"))
        plan.readonly_force_recursive = bool(bind.get("ReadOnlyForceRecursive"))
        plan.create_source = bool(bind.get("CreateMountpoint"))
    elif mtype == "tmpfs":
        plan.tmpfs_data = tmpfs_data(_opt(spec, "TmpfsOptions"), bool(spec.get("ReadOnly")))
    return plan


def parse_mount(spec: Mapping[str, Any],
                exists: Callable[[str], bool] | None = None) -> MountPlan:
    """One ``HostConfig.Mounts`` entry (``--mount``). ``exists`` checks bind sources."""
    if not isinstance(spec, Mapping):
        raise InvalidParameter("invalid mount config: expected an object")
    try:
        _validate_spec(spec, exists)
    except _MountConfigError as exc:
        raise InvalidParameter(str(exc)) from None
    plan = _spec_to_plan(spec, ORIGIN_MOUNTS)
    if plan.type == "bind":
        if plan.rw and plan.readonly_non_recursive:
            raise InvalidParameter("mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive")
        if plan.rw and plan.readonly_force_recursive:
            raise InvalidParameter("mount options conflict: !ReadOnly && BindOptions.ReadOnlyForceRecursive")
        if plan.readonly_non_recursive and plan.readonly_force_recursive:
            raise InvalidParameter("mount options conflict: ReadOnlyNonRecursive && "
                                   "BindOptions.ReadOnlyForceRecursive")
    return plan


def parse_bind(raw: str, volume_driver: str = "") -> MountPlan:
    """One ``HostConfig.Binds`` entry: ``name:/dst[:mode]``, ``/src:/dst[:mode]``, ``/dst``.

    A missing host source is not an error here: ``-v`` creates it at start (create_source)."""
    if not isinstance(raw, str):
        raise InvalidParameter("invalid volume specification: expected a string")
    invalid_spec = f"invalid volume specification: '{raw}'"
    parts = raw.split(":", 3)
    if parts[0] == "":
        raise InvalidParameter(invalid_spec)
    spec: dict[str, Any] = {}
    mode = ""
    if len(parts) == 1:
        spec["Target"] = parts[0]
    elif len(parts) == 2:
        if valid_mode(parts[1]):  # "/dst:rw": a destination with a mode is no volume
            raise InvalidParameter(invalid_spec)
        spec["Source"], spec["Target"] = parts
    elif len(parts) == 3:
        spec["Source"], spec["Target"], mode = parts
    else:
        raise InvalidParameter(invalid_spec)
    if not valid_mode(mode):
        raise InvalidParameter(f"invalid mode: {mode}")
    spec["Type"] = "bind" if _is_abs(spec.get("Source", "")) else "volume"
    spec["ReadOnly"] = not mode_is_rw(mode)
    if volume_driver and spec["Type"] == "volume":
        spec["VolumeOptions"] = {"DriverConfig": {"Name": volume_driver}}
    copy = _mode_copy(mode)
    if copy is not None:
        spec.setdefault("VolumeOptions", {})["NoCopy"] = not copy
    propagation = _mode_propagation(mode)
    if propagation:
        spec["BindOptions"] = {"Propagation": propagation}
    try:
        _validate_spec(spec, None)
    except _MountConfigError as exc:
        raise InvalidParameter(f"{invalid_spec}: {exc}") from None
    plan = _spec_to_plan(spec, ORIGIN_BINDS)
    plan.mode = mode
    if plan.type == "bind":
        plan.create_source = True
    return plan


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """``container[:mode]`` -> (container, mode); mode defaults to "rw"."""
    if not spec:
        raise InvalidParameter("volumes-from specification cannot be an empty string")
    container, _, mode = spec.partition(":")
    if mode == "":
        return container, "rw"
    if not valid_mode(mode) or _mode_propagation(mode) or _mode_copy(mode) is not None:
        raise InvalidParameter(f"invalid mode: {mode}")
    return container, mode


def _daemon_root_propagation(plan: MountPlan, data_root: str) -> None:
    """moby's validateBindDaemonRoot: binds overlapping the data-root default to rslave, so a
    container never pins a private copy of a mount the daemon later wants to remove."""
    if plan.type != "bind" or not data_root:
        return
    source = plan.source
    if not (source.startswith(data_root) or data_root.startswith(source)):
        return
    if not plan.explicit_propagation:
        plan.propagation = "rslave"
        return
    if plan.propagation not in ("rslave", "rshared"):
        raise InvalidParameter(
            'invalid mount config: must use either propagation mode "rslave" or "rshared" when '
            f"mount source is within the daemon root, daemon root: {go_quote(data_root)}, bind "
            f"mount source: {go_quote(source)}, propagation: {go_quote(plan.propagation)}")


def _check_volume_name(plan: MountPlan) -> None:
    # Fail before any volume is created; the local driver would refuse the name anyway.
    if plan.type == "volume" and plan.name and plan.driver in ("", DEFAULT_VOLUME_DRIVER):
        validate_volume_name(plan.name)


# -- the whole container --------------------------------------------------------------------
VolumesFromLookup = Callable[[str], Sequence[MountPlan]]


def plan_mounts(config: Mapping[str, Any] | None, host_config: Mapping[str, Any] | None, *,
                volumes_from: VolumesFromLookup | None = None, data_root: str = "",
                exists: Callable[[str], bool] | None = None,
                default_readonly_non_recursive: bool = False) -> list[MountPlan]:
    """Every mount of a new container, in Docker's precedence order.

    ``volumes_from(name)`` returns the stored plans of another container (raise NotFound for
    an unknown one). ``exists`` checks ``--mount type=bind`` sources (os.path.exists in the
    daemon). ``default_readonly_non_recursive`` is True for API clients older than 1.44.
    Volumes are not created here: anonymous ones have ``name == ""`` until
    ``VolumeService.attach`` creates them."""
    config = config or {}
    hc = host_config or {}
    plans: dict[str, MountPlan] = {}  # destination -> plan, insertion order kept
    bound: set[str] = set()           # destinations claimed by Binds/Mounts

    tmpfs = hc.get("Tmpfs") or {}
    if not isinstance(tmpfs, Mapping):
        raise InvalidParameter("invalid Tmpfs: expected an object")
    tmpfs_dests: dict[str, str] = {}
    for dest, data in tmpfs.items():
        validate_tmpfs_destination(dest)
        tmpfs_dests[go_clean(dest)] = str(data or "")

    # 1. Volumes of other containers (overridden below by this container's own mounts).
    for entry in hc.get("VolumesFrom") or []:
        name, mode = parse_volumes_from(entry)
        if volumes_from is None:
            raise InvalidParameter(f"No such container: {name}")
        try:
            theirs = volumes_from(name)
        except BerthError as exc:
            raise InvalidParameter(exc.message) from None
        for other in theirs:
            if other.origin == ORIGIN_TMPFS or other.type == "tmpfs":
                continue  # Docker shares volumes and binds, not tmpfs
            plans[other.destination] = replace(
                other, rw=other.rw and mode_is_rw(mode), mode="", copy_data=False,
                origin=ORIGIN_VOLUMES_FROM, driver_options=None, labels=None)

    # 2. -v / Binds.
    volume_driver = hc.get("VolumeDriver") or ""
    for raw in hc.get("Binds") or []:
        plan = parse_bind(raw, volume_driver)
        _daemon_root_propagation(plan, data_root)
        if plan.destination in bound or plan.destination in tmpfs_dests:
            raise InvalidParameter(f"Duplicate mount point: {plan.destination}")
        _check_volume_name(plan)
        if plan.type == "bind" and not plan.rw and default_readonly_non_recursive:
            plan.readonly_non_recursive = True
        bound.add(plan.destination)
        plans.pop(plan.destination, None)
        plans[plan.destination] = plan

    # 3. --mount / Mounts.
    for spec in hc.get("Mounts") or []:
        plan = parse_mount(spec, exists)
        _daemon_root_propagation(plan, data_root)
        if plan.destination in bound or plan.destination in tmpfs_dests:
            raise InvalidParameter(f"Duplicate mount point: {spec.get('Target')}")
        _check_volume_name(plan)
        if plan.type == "bind" and not plan.rw and default_readonly_non_recursive \
                and not plan.readonly_force_recursive:
            plan.readonly_non_recursive = True
        bound.add(plan.destination)
        plans.pop(plan.destination, None)
        plans[plan.destination] = plan

    # 4. --tmpfs / HostConfig.Tmpfs (kept for ordering and duplicate checks).
    for dest, data in tmpfs_dests.items():
        plans[dest] = MountPlan(type="tmpfs", destination=dest, tmpfs_data=data,
                                rw="ro" not in data.split(","), origin=ORIGIN_TMPFS)

    # 5. VOLUME / Config.Volumes: anonymous volumes where nothing else is mounted.
    volumes = config.get("Volumes") or {}
    if not isinstance(volumes, Mapping):
        raise InvalidParameter("invalid Volumes: expected an object")
    for raw_dest in volumes:
        dest = go_clean(raw_dest)
        if dest in plans:
            continue
        reason = _check_destination(raw_dest)
        if reason:
            raise InvalidParameter(reason)
        plans[dest] = MountPlan(type="volume", destination=dest, driver=volume_driver,
                                anonymous=True, copy_data=True, origin=ORIGIN_CONFIG_VOLUMES)
    return list(plans.values())


def validate_host_config_mounts(host_config: Mapping[str, Any] | None,
                                exists: Callable[[str], bool] | None = None) -> None:
    """Create-time checks Docker makes before anything is created (validateHostConfig):
    every Mounts entry, and the Tmpfs destinations."""
    hc = host_config or {}
    for spec in hc.get("Mounts") or []:
        parse_mount(spec, exists)
    for dest in (hc.get("Tmpfs") or {}):
        validate_tmpfs_destination(dest)


# -- outputs --------------------------------------------------------------------------------
def sort_for_mounting(plans: Iterable[MountPlan]) -> list[MountPlan]:
    """Parents before children (/etc before /etc/x), stable otherwise (moby sortMounts)."""
    return sorted(plans, key=lambda p: go_clean(p.destination).count("/"))


def oci_mount(plan: MountPlan, *, recursive_readonly: bool = False) -> dict[str, Any]:
    """The OCI runtime spec entry for one plan. ``plan.source`` must be the host path to bind
    (``VolumeService.mount_plans`` sets it for volumes). ``recursive_readonly``: the runtime
    and kernel support "rro" (runc >= 1.1, Linux >= 5.12)."""
    if plan.type == "tmpfs":
        from berth.runtime.spec import merge_tmpfs_options  # the spec builder's own rules

        words = ["noexec", "nosuid", "nodev", DEFAULT_PROPAGATION]
        words += [w for w in plan.tmpfs_data.split(",") if w]
        return {"destination": plan.destination, "type": "tmpfs", "source": "tmpfs",
                "options": merge_tmpfs_options(words)}
    if not plan.source:
        raise ValueError(f"mount {plan.destination}: no source (volume not mounted?)")
    options = ["bind" if plan.non_recursive else "rbind"]
    if not plan.rw:
        if plan.readonly_force_recursive and not recursive_readonly:
            raise InvalidParameter("rro is not supported by the kernel or the runtime")
        rro = recursive_readonly and not plan.readonly_non_recursive
        options.append("rro" if rro else "ro")
    if plan.propagation in PROPAGATION_MODES:
        options.append(plan.propagation)
    return {"destination": plan.destination, "type": "bind", "source": plan.source,
            "options": options}


def oci_mounts(plans: Iterable[MountPlan], *, include_host_tmpfs: bool = False,
               recursive_readonly: bool = False) -> list[dict[str, Any]]:
    """OCI entries, parents first. HostConfig.Tmpfs plans are left out unless asked for,
    because ``berth.runtime.spec.build_spec`` adds HostConfig.Tmpfs itself."""
    chosen = [p for p in plans if include_host_tmpfs or p.origin != ORIGIN_TMPFS]
    return [oci_mount(p, recursive_readonly=recursive_readonly)
            for p in sort_for_mounting(chosen)]


def rootfs_propagation(plans: Iterable[MountPlan]) -> str | None:
    """The rootfs propagation the spec needs for shared/slave binds (moby withMounts)."""
    wanted = None
    for plan in plans:
        if plan.type != "bind":
            continue
        if plan.propagation in ("shared", "rshared"):
            return "shared"
        if plan.propagation in ("slave", "rslave"):
            wanted = "rslave"
    return wanted


def inspect_mounts(plans: Iterable[MountPlan]) -> list[dict[str, Any]]:
    """Container inspect ``Mounts`` (moby GetMountPoints): no HostConfig.Tmpfs entries."""
    out = []
    for plan in plans:
        if plan.origin == ORIGIN_TMPFS:
            continue
        entry: dict[str, Any] = {"Type": plan.type}
        if plan.name:
            entry["Name"] = plan.name
        entry["Source"] = plan.source
        entry["Destination"] = plan.destination
        if plan.type == "volume":
            entry["Driver"] = plan.driver or DEFAULT_VOLUME_DRIVER
        entry["Mode"] = plan.mode
        entry["RW"] = plan.rw
        entry["Propagation"] = plan.propagation
        out.append(entry)
    return out


def matches_volume_filter(plans: Iterable[MountPlan], values: Iterable[str]) -> bool:
    """`docker ps --filter volume=X`: X is a volume name, a bind source or a destination."""
    keys: set[str] = set()
    for entry in inspect_mounts(plans):
        keys.add(entry.get("Name") or entry["Source"])
        keys.add(entry["Destination"])
    return any(value in keys for value in values)


def container_mount_docs(plans: Iterable[MountPlan]) -> list[dict[str, Any]]:
    """What a container record keeps: the inspect ``Mounts`` entry of each plan plus the plan
    itself under "Plan" (HostConfig.Tmpfs plans are left out: HostConfig already has them)."""
    docs = []
    for plan in plans:
        if plan.origin == ORIGIN_TMPFS:
            continue
        docs.append({**inspect_mounts([plan])[0], "Plan": plan.to_doc()})
    return docs


def plans_from_docs(docs: Iterable[Mapping[str, Any]]) -> list[MountPlan]:
    """The plans back from ``container_mount_docs`` output (entries without one are skipped)."""
    return [MountPlan.from_doc(doc["Plan"]) for doc in docs if isinstance(doc.get("Plan"), Mapping)]
