"""Detach keys: docker's ``--detach-keys`` syntax and its escape proxy (moby/term).

With a TTY the docker CLI watches stdin itself: the detach sequence (default Ctrl-P Ctrl-Q)
is not sent to the container; on a full match the input ends with ``EscapeError`` and the
client detaches. A partial match is held back until the next byte decides.
"""

from __future__ import annotations

DEFAULT_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q

_CTRL = ["ctrl-@"] + [f"ctrl-{chr(c)}" for c in range(ord("a"), ord("z") + 1)] + [
    "ctrl-[",
    "ctrl-\\",
    "ctrl-]",
    "ctrl-^",
    "ctrl-_",
]


class EscapeError(Exception):
    """The user typed the detach sequence."""

    def __str__(self) -> str:
        return "read escape sequence"


def to_bytes(keys: str) -> bytes:
    """moby/term ToBytes: "ctrl-p,ctrl-q" -> b"\\x10\\x11"; ValueError on unknown keys."""
    codes = bytearray()
    for key in keys.split(","):
        if len(key) == 1:
            codes += key.encode("latin-1", "replace")[:1]
        elif key in _CTRL:
            codes.append(_CTRL.index(key))
        elif key == "DEL":
            codes.append(127)
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(codes)


class EscapeProxy:
    """Filters stdin chunks: ``feed(data)`` returns what to send on, or raises EscapeError
    (after returning nothing of the sequence itself)."""

    def __init__(self, keys: bytes = DEFAULT_KEYS):
        self.keys = keys
        self.pos = 0  # how much of the sequence has been seen

    def feed(self, data: bytes) -> bytes:
        if not self.keys:
            return data
        out = bytearray()
        for byte in data:
            if byte == self.keys[self.pos]:
                self.pos += 1
                if self.pos == len(self.keys):
                    self.pos = 0
                    raise EscapeError(bytes(out))
                continue
            if self.pos:
                # a broken sequence: the held keys were ordinary input after all
                # (as moby/term, this byte does not start a new match)
                out += self.keys[: self.pos]
                self.pos = 0
            out.append(byte)
        return bytes(out)
