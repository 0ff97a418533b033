"""``network ls`` rows: docker's networkContext."""

from __future__ import annotations

from berth.cli.format import Row
from berth.cli.formatters.common import sorted_labels, truncate_id
from berth.units import parse_rfc3339

DEFAULT_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
HEADERS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv4": "IPV4",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}


def network_format(source: str, quiet: bool) -> str:
    if source == "table":
        return "{{.ID}}" if quiet else DEFAULT_TABLE
    if source == "raw":
        if quiet:
            return "network_id: {{.ID}}"
        return "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"
    return source


def go_time_from_rfc3339(text: str) -> str:
    """Go's Time.String() of a decoded API timestamp (keeps its zone: UTC for "Z")."""
    import re

    m = re.match(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$", text or "")
    if not m:
        return "0001-01-01 00:00:00 +0000 UTC"
    frac = (m.group(3) or "").rstrip("0")
    frac = "" if frac == "." else frac
    if m.group(4) == "Z":
        zone = "+0000 UTC"
    else:
        offset = m.group(4).replace(":", "")
        zone = f"{offset} {offset}"
    if parse_rfc3339(text) is None:
        return text
    return f"{m.group(1)} {m.group(2)}{frac} {zone}"


class NetworkRow(Row):
    go_type = "network.networkContext"

    def __init__(self, n: dict, trunc: bool):
        self._labels = dict(n.get("Labels") or {})
        super().__init__({
            "ID": truncate_id(n.get("Id", "")) if trunc else n.get("Id", ""),
            "Name": n.get("Name", ""),
            "Driver": n.get("Driver", ""),
            "Scope": n.get("Scope", ""),
            "IPv4": "true" if n.get("EnableIPv4") else "false",
            "IPv6": "true" if n.get("EnableIPv6") else "false",
            "Internal": "true" if n.get("Internal") else "false",
            "Labels": sorted_labels(self._labels),
            "CreatedAt": go_time_from_rfc3339(n.get("Created", "")),
        })

    def Label(self, name: str) -> str:  # noqa: N802 - docker's method
        return self._labels.get(name, "")
