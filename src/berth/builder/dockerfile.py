"""The Dockerfile parser: text in, stages of instructions out. Pure: no I/O.

Two passes, as Docker's (BuildKit's ``frontend/dockerfile/parser`` then ``instructions``):

1. ``parse(text)`` reads the parser directives (``# escape=``, ``# syntax=``, ``# check=``:
   only at the very top, before any other comment, blank line or instruction), joins lines
   continued with the escape token (comment lines inside a continuation are dropped, blank
   ones tolerated), reads heredocs (``<<EOF``, ``<<-EOF`` strips leading tabs, a quoted
   ``<<"EOF"`` is not expanded) for RUN, COPY and ADD, and splits each instruction into its
   keyword, its ``--flags`` and its arguments (JSON or shell form), with the line numbers it
   spans. Errors say ``dockerfile parse error line N: ...`` as dockerd's classic builder.
2. ``stages(parsed)`` groups instructions into stages (``FROM ... AS name``), keeps the ARGs
   before the first FROM as meta args, checks each instruction's arguments and flags, and
   ``Stages.needed(target)`` tells which stages a target depends on (FROM of a stage name,
   ``COPY --from``, ``RUN --mount=from=``).

Variable expansion happens later, with the build's values (``berth.builder.shell``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidParameter

DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
HEREDOC = re.compile(r"<<(-?)\s*(['\"]?)([a-zA-Z_][a-zA-Z0-9_]*)\2")
HEREDOC_COMMANDS = {"run", "copy", "add"}

# the instructions and how their arguments are read
COMMANDS = {
    "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck", "label",
    "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir",
}
# flags each instruction accepts (BuildKit's set; the classic builder's is smaller)
FLAGS: dict[str, set[str]] = {
    "from": {"platform"},
    "run": {"mount", "network", "security"},
    "copy": {"from", "chown", "chmod", "link"},
    "add": {"chown", "chmod", "link", "checksum"},
    "healthcheck": {"interval", "timeout", "start-period", "start-interval", "retries"},
}
BOOL_FLAGS = {"link"}  # accepted: each COPY is its own layer already


class DockerfileError(InvalidParameter):
    """A Dockerfile that cannot be read: a 400 before the build starts, as dockerd's."""


def _error(line: int, message: str) -> DockerfileError:
    return DockerfileError(f"dockerfile parse error line {line}: {message}")


@dataclass
class Heredoc:
    name: str
    content: str
    expand: bool = True
    chomp: bool = False


@dataclass
class Instruction:
    """One instruction as written: ``keyword`` lower case, ``original`` its text (flags
    and all, continuations joined), ``flags`` ``{name: [values]}``, ``args`` the arguments
    (JSON form: the list; shell form: ``[text]`` for RUN/CMD/ENTRYPOINT, else the words),
    ``json`` whether it was the JSON form, ``start``/``end`` its lines (1-based)."""

    keyword: str
    original: str
    args: list[str]
    flags: dict[str, list[str]] = field(default_factory=dict)
    json: bool = False
    start: int = 0
    end: int = 0
    heredocs: list[Heredoc] = field(default_factory=list)
    raw_args: str = ""  # the text after the flags (shell form), for ENV/LABEL pairs

    def flag(self, name: str) -> str | None:
        values = self.flags.get(name)
        return values[-1] if values else None

    def text(self) -> str:
        """The instruction as the build prints it (``Step 1/3 : RUN echo hi``)."""
        return self.original


@dataclass
class Parsed:
    instructions: list[Instruction]
    escape: str = "\\"
    syntax: str = ""
    directives: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _directives(lines: list[str]) -> tuple[dict[str, str], int]:
    """The parser directives at the top, and the index of the first line after them."""
    found: dict[str, str] = {}
    index = 0
    for index, line in enumerate(lines):
        match = DIRECTIVE.match(line.strip()) if line.lstrip().startswith("#") else None
        if not match:
            return found, index
        name, value = match.group(1).lower(), match.group(2)
        if name not in ("escape", "syntax", "check"):
            return found, index  # an ordinary comment: directives end here
        if name in found:
            raise DockerfileError(f"only one {name} parser directive can be used")
        found[name] = value
    return found, len(lines)


def parse(text: str | bytes) -> Parsed:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff")
    lines = text.replace("\r\n", "\n").split("\n")
    directives, first = _directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(f"invalid escape token '{escape}' does not match ` or \\")
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    parsed = Parsed([], escape, directives.get("syntax", ""), directives)
    index = first
    while index < len(lines):
        line = lines[index]
        start = index + 1
        index += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [line.lstrip()]
        continued = bool(continuation.search(parts[-1]))
        while continued:
            parts[-1] = continuation.sub("", parts[-1])
            continued = False
            while index < len(lines):
                following = lines[index]
                index += 1
                if following.strip().startswith("#"):
                    continue  # comments inside a continuation are dropped
                if not following.strip():
                    parsed.warnings.append(f"Empty continuation line found in line {index}")
                    continue
                parts.append(following)
                continued = bool(continuation.search(following))
                break
        joined = "".join(parts)
        instruction = _split(joined, start, index, escape)
        if instruction.keyword in HEREDOC_COMMANDS:
            index = _read_heredocs(instruction, lines, index)
        parsed.instructions.append(instruction)
    return parsed


def _read_heredocs(instruction: Instruction, lines: list[str], index: int) -> int:
    """Read the bodies of the heredocs the instruction names, after its line."""
    text = instruction.raw_args
    if instruction.json:
        return index
    for match in HEREDOC.finditer(text):
        chomp, quote, name = match.group(1) == "-", match.group(2), match.group(3)
        body: list[str] = []
        while True:
            if index >= len(lines):
                raise _error(instruction.start, f"unterminated heredoc {name}")
            line = lines[index]
            index += 1
            check = line.lstrip("\t") if chomp else line
            if check == name:
                break
            body.append(line.lstrip("\t") if chomp else line)
        instruction.heredocs.append(Heredoc(name, "".join(b + "\n" for b in body),
                                            expand=not quote, chomp=chomp))
        instruction.end = index
    return index


def _split(line: str, start: int, end: int, escape: str) -> Instruction:
    keyword, _, rest = line.strip().partition(" ")
    if "\t" in keyword:
        keyword, _, more = keyword.partition("\t")
        rest = more + " " + rest
    lower = keyword.lower()
    rest = rest.strip()
    if lower not in COMMANDS:
        raise _error(start, f"unknown instruction: {keyword.upper()}")
    flags, rest = _extract_flags(rest, start)
    instruction = Instruction(lower, line.strip(), [], flags, start=start, end=end, raw_args=rest)
    if lower in ("run", "cmd", "entrypoint"):
        parsed = maybe_json(rest)
        if parsed is not None:
            instruction.args, instruction.json = parsed, True
        else:
            instruction.args = [rest] if rest else []
    elif lower in ("copy", "add", "volume", "shell"):
        parsed = maybe_json(rest)
        if parsed is not None:
            instruction.args, instruction.json = parsed, True
        elif lower == "shell":
            raise _error(start, "SHELL requires the arguments to be in JSON form")
        else:
            instruction.args = _words(rest, escape)
    elif lower == "onbuild":
        instruction.args = [rest] if rest else []
    elif lower in ("env", "label"):
        instruction.args = _words(rest, escape)
    else:
        instruction.args = _words(rest, escape)
    return instruction


def maybe_json(text: str) -> list[str] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _extract_flags(rest: str, line: int) -> tuple[dict[str, list[str]], str]:
    """Leading ``--name=value`` / ``--name`` words (BuildKit's extractBuilderFlags)."""
    flags: dict[str, list[str]] = {}
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            after = more + " " + after
        if word == "--":
            rest = after.strip()
            break
        # a flag value may be quoted: --mount="type=cache,target=/x y"
        name, eq, value = word[2:].partition("=")
        if eq and value[:1] in ('"', "'") and not (len(value) > 1 and value.endswith(value[0])):
            quote = value[0]
            closing = after.find(quote)
            if closing < 0:
                raise _error(line, f"unterminated quote in flag {word}")
            value = value + " " + after[:closing + 1]
            after = after[closing + 1:]
        if eq and len(value) > 1 and value[0] in ('"', "'") and value.endswith(value[0]):
            value = value[1:-1]
        flags.setdefault(name, []).append(value if eq else "true" if name in BOOL_FLAGS else "")
        rest = after.strip()
    return flags, rest


def _words(text: str, escape: str) -> list[str]:
    """Split on blanks outside quotes, quotes and escapes kept (expansion removes them)."""
    words: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    started = False
    while i < len(text):
        ch = text[i]
        if ch == escape and i + 1 < len(text) and quote != "'":
            current.append(ch + text[i + 1])
            i += 2
            started = True
            continue
        if quote:
            if ch == quote:
                quote = ""
            current.append(ch)
        elif ch in "'\"":
            quote = ch
            current.append(ch)
            started = True
        elif ch in " \t":
            if started:
                words.append("".join(current))
                current, started = [], False
        else:
            current.append(ch)
            started = True
        i += 1
    if started:
        words.append("".join(current))
    return words


# -- pass 2: stages ---------------------------------------------------------------------------

@dataclass
class Stage:
    index: int
    base: str                     # FROM's image (not yet expanded)
    name: str = ""                # AS name (lower case)
    platform: str = ""
    from_instruction: Instruction | None = None
    instructions: list[Instruction] = field(default_factory=list)

    @property
    def display(self) -> str:
        return self.name or str(self.index)


@dataclass
class Stages:
    stages: list[Stage]
    meta_args: list[Instruction]   # ARGs before the first FROM
    parsed: Parsed

    def find(self, ref: str, before: int | None = None) -> Stage | None:
        """The stage ``ref`` names (a name, or a number) among those before ``before``."""
        candidates = self.stages if before is None else self.stages[:before]
        lower = ref.lower()
        for stage in candidates:
            if stage.name and stage.name == lower:
                return stage
        if ref.isdigit():
            number = int(ref)
            if number < len(candidates):
                return candidates[number]
        return None

    def target_index(self, target: str) -> int:
        if not target:
            return len(self.stages) - 1
        stage = self.find(target)
        if stage is None or not stage.name and not target.isdigit():
            raise InvalidParameter(f"failed to reach build target {target} in Dockerfile")
        return stage.index


def _check(instruction: Instruction) -> None:
    """The argument counts and flags Docker checks when it reads the file."""
    keyword, args, line = instruction.keyword, instruction.args, instruction.start
    upper = keyword.upper()
    allowed = FLAGS.get(keyword, set())
    for name in instruction.flags:
        if name not in allowed:
            raise _error(line, f"Unknown flag: {name}")
    if keyword in ("env", "label", "arg", "expose", "volume", "user", "from",
                   "maintainer", "onbuild", "run", "cmd", "entrypoint") and not args \
            and keyword not in ("cmd", "entrypoint", "run"):
        raise _error(line, f"{upper} requires at least one argument")
    if keyword in ("run",) and not args and not instruction.heredocs:
        raise _error(line, f"{upper} requires at least one argument")
    if keyword in ("workdir", "stopsignal", "maintainer") and len(args) != 1:
        if keyword == "maintainer" and args:
            return
        raise _error(line, f"{upper} requires exactly one argument")
    if keyword == "user" and len(args) != 1:
        raise _error(line, "USER requires exactly one argument")
    if keyword in ("copy", "add") and len(args) < 2 and not (instruction.heredocs and args):
        raise _error(line, f"{upper} requires at least two arguments, but only one was provided."
                     f" Destination could not be determined." if len(args) == 1 else
                     f"{upper} requires at least two arguments")
    if keyword == "from" and len(args) not in (1, 3):
        raise _error(line, "FROM requires either one or three arguments")
    if keyword == "from" and len(args) == 3 and args[1].lower() != "as":
        raise _error(line, "FROM requires either one or three arguments")
    if keyword == "healthcheck":
        if not args:
            raise _error(line, "HEALTHCHECK requires an argument")
        kind = args[0].upper()
        if kind == "NONE":
            if len(args) > 1:
                raise _error(line, "HEALTHCHECK NONE takes no arguments")
        elif kind == "CMD":
            if len(args) < 2:
                raise _error(line, "Missing command after HEALTHCHECK CMD")
        else:
            raise _error(line, f"Unknown type \"{kind}\" in HEALTHCHECK (try CMD)")
    if keyword in ("env", "label"):
        pairs(instruction)
    if keyword == "onbuild":
        trigger = args[0].split(None, 1)[0].upper() if args else ""
        if trigger in ("ONBUILD",):
            raise _error(line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("FROM", "MAINTAINER"):
            raise _error(line, f"{trigger} isn't allowed as an ONBUILD trigger")


def pairs(instruction: Instruction) -> list[tuple[str, str]]:
    """ENV and LABEL ``key=value`` pairs (values still quoted: expansion removes quotes);
    the legacy ``ENV key value`` form too."""
    words = instruction.args
    upper = instruction.keyword.upper()
    if not words:
        raise _error(instruction.start, f"{upper} requires at least one argument")
    if "=" not in words[0]:
        if instruction.keyword == "label" or len(words) < 2:
            if instruction.keyword == "env" and len(words) == 1:
                raise _error(instruction.start, "ENV must have two arguments")
            raise _error(instruction.start,
                         f"Syntax error - can't find = in \"{words[0]}\". Must be of the form: name=value")
        # legacy: ENV key value with spaces
        _, _, value = instruction.raw_args.partition(words[0])
        return [(words[0], value.strip())]
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise DockerfileError(f"Syntax error - can't find = in \"{word}\". Must be of the form: name=value")
        if not key:
            raise _error(instruction.start, f"{upper} names can not be blank")
        out.append((key, value))
    return out


def stages(parsed: Parsed) -> Stages:
    result: list[Stage] = []
    meta: list[Instruction] = []
    for instruction in parsed.instructions:
        _check(instruction)
        if instruction.keyword == "from":
            args = instruction.args
            name = args[2].lower() if len(args) == 3 else ""
            if name and not re.fullmatch(r"[a-z][a-z0-9-_.]*", name):
                raise _error(instruction.start,
                             f"invalid name for build stage: \"{args[2]}\", name can't start "
                             "with a number or contain symbols")
            for stage in result:
                if name and stage.name == name:
                    raise _error(instruction.start, f"duplicate name {args[2]}")
            result.append(Stage(len(result), args[0], name, instruction.flag("platform") or "",
                                instruction))
        elif not result:
            if instruction.keyword != "arg":
                raise DockerfileError("no build stage in current context")
            meta.append(instruction)
        else:
            result[-1].instructions.append(instruction)
    if not result:
        raise DockerfileError("no build stage in current context")
    return Stages(result, meta, parsed)


def mount_specs(instruction: Instruction) -> list[dict[str, str]]:
    """RUN --mount values as dicts (``type=cache,target=/x,ro`` → keys and ``"true"``)."""
    specs = []
    for raw in instruction.flags.get("mount", []):
        spec: dict[str, str] = {}
        for part in _csv(raw):
            key, eq, value = part.partition("=")
            key = key.strip().lower()
            spec[key] = value if eq else "true"
        specs.append(spec)
    return specs


def _csv(text: str) -> list[str]:
    """Comma-separated fields, with double quotes around a field allowed (Go's csv)."""
    out, current, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return [part for part in out if part]


def stage_dependencies(stage: Stage, all_stages: Stages, expand: Any = None) -> set[int]:
    """Indexes of the earlier stages ``stage`` reads from: its FROM, ``COPY --from`` and
    ``RUN --mount=from=``. ``expand`` turns a word with variables into its value."""
    expand = expand or (lambda word: word)
    deps: set[int] = set()

    def add(ref: str) -> None:
        found = all_stages.find(expand(ref), before=stage.index)
        if found is not None:
            deps.add(found.index)

    add(stage.base)
    for instruction in stage.instructions:
        if instruction.keyword == "copy" and instruction.flag("from"):
            add(instruction.flag("from") or "")
        if instruction.keyword == "run":
            for spec in mount_specs(instruction):
                if spec.get("from"):
                    add(spec["from"])
    return deps


def needed_stages(all_stages: Stages, target: int, expand: Any = None) -> list[int]:
    """The stages the target needs, itself included, in file order."""
    wanted: set[int] = set()
    pending = [target]
    while pending:
        index = pending.pop()
        if index in wanted:
            continue
        wanted.add(index)
        pending.extend(stage_dependencies(all_stages.stages[index], all_stages, expand))
    return sorted(wanted)
