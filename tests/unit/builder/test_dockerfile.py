"""The Dockerfile parser (berth.builder.dockerfile): pure, no daemon."""

from __future__ import annotations

import pytest

from berth.builder import dockerfile as d


def parse(text: str) -> d.Parsed:
    return d.parse(text)


def test_instructions_keep_their_lines_flags_and_forms():
    parsed = parse("FROM busybox AS base\n"
                   "\n"
                   "# a comment\n"
                   "run echo hi\n"
                   'CMD ["sh", "-c", "x"]\n'
                   "COPY --chown=1:2 --from=base a b /dst/\n"
                   "ENTRYPOINT [not json\n")
    kinds = [(i.keyword, i.start, i.end) for i in parsed.instructions]
    assert kinds == [("from", 1, 1), ("run", 4, 4), ("cmd", 5, 5), ("copy", 6, 6), ("entrypoint", 7, 7)]
    run, cmd, copy, entry = parsed.instructions[1:]
    assert (run.args, run.json) == (["echo hi"], False)
    assert (cmd.args, cmd.json) == (["sh", "-c", "x"], True)
    assert copy.flags == {"chown": ["1:2"], "from": ["base"]} and copy.args == ["a", "b", "/dst/"]
    assert (entry.args, entry.json) == (["[not json"], False)  # not JSON: the shell form
    assert run.original == "run echo hi"


def test_continuations_drop_comment_lines_and_count_lines():
    parsed = parse("FROM x\nRUN echo a \\\n  # inside\n\n  b \\\n  c\nENV A=1\n")
    run = parsed.instructions[1]
    assert run.args == ["echo a   b   c"] and (run.start, run.end) == (2, 6)
    assert parsed.instructions[2].start == 7
    assert parsed.warnings  # the empty continuation line is noted, as BuildKit warns


def test_escape_directive_and_syntax_are_read_only_at_the_top():
    parsed = parse("# syntax=docker/dockerfile:1.4\n# escape=`\nFROM x\nRUN dir `\n  c:\\\n")
    assert (parsed.escape, parsed.syntax) == ("`", "docker/dockerfile:1.4")
    assert parsed.instructions[1].args == ["dir   c:\\"]
    late = parse("FROM x\n# escape=`\nRUN a \\\n b\n")
    assert late.escape == "\\" and late.instructions[1].args == ["a  b"]
    after_comment = parse("# hello\n# escape=`\nFROM x\n")
    assert after_comment.escape == "\\"


@pytest.mark.parametrize("text, message", [
    ("# escape=x\nFROM a\n", "invalid escape token 'x' does not match ` or \\"),
    ("# escape=`\n# escape=\\\nFROM a\n", "only one escape parser directive can be used"),
    ("FROM a\nFOO bar\n", "dockerfile parse error line 2: unknown instruction: FOO"),
    ("FROM a\nSHELL sh -c\n", "dockerfile parse error line 2: SHELL requires the arguments to be in JSON form"),
])
def test_parse_errors(text, message):
    with pytest.raises(d.DockerfileError) as caught:
        d.stages(parse(text))
    assert caught.value.message == message and caught.value.status == 400


@pytest.mark.parametrize("text, message", [
    ("FROM a\nENV\n", "dockerfile parse error line 2: ENV requires at least one argument"),
    ("FROM a\nARG\n", "dockerfile parse error line 2: ARG requires at least one argument"),
    ("FROM a\nWORKDIR\n", "dockerfile parse error line 2: WORKDIR requires exactly one argument"),
    ("FROM a\nSTOPSIGNAL\n", "dockerfile parse error line 2: STOPSIGNAL requires exactly one argument"),
    ("FROM a\nHEALTHCHECK --bogus=1 CMD true\n", "dockerfile parse error line 2: Unknown flag: bogus"),
    ("FROM a\nCOPY x\n", "dockerfile parse error line 2: COPY requires at least two arguments, but only one "
                         "was provided. Destination could not be determined."),
    ("FROM a b\n", "dockerfile parse error line 1: FROM requires either one or three arguments"),
    ("FROM a AS 1x\n", 'dockerfile parse error line 1: invalid name for build stage: "1x", name can\'t start '
                       "with a number or contain symbols"),
    ("FROM a AS x\nFROM b AS X\n", "dockerfile parse error line 2: duplicate name X"),
    ("RUN true\n", "no build stage in current context"),
    ("", "no build stage in current context"),
    ("FROM a\nLABEL x\n", 'dockerfile parse error line 2: Syntax error - can\'t find = in "x". Must be of the '
                          "form: name=value"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", "dockerfile parse error line 2: Chaining ONBUILD via `ONBUILD ONBUILD` "
                                        "isn't allowed"),
    ("FROM a\nHEALTHCHECK CMD\n", "dockerfile parse error line 2: Missing command after HEALTHCHECK CMD"),
])
def test_instruction_errors_name_the_line(text, message):
    with pytest.raises(d.DockerfileError) as caught:
        d.stages(parse(text))
    assert caught.value.message == message


def test_heredocs_for_run_and_copy():
    parsed = parse("FROM a\nRUN <<EOF\necho one\necho two\nEOF\n"
                   "COPY <<-EOT /f\n\tindented\n\tEOT\n"
                   "RUN <<'RAW' cat\n$HOME\nRAW\nENV A=1\n")
    run, copy, raw, env = parsed.instructions[1:]
    assert run.heredocs[0].content == "echo one\necho two\n" and (run.start, run.end) == (2, 5)
    assert copy.heredocs[0].content == "indented\n" and copy.args == ["<<-EOT", "/f"]
    assert raw.heredocs[0].expand is False and raw.heredocs[0].content == "$HOME\n"
    assert env.start == 12
    with pytest.raises(d.DockerfileError, match="unterminated heredoc"):
        parse("FROM a\nRUN <<EOF\necho\n")


def test_env_and_label_pairs_keep_quotes_for_expansion():
    parsed = parse('FROM a\nENV A=1 B="x y" C=a\\ b\nENV LEGACY some value here\nLABEL "k"="v w"\n')
    env, legacy, label = parsed.instructions[1:]
    assert d.pairs(env) == [("A", "1"), ("B", '"x y"'), ("C", "a\\ b")]
    assert d.pairs(legacy) == [("LEGACY", "some value here")]
    assert d.pairs(label) == [('"k"', '"v w"')]


def test_flags_with_quotes_and_mounts():
    parsed = parse('FROM a\nRUN --mount=type=cache,target=/root/.cache,id=pip --network=none pip x\n'
                   'RUN --mount="type=bind,source=a b,target=/x" ls\n')
    run, quoted = parsed.instructions[1:]
    assert run.flag("network") == "none" and run.args == ["pip x"]
    assert d.mount_specs(run) == [{"type": "cache", "target": "/root/.cache", "id": "pip"}]
    assert d.mount_specs(quoted) == [{"type": "bind", "source": "a b", "target": "/x"}]


def test_stages_meta_args_and_dependencies():
    parsed = parse("ARG BASE=busybox\nFROM $BASE AS deps\nRUN a\n"
                   "FROM busybox AS unused\nRUN b\n"
                   "FROM scratch AS tools\n"
                   "FROM deps AS final\nCOPY --from=tools /x /x\nRUN --mount=from=1,target=/m c\n")
    stages = d.stages(parsed)
    assert [s.name for s in stages.stages] == ["deps", "unused", "tools", "final"]
    assert [m.args for m in stages.meta_args] == [["BASE=busybox"]]
    assert stages.target_index("") == 3 and stages.target_index("TOOLS") == 2
    assert d.needed_stages(stages, 3) == [0, 1, 2, 3]  # --mount=from=1 names "unused" by index
    assert d.needed_stages(stages, 0) == [0]
    with pytest.raises(Exception, match="failed to reach build target nope in Dockerfile"):
        stages.target_index("nope")


def test_stage_dependencies_skip_what_the_target_does_not_need():
    parsed = parse("FROM busybox AS a\nFROM busybox AS b\nFROM a AS c\nCOPY --from=$SRC /x /y\n")
    stages = d.stages(parsed)
    assert d.needed_stages(stages, 2) == [0, 2]
    assert d.needed_stages(stages, 2, lambda w: w.replace("$SRC", "b")) == [0, 1, 2]


def test_bytes_bom_and_crlf():
    parsed = d.parse("\ufeffFROM a\r\nRUN x \\\r\n y\r\n".encode())
    assert [i.args for i in parsed.instructions] == [["a"], ["x  y"]]
