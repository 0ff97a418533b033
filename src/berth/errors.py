"""Error kinds shared by every layer.

The engine and the libraries below it raise these; the API layer maps each kind to the HTTP
status Docker uses (see ``berth.api.errors``). The message is shown to users verbatim
(docker CLI: ``Error response from daemon: <message>``), so it follows Docker's wording.
"""


class BerthError(Exception):
    """Base class. ``status`` is the HTTP status the API answers with."""

    status = 500
    # the exit code a failure reported in a JSON-lines stream carries (a build's RUN step:
    # ``{"errorDetail":{"code":3,...}}``, which the docker CLI exits with); 0: none
    code = 0

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidParameter(BerthError):
    status = 400


class Unauthorized(BerthError):
    status = 401


class Forbidden(BerthError):
    status = 403


class NotFound(BerthError):
    status = 404


class Conflict(BerthError):
    status = 409


class NotModified(BerthError):
    status = 304


class NotImplementedErr(BerthError):
    status = 501


class Unavailable(BerthError):
    status = 503


class SystemError_(BerthError):
    """An internal failure (runtime, filesystem) surfaced to the client as 500."""

    status = 500
