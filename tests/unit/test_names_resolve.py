"""Every name the code uses is defined: a deleted helper whose call survived (as
_late_exit_record did) fails here rather than in a rare error path at run time."""

from __future__ import annotations

import os

from pyflakes import api, messages
from pyflakes.reporter import Reporter

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
UNRESOLVED = (messages.UndefinedName, messages.UndefinedLocal, messages.UndefinedExport)


class Collect(Reporter):
    def __init__(self):
        self.found: list[str] = []

    def flake(self, message):
        if isinstance(message, UNRESOLVED):
            self.found.append(str(message))

    def syntaxError(self, filename, msg, lineno, offset, text):
        self.found.append(f"{filename}:{lineno}: {msg}")

    def unexpectedError(self, filename, msg):
        self.found.append(f"{filename}: {msg}")


def test_no_undefined_names():
    reporter = Collect()
    api.checkRecursive([os.path.join(ROOT, d) for d in ("src", "tests", "bench")], reporter)
    assert reporter.found == []
