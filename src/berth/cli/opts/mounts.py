"""``--mount`` (docker's MountOpt), ``-v`` specs (compose's ParseVolume, which docker uses to
tell binds from volumes), ``--device`` and ``--tmpfs``."""

from __future__ import annotations

import csv
import os
import posixpath

from berth.units import ram_in_bytes

_PROPAGATIONS = {"rprivate", "private", "rshared", "shared", "rslave", "slave"}


def _parse_bool(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(text)


def _abs_if_relative(path: str) -> str:
    if not os.path.isabs(path) and path.startswith("."):
        return os.path.abspath(path)
    return path


def parse_mount(value: str) -> dict:
    """One ``--mount`` value -> an API ``Mount`` (only the fields that are set)."""
    try:
        fields = next(csv.reader([value], strict=True))
    except (csv.Error, StopIteration) as e:
        raise ValueError(str(e)) from None
    mount: dict = {"Type": "volume"}
    volume: dict | None = None
    bind: dict | None = None
    tmpfs: dict | None = None
    image: dict | None = None

    def volume_opts() -> dict:
        nonlocal volume
        if volume is None:
            volume = {"Labels": {}}
        volume.setdefault("DriverConfig", {})
        return volume

    def bind_opts() -> dict:
        nonlocal bind
        if bind is None:
            bind = {}
        return bind

    def tmpfs_opts() -> dict:
        nonlocal tmpfs
        if tmpfs is None:
            tmpfs = {}
        return tmpfs

    def set_kv(target: dict, text: str) -> None:
        key, _, val = text.partition("=")
        if key:
            target[key] = val

    for field in fields:
        key, sep, val = field.partition("=")
        key = key.lower()
        if not sep:
            if key in ("readonly", "ro"):
                mount["ReadOnly"] = True
            elif key == "volume-nocopy":
                volume_opts()["NoCopy"] = True
            elif key == "bind-nonrecursive":
                bind_opts()["NonRecursive"] = True
            else:
                raise ValueError(f"invalid field '{field}' must be a key=value pair")
            continue
        if key == "type":
            mount["Type"] = val.lower()
        elif key in ("source", "src"):
            mount["Source"] = _abs_if_relative(val)
        elif key in ("target", "dst", "destination"):
            mount["Target"] = val
        elif key in ("readonly", "ro"):
            try:
                mount["ReadOnly"] = _parse_bool(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "consistency":
            mount["Consistency"] = val.lower()
        elif key == "bind-propagation":
            bind_opts()["Propagation"] = val.lower()
        elif key == "bind-nonrecursive":
            try:
                bind_opts()["NonRecursive"] = _parse_bool(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "bind-recursive":
            if val == "enabled":
                pass
            elif val == "disabled":
                bind_opts()["NonRecursive"] = True
            elif val == "writable":
                bind_opts()["ReadOnlyNonRecursive"] = True
            elif val == "readonly":
                bind_opts()["ReadOnlyForceRecursive"] = True
            else:
                raise ValueError(
                    f'invalid value for {key}: {val} (must be "enabled", "disabled", "writable", or "readonly")'
                )
        elif key == "volume-subpath":
            volume_opts()["Subpath"] = val
        elif key == "volume-nocopy":
            try:
                volume_opts()["NoCopy"] = _parse_bool(val)
            except ValueError:
                raise ValueError(f"invalid value for volume-nocopy: {val}") from None
        elif key == "volume-label":
            set_kv(volume_opts()["Labels"], val)
        elif key == "volume-driver":
            volume_opts()["DriverConfig"]["Name"] = val
        elif key == "volume-opt":
            set_kv(volume_opts()["DriverConfig"].setdefault("Options", {}), val)
        elif key == "image-subpath":
            image = {"Subpath": val}
        elif key == "tmpfs-size":
            try:
                tmpfs_opts()["SizeBytes"] = ram_in_bytes(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "tmpfs-mode":
            try:
                mode = int(val, 8)
                if mode < 0 or mode > 0xFFFFFFFF:
                    raise ValueError
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
            tmpfs_opts()["Mode"] = mode
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")

    kind = mount["Type"]
    if not kind:
        raise ValueError("type is required")
    if not mount.get("Target"):
        raise ValueError("target is required")
    for opts, name, wanted in ((volume, "volume", "volume"), (image, "image", "image"), (bind, "bind", "bind"), (tmpfs, "tmpfs", "tmpfs")):
        if opts is not None and kind != wanted:
            raise ValueError(f"cannot mix '{name}-*' options with mount type '{kind}'")
    if bind is not None:
        if bind.get("ReadOnlyNonRecursive") and not mount.get("ReadOnly"):
            raise ValueError("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction")
        if bind.get("ReadOnlyForceRecursive"):
            if not mount.get("ReadOnly"):
                raise ValueError("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction")
            if bind.get("Propagation") != "rprivate":
                raise ValueError(
                    "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction"
                )
    # the API's field order (Go's mount.Mount struct), omitting what is empty
    out: dict = {"Type": kind}
    for key in ("Source", "Target", "ReadOnly", "Consistency"):
        if mount.get(key):
            out[key] = mount[key]
    if bind is not None:
        out["BindOptions"] = {k: bind[k] for k in ("Propagation", "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive", "ReadOnlyForceRecursive") if bind.get(k)}
    if volume is not None:
        vol: dict = {}
        if volume.get("NoCopy"):
            vol["NoCopy"] = True
        if volume.get("Labels"):
            vol["Labels"] = dict(sorted(volume["Labels"].items()))
        if volume.get("Subpath"):
            vol["Subpath"] = volume["Subpath"]
        driver = volume.get("DriverConfig") or {}
        vol["DriverConfig"] = {k: driver[k] for k in ("Name", "Options") if driver.get(k)}
        out["VolumeOptions"] = vol
    if image is not None:
        out["ImageOptions"] = {k: v for k, v in image.items() if v}
    if tmpfs is not None:
        out["TmpfsOptions"] = {k: tmpfs[k] for k in ("SizeBytes", "Mode") if tmpfs.get(k)}
    return out


# -- -v/--volume ----------------------------------------------------------------------------------


def _is_windows_drive(buffer: str, char: str) -> bool:
    return char == ":" and len(buffer) == 1 and buffer.isalpha()


def parse_volume_spec(spec: str) -> dict:
    """compose's ParseVolume: {"Source", "Target", "Type", "ReadOnly"} of a ``-v`` value."""
    volume = {"Source": "", "Target": "", "Type": "", "ReadOnly": False}
    if not spec:
        raise ValueError("invalid empty volume spec")
    if len(spec) <= 2:
        volume["Target"] = spec
        volume["Type"] = "volume"
        return volume
    buffer = ""
    end = "\0"
    for char in spec + end:
        if _is_windows_drive(buffer, char):
            buffer += char
        elif char in (":", end):
            try:
                _populate(char == end, char, buffer, volume)
            except ValueError as e:
                _populate_type(volume)
                raise ValueError(f"invalid spec: {spec}: {e}") from None
            buffer = ""
        else:
            buffer += char
    _populate_type(volume)
    return volume


def _populate(at_end: bool, char: str, buffer: str, volume: dict) -> None:
    if not buffer:
        raise ValueError("empty section between colons")
    if not volume["Source"] and at_end:
        volume["Target"] = buffer
        return
    if not volume["Source"]:
        volume["Source"] = buffer
        return
    if not volume["Target"]:
        volume["Target"] = buffer
        return
    if char == ":":
        raise ValueError("too many colons")
    for option in buffer.split(","):
        if option == "ro":
            volume["ReadOnly"] = True
        elif option == "rw":
            volume["ReadOnly"] = False


def _populate_type(volume: dict) -> None:
    source = volume["Source"]
    if not source:
        volume["Type"] = "volume"
    elif source[0] in "./~" or (len(source) > 1 and (source.startswith("\\\\") or _is_windows_drive(source[0], source[1]))):
        volume["Type"] = "bind"
    else:
        volume["Type"] = "volume"


def bind_spec(spec: str) -> str:
    """A ``-v`` bind with a relative ``./host`` part made absolute (docker does this)."""
    host, sep, rest = spec.partition(":")
    if not sep:
        return spec
    if not os.path.isabs(host) and host.startswith("."):
        host = os.path.abspath(host)
    return f"{host}:{rest}"


# -- --device ------------------------------------------------------------------------------------


def _valid_device_mode(mode: str) -> bool:
    if not mode:
        return False
    seen = set()
    for c in mode:
        if c not in "rwm" or c in seen:
            return False
        seen.add(c)
    return True


def validate_device(value: str) -> str:
    """docker's validateLinuxPath for ``--device``: ``[host:]container[:mode]``."""
    if value.count(":") > 2:
        raise ValueError(f"bad format for path: {value}")
    split = value.split(":", 2)
    if not split[0]:
        raise ValueError(f"bad format for path: {value}")
    mode = ""
    if len(split) == 1:
        container = split[0]
        value = posixpath.normpath(container)
    elif len(split) == 2:
        if _valid_device_mode(split[1]):
            container, mode = split[0], split[1]
            value = f"{posixpath.normpath(container)}:{mode}"
        else:
            container = split[1]
            value = f"{split[0]}:{posixpath.normpath(container)}"
    else:
        container, mode = split[1], split[2]
        if not _valid_device_mode(mode):
            raise ValueError(f"bad mode specified: {mode}")
        value = f"{split[0]}:{container}:{mode}"
    if not container.startswith("/"):
        raise ValueError(f"{container} is not an absolute path")
    return value


def parse_device(value: str) -> dict:
    """A validated ``--device`` value -> the API's DeviceMapping."""
    parts = value.split(":", 3)
    src, dst, perms = parts[0], "", "rwm"
    if len(parts) == 3:
        perms = parts[2]
    if len(parts) >= 2:
        if _valid_device_mode(parts[1]):
            perms = parts[1]
        else:
            dst = parts[1]
    if len(parts) > 3:
        raise ValueError(f"invalid device specification: {value}")
    return {"PathOnHost": src, "PathInContainer": dst or src, "CgroupPermissions": perms}


def is_cdi_name(value: str) -> bool:
    """A CDI device name: ``vendor.com/class=name``."""
    kind, sep, name = value.partition("=")
    if not sep or not name or "/" not in kind:
        return False
    vendor, _, cls = kind.partition("/")
    return bool(vendor) and bool(cls) and "." in vendor
