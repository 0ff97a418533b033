"""Docker-style ``--format`` output, shared by every list and inspect command.

List commands (docker's formatter.Context):

* ``table`` (or empty): the command's default table; ``table TEMPLATE``: a custom table. The
  header row is the same template rendered once against a header map (``{"ID": "CONTAINER ID",
  ...}``) with docker's header functions (``json``, ``upper``, ... return their argument),
  then rows; everything aligned by a tabwriter(10, 1, 3, ' ').
* ``json``: one JSON object per line (``{{json .}}``; keys sorted as Go marshals a map).
* anything else: a Go template, one line per item.

Inspect commands (docker's inspect.Inspect): no format -> an indented JSON array; ``json``
-> a compact one; a template -> one line per object.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, TextIO

from berth.cli.tabwriter import TabWriter

TABLE = "table"
JSON = "json"
JSON_TEMPLATE = "{{json .}}"


class FormatError(Exception):
    """A template that does not parse or execute (docker: ``template parsing error: ...``)."""

    def __init__(self, message: str, status: int = 64):
        super().__init__(message)
        self.message = message
        self.status = status


# Docker's templates.HeaderFunctions: in the header pass every function returns its input.
def _first(value: Any, *_: Any) -> Any:
    return value


HEADER_FUNCS: dict[str, Callable[..., Any]] = {
    name: _first for name in ("json", "split", "join", "title", "lower", "upper", "truncate")
}


def compile_template(text: str, funcs: Mapping[str, Callable[..., Any]] | None = None) -> Any:
    """A parsed Go template (berth.gotemplate); parse errors become FormatError."""
    from berth.gotemplate import Template, TemplateError

    try:
        return Template(text, funcs=dict(funcs)) if funcs else Template(text)
    except TemplateError as e:
        raise FormatError(f"template parsing error: {e}") from e


def execute(template: Any, data: Any) -> str:
    from berth.gotemplate import TemplateError

    try:
        return template.execute(data)
    except TemplateError as e:
        raise FormatError(f"template parsing error: {e}", status=1) from e


def is_table(fmt: str) -> bool:
    return fmt.startswith(TABLE)


def template_text(fmt: str) -> str:
    """docker's Format.templateString: strip ``table``, trim spaces, unescape ``\\t``/``\\n``."""
    if fmt == TABLE:
        return ""
    if fmt == JSON:
        return JSON_TEMPLATE
    if fmt.startswith(TABLE):
        fmt = fmt[len(TABLE) :]
    fmt = fmt.strip(" ")
    return fmt.replace("\\t", "\t").replace("\\n", "\n")


def sorted_row(row: Any) -> Any:
    """Rows are dicts; Go marshals docker's row objects as maps, so JSON keys are sorted."""
    if isinstance(row, Mapping):
        return {k: row[k] for k in sorted(row)}
    return row


class ListFormatter:
    """Formats rows (dicts) the way ``docker <object> ls --format`` does.

    ``default_table``: the command's table format (``"table {{.ID}}\\t{{.Name}}"``);
    ``headers``: field -> column title; ``quiet_format``: what ``-q`` prints.
    """

    def __init__(
        self,
        fmt: str | None,
        *,
        default_table: str,
        headers: Mapping[str, str],
        quiet: bool = False,
        quiet_format: str = "{{.ID}}",
    ):
        if quiet:
            fmt = quiet_format
        elif not fmt or fmt == TABLE:
            fmt = default_table
        self.format = fmt
        self.headers = dict(headers)
        self._template = compile_template(template_text(fmt))

    @property
    def table(self) -> bool:
        return is_table(self.format)

    def uses(self, field: str) -> bool:
        """Whether the template mentions ``.Field`` (to skip costly columns, as docker does)."""
        return f".{field}" in self.format

    def render(self, rows: Iterable[Any]) -> str:
        body = "".join(execute(self._template, sorted_row(row)) + "\n" for row in rows)
        if not self.table:
            return body
        header_tmpl = compile_template(template_text(self.format), HEADER_FUNCS)
        # A field without a title prints as Go prints a missing map key: "<no value>".
        header = execute(header_tmpl, self.headers)
        from io import StringIO

        buf = StringIO()
        tw = TabWriter(buf, minwidth=10, tabwidth=1, padding=3, padchar=" ")
        tw.write(header + "\n" + body)
        tw.flush()
        return buf.getvalue()

    def write(self, out: TextIO, rows: Iterable[Any]) -> None:
        out.write(self.render(rows))


def write_template_lines(out: TextIO, fmt: str, items: Iterable[Any]) -> None:
    """A plain ``--format`` template, one line per item (events, version, info)."""
    tmpl = compile_template(template_text(fmt) if fmt != JSON else JSON_TEMPLATE)
    for item in items:
        out.write(execute(tmpl, item) + "\n")


def inspect_write(
    out: TextIO,
    refs: Iterable[str],
    fmt: str | None,
    get: Callable[[str], Any],
) -> list[str]:
    """docker's inspect.Inspect: write the objects found; return the errors (one per ref).

    ``get(ref)`` returns the object or raises; its exception text is the error.
    """
    from berth.client.gojson import dumps

    tmpl = None
    if fmt and fmt != JSON:
        tmpl = compile_template(fmt)
    found: list[Any] = []
    errors: list[str] = []
    lines: list[str] = []
    for ref in refs:
        try:
            obj = get(ref)
        except Exception as e:  # each ref reports its own failure, like docker
            errors.append(str(e))
            continue
        if tmpl is not None:
            try:
                lines.append(execute(tmpl, obj) + "\n")
            except FormatError as e:
                errors.append(e.message)
        else:
            found.append(obj)
    if tmpl is not None:
        out.write("".join(lines) if lines else "\n")
    elif not found:
        out.write("[]\n")
    elif fmt == JSON:
        out.write(dumps(found) + "\n")
    else:
        out.write(dumps(found, indent=4) + "\n")
    return errors
