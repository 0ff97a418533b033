"""``ps`` rows: docker's ContainerContext (formatter/container.go)."""

from __future__ import annotations

import time

from berth.cli.format import Row
from berth.cli.formatters.common import ellipsis, sorted_labels, truncate_id
from berth.goquote import quote as go_quote
from berth.units import go_time_string, human_duration, human_size

DEFAULT_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
HEADERS = {
    "ID": "CONTAINER ID",
    "Names": "NAMES",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Networks": "NETWORKS",
    "Platform": "PLATFORM",
}
RAW_FORMAT = (
    "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\n"
    "state: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\n"
    "labels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n"
)


def container_format(source: str, quiet: bool, size: bool) -> str:
    """docker's NewContainerFormat."""
    if source in ("table", ""):
        if quiet:
            return "{{.ID}}"
        return DEFAULT_TABLE + ("\\t{{.Size}}" if size else "")
    if source == "raw":
        if quiet:
            return "container_id: {{.ID}}"
        return RAW_FORMAT + ("size: {{.Size}}\\n" if size else "")
    return "{{.ID}}" if quiet else source


def image_column(image: str, image_id: str, trunc: bool) -> str:
    if not image:
        return "<no image>"
    if not trunc:
        return image
    short = truncate_id(image_id)
    if short and short == truncate_id(image):
        return short
    from berth.distribution import reference

    try:
        ref = reference.parse_normalized_named(image)
    except Exception:
        return image
    if ref.tag is not None:
        return reference.familiar_string(reference.Reference(ref.domain, ref.path, ref.tag))
    return reference.familiar_string(reference.trim_named(ref))


def names_column(names: list[str], trunc: bool) -> str:
    stripped = [n[1:] for n in names or []]
    if trunc:
        for name in stripped:
            if "/" not in name:
                stripped = [name]
                break
    return ",".join(stripped)


def _join_host_port(ip: str, port: str) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def displayable_ports(ports: list[dict]) -> str:
    """docker's DisplayablePorts: contiguous ranges grouped, host mappings after."""
    def key(p: dict) -> tuple:
        return (p.get("PrivatePort", 0), p.get("IP", ""), p.get("PublicPort", 0), p.get("Type", ""))

    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    mappings: list[str] = []
    for port in sorted(ports or [], key=key):
        current = port.get("PrivatePort", 0)
        kind = port.get("Type", "")
        group_key = kind
        ip = port.get("IP", "")
        if ip:
            if port.get("PublicPort", 0) != current:
                mappings.append(f"{_join_host_port(ip, str(port.get('PublicPort', 0)))}->{current}/{kind}")
                continue
            group_key = f"{ip}/{kind}"
        group = groups.get(group_key)
        if group is None:
            groups[group_key] = [current, current]
            order.append(group_key)
            continue
        if current == group[1] + 1:
            group[1] = current
            continue
        result.append(_form_group(group_key, group[0], group[1]))
        groups[group_key] = [current, current]
    for group_key in order:
        first, last = groups[group_key]
        result.append(_form_group(group_key, first, last))
    return ", ".join(result + mappings)


def _form_group(key: str, start: int, last: int) -> str:
    parts = key.split("/")
    kind, ip = parts[0], ""
    if len(parts) > 1:
        ip, kind = parts[0], parts[1]
    group = str(start) if start == last else f"{start}-{last}"
    if ip:
        group = f"{_join_host_port(ip, group)}->{group}"
    return f"{group}/{kind}"


class ContainerRow(Row):
    go_type = "formatter.ContainerContext"

    def __init__(self, c: dict, trunc: bool, now: float | None = None):
        self._labels = dict(c.get("Labels") or {})
        now = time.time() if now is None else now
        created = int(c.get("Created") or 0)
        command = c.get("Command", "")
        mounts = []
        for m in c.get("Mounts") or []:
            name = m.get("Name") or m.get("Source", "")
            mounts.append(ellipsis(name, 15) if trunc else name)
        networks = ((c.get("NetworkSettings") or {}).get("Networks") or {})
        platform = None
        descriptor = c.get("ImageManifestDescriptor") or {}
        if descriptor.get("platform"):
            platform = descriptor["platform"]
        size_rw = int(c.get("SizeRw") or 0)
        size_root = int(c.get("SizeRootFs") or 0)
        size = human_size(size_rw, 3)
        if size_root > 0:
            size = f"{size} (virtual {human_size(size_root, 3)})"
        super().__init__({
            "ID": truncate_id(c.get("Id", "")) if trunc else c.get("Id", ""),
            "Names": names_column(c.get("Names") or [], trunc),
            "Image": image_column(c.get("Image", ""), c.get("ImageID", ""), trunc),
            "Command": go_quote(ellipsis(command, 20) if trunc else command),
            "CreatedAt": go_time_string(created),
            "RunningFor": human_duration(now - created) + " ago",
            "Ports": displayable_ports(c.get("Ports") or []),
            "State": c.get("State", ""),
            "Status": c.get("Status", ""),
            "Size": size,
            "Labels": sorted_labels(self._labels) if c.get("Labels") is not None else "",
            "Mounts": ",".join(mounts),
            "LocalVolumes": str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local")),
            "Networks": ",".join(networks) if c.get("NetworkSettings") else "",
            "Platform": platform,
        })

    def Label(self, name: str) -> str:  # noqa: N802 - docker's method
        return self._labels.get(name, "")


def empty_row() -> ContainerRow:
    """What docker validates ``--format`` against before listing."""
    return ContainerRow({}, trunc=True, now=0)

