""".dockerignore rules (berth.patternmatcher, shared by the CLI and the builder)."""

from __future__ import annotations

import pytest

from berth.builder.dockerignore import excluded_paths
from berth.patternmatcher import PatternMatcher, clean, read_patterns


def test_read_patterns_trims_comments_and_cleans():
    text = "# comment\n\n  *.log  \n!keep.log\n/abs/path\n./rel/../x\n! spaced\n#!not\n"
    assert read_patterns(text) == ["*.log", "!keep.log", "abs/path", "x", "!spaced"]
    assert read_patterns(b"\xef\xbb\xbfa\r\nb\n") == ["a", "b"]


@pytest.mark.parametrize("patterns, path, excluded", [
    (["*.log"], "a.log", True),
    (["*.log"], "dir/a.log", False),           # * does not cross /
    (["**/*.log"], "dir/sub/a.log", True),
    (["**/*.log"], "a.log", True),              # ** matches no directory too
    (["dir"], "dir/sub/file", True),            # a parent that matches excludes what is under it
    (["dir/**"], "dir/x", True),
    (["*", "!keep"], "keep", False),
    (["*", "!keep"], "other", True),
    (["dir", "!dir/keep"], "dir/keep", False),
    (["dir", "!dir/keep"], "dir/other", True),
    (["a?c"], "abc", True),
    (["a?c"], "a/c", False),
    (["[a-c]x"], "bx", True),
    (["[!a-c]x"], "bx", False),
    (["!x"], "x", False),                       # an exception alone excludes nothing
    (["docs/", "!docs/README"], "docs/README", False),
    (["/top"], "top", True),
    (["a\\*b"], "a*b", True),
    (["a\\*b"], "axb", False),
    (["**"], "anything/at/all", True),
    (["dir/**/x"], "dir/x", True),
    (["dir/**/x"], "dir/a/b/x", True),
])
def test_matches(patterns, path, excluded):
    assert PatternMatcher(read_patterns("\n".join(patterns))).matches(path) is excluded


def test_walk_needs_to_enter_excluded_dirs_only_for_exceptions():
    matcher = PatternMatcher(["node_modules", "!node_modules/keep.js"])
    assert matcher.may_include_below("node_modules")
    assert not PatternMatcher(["node_modules"]).may_include_below("node_modules")


def test_excluded_paths_of_a_context():
    paths = ["Dockerfile", ".dockerignore", "src/a.py", "src/a.pyc", "build/out", "README.md"]
    assert excluded_paths(paths, read_patterns("**/*.pyc\nbuild\n*.md\n!README.md\n")) == \
        {"src/a.pyc", "build/out"}


def test_clean_is_go_filepath_clean():
    assert [clean(p) for p in ("", "a//b/", "./a/./b", "a/../..", "/../x", "a/b/../c")] == \
        [".", "a/b", "a/b", "..", "/x", "a/c"]
