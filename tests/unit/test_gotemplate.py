"""Tests for berth.gotemplate, the Go text/template engine behind --format.

The GO_* tables hold cases whose expected text was checked against Go's
text/template (Go 1.19, with docker/cli's template functions), executing on
the same data decoded from JSON. Cases where Berth follows newer Go or is
deliberately more lenient are in separate tests, with the reason.
"""

from __future__ import annotations

import dataclasses

import pytest

from berth.gotemplate import Template, TemplateError, render

# JSON-shaped data, as the CLI gets it from the Engine API.
DATA = {
    "Name": "web",
    "Id": "abc123def456",
    "Running": True,
    "Count": 3,
    "Ratio": 0.5,
    "Empty": "",
    "Zero": 0,
    "Nil": None,
    "List": ["a", "b", "c"],
    "Nums": [3, 1, 2],
    "EmptyList": [],
    "Map": {"b": 2, "a": 1},
    "EmptyMap": {},
    "Labels": {"com.example.x": "1", "version": "2.0"},
    "Nested": {"Inner": {"Deep": "yes"}},
    "Mixed": [1, "two", 3.5, True, None, {"k": "v"}, [1, 2]],
    "Html": "<a href='x'>&</a>",
    "Uni": "héllo wörld",
    "Floats": [1.5, 2.25, 100.0, 1e-7, 123456789.0],
    "State": {"Status": "running", "Pid": 42, "Health": None},
    "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
}


def run(text: str, data: object = DATA) -> str:
    return Template(text).execute(data)


def error_of(text: str, data: object = DATA) -> str:
    with pytest.raises(TemplateError) as info:
        Template(text).execute(data)
    return str(info.value)


# --- checked against Go: output --------------------------------------------------

GO_TEXT_AND_FIELDS = [
    ("plain text", "plain text"),
    ("{{.Name}}", "web"),
    ("{{.Nested.Inner.Deep}}", "yes"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Missing.Sub}}", "<no value>"),
    ("{{.Nil}}", "<no value>"),
    ("{{.State.Health}}", "<no value>"),
    ("{{.Nested}}", "map[Inner:map[Deep:yes]]"),
    ("{{.List}}", "[a b c]"),
    ("{{.Map}}", "map[a:1 b:2]"),
    ("{{.Mixed}}", "[1 two 3.5 true <nil> map[k:v] [1 2]]"),
    ("{{.Running}} {{.Zero}} [{{.Empty}}]", "true 0 []"),
    ("{{$.Name}}{{$x := .Nested}}{{$x.Inner.Deep}}", "webyes"),
    ("{{(.Nested).Inner.Deep}} {{(index .Nested \"Inner\").Deep}}", "yes yes"),
]

GO_NUMBERS = [
    ("{{.Count}} {{.Ratio}} {{.Floats}}", "3 0.5 [1.5 2.25 100 1e-07 1.23456789e+08]"),
    ("{{1e6}} {{123456.0}} {{1234567.0}} {{0.0001}} {{0.00001}}", "1e+06 123456 1.234567e+06 0.0001 1e-05"),
    ("{{1}} {{1.5}} {{0x1F}} {{0o17}} {{017}} {{0b101}} {{1_000}} {{-2}} {{+3}} {{.5}}", "1 1.5 31 15 15 5 1000 -2 3 0.5"),
    ("{{'a'}} {{'\\n'}} {{'é'}} {{1e3}} {{1.0}} {{2.50}} {{1e100}}", "97 10 233 1000 1 2.5 1e+100"),
    ("{{printf \"%v %v %v\" 1.5e300 -1e-300 123456789012.0}}", "1.5e+300 -1e-300 1.23456789012e+11"),
]

GO_STRINGS = [
    ('{{"a\\tb"}}|{{`raw\\n`}}', "a\tb|raw\\n"),
    ('{{"\\x41\\u00e9\\U0001F600\\101"}}', "Aé\U0001F600A"),
    ("{{`a\r\nb`}}", "a\nb"),
    ("{{.Uni}} {{len .Uni}} {{slice .Uni 0 2}} {{index .Uni 1}}", "héllo wörld 13 h\ufffd 195"),
]

GO_TRIM_AND_COMMENTS = [
    ("{{- .Name -}}  \n  x  {{- .Name}} {{.Name -}} \n\t y", "webxweb weby"),
    ("a  {{- /* c */ -}}  b", "ab"),
    ("a {{/* c */}} b", "a  b"),
    ("  {{- if .Name -}}  x  {{- end -}}  ", "x"),
    ("{{-3}} {{- 3 -}} {{3 -}} x", "-333x"),
    ("{{\t.Name\n}}", "web"),
]

GO_CONTROL = [
    ("{{if .Running}}up{{else}}down{{end}}", "up"),
    ("{{if .Zero}}a{{else if .Empty}}b{{else if .List}}c{{else}}d{{end}}", "c"),
    (
        "{{if .Nil}}y{{else}}n{{end}}{{if .Missing}}y{{else}}n{{end}}"
        "{{if .EmptyList}}y{{else}}n{{end}}{{if .EmptyMap}}y{{else}}n{{end}}{{if .Map}}y{{end}}",
        "nnnny",
    ),
    ("{{with .Name}}[{{.}}]{{end}}{{with .Empty}}x{{else}}none{{end}}", "[web]none"),
    ("{{with $x := .Count}}{{$x}}{{.}}{{end}}", "33"),
    ("{{range .List}}<{{.}}>{{end}}", "<a><b><c>"),
    ("{{range $i, $e := .List}}{{$i}}:{{$e}},{{end}}", "0:a,1:b,2:c,"),
    ("{{range $e := .List}}{{$e}}{{end}}", "abc"),
    ("{{range $k, $v := .Map}}{{$k}}={{$v}};{{end}}", "a=1;b=2;"),
    ("{{range .Map}}{{.}}{{end}}", "12"),
    ("{{range .EmptyList}}x{{else}}empty{{end}}", "empty"),
    ("{{range .Missing}}x{{else}}nothing{{end}}{{range .Nil}}x{{else}}nil{{end}}", "nothingnil"),
    ("{{range .List}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}", "a"),
    ("{{range .List}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}", "ac"),
    ("{{range .List}}{{break}}{{else}}e{{end}}x", "x"),
    ("{{range .Mixed}}{{.}}|{{end}}", "1|two|3.5|true|<no value>|map[k:v]|[1 2]|"),
    ("{{range .Ports}}{{.IP}}:{{.PublicPort}}->{{.PrivatePort}}/{{.Type}}{{end}}", "0.0.0.0:8080->80/tcp"),
    ("{{range $i, $v := .Nums}}{{if $i}},{{end}}{{$v}}{{end}}", "3,1,2"),
    ("{{range .List}}{{$.Name}}{{end}}", "webwebweb"),
]

GO_VARIABLES = [
    ("{{$x := 1}}{{$x}}{{$x = 2}}{{$x}}", "12"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{$x := 1}}{{with .Name}}{{$x := 2}}{{$x}}{{end}}{{$x}}", "21"),
    ("{{$x := 1}}{{range .List}}{{$x = .}}{{end}}{{$x}}", "c"),
    ("{{$n := len .List}}{{if gt $n 2}}big{{end}}", "big"),
]

GO_PIPELINES = [
    ("{{.Name | upper}} {{.Name | printf \"%s-%s\" \"x\"}} {{\"a\" | printf \"%s\"}}", "WEB x-web a"),
    ("{{1 | printf \"%d\" | printf \"%s!\"}}", "1!"),
    ("{{.List | len}} {{1 | index .List}} {{3 | lt 1}}", "3 b true"),
    ("{{(len .List)}} {{(index .List 0) | upper}}", "3 A"),
    ("{{.Missing | print}} {{.Nil | print}}", "<nil> <nil>"),
]

GO_BUILTINS = [
    ("{{len .List}} {{len .Map}} {{len .Name}}", "3 2 3"),
    ("{{index .List 1}} {{index .Map \"a\"}} {{index .Nested \"Inner\" \"Deep\"}}", "b 1 yes"),
    ("{{index .Labels \"com.example.x\"}} {{index .Map \"zz\"}}", "1 <no value>"),
    ("{{slice .List 1}} {{slice .List 1 2}} {{slice .Name 1 3}} {{slice .List}}", "[b c] [b] eb [a b c]"),
    ("{{print 1 2 \"a\" \"b\" 3 .List .Nil}}", "1 2ab3 [a b c] <nil>"),
    ("{{println 1 \"a\" 2}}", "1 a 2\n"),
    ("{{not 0}} {{not .Name}} {{not .Missing}}", "true false true"),
    ("{{and 1 0 2}} {{and 1 2}} {{or 0 \"\" 3}} {{or 0 \"\"}}|", "0 2 3 |"),
    ("{{or .Missing .Name}} {{and .Name .Count}}", "web 3"),
    ("{{and 0 .Nil.X}} {{or 1 .Nil.X}}", "0 1"),
    ("{{html .Html}}", "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"),
    ("{{js .Html}}", "\\u003Ca href\\u003D\\'x\\'\\u003E\\u0026\\u003C/a\\u003E"),
    ("{{urlquery .Html}} {{urlquery \"a b&c=d/é~\"}}", "%3Ca+href%3D%27x%27%3E%26%3C%2Fa%3E a+b%26c%3Dd%2F%C3%A9~"),
    ("{{html .Nil}} {{html 1 2 \"x\"}}", "&lt;no value&gt; 1 2x"),
]

GO_COMPARISON = [
    ("{{eq 1 1}} {{eq 1 2}} {{eq \"a\" \"a\"}} {{eq 1 2 3 1}} {{eq .Name \"db\" \"web\"}}", "true false true true true"),
    ("{{eq true true}} {{eq 1.5 1.5}} {{ne 1 2}} {{ne \"a\" \"a\"}}", "true true true false"),
    ("{{eq .Nil nil}} {{eq .Missing nil}} {{eq .Name nil}} {{eq .List nil}}", "true true false false"),
    ("{{lt 1 2}} {{le 2 2}} {{gt 3 2}} {{ge 1 2}} {{lt \"a\" \"b\"}} {{lt 1.5 2.5}}", "true true true false true true"),
    ("{{if and .Name (eq .State.Status \"running\")}}ok{{end}}", "ok"),
]

GO_PRINTF = [
    ('{{printf "%d %s %v %q %x %X %o %b %c %U" 42 "s" .List "q" 255 255 8 5 65 65}}',
     '42 s [a b c] "q" ff FF 10 101 A U+0041'),
    ('{{printf "%5s|%-5s|%05d|%-5d|%+d|% d" "a" "b" 42 42 42 42}}', "    a|b    |00042|42   |+42| 42"),
    ('{{printf "%.2f|%8.3f|%-8.3f|%e|%E|%g|%G" 3.14159 3.14159 3.14159 1234.5678 1234.5678 0.000012345 1e21}}',
     "3.14|   3.142|3.142   |1.234568e+03|1.234568E+03|1.2345e-05|1E+21"),
    ('{{printf "%08.3f|%+08.2f|% .2f|%6.2f%%" -3.14159 2.5 2.5 12.3456}}', "-003.142|+0002.50| 2.50| 12.35%"),
    ('{{printf "%t %v %s" true false .Nil}}', "true false %!s(<nil>)"),
    ('{{printf "%d" "x"}} {{printf "%s" 5}} {{printf "%d"}} {{printf "%d" 1 2}}',
     "%!d(string=x) %!s(int=5) %!d(MISSING) 1%!(EXTRA int=2)"),
    ('{{printf "%T %T %T %T %T %T %T" 1 1.5 "s" true .List .Map .Nil}}',
     "int float64 string bool []interface {} map[string]interface {} <nil>"),
    ('{{printf "%x % x %#x %X" "hi" "hi" "hi" "hi"}}', "6869 68 69 0x6869 6869"),
    ('{{printf "%q %+q %#q" "héllo\\n" "héllo" "back"}}', '"héllo\\n" "h\\u00e9llo" `back`'),
    ('{{printf "%.3s|%.10s|%5.1s" "abcdef" "ab" "xyz"}}', "abc|ab|    x"),
    ('{{printf "%*d|%-*d|%.*f" 5 1 4 2 2 3.14159}}', "    1|2   |3.14"),
    ('{{printf "%[2]d %[1]d" 1 2}} {{printf "%[3]d" 1 2}}', "2 1 %!d(BADINDEX)"),
    ('{{printf "%x %X %#x" -255 -255 -255}} {{printf "%.0d|%.3d|%3.2d" 0 7 7}}', "-ff -FF -0xff |007| 07"),
    ('{{printf "%+v %#v" 5 "s"}} {{printf "%05s|%#o|%#b|%O" "ab" 8 5 8}}', '5 "s" 000ab|010|0b101|0o10'),
    ('{{printf "%d %s" .Mixed .Mixed}}',
     "[1 %!d(string=two) %!d(float64=3.5) %!d(bool=true) <nil> map[%!d(string=k):%!d(string=v)] [1 2]] "
     "[%!s(int=1) two %!s(float64=3.5) %!s(bool=true) <nil> map[k:v] [%!s(int=1) %!s(int=2)]]"),
    ('{{printf "%v|%5v|%-5v|" .Nil .Nil .Nil}}', "<nil>|<nil>|<nil>|"),
    ('{{printf "%c %q %U %#U" 233 233 233 233}}', "é 'é' U+00E9 U+00E9 'é'"),
    ('{{printf "%x %X %b" 3.5 3.5 3.5}}', "0x1.cp+01 0X1.CP+01 7881299347898368p-51"),
    ('{{printf "%*d" "a" 1}} {{printf "%.*d|" -1 7}} {{printf "%z" 5}} {{printf "%"}}',
     "%!(BADWIDTH)1 %!(BADPREC)7| %!z(int=5) %!(NOVERB)"),
]

GO_DOCKER_FUNCS = [
    ("{{json .Labels}} {{json .List}} {{json .Nil}} {{json .Missing}} {{json 1}}",
     '{"com.example.x":"1","version":"2.0"} ["a","b","c"] null null 1'),
    ("{{json .Html}}", "\"<a href='x'>&</a>\""),
    ("{{json .Floats}} {{json 1e20}} {{json 1e21}} {{json 0.000001}} {{json -0.0}}",
     "[1.5,2.25,100,1e-7,123456789] 100000000000000000000 1e+21 0.000001 -0"),
    ('{{json "a\\"b\\\\\\n\\t\\u0001\\u2028é"}}', '"a\\"b\\\\\\n\\t\\u0001\\u2028é"'),
    ('{{split "a,b,c" ","}} {{split "a,b," ","}} {{len (split "a,b," ",")}} {{split "héllo" ""}}',
     "[a b c] [a b ] 3 [h é l l o]"),
    ('{{join (split "a:b:c" ":") "-"}} {{json (split "a,b" ",")}}', 'a-b-c ["a","b"]'),
    ('{{title "hello wOrld foo_bar x-y"}} {{lower "ABC"}} {{upper .Name}}', "Hello WOrld Foo_bar X-Y abc WEB"),
    ('{{title "élan vital ǆx 1a a1 _a a.b"}} {{upper "straße"}} {{lower "İI"}}', "Élan Vital ǅx 1a A1 _a A.B STRAßE ii"),
    ('{{pad .Name 2 3}}|{{pad "" 2 3}}|{{truncate .Id 6}}|{{truncate .Id 100}}|{{truncate .Name 3}}',
     "  web   ||abc123|abc123def456|web"),
    ('{{truncate "héllo" 2}}|{{truncate "héllo" 3}}|{{truncate "abc" 0}}|{{truncate .Name 2.0}}', "h\ufffd|hé||we"),
    ('{{join .Missing ","}}|', "|"),
]

GO_TEMPLATES = [
    ('{{define "t"}}[{{.}}]{{end}}{{template "t" .Name}}{{template "t"}}', "[web][<no value>]"),
    ('{{block "b" .Count}}<{{.}}>{{end}}', "<3>"),
    ('{{define "a"}}{{.}}{{template "b" .}}{{end}}{{define "b"}}<{{.}}>{{end}}{{template "a" 1}}', "1<1>"),
    ('{{define "x"}}{{$}}{{end}}{{template "x" 5}}', "5"),
    ('{{define "a"}} {{end}}{{define "a"}}y{{end}}{{template "a"}}', "y"),
    ("{{template `a`}}{{define `a`}}raw{{end}}", "raw"),
]

GO_OUTPUT_CASES = (
    GO_TEXT_AND_FIELDS + GO_NUMBERS + GO_STRINGS + GO_TRIM_AND_COMMENTS + GO_CONTROL + GO_VARIABLES
    + GO_PIPELINES + GO_BUILTINS + GO_COMPARISON + GO_PRINTF + GO_DOCKER_FUNCS + GO_TEMPLATES
)


@pytest.mark.parametrize(("text", "expected"), GO_OUTPUT_CASES)
def test_output_matches_go(text: str, expected: str) -> None:
    assert run(text) == expected


# --- checked against Go: parse errors -----------------------------------------------

GO_PARSE_ERRORS = [
    ("{{foo}}", 'template: :1: function "foo" not defined'),
    ("{{.Name", "template: :1: unclosed action"),
    ("{{.Name}", "template: :1: bad character U+007D '}'"),
    ("{{if .Name}}x", "template: :1: unexpected EOF"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{if}}{{end}}", "template: :1: missing value for if"),
    ("{{}}", "template: :1: missing value for command"),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{range .List}}{{break 1}}{{end}}", 'template: :1: unexpected "1" in {{break}}'),
    ("{{$y}}", 'template: :1: undefined variable "$y"'),
    ('{{define "a"}}{{$x}}{{end}}', 'template: :1: undefined variable "$x"'),
    ("{{/* unclosed", "template: :1: unclosed comment"),
    ("{{/* c */ .Name}}", "template: :1: comment ends before closing delimiter"),
    ('{{"unterminated}}', "template: :1: unterminated quoted string"),
    ("{{`unterminated}}", "template: :1: unterminated raw quoted string"),
    ("{{é}}", 'template: :1: function "é" not defined'),
    ("{{.Name ∞}}", "template: :1: unrecognized character in action: U+221E '∞'"),
    ("{{3x}}", 'template: :1: bad number syntax: "3x"'),
    ("{{.Name)}}", 'template: :1: unexpected ")" in command'),
    ('{{block "a" .}}{{.Name}}{{end}}{{define "a"}}x{{end}}', 'template: :1: template: multiple definition of template "a"'),
    ("{{(.Name}}", "template: :1: unclosed left paren"),
    ("{{a.b}}", 'template: :1: function "a" not defined'),
    ('{{"a" | "b"}}', "template: :1: non executable command in pipeline stage 2"),
    ("{{true.X}}", 'template: :1: unexpected . after term "true"'),
    ("{{$x := 1 2}}{{$x, $y := 1}}", "template: :1: too many declarations in command"),
    ("{{range $a, 1 := .List}}{{end}}", "template: :1: range can only initialize variables"),
    ("{{if .Name}}a{{else}}b{{else}}c{{end}}", "template: :1: expected end; found {{else}}"),
    ('{{define "a"}}A{{end}}{{define "a"}}B{{end}}', 'template: :1: template: multiple definition of template "a"'),
    ("{{'ab'}}", "template: :1: malformed character constant: 'ab'"),
    ('{{"\\q"}}', "template: :1: invalid syntax"),
    ("{{9223372036854775808}}{{99999999999999999999}}", 'template: :1: integer overflow: "99999999999999999999"'),
    ("{{0x}}", 'template: :1: illegal number syntax: "0x"'),
    ("a\nb\n{{foo}}", 'template: :3: function "foo" not defined'),
    ("{{.Name\nfoo}}", 'template: :2: function "foo" not defined'),
    ('{{.Name}}\n{{"\n', "template: :2: unterminated quoted string"),
]


@pytest.mark.parametrize(("text", "expected"), GO_PARSE_ERRORS)
def test_parse_errors_match_go(text: str, expected: str) -> None:
    with pytest.raises(TemplateError) as info:
        Template(text)
    assert str(info.value) == expected


# --- checked against Go: execution errors ----------------------------------------

GO_EXEC_ERRORS = [
    ("{{.Name.Sub}}", 'template: :1:7: executing "" at <.Name.Sub>: can\'t evaluate field Sub in type interface {}'),
    ("{{$x := .Name}}{{$x.Foo}}", 'template: :1:19: executing "" at <$x.Foo>: can\'t evaluate field Foo in type string'),
    ("{{.Nil.Sub}}", 'template: :1:6: executing "" at <.Nil.Sub>: nil pointer evaluating interface {}.Sub'),
    ("{{range .Name}}x{{end}}", 'template: :1:8: executing "" at <.Name>: range can\'t iterate over web'),
    ("{{len .Count}}", 'template: :1:2: executing "" at <len .Count>: error calling len: len of type int'),
    ("{{index .List 5}}", 'template: :1:2: executing "" at <index .List 5>: error calling index: index out of range: 5'),
    ("{{index .Map 1}}",
     'template: :1:2: executing "" at <index .Map 1>: error calling index: value has type int; should be string'),
    ("{{index .Nil 1}}", 'template: :1:2: executing "" at <index .Nil 1>: error calling index: index of untyped nil'),
    ("{{slice .List 2 1}}", 'template: :1:2: executing "" at <slice .List 2 1>: error calling slice: invalid slice index: 2 > 1'),
    ("{{eq 1 1.0}}", 'template: :1:2: executing "" at <eq 1 1.0>: error calling eq: incompatible types for comparison'),
    ("{{eq .List .List}}",
     'template: :1:2: executing "" at <eq .List .List>: error calling eq: non-comparable type [a b c]: []interface {}'),
    ("{{eq .Map .List}}",
     'template: :1:2: executing "" at <eq .Map .List>: error calling eq: non-comparable types '
     'map[a:%!s(int=1) b:%!s(int=2)]: map[string]interface {}, []interface {}: [a b c]'),
    ("{{eq 1}}", 'template: :1:2: executing "" at <eq 1>: error calling eq: missing argument for comparison'),
    ("{{lt true false}}", 'template: :1:2: executing "" at <lt true false>: error calling lt: invalid type for comparison'),
    ("{{and}}", 'template: :1:2: executing "" at <and>: wrong number of args for and: want at least 1 got 0'),
    ("{{not 1 2}}", 'template: :1:2: executing "" at <not>: wrong number of args for not: want 1 got 2'),
    ("{{pad .Name 1}}", 'template: :1:2: executing "" at <pad>: wrong number of args for pad: want 3 got 2'),
    ("{{upper 3}}", 'template: :1:8: executing "" at <3>: expected string; found 3'),
    ("{{upper .Count}}", 'template: :1:8: executing "" at <.Count>: wrong type for value; expected string; got int'),
    ("{{upper .Nil}}", 'template: :1:8: executing "" at <.Nil>: wrong type for value; expected string; got interface {}'),
    ("{{upper .Missing}}", 'template: :1:8: executing "" at <.Missing>: invalid value; expected string'),
    ("{{upper nil}}", 'template: :1:8: executing "" at <nil>: cannot assign nil to string'),
    ('{{truncate .Name "x"}}', 'template: :1:17: executing "" at <"x">: expected integer; found "x"'),
    ("{{truncate .Name 2.5}}", 'template: :1:17: executing "" at <2.5>: expected integer; found 2.5'),
    ("{{nil}}", 'template: :1:2: executing "" at <nil>: nil is not a command'),
    ("{{1 2}}", 'template: :1:2: executing "" at <1>: can\'t give argument to non-function 1'),
    ("{{.Map.a 1}}", 'template: :1:6: executing "" at <.Map.a>: a is not a method but has arguments'),
    ("{{(nil).X}}", 'template: :1:3: executing "" at <nil>: nil is not a command'),
    ('{{template "nope"}}', 'template: :1:11: executing "" at <{{template "nope"}}>: template "nope" not defined'),
    ('{{define "a"}}{{.Nope.X}}{{end}}{{template "a" 5}}',
     'template: :1:21: executing "a" at <.Nope.X>: can\'t evaluate field Nope in type int'),
    ("x\n  {{index .List 9}}", 'template: :2:4: executing "" at <index .List 9>: error calling index: index out of range: 9'),
    ("é\né{{.Name.X}}", 'template: :2:9: executing "" at <.Name.X>: can\'t evaluate field X in type interface {}'),
    ("{{printf}}", 'template: :1:2: executing "" at <printf>: wrong number of args for printf: want at least 1 got 0'),
    ("{{call nil}}", 'template: :1:2: executing "" at <call nil>: error calling call: call of nil'),
    ("{{pad \"x\" -1 1}}", 'template: :1:2: executing "" at <pad "x" -1 1>: error calling pad: strings: negative Repeat count'),
]


@pytest.mark.parametrize(("text", "expected"), GO_EXEC_ERRORS)
def test_execution_errors_match_go(text: str, expected: str) -> None:
    assert error_of(text) == expected


# --- newer Go, and deliberate differences --------------------------------------------


def test_range_over_int_like_go_1_22() -> None:
    assert run("{{range 3}}{{.}}{{end}}|{{range $i := .Count}}{{$i}}{{end}}") == "012|012"
    assert run("{{range 0}}x{{else}}none{{end}}") == "none"
    assert "can't use 3 to iterate over more than one variable" in error_of("{{range $i, $v := 3}}{{end}}")


def test_else_with_like_go_1_23() -> None:
    assert run("{{with .Empty}}a{{else with .Count}}{{.}}{{end}}") == "3"
    assert run("{{with .Name}}a{{else with .Count}}{{.}}{{end}}") == "a"
    assert run("{{with .Empty}}a{{else with .Zero}}b{{else}}c{{end}}") == "c"


def test_join_accepts_json_lists_of_strings() -> None:
    # Go rejects []interface{} for join's []string; docker's typed data are
    # []string, so joining a decoded JSON list of strings must work.
    assert run('{{join .List ", "}}') == "a, b, c"
    assert "expected []string; got []interface {}" in error_of('{{join .Nums ","}}')


def test_json_keeps_dict_order() -> None:
    # Go sorts map keys; Engine API objects are Go structs whose order the
    # daemon's JSON already carries, so Berth keeps the dict's order.
    assert run("{{json .}}", {"b": 1, "a": {"z": None, "y": [1.0, "x"]}}) == '{"b":1,"a":{"z":null,"y":[1,"x"]}}'


def test_json_does_not_escape_html_like_docker() -> None:
    assert run("{{json .}}", "<a>&") == '"<a>&"'


def test_json_of_nan_is_empty_like_docker() -> None:
    # docker ignores the encoder error and prints what is in the buffer.
    assert run("[{{json .}}]", float("nan")) == "[]"


# --- Python objects play Go structs --------------------------------------------------


class Container:
    def __init__(self) -> None:
        self.ID = "abc"
        self.Names = ["/x"]
        self.Gone = None
        self._private = 1

    def Label(self, name: str) -> str:
        return {"a": "1"}.get(name, "")

    def Status(self) -> str:
        return "Up 2 hours"

    def Broken(self) -> str:
        raise ValueError("boom")

    @property
    def Size(self) -> str:
        return "1kB"


def test_object_fields_methods_and_properties() -> None:
    text = '{{.ID}} {{.Status}} {{.Label "a"}}|{{.Label "zz"}}|{{.Size}} {{.Names}} {{"a" | .Label}}'
    assert run(text, Container()) == "abc Up 2 hours 1||1kB [/x] 1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{.Nope}}", "can't evaluate field Nope in type *Container"),
        ("{{._private}}", "can't evaluate field _private in type *Container"),
        ("{{.Broken}}", "error calling Broken: boom"),
        ("{{.Label}}", "wrong number of args for Label: want 1 got 0"),
        ("{{.ID 1}}", "ID has arguments but cannot be invoked as function"),
        ("{{.Gone.X}}", "nil pointer evaluating interface {}.X"),
    ],
)
def test_object_errors(text: str, message: str) -> None:
    assert error_of(text, Container()).endswith(message)


def test_object_printing_uses_str_or_struct_form() -> None:
    @dataclasses.dataclass
    class Port:
        IP: str
        Port: int

    class Named:
        def __str__(self) -> str:
            return "named!"

    assert run("{{.}}", Port("::", 80)) == "{:: 80}"
    assert run("{{.}} {{printf \"%s|%v\" . .}}", Named()) == "named! named!|named!"
    assert run("{{if .}}true{{end}} {{eq . .}}", Port("a", 1)) == "true true"


# --- functions supplied by the caller --------------------------------------------


def test_custom_functions_and_call() -> None:
    funcs = {"add": lambda a, b: a + b, "size": len, "nothing": lambda: None}
    data = {"f": lambda x: x * 2}
    assert render("{{add 1 2}} {{size .}} {{call .f 3}} {{nothing}}", data, funcs) == "3 1 6 <no value>"


def test_custom_function_errors() -> None:
    template = Template("{{add 1}}|{{boom}}", {"add": lambda a, b: a + b, "boom": lambda: 1 / 0})
    with pytest.raises(TemplateError, match="wrong number of args for add: want 2 got 1"):
        template.execute({})
    with pytest.raises(TemplateError, match="error calling boom: division by zero"):
        Template("{{boom}}", {"boom": lambda: 1 / 0}).execute({})


def test_custom_function_overrides_builtin() -> None:
    assert render("{{upper .}}", "x", {"upper": lambda s: s + "!"}) == "x!"


def test_bad_function_name_is_rejected() -> None:
    with pytest.raises(TemplateError, match="not a valid identifier"):
        Template("x", {"bad-name": len})


def test_table_is_not_a_function() -> None:
    # The CLI strips a leading "table " itself; the engine must not accept it.
    with pytest.raises(TemplateError, match='function "table" not defined'):
        Template("table {{.ID}}\t{{table}}")


# --- API behaviour ----------------------------------------------------------------


def test_parse_once_execute_many() -> None:
    template = Template("{{.Name}}:{{len .List}}")
    rows = [{"Name": f"c{i}", "List": list(range(i))} for i in range(100)]
    assert [template.execute(row) for row in rows] == [f"c{i}:{i}" for i in range(100)]


def test_execution_does_not_leak_variables_between_runs() -> None:
    template = Template("{{$x := .}}{{$x}}")
    assert template.execute(1) == "1"
    assert template.execute(2) == "2"


def test_none_data_is_no_value() -> None:
    assert render("{{.}}|{{.Foo}}", None) == "<no value>|<no value>"


def test_template_name_appears_in_errors() -> None:
    with pytest.raises(TemplateError) as info:
        Template("{{.X.Y}}", name="ps").execute({"X": 1})
    assert str(info.value) == 'template: ps:1:4: executing "ps" at <.X.Y>: can\'t evaluate field Y in type interface {}'


def test_recursive_template_hits_depth_limit() -> None:
    with pytest.raises(TemplateError, match="exceeded maximum template depth"):
        render('{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}', {})


def test_recursive_template_with_base_case() -> None:
    text = '{{define "r"}}{{if .}}{{index . 0}}{{template "r" (slice . 1)}}{{end}}{{end}}{{template "r" .}}'
    assert render(text, ["a", "b", "c"]) == "abc"


def test_tuples_behave_like_lists() -> None:
    assert render("{{.}} {{index . 1}} {{len .}} {{json .}}", (1, "x")) == '[1 x] x 2 [1,"x"]'


def test_template_error_is_an_exception_with_go_text() -> None:
    assert issubclass(TemplateError, Exception)
    with pytest.raises(TemplateError) as info:
        Template("{{if}}")
    assert str(info.value) == "template: :1: missing value for if"
