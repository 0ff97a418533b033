"""Volume rows (docker's volumeContext) and the volume object as docker prints it on inspect
(a Go struct: fixed field order, maps sorted, omitempty fields dropped)."""

from __future__ import annotations

from typing import Any

from berth.cli.format import Row
from berth.cli.formatters.common import sorted_labels
from berth.units import human_size

DEFAULT_TABLE = "table {{.Driver}}\t{{.Name}}"
HEADERS = {
    "ID": "ID",
    "Name": "VOLUME NAME",
    "Group": "GROUP",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "Availability": "AVAILABILITY",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "Links": "LINKS",
    "Size": "SIZE",
    "Status": "STATUS",
}


def volume_format(source: str, quiet: bool) -> str:
    if source == "table":
        return "{{.Name}}" if quiet else DEFAULT_TABLE
    if source == "raw":
        return "name: {{.Name}}" if quiet else "name: {{.Name}}\\ndriver: {{.Driver}}\\n"
    return source


def _sorted(m: Any) -> Any:
    return {k: m[k] for k in sorted(m)} if isinstance(m, dict) else m


def volume_struct(v: dict) -> dict:
    """The volume.Volume Go struct as json.Marshal writes it."""
    out: dict[str, Any] = {}
    if v.get("ClusterVolume"):
        out["ClusterVolume"] = v["ClusterVolume"]
    if v.get("CreatedAt"):
        out["CreatedAt"] = v["CreatedAt"]
    out["Driver"] = v.get("Driver", "")
    out["Labels"] = _sorted(v.get("Labels"))
    out["Mountpoint"] = v.get("Mountpoint", "")
    out["Name"] = v.get("Name", "")
    out["Options"] = _sorted(v.get("Options"))
    out["Scope"] = v.get("Scope", "")
    if v.get("Status"):
        out["Status"] = _sorted(v["Status"])
    if v.get("UsageData") is not None:
        usage = v["UsageData"]
        out["UsageData"] = {"RefCount": usage.get("RefCount", 0), "Size": usage.get("Size", 0)}
    return out


class VolumeRow(Row):
    go_type = "formatter.volumeContext"

    def __init__(self, v: dict):
        self._labels = dict(v.get("Labels") or {})
        usage = v.get("UsageData")
        cluster = v.get("ClusterVolume")
        status = "N/A"
        if cluster is not None:
            info = cluster.get("Info") or {}
            published = cluster.get("PublishStatus") or []
            if not info.get("VolumeID"):
                status = "pending creation"
            elif not published:
                status = "created"
            elif len(published) == 1:
                status = "in use (1 node)"
            else:
                status = f"in use ({len(published)} nodes)"
        spec = (cluster or {}).get("Spec") or {}
        super().__init__({
            "Name": v.get("Name", ""),
            "Driver": v.get("Driver", ""),
            "Scope": v.get("Scope", ""),
            "Mountpoint": v.get("Mountpoint", ""),
            "Labels": sorted_labels(self._labels),
            "Links": "N/A" if usage is None else str(usage.get("RefCount", 0)),
            "Size": "N/A" if usage is None else human_size(usage.get("Size", 0)),
            "Group": "N/A" if cluster is None else spec.get("Group", ""),
            "Availability": "N/A" if cluster is None else spec.get("Availability", ""),
            "Status": status,
        })

    def Label(self, name: str) -> str:  # noqa: N802 - docker's method
        return self._labels.get(name, "")
