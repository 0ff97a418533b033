"""``diff`` rows: docker's diffContext (C/A/D and the path)."""

from __future__ import annotations

from berth.cli.format import Row

HEADERS = {"Type": "CHANGE TYPE", "Path": "PATH"}
_KINDS = {0: "C", 1: "A", 2: "D"}


class DiffRow(Row):
    go_type = "container.diffContext"

    def __init__(self, change: dict):
        kind = change.get("Kind", 0)
        super().__init__({"Type": _KINDS.get(kind, ""), "Path": change.get("Path", "")})
