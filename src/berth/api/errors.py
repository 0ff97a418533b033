"""Map exceptions to Docker's error responses: ``{"message": ...}`` with Docker's statuses."""

from __future__ import annotations

import logging

from berth.api.http import Request, Response, json_response
from berth.errors import BerthError

log = logging.getLogger("berth.api")


def error_response(exc: Exception, request: Request | None = None) -> Response:
    if isinstance(exc, BerthError):
        status, message = exc.status, exc.message
    else:
        where = f" {request.method} {request.raw_path}" if request else ""
        log.exception("internal error handling%s", where)
        status, message = 500, str(exc) or exc.__class__.__name__
    if request is not None and request.method == "HEAD":
        return Response(status, b"", content_type="application/json")
    return json_response({"message": message}, status)
