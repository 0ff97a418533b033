"""--format handling and tabwriter alignment, against outputs of Go and the docker CLI."""

import io

import pytest

from berth.cli.format import FormatError, ListFormatter, inspect_write, template_text
from berth.cli.tabwriter import display_width, format_table

# Expected strings produced by Go's text/tabwriter with docker's settings (10, 1, 3, ' ', 0).
GO_TABWRITER = [
    (
        "NAME\tDESCRIPTION\tDOCKER ENDPOINT\tERROR\ndefault *\tCurrent DOCKER_HOST based configuration\tunix:///var/run/docker.sock\t\n",
        "NAME        DESCRIPTION                               DOCKER ENDPOINT               ERROR\n"
        "default *   Current DOCKER_HOST based configuration   unix:///var/run/docker.sock   \n",
    ),
    ("a\tb\tc\naaaa\tbbbbbbbbbbbb\nx\nyy\tz\n", "a         b         c\naaaa      bbbbbbbbbbbb\nx\nyy        z\n"),
    ("ID\tNAME\n1\tweb\n", "ID        NAME\n1         web\n"),
    ("a\tb\t", "a         b"),
    ("\t\tx\n\ty\n", "                    x\n          y\n"),
    ("one\ttwo\nsingle line\nthree\tfour\n", "one       two\nsingle line\nthree     four\n"),
]


@pytest.mark.parametrize("text, expected", GO_TABWRITER)
def test_tabwriter_matches_go(text, expected):
    assert format_table(text, minwidth=10, padding=3) == expected


def test_wide_characters_count_double():
    assert display_width("日本語") == 6
    assert display_width("é") == 1
    assert format_table("日本\tx\nab\ty\n") == "日本      x\nab        y\n"


def test_version_style_table():
    # docker version: tabwriter(20, 1, 1)
    out = format_table(" Version:\t1\n API version:\t1.47\n", minwidth=20, padding=1)
    assert out == " Version:           1\n API version:       1.47\n"


@pytest.mark.parametrize(
    "fmt, text",
    [
        ("table", ""),
        ("json", "{{json .}}"),
        ("table {{.ID}}\\t{{.Name}}", "{{.ID}}\t{{.Name}}"),
        ("  {{.ID}}\\n ", "{{.ID}}\n"),
        ("{{.A}}\t{{.B}}", "{{.A}}\t{{.B}}"),
    ],
)
def test_template_text(fmt, text):
    assert template_text(fmt) == text


ROWS = [
    {"Name": "default", "Current": True, "Description": "Current DOCKER_HOST based configuration", "DockerEndpoint": "unix:///var/run/docker.sock", "Error": ""},
    {"Name": "zz", "Current": False, "Description": "hello", "DockerEndpoint": "unix:///tmp/z.sock", "Error": ""},
]
HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "DockerEndpoint": "DOCKER ENDPOINT", "Error": "ERROR"}
TABLE = "table {{.Name}}{{if .Current}} *{{end}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}"


def render(fmt, quiet=False, rows=ROWS):
    return ListFormatter(fmt, default_table=TABLE, headers=HEADERS, quiet=quiet, quiet_format="{{.Name}}").render(rows)


def test_default_table_is_dockers():
    assert render(None) == (
        "NAME        DESCRIPTION                               DOCKER ENDPOINT               ERROR\n"
        "default *   Current DOCKER_HOST based configuration   unix:///var/run/docker.sock   \n"
        "zz          hello                                     unix:///tmp/z.sock            \n"
    )
    assert render("table") == render(None)


def test_custom_table_headers_come_from_the_header_map():
    # docker: a field without a title prints "<no value>"; functions return their argument
    assert render("table {{.Current}}\t{{.Name}}") == "<no value>   NAME\ntrue         default\nfalse        zz\n"
    assert render("table {{json .Name}}\t{{upper .Name}}|") == 'NAME        NAME|\n"default"   DEFAULT|\n"zz"        ZZ|\n'


def test_table_with_newline_has_no_alignment():
    assert render("table {{.Name}}\\n{{.Description}}") == "NAME\nDESCRIPTION\ndefault\nCurrent DOCKER_HOST based configuration\nzz\nhello\n"


def test_json_is_one_sorted_object_per_line():
    assert render("json").splitlines()[1] == (
        '{"Current":false,"Description":"hello","DockerEndpoint":"unix:///tmp/z.sock","Error":"","Name":"zz"}'
    )
    assert render("{{json .}}") == render("json")


def test_plain_template_and_quiet():
    assert render("{{.Name}}\t{{.Current}}") == "default\ttrue\nzz\tfalse\n"
    assert render(None, quiet=True) == "default\nzz\n"
    assert render("table", rows=[]) == "NAME      DESCRIPTION   DOCKER ENDPOINT   ERROR\n"


def test_bad_templates():
    with pytest.raises(FormatError) as e:
        render("{{.Name")
    assert e.value.message.startswith("template parsing error: ") and e.value.status == 64
    with pytest.raises(FormatError) as e2:
        render("{{.Name.Foo.Bar}}")
    assert e2.value.status == 1


def test_uses_detects_fields():
    f = ListFormatter("table {{.ID}}\t{{.Size}}", default_table=TABLE, headers={})
    assert f.uses("Size") and not f.uses("Names")


def test_inspect_write_forms():
    objs = {"a": {"Name": "a", "X": "<1>"}, "b": {"Name": "b"}}

    def get(ref):
        if ref not in objs:
            raise LookupError(f"no such thing: {ref}")
        return objs[ref]

    out = io.StringIO()
    errs = inspect_write(out, ["a", "zzz"], None, get)
    assert out.getvalue() == '[\n    {\n        "Name": "a",\n        "X": "\\u003c1\\u003e"\n    }\n]\n'
    assert errs == ["no such thing: zzz"]
    out = io.StringIO()
    inspect_write(out, ["a", "b"], "json", get)
    assert out.getvalue() == '[{"Name":"a","X":"\\u003c1\\u003e"},{"Name":"b"}]\n'
    out = io.StringIO()
    inspect_write(out, ["a", "b"], "{{.Name}}", get)
    assert out.getvalue() == "a\nb\n"
    out = io.StringIO()
    assert inspect_write(out, ["nope"], None, get) == ["no such thing: nope"]
    assert out.getvalue() == "[]\n"
