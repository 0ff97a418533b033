"""``history`` rows: docker's historyContext."""

from __future__ import annotations

from berth.cli.format import Row
from berth.cli.formatters.common import ellipsis, truncate_id
from berth.units import go_rfc3339, human_duration, human_size

DEFAULT_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
NON_HUMAN_TABLE = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}
EPOCH_2000 = 946684800  # docker shows "N/A" for layers claiming to be older


def history_format(source: str, quiet: bool, human: bool) -> str:
    if source == "table":
        if quiet:
            return "{{.ID}}"
        return DEFAULT_TABLE if human else NON_HUMAN_TABLE
    return source


class HistoryRow(Row):
    go_type = "image.historyContext"

    def __init__(self, item: dict, *, trunc: bool, human: bool, now: float):
        created = int(item.get("Created") or 0)
        created_at = go_rfc3339(created)
        if not human:
            since = created_at
        elif created <= EPOCH_2000:
            since = "N/A"
        else:
            since = human_duration(now - created) + " ago"
        created_by = (item.get("CreatedBy") or "").replace("\t", " ")
        size = int(item.get("Size") or 0)
        super().__init__({
            "ID": truncate_id(item.get("Id", "")) if trunc else item.get("Id", ""),
            "CreatedAt": created_at,
            "CreatedSince": since,
            "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
            "Size": human_size(size, 3) if human else str(size),
            "Comment": item.get("Comment", ""),
        })
