"""JSON for the shim process without importing the ``json`` package.

``import json`` pulls in ``re`` and friends (~1 MB of RSS); the shim only needs the C
scanner/encoder that ``json`` itself is built on, so it uses ``_json`` directly and falls
back to ``json`` where ``_json`` is missing (other Python implementations).
"""

from __future__ import annotations

try:
    import _json

    class _Context:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = float  # NaN / Infinity
        memo: dict = {}

    def _no_default(obj: object) -> object:
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    _scan = _json.make_scanner(_Context())
    # sorted keys, like Go's encoding of a map
    _encode = _json.make_encoder(None, _no_default, _json.encode_basestring_ascii, None,
                                 ":", ",", True, False, True)

    def loads(text: str | bytes) -> object:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        text = text.strip()
        try:
            obj, end = _scan(text, 0)
        except StopIteration:
            raise ValueError("Expecting value") from None
        if end != len(text):
            raise ValueError("Extra data")
        return obj

    def dumps(obj: object) -> str:
        return "".join(_encode(obj, 0))

except ImportError:  # pragma: no cover - CPython always has _json
    from json import loads  # type: ignore[assignment]

    def dumps(obj: object) -> str:  # type: ignore[misc]
        import json
        return json.dumps(obj, separators=(",", ":"), sort_keys=True)


__all__ = ["dumps", "loads"]
