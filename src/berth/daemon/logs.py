"""berthd's own log lines on stderr, in dockerd's (logrus) text form."""

from __future__ import annotations

import logging
import sys

from berth.timeutil import rfc3339_nano

LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO,
          "warn": logging.WARNING, "warning": logging.WARNING, "error": logging.ERROR,
          "fatal": logging.CRITICAL, "panic": logging.CRITICAL}
_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
          logging.ERROR: "error", logging.CRITICAL: "fatal"}


class LogrusFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        level = _NAMES.get(record.levelno, record.levelname.lower())
        quoted = message.replace("\\", "\\\\").replace('"', '\\"')
        return f'time="{rfc3339_nano(int(record.created * 1e9))}" level={level} msg="{quoted}"'


def setup(level_name: str, debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogrusFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    apply_level(level_name, debug)


def apply_level(level_name: str, debug: bool) -> None:
    logging.getLogger().setLevel(logging.DEBUG if debug else LEVELS.get(level_name, logging.INFO))
