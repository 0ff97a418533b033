"""Command-line flags with the docker CLI's (spf13/pflag's) syntax and error texts.

``--name value``, ``--name=value``, ``-n value``, ``-nvalue``, ``-n=value``, bundled bool
shorthands (``-aq``), ``--bool=false``, ``--`` ends the flags; repeatable list flags and
``key=value,k2=v2`` map flags. Errors read as pflag's: ``unknown flag: --x``,
``unknown shorthand flag: 'x' in -x``, ``flag needs an argument: --x``,
``invalid argument "v" for "-n, --tail" flag: ...``.

argparse is not used: its prefix matching (``--form`` for ``--format``), messages and
interspersed-argument rules differ from docker's in ways scripts notice.
"""

from __future__ import annotations

import csv
from typing import Any, Callable, Sequence


class FlagError(Exception):
    """A usage error (exit status 125 in docker)."""


BOOL, STRING, INT, LIST, MAP = "bool", "string", "int", "list", "map"
_TYPE_NAMES = {STRING: "string", INT: "int", LIST: "list", MAP: "stringToString"}


class Flag:
    """One flag. ``convert`` optionally maps/validates a value (raise ValueError with
    pflag's detail text)."""

    def __init__(
        self,
        name: str,
        short: str = "",
        kind: str = BOOL,
        help: str = "",
        default: Any = None,
        dest: str = "",
        metavar: str = "",
        hidden: bool = False,
        convert: Callable[[Any], Any] | None = None,
    ):
        self.name = name
        self.short = short
        self.kind = kind
        self.help = help
        self.default = default if default is not None else {BOOL: False, STRING: "", INT: 0, LIST: [], MAP: {}}.get(kind)
        self.dest = dest or name.replace("-", "_")
        self.metavar = metavar
        self.hidden = hidden
        self.convert = convert

    def __repr__(self) -> str:
        return f"Flag({self.label!r}, {self.kind})"

    @property
    def label(self) -> str:
        return f"-{self.short}, --{self.name}" if self.short else f"--{self.name}"

    def initial(self) -> Any:
        if self.kind == LIST:
            return list(self.default)
        if self.kind == MAP:
            return dict(self.default)
        return self.default


class Namespace:
    """Parsed flag values as attributes, plus which flags were given."""

    def __init__(self) -> None:
        self._changed: set[str] = set()

    def changed(self, name: str) -> bool:
        return name in self._changed

    def any_changed(self) -> bool:
        """Was any flag given at all?"""
        return bool(self._changed)

    def __repr__(self) -> str:
        items = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return f"Namespace({items})"


def parse_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def parse_int(text: str) -> int:
    """strconv.ParseInt(text, 0, 64) (decimal, 0x.., 0o.., 0b..)."""
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def parse_map(text: str) -> dict[str, str]:
    """pflag stringToString: CSV of key=value pairs."""
    out: dict[str, str] = {}
    for record in csv.reader([text]):
        for pair in record:
            key, sep, value = pair.partition("=")
            if not sep:
                raise ValueError(f"{pair} must be formatted as key=value")
            out[key] = value
    return out


class FlagSet:
    def __init__(self, flags: Sequence[Flag] = (), interspersed: bool = True, help_flag: bool = True):
        self.flags: list[Flag] = list(flags)
        self.interspersed = interspersed
        self.help_flag = help_flag
        self._long = {f.name: f for f in self.flags}
        self._short = {f.short: f for f in self.flags if f.short}

    def add(self, flag: Flag) -> None:
        self.flags.append(flag)
        self._long[flag.name] = flag
        if flag.short:
            self._short[flag.short] = flag

    def parse(self, args: Sequence[str]) -> tuple[Namespace, list[str], bool]:
        """Returns (values, positional args, help requested)."""
        ns = Namespace()
        for f in self.flags:
            setattr(ns, f.dest, f.initial())
        positionals: list[str] = []
        want_help = False
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                positionals.extend(args[i:])
                break
            if not arg.startswith("-") or arg == "-":
                positionals.append(arg)
                if not self.interspersed:
                    positionals.extend(args[i:])
                    break
                continue
            if arg.startswith("--"):
                name, eq, value = arg[2:].partition("=")
                flag = self._long.get(name)
                if flag is None:
                    if self.help_flag and name == "help":
                        want_help = True
                        continue
                    raise FlagError(f"unknown flag: --{name}")
                if flag.kind == BOOL:
                    self._set(ns, flag, value if eq else "true")
                elif eq:
                    self._set(ns, flag, value)
                elif i < len(args):
                    self._set(ns, flag, args[i])
                    i += 1
                else:
                    raise FlagError(f"flag needs an argument: --{name}")
                continue
            # shorthand cluster: -abc, -nvalue, -n=value, -n value
            shorts = arg[1:]
            while shorts:
                c, shorts = shorts[0], shorts[1:]
                flag = self._short.get(c)
                if flag is None:
                    if self.help_flag and c == "h":
                        want_help = True
                        continue
                    raise FlagError(f"unknown shorthand flag: '{c}' in {arg}")
                if flag.kind == BOOL:
                    if shorts.startswith("="):
                        self._set(ns, flag, shorts[1:])
                        shorts = ""
                    else:
                        self._set(ns, flag, "true")
                    continue
                if shorts.startswith("="):
                    self._set(ns, flag, shorts[1:])
                elif shorts:
                    self._set(ns, flag, shorts)
                elif i < len(args):
                    self._set(ns, flag, args[i])
                    i += 1
                else:
                    raise FlagError(f"flag needs an argument: '{c}' in -{c}")
                shorts = ""
        return ns, positionals, want_help

    def _set(self, ns: Namespace, flag: Flag, text: str) -> None:
        try:
            if flag.kind == BOOL:
                value: Any = parse_bool(text)
            elif flag.kind == INT:
                value = parse_int(text)
            elif flag.kind == MAP:
                value = parse_map(text)
            else:
                value = text
            if flag.convert is not None:
                value = flag.convert(value)
        except ValueError as e:
            raise FlagError(f'invalid argument "{text}" for "{flag.label}" flag: {e}') from None
        if flag.kind == LIST:
            if flag.dest not in ns._changed:
                setattr(ns, flag.dest, [])  # the first use replaces the default
            getattr(ns, flag.dest).append(value)
        elif flag.kind == MAP:
            if flag.dest not in ns._changed:
                setattr(ns, flag.dest, {})
            getattr(ns, flag.dest).update(value)
        else:
            setattr(ns, flag.dest, value)
        ns._changed.add(flag.dest)
        ns._changed.add(flag.name)

    def usage_text(self, cols: int = 0) -> str:
        """pflag's FlagUsagesWrapped layout: ``  -q, --quiet   help`` with an aligned help
        column, help wrapped to ``cols`` (0: no wrapping)."""
        rows: list[tuple[str, str]] = []
        for f in sorted(self.flags, key=lambda flag: flag.name):  # pflag sorts by name
            if f.hidden:
                continue
            left = f"  -{f.short}, --{f.name}" if f.short else f"      --{f.name}"
            type_name = f.metavar or _TYPE_NAMES.get(f.kind, "")
            if type_name:
                left += " " + type_name
            help_text = f.help
            if f.kind == BOOL and f.default is True:
                help_text += " (default true)"
            if f.kind in (STRING, INT) and f.default not in ("", 0, None):
                help_text += f' (default {f.default!r})'.replace("'", '"') if f.kind == STRING else f" (default {f.default})"
            rows.append((left, help_text))
        if not rows:
            return ""
        width = max(len(left) for left, _ in rows)
        lines = [f"{left.ljust(width)}   {wrap_help(width + 3, cols, text)}".rstrip() for left, text in rows]
        return "\n".join(lines) + "\n"


def _wrap_n(i: int, slop: int, s: str) -> tuple[str, str]:
    """pflag's wrapN: split ``s`` at whitespace before ``i`` (``slop`` may be overrun)."""
    if i + slop > len(s):
        return s, ""
    w = max(s.rfind(c, 0, i) for c in " \t\n")
    if w <= 0:
        return s, ""
    nl = s.rfind("\n", 0, i)
    if 0 < nl < w:
        return s[:nl], s[nl + 1 :]
    return s[:w], s[w + 1 :]


def wrap_help(indent: int, cols: int, s: str) -> str:
    """pflag's wrap: help text from column ``indent`` up to ``cols`` (0: no wrapping)."""
    pad = "\n" + " " * indent
    if cols == 0:
        return s.replace("\n", pad)
    width = cols - indent
    out = ""
    if width < 24:
        indent = 16
        width = cols - indent
        pad = "\n" + " " * indent
        out += pad
    if width < 24:
        return s.replace("\n", out or pad)
    slop = 5
    width -= slop
    line, s = _wrap_n(width, slop, s)
    out += line.replace("\n", pad)
    while s:
        line, s = _wrap_n(width, slop, s)
        out += pad + line.replace("\n", pad)
    return out
