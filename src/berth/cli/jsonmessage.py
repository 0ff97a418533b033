"""Progress streams (pull, push, import, load) rendered as docker's jsonmessage does.

Each JSON line is a message: ``status``/``id``/``progressDetail`` (progress bars, redrawn in
place on a terminal with cursor moves, skipped elsewhere), ``stream`` (text), ``aux``
(metadata for a callback) or ``errorDetail``/``error`` (the stream's failure).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Iterable, TextIO

from berth.cli.command import StatusError
from berth.jsonprogress import progress_string


class JSONMessageError(StatusError):
    """An ``errorDetail`` in the stream: printed as its message, exit status 1."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message, 1)
        self.code = code


def _erase_line() -> str:
    return "\x1b[2K"


def _up(n: int) -> str:
    return f"\x1b[{n}A" if n else ""


def _down(n: int) -> str:
    return f"\x1b[{n}B" if n else ""


def _stamp(msg: dict) -> str:
    nanos = msg.get("timeNano") or 0
    secs = msg.get("time") or 0
    if not nanos and not secs:
        return ""
    if nanos:
        seconds, frac = divmod(int(nanos), 10**9)
    else:
        seconds, frac = int(secs), 0
    moment = datetime.fromtimestamp(seconds, timezone.utc).astimezone()
    offset = moment.strftime("%z")
    zone = "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{frac:09d}{zone} "


def display_one(out: TextIO, msg: dict, terminal: bool, width: int) -> None:
    """JSONMessage.Display (errors are handled by the caller)."""
    progress = msg.get("progressDetail")
    has_progress = isinstance(progress, dict)  # Go: a non-nil *JSONProgress
    endl = ""
    if terminal and not msg.get("stream") and has_progress:
        out.write(_erase_line())
        endl = "\r"
        out.write(endl)
    elif has_progress and progress_string(progress, width) != "":
        return  # no progress bars off a terminal
    out.write(_stamp(msg))
    if msg.get("id"):
        out.write(f"{msg['id']}: ")
    if msg.get("from"):
        out.write(f"(from {msg['from']}) ")
    status = msg.get("status") or ""
    if has_progress and terminal:
        out.write(f"{status} {progress_string(progress, width)}{endl}")
    elif msg.get("progress"):
        out.write(f"{status} {msg['progress']}{endl}")
    elif msg.get("stream"):
        out.write(f"{msg['stream']}{endl}")
    else:
        out.write(f"{status}{endl}\n")


def display_stream(
    messages: Iterable[Any],
    out: TextIO,
    terminal: bool = False,
    width: int = 200,
    aux: Callable[[Any], None] | None = None,
) -> None:
    """DisplayJSONMessagesStream: raises JSONMessageError at the first error message."""
    ids: dict[str, int] = {}
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        if msg.get("aux") is not None:
            if aux is not None:
                aux(msg["aux"])
            continue
        diff = 0
        has_progress = isinstance(msg.get("progressDetail"), dict)
        if msg.get("id") and (has_progress or msg.get("progress")):
            line = ids.get(msg["id"])
            if line is None:
                line = len(ids)
                ids[msg["id"]] = line
                if terminal:
                    out.write("\n")
            diff = len(ids) - line
            if terminal:
                out.write(_up(diff))
        else:
            ids = {}
        error = msg.get("errorDetail")
        if error:
            out.flush()
            raise JSONMessageError(str(error.get("message") or ""), int(error.get("code") or 0))
        display_one(out, msg, terminal, width)
        if msg.get("id") and terminal:
            out.write(_down(diff))
        out.flush()
