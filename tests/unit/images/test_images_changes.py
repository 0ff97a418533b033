"""`--change` parsing for import and commit, against moby's Dockerfile rules."""

import pytest

from berth.engine.images.changes import apply_changes, split_words, process_word
from berth.errors import InvalidParameter


def test_cmd_and_entrypoint_forms():
    config = apply_changes({}, ['CMD ["sh", "-c", "x"]', "ENTRYPOINT /bin/run --flag"])
    assert config["Cmd"] == ["sh", "-c", "x"]  # CMD given in the same changes survives
    assert config["Entrypoint"] == ["/bin/sh", "-c", "/bin/run --flag"]
    # An ENTRYPOINT alone drops the inherited command, as a Dockerfile does.
    assert apply_changes({"Cmd": ["sh"]}, ['ENTRYPOINT ["top"]'])["Cmd"] is None
    assert apply_changes({}, ["CMD [not json"])["Cmd"] == ["/bin/sh", "-c", "[not json"]


def test_env_forms_quotes_expansion_and_replacement():
    config = apply_changes({"Env": ["PATH=/bin", "A=old"]},
                           ['ENV A=new B="two words" C=$PATH:/x', "ENV LEGACY value with spaces",
                            "ENV D=${MISSING:-dflt} E='$PATH' F=\\$PATH"])
    assert config["Env"] == ["PATH=/bin", "A=new", "B=two words", "C=/bin:/x",
                             "LEGACY=value with spaces", "D=dflt", "E=$PATH", "F=$PATH"]


def test_labels_expose_volume_workdir_user_stopsignal_onbuild():
    config = apply_changes({"WorkingDir": "/app"}, [
        'LABEL a=1 "b c"=2', "EXPOSE 80 53/udp 8000-8002", 'VOLUME ["/data", "/x y"]',
        "VOLUME /one /two", "WORKDIR sub/../dir", "USER nobody:nogroup", "STOPSIGNAL SIGINT",
        "ONBUILD RUN echo hi"])
    assert config["Labels"] == {"a": "1", "b c": "2"}
    assert set(config["ExposedPorts"]) == {"80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"}
    assert set(config["Volumes"]) == {"/data", "/x y", "/one", "/two"}
    assert config["WorkingDir"] == "/app/dir"
    assert config["User"] == "nobody:nogroup"
    assert config["StopSignal"] == "SIGINT"
    assert config["OnBuild"] == ["RUN echo hi"]
    assert apply_changes({}, ["WORKDIR /abs"])["WorkingDir"] == "/abs"


def test_healthcheck_flags_and_forms():
    health = apply_changes({}, ["HEALTHCHECK --interval=5s --retries=3 CMD curl -f localhost"])["Healthcheck"]
    assert health == {"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 5_000_000_000, "Retries": 3}
    assert apply_changes({}, ['HEALTHCHECK CMD ["true"]'])["Healthcheck"] == {"Test": ["CMD", "true"]}
    assert apply_changes({}, ["HEALTHCHECK NONE"])["Healthcheck"] == {"Test": ["NONE"]}


def test_continuations_comments_and_case():
    config = apply_changes({}, ["# a comment", "env A=1 \\", "  B=2", "cmd echo"])
    assert config["Env"] == ["A=1", "B=2"] and config["Cmd"] == ["/bin/sh", "-c", "echo"]


@pytest.mark.parametrize("change,message", [
    ("RUN echo", "run is not a valid change command"),
    ("FROM busybox", "from is not a valid change command"),
    ("ENV", "ENV requires at least one argument"),
    ("ENV =x", "ENV names can not be blank"),
    ("ENV a=1 b", "Syntax error - can't find = in \"b\""),
    ("ENV onlyname", "ENV must have two arguments"),
    ("VOLUME [\"\"]", "VOLUME specified can not be an empty string"),
    ("STOPSIGNAL SIGNOPE", "Invalid signal: SIGNOPE"),
    ("EXPOSE abc", "invalid containerPort: abc"),
    ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
    ("HEALTHCHECK FOO x", 'Unknown type "FOO" in HEALTHCHECK (try CMD)'),
    ("CMD --bogus=1 x", "Unknown flag: bogus"),
    ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("USER", "USER requires exactly one argument"),
])
def test_errors_use_dockers_words(change, message):
    with pytest.raises(InvalidParameter) as info:
        apply_changes({}, [change])
    assert message in info.value.message


def test_words_keep_quotes_until_processed():
    assert split_words('a="b c" d') == ['a="b c"', "d"]
    assert process_word('"b c"', {}) == "b c"
    assert process_word("${X:+set}", {"X": "1"}) == "set"
    assert process_word("${X:+set}", {}) == ""


def test_input_config_is_not_mutated():
    original = {"Env": ["A=1"], "Labels": {"x": "y"}}
    apply_changes(original, ["ENV A=2", "LABEL x=z"])
    assert original == {"Env": ["A=1"], "Labels": {"x": "y"}}
