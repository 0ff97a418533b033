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


class Row:
    """One row of a list command: docker's formatter "context" objects.

    Public attributes are the fields (docker's argument-less methods: ``{{.ID}}``), set in
    sorted order because ``{{json .}}`` marshals them as a Go map; methods with arguments
    (``{{.Label "x"}}``) are methods. ``go_type`` names the class in template errors
    ("can't evaluate field X in type *formatter.ContainerContext").
    """

    go_type = "formatter.Row"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__name__ = cls.go_type  # gotemplate names a plain object's type by its class

    def __init__(self, fields: Mapping[str, Any]):
        for key in sorted(fields):
            setattr(self, key, fields[key])


def _row_json(value: Any) -> str:
    """The ``json`` template function for list rows: a row marshals itself with
    json.Marshal in docker (HTML characters escaped); anything else as the template's json."""
    if isinstance(value, Row):
        from berth.client.gojson import dumps

        fields = {k: v for k, v in vars(value).items() if not k.startswith("_")}
        return dumps(fields)
    from berth.gotemplate import to_json

    return to_json(value)


LIST_FUNCS: dict[str, Callable[..., Any]] = {"json": _row_json}


def label_header(name: str) -> str:
    """docker's SubHeaderContext.Label: the last dotted part, "-"/"_" as spaces."""
    last = name.split(".")[-1]
    return last.replace("-", " ").replace("_", " ")


class HeaderContext:
    """What a table's header row is rendered against (docker's SubHeaderContext, a map of
    titles with a ``Label`` method): a field without a title prints ``<no value>``."""

    def __init__(self, titles: Mapping[str, str]):
        self._titles = dict(titles)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        from berth.gotemplate import MISSING

        return self._titles.get(name, MISSING)

    def Label(self, name: str) -> str:  # noqa: N802 - docker's method name
        return label_header(name)


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
        parse_status: int = 64,
    ):
        if quiet:
            fmt = quiet_format
        elif not fmt or fmt == TABLE:
            fmt = default_table
        self.format = fmt
        self.headers = dict(headers)
        try:
            self._template = compile_template(template_text(fmt), LIST_FUNCS)
        except FormatError as e:
            raise FormatError(e.message, parse_status) from None

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
        header = execute(header_tmpl, HeaderContext(self.headers))
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

    ``get(ref)`` returns the object, or ``Raw(object, bytes)`` when the daemon's own JSON
    bytes are at hand (printed re-indented, as docker does), or raises; its exception
    text is the error.
    """
    from berth.client.gojson import dumps

    tmpl = None
    if fmt and fmt != JSON:
        tmpl = compile_template(fmt)
    found: list[Any] = []
    raws: list[bytes] = []
    errors: list[str] = []
    lines: list[str] = []
    for ref in refs:
        try:
            obj = get(ref)
        except Exception as e:  # each ref reports its own failure, like docker
            errors.append(str(e))
            continue
        raw = None
        if isinstance(obj, Raw):
            obj, raw = obj.value, obj.raw
        if tmpl is not None:
            try:
                lines.append(execute(tmpl, obj) + "\n")
            except FormatError as e:
                errors.append(e.message)
        elif raw is not None:
            raws.append(raw)
        else:
            found.append(obj)
    if tmpl is not None:
        out.write("".join(lines) if lines else "\n")
    elif raws:
        from berth.cli import jsonraw

        joined = jsonraw.join_array(raws)
        text = jsonraw.compact(joined) if fmt == JSON else jsonraw.indent(joined)
        out.write(text.decode("utf-8", "replace") + "\n")
    elif not found:
        out.write("[]\n")
    elif fmt == JSON:
        out.write(dumps(found) + "\n")
    else:
        out.write(dumps(found, indent=4) + "\n")
    return errors


class Raw:
    """An inspected object with the bytes the daemon sent for it."""

    def __init__(self, value: Any, raw: bytes):
        self.value = value
        self.raw = raw


class GoStruct(dict):
    """A JSON object whose Go struct field names differ from its JSON keys.

    docker's templates see Go field names (``{{.Server.APIVersion}}``) while ``{{json .}}``
    prints JSON keys (``"ApiVersion"``): lookups accept the aliases, JSON keeps the keys."""

    def __init__(self, data: Mapping[str, Any], **aliases: str):
        super().__init__(data)
        self._aliases = aliases

    def get(self, key: Any, default: Any = None) -> Any:
        if key not in self and key in self._aliases:
            return super().get(self._aliases[key], default)
        return super().get(key, default)
