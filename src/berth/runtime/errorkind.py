"""What kind of failure a runtime's error message reports: one rule for the daemon's runtime
driver (``oci``) and the shim (``shimd``), which imports nothing heavy. Pure."""

from __future__ import annotations


def error_kind(message: str) -> str:
    """``NotFound``, ``Conflict`` or ``SystemError`` for runc's error text."""
    low = message.lower()
    if "does not exist" in low or ("not found" in low and "container" in low):
        return "NotFound"
    if any(s in low for s in ("not running", "is paused", "not paused", "is stopped")):
        return "Conflict"
    return "SystemError"
