"""``berth __complete WORD... CURRENT``: the candidates for CURRENT, as cobra's ``__complete``.

Output: one candidate a line, ``value`` or ``value<TAB>description`` (``__completeNoDesc``:
no descriptions), then ``:<directive>`` (cobra's ShellCompDirective bits, below); stderr gets
``Completion ended with directive: ...``. The words are read as ``berth`` reads them: global
flags, a command or management command and subcommand, the command's flags (with their
values) and arguments. A flag with ``=`` (``--restart=o``) completes to bare values, the
scripts put the ``--restart=`` back, as cobra's do.

Nothing here raises for a daemon that is down or slow: names come from a ``NameSource``
(``names.DaemonNames`` in real use) that answers empty lists instead.
"""

from __future__ import annotations

import importlib
import re
import sys
from typing import Any, Callable, NamedTuple, Protocol, Sequence, TextIO

from berth.cli.command import Command, Group
from berth.cli.commands import INDEX
from berth.cli.flags import BOOL, LIST, MAP, Flag

# cobra's ShellCompDirective bits
ERROR = 1  # something went wrong: complete nothing
NO_SPACE = 2  # no space after the completion (e.g. "container:")
NO_FILE = 4  # no file completion when there are no candidates
FILTER_EXT = 8  # candidates are file extensions to complete files with
FILTER_DIRS = 16  # complete directories (in the first candidate, if any)
KEEP_ORDER = 32  # keep the candidates in our order
DEFAULT = 0  # the shell's default (files) when there are no candidates

_DIRECTIVE_NAMES = [
    (ERROR, "ShellCompDirectiveError"),
    (NO_SPACE, "ShellCompDirectiveNoSpace"),
    (NO_FILE, "ShellCompDirectiveNoFileComp"),
    (FILTER_EXT, "ShellCompDirectiveFilterFileExt"),
    (FILTER_DIRS, "ShellCompDirectiveFilterDirs"),
    (KEEP_ORDER, "ShellCompDirectiveKeepOrder"),
]

class Reply(NamedTuple):
    candidates: list[str]  # "value" or "value\tdescription"
    directive: int


class NameSource(Protocol):
    """Where names come from (``names.DaemonNames``; a fake in tests). The daemon's lists are
    its API's JSON; a daemon that cannot answer gives empty lists and no info."""

    def containers(self, all: bool = True) -> list[dict]: ...
    def images(self) -> list[dict]: ...
    def networks(self) -> list[dict]: ...
    def volumes(self) -> list[dict]: ...
    def info(self) -> dict | None: ...
    def contexts(self) -> tuple[list[str], str]: ...  # the names and the current one


class Request(NamedTuple):
    """What a completer is given."""

    names: NameSource  # asked only when a completer needs names
    args: list[str]  # the command's positional arguments before the current word
    flags: dict[str, list[str]]  # the command's flags given so far: name -> values ("true" for bools)
    word: str  # the current word (a flag's value only, for --flag=value)


Completer = Callable[[Request], Reply]
Rule = Callable[[str], "Completer | None"]  # a flag's name -> the completer of its values


class Walk:
    """The words of one flag set read as pflag reads them, leniently (unknown flags skipped)."""

    def __init__(self) -> None:
        self.positionals: list[str] = []
        self.values: dict[str, list[str]] = {}
        self.pending: Flag | None = None  # the last word is a flag waiting for its value
        self.dashdash = False  # "--" seen: no more flags

    def record(self, flag: Flag | None, value: str) -> None:
        if flag is not None:
            self.values.setdefault(flag.name, []).append(value)


def walk(flags: Sequence[Flag], words: Sequence[str], interspersed: bool) -> Walk:
    long = {f.name: f for f in flags}
    short = {f.short: f for f in flags if f.short}
    w = Walk()
    i = 0
    while i < len(words):
        arg = words[i]
        i += 1
        if w.dashdash or (w.positionals and not interspersed):
            w.positionals.append(arg)
            continue
        if arg == "--":
            w.dashdash = True
            continue
        if not arg.startswith("-") or arg == "-":
            w.positionals.append(arg)
            continue
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            flag = long.get(name)
            if flag is None or flag.kind == BOOL or eq:
                w.record(flag, value if eq else "true")
            elif i < len(words):
                w.record(flag, words[i])
                i += 1
            else:
                w.pending = flag
            continue
        shorts = arg[1:]
        while shorts:
            c, shorts = shorts[0], shorts[1:]
            flag = short.get(c)
            if flag is None or flag.kind == BOOL:
                if shorts.startswith("="):
                    w.record(flag, shorts[1:])
                    break
                w.record(flag, "true")
                continue
            if shorts.startswith("="):
                w.record(flag, shorts[1:])
            elif shorts:
                w.record(flag, shorts)
            elif i < len(words):
                w.record(flag, words[i])
                i += 1
            else:
                w.pending = flag
            break
    return w


_PFLAG_DEFAULT = re.compile(r" \(default (\[\]|map\[\]|unix://\S+)\)$")


def _summary(text: str) -> str:
    """A flag's help as a description: its first line, as cobra's (``Format output using a
    custom template:``), unless the line goes on in the next (the help of ``--context``
    is wrapped by hand); without the ``(default [])`` pflag would add to the usage."""
    first, _, more = text.partition("\n")
    if more and not first.endswith(":") and not more.startswith("'"):
        first = " ".join(line.strip() for line in text.splitlines())
    return _PFLAG_DEFAULT.sub("", first.strip())


def flag_candidates(flags: Sequence[Flag], word: str, given: dict[str, list[str]]) -> list[str]:
    """``--name<TAB>help`` (and ``-n<TAB>help`` unless the word starts with ``--``) for the
    visible flags not given yet (list and map flags may be given again), in pflag's order."""
    out = []
    for f in sorted(flags, key=lambda flag: flag.name):
        if f.hidden or (f.name in given and f.kind not in (LIST, MAP)):
            continue
        desc = _summary(f.help)
        out.append(f"--{f.name}\t{desc}")
        if f.short and not word.startswith("--"):
            out.append(f"-{f.short}\t{desc}")
    return out


def _value_of(text: str) -> str:
    return text.split("\t", 1)[0]


def _matching(candidates: Sequence[str], word: str) -> list[str]:
    return [c for c in candidates if _value_of(c).startswith(word)]


class Completion:
    """One ``__complete`` request."""

    def __init__(self, names: Any = None, names_factory: Callable[[list[str]], Any] | None = None):
        """``names``: a NameSource; else ``names_factory(global_flag_words)`` makes one when
        a completer first needs names (so commands and flags never read the store)."""
        self._names = names
        self._names_factory = names_factory or _daemon_names
        self._global_words: list[str] = []

    @property
    def names(self) -> Any:
        if self._names is None:
            self._names = self._names_factory(self._global_words)
        return self._names

    def complete(self, words: Sequence[str]) -> Reply:
        from berth.cli.app import global_flags
        from berth.cli.completion import rules

        *before, word = list(words) or [""]
        root = global_flags().flags
        top = walk(root, before, interspersed=False)
        if not top.positionals:  # the word is a global flag, its value or the command
            self._global_words = list(before)
            if top.pending is not None:
                return self._flag_value(top.pending, word, top.values, rules.global_flag_rule)
            if word.startswith("-") and not top.dashdash:
                return self._flags(root, word, top.values, rules.global_flag_rule)
            return Reply(_matching(_command_candidates(), word), NO_FILE)
        self._global_words = list(before[: len(before) - len(top.positionals)])
        name, rest = top.positionals[0], top.positionals[1:]
        entry = INDEX.get(name)
        if entry is None:
            return Reply([], DEFAULT)
        group: Group = importlib.import_module(f"berth.cli.commands.{entry.module}").group
        if entry.command is not None:
            cmd = group.lookup(entry.command)
        elif not rest:  # the word is the subcommand
            if word.startswith("-"):
                return Reply([], NO_FILE)
            return Reply(_matching(_subcommand_candidates(group), word), NO_FILE)
        else:
            cmd, rest = group.lookup(rest[0]), rest[1:]
        if cmd is None:
            return Reply([], DEFAULT)
        return self._command(entry.module, cmd, rest, word)

    def _command(self, module: str, cmd: Command, rest: list[str], word: str) -> Reply:
        """The word is one of ``cmd``'s flags, a flag's value or an argument."""
        from berth.cli.completion import rules

        def rule(flag_name: str) -> Completer | None:
            return rules.flag_rule(module, cmd.name, flag_name)

        flags = cmd.flags
        w = walk(flags, rest, cmd.interspersed)
        if w.pending is not None:
            return self._flag_value(w.pending, word, w.values, rule)
        if word.startswith("-") and not w.dashdash and (cmd.interspersed or not w.positionals):
            return self._flags(flags, word, w.values, rule)
        return self._run(rules.args_rule(module, cmd), w.positionals, w.values, word)

    def _flags(self, flags: Sequence[Flag], word: str, given: dict[str, list[str]], rule: Rule) -> Reply:
        if "=" in word:  # --flag=value, -f=value
            name, _, value = word.partition("=")
            if name.startswith("--"):
                flag = next((f for f in flags if f.name == name[2:]), None)
            else:
                flag = next((f for f in flags if len(name) == 2 and f.short == name[1:]), None)
            if flag is None or flag.kind == BOOL:
                return Reply([], NO_FILE)
            return self._flag_value(flag, value, given, rule)
        return Reply(_matching(flag_candidates(flags, word, given), word), NO_FILE)

    def _flag_value(self, flag: Flag, word: str, given: dict[str, list[str]], rule: Rule) -> Reply:
        completer = rule(flag.name)
        if completer is None:
            return Reply([], NO_FILE)  # a free value (--format, --name): nothing to offer
        return self._run(completer, [], given, word)

    def _run(self, completer: Completer, args: list[str], given: dict[str, list[str]], word: str) -> Reply:
        reply = completer(Request(_Lazy(self), args, given, word))
        return Reply(_matching(reply.candidates, word), reply.directive)


class _Lazy:
    """The request's name source, made on first use."""

    def __init__(self, completion: Completion):
        self._completion = completion

    def __getattr__(self, name: str) -> Any:
        return getattr(self._completion.names, name)


def _command_candidates() -> list[str]:
    return [f"{name}\t{e.summary}" for name, e in sorted(INDEX.items()) if not e.hidden]


def _subcommand_candidates(group: Group) -> list[str]:
    cmds = sorted((c for c in group.commands.values() if not c.hidden), key=lambda c: c.name)
    return [f"{c.name}\t{c.summary}" for c in cmds]


def _daemon_names(global_words: list[str]) -> Any:
    from berth.cli.completion.names import DaemonNames

    return DaemonNames.from_global_flags(global_words)


def directive_text(directive: int) -> str:
    names = [name for bit, name in _DIRECTIVE_NAMES if directive & bit]
    return ", ".join(names) if names else "ShellCompDirectiveDefault"


def main(argv: Sequence[str], out: TextIO | None = None, err: TextIO | None = None, descriptions: bool = True) -> int:
    """The hidden ``__complete`` command: print the reply for ``argv`` (its last word is the
    one being completed)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if not argv:
        err.write("requires at least 1 arg(s), only received 0\n")
        return 1
    try:
        reply = Completion().complete(argv)
    except Exception:  # a bug: say so on stderr (the scripts drop it), offer nothing
        import traceback

        traceback.print_exc(file=err)
        reply = Reply([], ERROR)
    lines = reply.candidates if descriptions else [_value_of(c) for c in reply.candidates]
    for line in lines:
        out.write(line.replace("\n", " ") + "\n")
    out.write(f":{reply.directive}\n")
    out.flush()
    err.write(f"Completion ended with directive: {directive_text(reply.directive)}\n")
    return 0
