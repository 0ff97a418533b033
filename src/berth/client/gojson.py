"""JSON text as Go's encoding/json writes it.

Files shared with the docker CLI (context meta.json) and output users diff against docker's
(``inspect``, ``--format json``) should be byte-identical: Go writes UTF-8 as is, escapes
``<``, ``>``, ``&``, U+2028 and U+2029, and indents with the separators Python also uses.
"""

from __future__ import annotations

import json
from typing import Any

_LINE_SEPS = {"\u2028": "\\u2028", "\u2029": "\\u2029"}  # Go escapes these always
_ALWAYS = str.maketrans(_LINE_SEPS)
_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", **_LINE_SEPS})


def dumps(obj: Any, indent: int | str | None = None, escape_html: bool = True) -> str:
    if indent is None:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(obj, ensure_ascii=False, indent=indent)
    # The characters only ever occur inside JSON strings, so a plain translate is safe.
    return text.translate(_HTML if escape_html else _ALWAYS)
