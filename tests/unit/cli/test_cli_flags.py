"""pflag-compatible parsing: syntax forms and docker's error texts."""

import pytest

from berth.cli.flags import BOOL, INT, LIST, MAP, STRING, Flag, FlagError, FlagSet


def fs(interspersed=True):
    return FlagSet(
        [
            Flag("all", "a", BOOL, "all"),
            Flag("quiet", "q", BOOL, "quiet"),
            Flag("format", "f", STRING, "format"),
            Flag("tail", "n", INT, "tail"),
            Flag("filter", kind=LIST, help="filters"),
            Flag("docker", kind=MAP, help="endpoint"),
            Flag("since", kind=STRING, help="since"),
        ],
        interspersed=interspersed,
    )


@pytest.mark.parametrize(
    "argv, field, value",
    [
        (["--format", "x"], "format", "x"),
        (["--format=x"], "format", "x"),
        (["--format="], "format", ""),
        (["-f", "x"], "format", "x"),
        (["-fx"], "format", "x"),
        (["-f=x"], "format", "x"),
        (["-aq"], "quiet", True),
        (["-aqn5"], "tail", 5),
        (["--all=false"], "all", False),
        (["-a=false"], "all", False),
        (["--tail", "0x10"], "tail", 16),
        (["--filter", "a=1", "--filter=b=2"], "filter", ["a=1", "b=2"]),
        (["--docker", "host=unix:///x,ca=/c", "--docker", "key=/k"], "docker", {"host": "unix:///x", "ca": "/c", "key": "/k"}),
        (["--docker", '"host=a,b",ca=c'], "docker", {"host": "a,b", "ca": "c"}),
    ],
)
def test_forms(argv, field, value):
    ns, pos, help_ = fs().parse(argv)
    assert getattr(ns, field) == value
    assert pos == [] and not help_


def test_interspersed_and_double_dash():
    ns, pos, _ = fs().parse(["one", "-a", "two", "--", "-q", "three"])
    assert ns.all and not ns.quiet
    assert pos == ["one", "two", "-q", "three"]


def test_not_interspersed_stops_at_first_positional():
    ns, pos, _ = fs(interspersed=False).parse(["-a", "run", "-q", "--format", "x"])
    assert ns.all and not ns.quiet
    assert pos == ["run", "-q", "--format", "x"]


def test_defaults_and_changed():
    ns, _, _ = fs().parse(["--since", "1h"])
    assert ns.format == "" and ns.tail == 0 and ns.filter == [] and ns.docker == {}
    assert ns.changed("since") and not ns.changed("format")


def test_help_flags():
    assert fs().parse(["--help"])[2]
    assert fs().parse(["-h"])[2]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bogus"], "unknown flag: --bogus"),
        (["-x"], "unknown shorthand flag: 'x' in -x"),
        (["-ax"], "unknown shorthand flag: 'x' in -ax"),
        (["--format"], "flag needs an argument: --format"),
        (["-f"], "flag needs an argument: 'f' in -f"),
        (["--tail", "abc"], 'invalid argument "abc" for "-n, --tail" flag: strconv.ParseInt: parsing "abc": invalid syntax'),
        (["--all=maybe"], 'invalid argument "maybe" for "-a, --all" flag: strconv.ParseBool: parsing "maybe": invalid syntax'),
        (["--docker", "nokey"], 'invalid argument "nokey" for "--docker" flag: nokey must be formatted as key=value'),
        (["--form", "x"], "unknown flag: --form"),  # no prefix matching, unlike argparse
    ],
)
def test_errors(argv, message):
    with pytest.raises(FlagError) as e:
        fs().parse(argv)
    assert str(e.value) == message


def test_usage_text_layout():
    text = FlagSet([Flag("format", kind=STRING, help="Format output"), Flag("quiet", "q", BOOL, "Only names")]).usage_text()
    assert text == "      --format string   Format output\n  -q, --quiet           Only names\n"
