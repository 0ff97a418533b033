"""The docker CLI's config directory and ``config.json``, shared with the docker CLI.

Only the keys berth understands are read; every other key is kept as is when the file is
written back (the docker CLI itself drops keys it does not know; berth does not).
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from berth.client.errors import ContextError

CONFIG_FILE = "config.json"


def config_dir(override: str | None = None) -> str:
    """``--config`` > ``$DOCKER_CONFIG`` > ``~/.docker``."""
    if override:
        return override
    env = os.environ.get("DOCKER_CONFIG")
    if env:
        return env
    return os.path.join(os.path.expanduser("~"), ".docker")


class ConfigFile:
    def __init__(self, path: str, data: dict[str, Any] | None = None):
        self.path = path
        self.data: dict[str, Any] = data if data is not None else {}

    @classmethod
    def load(cls, directory: str) -> "ConfigFile":
        path = os.path.join(directory, CONFIG_FILE)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return cls(path)
        except OSError as e:
            raise ContextError(f"loading config file: {path}: {e.strerror}") from e
        if not raw.strip():
            return cls(path)
        try:
            data = json.loads(raw)
        except ValueError as e:
            raise ContextError(f"parsing config file ({path}): {e}") from e
        if not isinstance(data, dict):
            raise ContextError(f"parsing config file ({path}): not a JSON object")
        return cls(path, data)

    @property
    def current_context(self) -> str:
        value = self.data.get("currentContext", "")
        return value if isinstance(value, str) else ""

    @current_context.setter
    def current_context(self, name: str) -> None:
        if name:
            self.data["currentContext"] = name
        else:
            self.data.pop("currentContext", None)  # docker omits the empty value

    def save(self) -> None:
        """Write atomically (temp file + rename) with docker's layout: tab indent, mode 0600."""
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        target = os.path.realpath(self.path)  # keep a symlinked config.json a symlink
        text = json.dumps(self.data, indent="\t", ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=os.path.dirname(target))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            try:
                mode = os.stat(target).st_mode & 0o777
            except FileNotFoundError:
                mode = 0o600
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
