"""What a running command can use: streams, global options, config, contexts, the client.

Everything is created on first use, so a command that needs no daemon never imports the
HTTP client and one that needs no contexts never reads the store.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from berth.client.config import ConfigFile
from berth.client.contexts import (
    ClientOptions,
    ContextStore,
    Endpoint,
    StoreWithDefault,
    context_endpoint,
    default_endpoint,
    resolve_context_name,
    DEFAULT_CONTEXT,
)


class Cli:
    def __init__(
        self,
        options: ClientOptions,
        *,
        debug: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
        inp: Any = None,
    ):
        self.options = options
        self.debug = debug
        self.out: TextIO = out or sys.stdout
        self.err: TextIO = err or sys.stderr
        self.inp = inp if inp is not None else sys.stdin
        self._config: ConfigFile | None = None
        self._current: str | None = None
        self._client: Any = None

    # -- config and contexts ---------------------------------------------------------------------
    @property
    def config_dir(self) -> str:
        return self.options.directory

    def config_file(self) -> ConfigFile:
        if self._config is None:
            self._config = ConfigFile.load(self.config_dir)
        return self._config

    @property
    def current_context(self) -> str:
        """docker's CurrentContext(): flag > -H/DOCKER_HOST (default) > DOCKER_CONTEXT > config."""
        if self._current is None:
            self._current = resolve_context_name(self.options, self.config_file())
        return self._current

    def context_store(self) -> StoreWithDefault:
        return StoreWithDefault(ContextStore(self.config_dir), self.options)

    def endpoint(self) -> Endpoint:
        name = self.current_context
        if name == DEFAULT_CONTEXT:
            return default_endpoint(self.options)
        return context_endpoint(ContextStore(self.config_dir), name)

    # -- the daemon ---------------------------------------------------------------------------------
    def client(self) -> Any:
        """The APIClient for the current endpoint (imported here: it pulls in http.client)."""
        if self._client is None:
            from berth.client.api import APIClient

            self._client = APIClient.from_endpoint(self.endpoint(), debug=self.debug or None)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
