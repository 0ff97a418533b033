"""Go's ``json.Indent`` and ``json.Compact`` on raw bytes.

docker's inspect prints the daemon's JSON as received, only re-indented: key order, number
spelling and string escapes stay the daemon's. Parsing and re-encoding in Python could change
any of them (``1e3`` -> ``1000.0``, ``\\u00e9`` -> ``é``), so this works on the bytes.
"""

from __future__ import annotations

_SPACE = b" \t\r\n"


def _reformat(src: bytes, indent: bytes | None) -> bytes:
    out = bytearray()
    depth = 0
    in_string = escaped = False
    pending_open = False  # just wrote "{" or "[": newline+indent unless it closes at once
    for byte in src:
        ch = bytes((byte,))
        if in_string:
            out += ch
            if escaped:
                escaped = False
            elif ch == b"\\":
                escaped = True
            elif ch == b'"':
                in_string = False
            continue
        if ch in _SPACE:
            continue
        if indent is not None and pending_open and ch not in (b"}", b"]"):
            out += b"\n" + indent * depth
        if ch in (b"{", b"["):
            out += ch
            depth += 1
            pending_open = True
            continue
        if ch in (b"}", b"]"):
            depth -= 1
            if indent is not None and not pending_open:
                out += b"\n" + indent * depth
            out += ch
            pending_open = False
            continue
        pending_open = False
        out += ch
        if ch == b'"':
            in_string = True
        elif ch == b"," and indent is not None:
            out += b"\n" + indent * depth
        elif ch == b":" and indent is not None:
            out += b" "
    return bytes(out)


def indent(src: bytes, prefix: str = "    ") -> bytes:
    """json.Indent(dst, src, "", prefix)."""
    return _reformat(src, prefix.encode())


def compact(src: bytes) -> bytes:
    """json.Compact."""
    return _reformat(src, None)


def join_array(raws: list[bytes]) -> bytes:
    """``[raw1,raw2]`` as docker's jsonInspector builds it before indenting."""
    return b"[" + b",".join(raws) + b"]"
