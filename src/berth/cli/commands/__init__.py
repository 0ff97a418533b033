"""The top-level command index: names -> (group module, command), nothing imported.

Each ``cli/commands/<module>.py`` defines ``group = Group(...)`` and its commands; only the
module of the command being run is imported. An entry with ``command=None`` is a management
command (``berth context ls``); others are docker's top-level commands and shortcuts into a
group (``berth events`` = ``berth system events``; later ``berth ps`` = ``berth container ls``,
``berth images`` = ``berth image ls``).
"""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):
    module: str
    command: str | None  # None: the whole group
    summary: str
    management: bool = False


INDEX: dict[str, Entry] = {
    # management commands
    "context": Entry("context", None, "Manage contexts", True),
    "system": Entry("system", None, "Manage Berth", True),
    # top-level commands and shortcuts
    "events": Entry("system", "events", "Get real time events from the server"),
    "info": Entry("system", "info", "Display system-wide information"),
    "version": Entry("system", "version", "Show the Berth version information"),
}


def shortcuts_for(module: str, command: str) -> list[str]:
    """Top-level names that run ``module``'s ``command`` (for the help's Aliases line)."""
    return [name for name, e in INDEX.items() if e.module == module and e.command == command]
