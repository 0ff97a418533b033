"""Builds through the docker CLI (classic protocol: berthd's /_ping says Builder-Version 1)
and berth, compared where the output must match; the build flags; contexts from a
directory, stdin and -f; .dockerignore applied before sending; builder prune, system df and
system prune with the build cache."""

from __future__ import annotations

import json
import os
import re

import pytest

from test_cli_common import berth, docker, unique

pytestmark = pytest.mark.e2e

DEPRECATED = re.compile(r"DEPRECATED: The legacy builder is deprecated.*?\n\n", re.S)
SENDING = re.compile(r"Sending build context to (Docker|Berth) daemon\s+\S+\r*\n")


RUNNING = re.compile(r"Running in [0-9a-f]{12}")


def tidy(text: str) -> str:
    """What is not compared: docker's notice about its legacy builder (berth has no other),
    the size of the context each CLI tarred (their tar writers differ) and the IDs of the
    containers that ran steps (new each time)."""
    return RUNNING.sub("Running in <id>", SENDING.sub("", DEPRECATED.sub("", text)))


def write(root, files: dict[str, str | bytes]) -> str:
    for name, data in files.items():
        path = os.path.join(str(root), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
    return str(root)


@pytest.fixture
def tags(busybox):
    """Tags a test builds; removed (with their dangling steps) afterwards."""
    made: list[str] = []

    def make(prefix: str = "btbuild") -> str:
        made.append(unique(prefix))
        return made[-1]
    yield make
    if made:
        berth(busybox, "rmi", "-f", *made)


def both(daemon, *args, input=None):
    """The docker CLI then berth, the same build: (docker's, berth's) results."""
    return docker(daemon, "build", *args, input=input, timeout=180), \
        berth(daemon, "build", *args, input=input, timeout=180)


def same_output(daemon, *args, input=None):
    want, got = both(daemon, *args, input=input)
    assert (got.code, tidy(got.out), tidy(got.err)) == (want.code, tidy(want.out), tidy(want.err)), \
        f"berth {got} vs docker {want}"
    return got


def test_a_cached_build_prints_the_same_through_both_clients(busybox, tmp_path, tags):
    context = write(tmp_path, {
        "Dockerfile": "FROM busybox\nARG A=1\nENV B=$A C=\"x y\"\nCOPY a.txt /app/\nCOPY d /app/d\n"
                      "WORKDIR /app\nRUN echo hi $A && ls\nLABEL x=y\nCMD [\"sh\"]\n",
        "a.txt": "hello\n", "d/f": "x\n"})
    name = tags()
    first = docker(busybox, "build", "-t", name, context, timeout=180)
    assert first.code == 0, first
    out = tidy(first.out)
    assert out.startswith("Step 1/9 : FROM busybox\n ---> ")
    assert re.search(r"Step 7/9 : RUN echo hi \$A && ls\n ---> Running in <id>\nhi 1\na.txt\nd\n"
                     r"Removing intermediate container [0-9a-f]{12}\n ---> [0-9a-f]{12}\n", out), out
    assert out.endswith(f"Successfully tagged {name}:latest\n")
    got = same_output(busybox, "-t", name, context)  # every step from the cache, same IDs
    assert tidy(got.out).count(" ---> Using cache\n") == 8
    run = berth(busybox, "run", "--rm", name, "sh", "-c", "cat /app/a.txt /app/d/f; echo $B $C; pwd")
    assert run.out == "hello\nx\n1 x y\n/app\n"
    history = berth(busybox, "history", "--no-trunc", "--format", "{{.CreatedBy}}", name).out.splitlines()
    assert history[:3] == ['/bin/sh -c #(nop)  CMD ["sh"]', "/bin/sh -c #(nop)  LABEL x=y",
                           "|1 A=1 /bin/sh -c echo hi $A && ls"]
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /app/ ", history[5])


@pytest.mark.parametrize("dockerfile", [
    "FROM busybox\nFOO bar\n",
    "FROM busybox\nRUN exit 3\n",
    "FROM busybox\nCOPY nope /x\n",
    "FROM busybox\nCOPY nope* /x/\n",
    "FROM busybox\nCOPY ../a /x\n",
    "RUN true\n",
    "FROM busybox\nENV\n",
    "FROM busybox\nEXPOSE abc\n",
    "FROM busybox\nENV A=${B\n",
    "FROM nosuchimage-xyz\n",
])
def test_errors_print_and_exit_the_same(busybox, tmp_path, dockerfile):
    context = write(tmp_path, {"Dockerfile": dockerfile, "a": "a"})
    result = same_output(busybox, "-q", context)
    assert result.code != 0
    if "exit 3" in dockerfile:
        assert result.code == 3
        assert "The command '/bin/sh -c exit 3' returned a non-zero code: 3" in result.err
    result = same_output(busybox, context)
    assert result.code != 0


def test_run_output_streams_with_stderr_marked(busybox, tmp_path, tags):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo out; echo err >&2\n"})
    got = berth(busybox, "build", "--no-cache", context)
    assert "out\n\x1b[91merr\n\x1b[0mRemoving intermediate container" in got.out


def test_quiet_tags_labels_and_iidfile(busybox, tmp_path, tags):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo built\n"})
    one, two = tags(), tags()
    iid = tmp_path / "iid"
    for prog in (docker, berth):
        result = prog(busybox, "build", "-q", "-t", one, "-t", f"{two}:v2", "--label", "team=x",
                      "--iidfile", str(iid), context, timeout=180)
        assert result.code == 0 and re.fullmatch(r"sha256:[0-9a-f]{64}\n", result.out), result
        assert iid.read_text() == result.out
    info = json.loads(berth(busybox, "image", "inspect", one).out)[0]
    assert info["Config"]["Labels"] == {"team": "x"} and sorted(info["RepoTags"]) == sorted(
        [f"{one}:latest", f"{two}:v2"])


def test_quiet_failure_shows_the_held_output(busybox, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo before; exit 4\n"})
    want, got = both(busybox, "-q", "--no-cache", context)
    assert (got.code, want.code) == (4, 4)
    assert got.out == want.out == ""
    for result in (want, got):
        assert "before\n" in result.err and \
            "The command '/bin/sh -c echo before; exit 4' returned a non-zero code: 4" in result.err


def test_run_flags_reach_the_run_containers(busybox, tmp_path):
    context = write(tmp_path, {"Dockerfile":
                               "FROM busybox\nRUN grep myhost /etc/hosts && df -k /dev/shm | tail -1 "
                               "&& ulimit -n && ls /sys/class/net\n"})
    result = berth(busybox, "build", "--no-cache", "--add-host", "myhost:10.1.2.3", "--shm-size", "8m",
                   "--ulimit", "nofile=512:512", "--network", "none", context)
    assert result.code == 0, result
    assert "10.1.2.3\tmyhost" in result.out and " 8192 " in result.out and "\n512\n" in result.out
    assert "\nlo\n" in result.out and "eth0" not in result.out


def test_refusals(busybox, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\n"})
    for args, message in ((["--squash"], '"--squash" is only supported on a Docker daemon with experimental '
                                         "features enabled"),
                          (["--isolation", "hyperv"], 'Unsupported isolation: "hyperv"')):
        want, got = both(busybox, *args, context)
        assert want.code == got.code == 1 and message in want.err and message in got.err
    assert berth(busybox, "build", "--isolation", "default", context).code == 0
    want, got = both(busybox, str(tmp_path / "nope"))
    assert got.code == want.code == 1 and tidy(got.err) == tidy(want.err) == \
        f'unable to prepare context: path "{tmp_path}/nope" not found\n'
    want, got = both(busybox, "-f", "-", "-", input="FROM busybox\n")
    assert got.err == tidy(want.err) == "invalid argument: can't use stdin for both build context and dockerfile\n"


def test_contexts_from_stdin_and_other_dockerfiles(busybox, tmp_path, tags):
    context = write(tmp_path / "ctx", {"file.txt": "in context\n", "sub/Dockerfile.alt":
                                       "FROM busybox\nCOPY file.txt /\n"})
    outside = write(tmp_path / "elsewhere", {"Dockerfile": "FROM busybox\nCOPY file.txt /outside\n"})
    for prog in (docker, berth):
        name = tags()
        assert prog(busybox, "build", "-q", "-t", name, "-f", os.path.join(context, "sub/Dockerfile.alt"),
                    context).code == 0
        assert berth(busybox, "run", "--rm", name, "cat", "/file.txt").out == "in context\n"
        name = tags()
        assert prog(busybox, "build", "-q", "-t", name, "-f", os.path.join(outside, "Dockerfile"),
                    context).code == 0
        assert berth(busybox, "run", "--rm", name, "cat", "/outside").out == "in context\n"
        name = tags()
        result = prog(busybox, "build", "-q", "-t", name, "-f", "-", context,
                      input="FROM busybox\nCOPY . /ctx/\n")
        assert result.code == 0, result
        listing = berth(busybox, "run", "--rm", name, "find", "/ctx").out.split()
        assert "/ctx/file.txt" in listing and not [p for p in listing if ".dockerfile" in p or
                                                    p.endswith(".dockerignore")], listing
        name = tags()
        assert prog(busybox, "build", "-q", "-t", name, "-", input="FROM busybox\nENV FROM_STDIN=1\n").code == 0
        assert "FROM_STDIN=1" in berth(busybox, "run", "--rm", name, "env").out


def test_dockerignore_is_applied_before_sending(busybox, tmp_path, tags):
    context = write(tmp_path, {
        "Dockerfile": "FROM busybox\nCOPY . /ctx/\n",
        ".dockerignore": "secret*\n**/*.tmp\nbuild\n!build/keep\nDockerfile\n",
        "secret.key": "k", "src/a.tmp": "t", "src/a.txt": "a", "build/out": "o", "build/keep": "kept"})
    listings = []
    for prog in (docker, berth):
        name = tags()
        result = prog(busybox, "build", "-q", "-t", name, context)
        assert result.code == 0, result
        listings.append(sorted(berth(busybox, "run", "--rm", name, "find", "/ctx").out.split()))
    assert listings[0] == listings[1] == ["/ctx", "/ctx/.dockerignore", "/ctx/build", "/ctx/build/keep",
                                          "/ctx/src", "/ctx/src/a.txt"]
    # an excluded file is not even sent
    write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY secret.key /\n"})
    got = berth(busybox, "build", context)
    assert got.code == 1 and "COPY failed: file not found in build context or excluded by .dockerignore: " \
                             "stat secret.key: file does not exist" in got.err


def test_intermediate_containers(busybox, tmp_path):
    before = set(berth(busybox, "ps", "-aq", "--no-trunc").out.split())
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo ok\nRUN exit 2\n"})
    assert berth(busybox, "build", "--no-cache", context).code == 2
    assert set(berth(busybox, "ps", "-aq", "--no-trunc").out.split()) == before  # failed: removed too
    assert berth(busybox, "build", "--no-cache", "--rm=false", context).code == 2
    kept = set(berth(busybox, "ps", "-aq", "--no-trunc").out.split()) - before
    assert len(kept) == 2  # both steps' containers, as asked
    berth(busybox, "rm", "-f", *kept)
    assert berth(busybox, "build", "--no-cache", "--rm=false", "--force-rm", context).code == 2
    assert set(berth(busybox, "ps", "-aq", "--no-trunc").out.split()) == before


def test_build_cache_in_df_prune_and_system_prune(busybox, tmp_path):
    context = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN --mount=type=cache,target=/cache,id=e2e-df "
                                             "echo x > /cache/x\nRUN echo dangling\n"})
    assert berth(busybox, "build", "--no-cache", context).code == 0
    df = berth(busybox, "system", "df", "--format", "{{json .}}")
    rows = {json.loads(line)["Type"]: json.loads(line) for line in df.out.splitlines()}
    assert int(rows["Build Cache"]["TotalCount"]) >= 3
    verbose = docker(busybox, "system", "df", "-v")
    assert "exec.cachemount" in verbose.out and "regular" in verbose.out
    listing = docker(busybox, "builder", "prune", "-f", "--filter", "until=24h")
    assert listing.code == 0 and "Total reclaimed space: 0B" in listing.out  # nothing that old
    pruned = berth(busybox, "builder", "prune", "-f")
    assert pruned.code == 0 and "Deleted build cache objects:\n" in pruned.out
    assert re.search(r"^mount-[0-9a-f]+$", pruned.out, re.M)
    assert re.search(r"Total reclaimed space: [0-9.]+[kMG]?B\n$", pruned.out)
    again = docker(busybox, "builder", "prune", "-a", "-f")
    assert again.code == 0
    after = json.loads(berth(busybox, "system", "df", "--format", "{{json .}}").out.splitlines()[-1])
    assert after["Type"] == "Build Cache" and after["TotalCount"] == "0" or int(after["TotalCount"]) == 0
    system = docker(busybox, "system", "prune", "-f")
    assert system.code == 0 and "Total reclaimed space:" in system.out, system
