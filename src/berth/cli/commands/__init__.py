"""The top-level command index: names -> (group module, command), nothing imported.

Each ``cli/commands/<module>.py`` defines ``group = Group(...)`` and its commands; only the
module of the command being run is imported. An entry with ``command=None`` is a management
command (``berth context ls``); others are docker's top-level commands and shortcuts into a
group (``berth events`` = ``berth system events``, ``berth ps`` = ``berth container ls``,
``berth images`` = ``berth image ls``).
"""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):
    module: str
    command: str | None  # None: the whole group
    summary: str
    management: bool = False
    hidden: bool = False  # runs, but is not listed in the help (docker's "completion")


INDEX: dict[str, Entry] = {
    # management commands
    "builder": Entry("builder", None, "Manage builds", True),
    "completion": Entry("completion", None, "Generate the autocompletion script for the specified shell", True, True),
    "container": Entry("container", None, "Manage containers", True),
    "context": Entry("context", None, "Manage contexts", True),
    "image": Entry("image", None, "Manage images", True),
    "network": Entry("network", None, "Manage networks", True),
    "system": Entry("system", None, "Manage Berth", True),
    "volume": Entry("volume", None, "Manage volumes", True),
    # top-level commands and shortcuts
    "attach": Entry("container", "attach", "Attach local standard input, output, and error streams to a running container"),
    "build": Entry("image", "build", "Build an image from a Dockerfile"),
    "commit": Entry("container", "commit", "Create a new image from a container's changes"),
    "cp": Entry("container", "cp", "Copy files/folders between a container and the local filesystem"),
    "create": Entry("container", "create", "Create a new container"),
    "diff": Entry("container", "diff", "Inspect changes to files or directories on a container's filesystem"),
    "events": Entry("system", "events", "Get real time events from the server"),
    "exec": Entry("container", "exec", "Execute a command in a running container"),
    "export": Entry("container", "export", "Export a container's filesystem as a tar archive"),
    "history": Entry("image", "history", "Show the history of an image"),
    "images": Entry("image", "ls", "List images"),
    "import": Entry("image", "import", "Import the contents from a tarball to create a filesystem image"),
    "info": Entry("system", "info", "Display system-wide information"),
    "inspect": Entry("system", "inspect", "Return low-level information on Berth objects"),
    "kill": Entry("container", "kill", "Kill one or more running containers"),
    "load": Entry("image", "load", "Load an image from a tar archive or STDIN"),
    "login": Entry("registry", "login", "Authenticate to a registry"),
    "logout": Entry("registry", "logout", "Log out from a registry"),
    "logs": Entry("container", "logs", "Fetch the logs of a container"),
    "pause": Entry("container", "pause", "Pause all processes within one or more containers"),
    "port": Entry("container", "port", "List port mappings or a specific mapping for the container"),
    "ps": Entry("container", "ls", "List containers"),
    "pull": Entry("image", "pull", "Download an image from a registry"),
    "push": Entry("image", "push", "Upload an image to a registry"),
    "rename": Entry("container", "rename", "Rename a container"),
    "restart": Entry("container", "restart", "Restart one or more containers"),
    "rm": Entry("container", "rm", "Remove one or more containers"),
    "rmi": Entry("image", "rm", "Remove one or more images"),
    "run": Entry("container", "run", "Create and run a new container from an image"),
    "save": Entry("image", "save", "Save one or more images to a tar archive (streamed to STDOUT by default)"),
    "search": Entry("registry", "search", "Search Docker Hub for images"),
    "start": Entry("container", "start", "Start one or more stopped containers"),
    "stats": Entry("container", "stats", "Display a live stream of container(s) resource usage statistics"),
    "stop": Entry("container", "stop", "Stop one or more running containers"),
    "tag": Entry("image", "tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "top": Entry("container", "top", "Display the running processes of a container"),
    "unpause": Entry("container", "unpause", "Unpause all processes within one or more containers"),
    "update": Entry("container", "update", "Update configuration of one or more containers"),
    "version": Entry("system", "version", "Show the Berth version information"),
    "wait": Entry("container", "wait", "Block until one or more containers stop, then print their exit codes"),
}

def shortcuts_for(module: str, command: str) -> list[str]:
    """Top-level names that run ``module``'s ``command`` (for the help's Aliases line)."""
    return [name for name, e in INDEX.items() if e.module == module and e.command == command]
