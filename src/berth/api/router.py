"""Routing: ``/vX.Y`` prefixes, version gates, path templates to handlers."""

from __future__ import annotations

import re
from typing import Awaitable, Callable, Union
from urllib.parse import unquote

from berth import API_VERSION, MIN_API_VERSION
from berth.api.http import HijackResponse, Request, Response, StreamResponse
from berth.api.operations import OPERATIONS
from berth.errors import InvalidParameter, NotFound, NotImplementedErr

AnyResponse = Union[Response, StreamResponse, HijackResponse]
Handler = Callable[[Request], Awaitable[AnyResponse]]

_VERSION_PREFIX = re.compile(r"^/v([0-9]+)\.([0-9]+)(/.*)$")
# `{name}` matches one segment; `{name:path}` matches across slashes (image names have them).
_PARAM = re.compile(r"\{(\w+)(:path)?\}")


def parse_version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


MAX_VERSION = parse_version(API_VERSION)
MIN_VERSION = parse_version(MIN_API_VERSION)


def _compile(template: str) -> re.Pattern[str]:
    pattern, pos = "", 0
    for match in _PARAM.finditer(template):
        pattern += re.escape(template[pos:match.start()])
        body = ".+" if match.group(2) else "[^/]+"
        pattern += f"(?P<{match.group(1)}>{body})"
        pos = match.end()
    pattern += re.escape(template[pos:])
    return re.compile(f"^{pattern}$")


def _compile_operation(template: str) -> re.Pattern[str]:
    """A spec path: each parameter may hold slashes (image names do)."""
    return re.compile("^" + ".+".join(re.escape(part) for part in _PARAM.split(template)[::3])
                      + "$")


_OPERATIONS = [(method, _compile_operation(template), name)
               for method, template, name in OPERATIONS]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._exact: dict[tuple[str, str], Handler] = {}

    def add(self, method: str, template: str, handler: Handler) -> None:
        if "{" in template:
            self._routes.append((method, _compile(template), handler))
        else:
            self._exact[(method, template)] = handler

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.add(method, template, handler)
            return handler
        return decorator

    def apply_version(self, request: Request) -> None:
        """Strip ``/vX.Y`` and refuse versions outside the supported range (Docker's texts).

        The path is percent-decoded first, as Go's net/http does before dockerd's router
        sees it: ``/networks/test%2001`` names the network "test 01", and every path
        parameter (``{name:path}`` ones included) arrives decoded."""
        path = unquote(request.raw_path) if "%" in request.raw_path \
            else request.raw_path
        match = _VERSION_PREFIX.match(path)
        if not match:
            request.path = path
            request.api_version = MAX_VERSION
            return
        version = (int(match.group(1)), int(match.group(2)))
        request.path = match.group(3)
        shown = f"{match.group(1)}.{match.group(2)}"
        if version > MAX_VERSION:
            raise InvalidParameter(f"client version {shown} is too new. "
                                   f"Maximum supported API version is {API_VERSION}")
        if version < MIN_VERSION:
            raise InvalidParameter(f"client version {shown} is too old. "
                                   f"Minimum supported API version is {MIN_API_VERSION}, "
                                   "please upgrade your client to a newer version")
        request.api_version = version

    def resolve(self, request: Request) -> Handler:
        method = "GET" if request.method == "HEAD" else request.method
        handler = self._exact.get((request.method, request.path)) or \
            self._exact.get((method, request.path))
        if handler:
            return handler
        for route_method, pattern, candidate in self._routes:
            if route_method not in (request.method, method):
                continue
            match = pattern.match(request.path)
            if match:
                request.params = match.groupdict()
                return candidate
        for op_method, pattern, name in _OPERATIONS:
            if op_method in (request.method, method) and pattern.match(request.path):
                raise NotImplementedErr(f"{name} is not supported by Berth")
        raise NotFound("page not found")
