"""Commands and command groups: declaration, argument checks and help, docker-style.

A group module (``cli/commands/<group>.py``) creates ``group = Group("context", "Manage
contexts")`` and declares its commands with ``@group.command(...)``. The top-level index in
``cli/commands/__init__.py`` maps names and docker's shortcuts (``berth events`` =
``berth system events``) to (module, command) without importing any group module.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

from berth.cli.flags import Flag, FlagSet

PROG = "berth"


class StatusError(Exception):
    """Print ``message`` (if any) to stderr and exit with ``status`` (docker's cli.StatusError)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.message = message
        self.status = status


class UsageError(StatusError):
    """Bad flags: docker's FlagErrorFunc text and exit status 125."""

    def __init__(self, error: str, usage_line: str, path: str):
        super().__init__(
            f"{error}\n\nUsage:  {usage_line}\n\nRun '{path} --help' for more information", status=125
        )


class Args(NamedTuple):
    """Positional argument count rule, with cobra/docker's error texts."""

    min: int = 0
    max: int | None = None  # None: unbounded

    def check(self, path: str, usage_line: str, args: Sequence[str]) -> None:
        n = len(args)
        lo, hi = self.min, self.max
        if lo <= n and (hi is None or n <= hi):
            return
        verb = "Run"
        if hi == 0:
            msg = f"'{path}' accepts no arguments"
        elif lo == hi:
            msg = f"'{path}' requires {lo} {_plural('argument', lo)}"
        elif hi is None:
            msg = f"'{path}' requires at least {lo} {_plural('argument', lo)}"
            verb = "See"  # docker's RequiresMinArgs says "See"
        elif lo == 0:
            msg = f"'{path}' requires at most {hi} {_plural('argument', hi)}"
            verb = "SRun"  # sic: docker 28's RequiresMaxArgs prints this typo
        else:
            msg = f"'{path}' requires at least {lo} and at most {hi} {_plural('argument', hi)}"
        raise StatusError(
            f"{PROG}: {msg}\n\nUsage:  {usage_line}\n\n{verb} '{path} --help' for more information", 1
        )


def help_width() -> int:
    """docker wraps flag help to the terminal on stdin (80 columns otherwise), minus one."""
    import fcntl
    import struct
    import termios

    width = 80
    try:
        _, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
        if cols:
            width = cols
    except OSError:
        pass
    return width - 1


def _plural(word: str, n: int) -> str:
    return word if n == 1 else word + "s"


NO_ARGS = Args(0, 0)
ANY_ARGS = Args(0, None)


def exactly(n: int) -> Args:
    return Args(n, n)


def at_least(n: int) -> Args:
    return Args(n, None)


Runner = Callable[..., Any]  # (cli, opts, args) -> int | None


def lazy(module: str, name: str) -> Callable[[Any], Any]:
    """A flag converter imported when first used (``berth ps`` need not load run's parsers)."""

    def convert(value: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)(value)

    return convert


class Command:
    """A runnable command. ``usage`` follows the command path, e.g. "[OPTIONS] CONTEXT";
    ``run(cli, opts, args)`` returns the exit status (None: 0)."""

    def __init__(
        self,
        name: str,
        summary: str,
        usage: str,
        run: Runner,
        flags: Sequence[Flag] | Callable[[], Sequence[Flag]] = (),
        args: Args = ANY_ARGS,
        aliases: tuple[str, ...] = (),
        interspersed: bool = True,
        hidden: bool = False,
        long: str = "",
        examples: str = "",
    ):
        self.name = name
        self.summary = summary
        self.usage = usage
        self.run = run
        self._flags = flags  # a callable is called on first use (keeps imports lazy)
        self.args = args
        self.aliases = aliases
        self.interspersed = interspersed
        self.hidden = hidden
        self.long = long
        self.examples = examples

    @property
    def flags(self) -> list[Flag]:
        if callable(self._flags):
            self._flags = list(self._flags())
        elif not isinstance(self._flags, list):
            self._flags = list(self._flags)
        return self._flags

    def flagset(self) -> FlagSet:
        return FlagSet(self.flags, interspersed=self.interspersed)

    def usage_line(self, path: str) -> str:
        return f"{path} {self.usage}".rstrip()

    def help_text(self, path: str, alias_paths: Sequence[str] = ()) -> str:
        parts = [f"Usage:  {self.usage_line(path)}", "", self.long or self.summary, ""]
        if alias_paths:
            parts += ["Aliases:", "  " + ", ".join(alias_paths), ""]
        options = self.flagset().usage_text(help_width())
        if options:
            parts += ["Options:", options.rstrip("\n"), ""]
        if self.examples:
            parts += ["Examples:", self.examples.rstrip("\n"), ""]
        # docker's help ends right after its last section, without a blank line
        return "\n".join(parts).rstrip("\n") + "\n"


class Group:
    """A management command (``context``, ``system``) and its subcommands.

    ``plain``: a group that is cobra's rather than a docker management command (``completion``):
    bare or with an unknown subcommand, it prints its help to stdout and succeeds."""

    def __init__(self, name: str, summary: str, long: str = "", plain: bool = False):
        self.name = name
        self.summary = summary
        self.long = long
        self.plain = plain
        self.commands: dict[str, Command] = {}
        self._aliases: dict[str, str] = {}

    def command(
        self,
        name: str,
        summary: str,
        usage: str = "[OPTIONS]",
        *,
        flags: Sequence[Flag] | Callable[[], Sequence[Flag]] = (),
        args: Args = ANY_ARGS,
        aliases: Sequence[str] = (),
        interspersed: bool = True,
        hidden: bool = False,
        long: str = "",
        examples: str = "",
    ) -> Callable[[Runner], Runner]:
        def register(fn: Runner) -> Runner:
            cmd = Command(
                name=name,
                summary=summary,
                usage=usage,
                run=fn,
                flags=flags,
                args=args,
                aliases=tuple(aliases),
                interspersed=interspersed,
                hidden=hidden,
                long=long,
                examples=examples,
            )
            self.commands[name] = cmd
            for alias in aliases:
                self._aliases[alias] = name
            return fn

        return register

    def lookup(self, name: str) -> Command | None:
        cmd = self.commands.get(name)
        if cmd is None and name in self._aliases:
            cmd = self.commands[self._aliases[name]]
        return cmd

    def help_text(self, path: str) -> str:
        visible = [c for c in self.commands.values() if not c.hidden]
        visible.sort(key=lambda c: c.name)
        width = max((len(c.name) for c in visible), default=0)
        lines = [f"Usage:  {path} COMMAND", "", self.long or self.summary, "", "Commands:"]
        lines += [f"  {c.name.ljust(max(width, 10))}  {c.summary}" for c in visible]
        lines += ["", f"Run '{path} COMMAND --help' for more information on a command.", ""]
        return "\n".join(lines) + "\n"
