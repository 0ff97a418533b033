"""Go text/template for Python, for docker's ``--format`` flag.

    >>> render("{{.Name}} is {{if .Running}}up{{else}}down{{end}}", {"Name": "web", "Running": True})
    'web is up'

It follows Go's text/template (parse errors, execution errors, value
printing) plus the functions the docker CLI adds: json, split, join, title,
lower, upper, pad, truncate. Parse once with ``Template`` and call
``execute`` per row; parsing is the expensive part.

Data are what Python gets from Docker's JSON, and behave like Go's decoding
of that JSON into ``interface{}``:

- ``.Foo`` on a dict looks up key "Foo"; a missing key gives "no value",
  which prints ``<no value>``; a JSON null prints ``<no value>`` too, as in Go.
- Other Python objects play Go structs: ``.Foo`` reads attribute Foo, and a
  method is called with the action's arguments (``{{.Label "x"}}``). An
  unknown attribute is an execution error.
- Ranging over a dict visits its keys in sorted order; ``json`` keeps a
  dict's own order (the order the Engine API sent).

Not supported: complex numbers, channels, the missingkey option, and custom
delimiters.
"""

from __future__ import annotations

from typing import Any, Callable

from ._errors import TemplateError
from ._exec import Executor
from ._funcs import function_table, json_
from ._parser import Parser
from ._values import MISSING

# MISSING: a field without a value (prints "<no value>"); to_json: the template's json.
to_json = json_

__all__ = ["MISSING", "Template", "TemplateError", "render", "to_json"]


class Template:
    """A parsed template, ready to execute any number of times."""

    def __init__(self, text: str, funcs: dict[str, Callable[..., Any]] | None = None, name: str = "") -> None:
        """Parse text; raises TemplateError on a syntax error.

        funcs adds functions (or replaces builtins) by name. name is used in
        error messages, as Go's template name ("template: NAME:1: ...").
        """
        self.text = text
        self.name = name
        try:
            table = function_table(funcs)
        except ValueError as e:
            raise TemplateError(str(e)) from None
        self.trees = Parser(name, text, table).parse()

    def execute(self, data: Any) -> str:
        """Apply the template to data; raises TemplateError on failure."""
        out: list[str] = []
        dot = MISSING if data is None else data
        try:
            Executor(self, self.name, out, dot).walk(dot, self.trees[self.name])
        except RecursionError:
            raise TemplateError(f"template: {self.name}: template nesting too deep") from None
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


def render(text: str, data: Any, funcs: dict[str, Callable[..., Any]] | None = None) -> str:
    """Parse and execute in one go (parse once with Template for many rows)."""
    return Template(text, funcs).execute(data)
