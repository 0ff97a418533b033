"""Deferred deletion: a discarded tree is gone from its place at once and deleted soon."""

import os

import pytest

from berth.storage.trash import Trash


def _tree(root, name="tree"):
    path = os.path.join(root, name)
    os.makedirs(os.path.join(path, "a", "b"))
    with open(os.path.join(path, "a", "b", "f"), "w") as handle:
        handle.write("x")
    os.symlink("/etc", os.path.join(path, "escape"))  # followed by nothing
    return path


def test_discarded_tree_leaves_at_once_and_is_deleted(tmp_path):
    trash = Trash(str(tmp_path / ".trash"))
    tree = _tree(str(tmp_path))
    assert trash.discard(tree)
    assert not os.path.lexists(tree)
    assert trash.wait_empty(10)
    assert os.listdir(trash.path) == []
    assert os.path.isdir("/etc")
    assert not trash.discard(tree)  # already gone


def test_leftovers_of_an_earlier_daemon_are_deleted(tmp_path):
    os.makedirs(tmp_path / ".trash")
    _tree(str(tmp_path / ".trash"), "left-behind")
    trash = Trash(str(tmp_path / ".trash"))
    assert trash.wait_empty(10)
    assert os.listdir(trash.path) == []


def test_tree_on_another_filesystem_is_deleted_now(tmp_path):
    other = "/dev/shm"  # tmpfs here, while tmp_path is not: rename gives EXDEV
    if os.stat(other).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem to move across")
    trash = Trash(str(tmp_path / ".trash"))
    tree = _tree(other, f"berth-trash-test-{os.getpid()}")
    assert trash.discard(tree)
    assert not os.path.lexists(tree)
    assert os.listdir(trash.path) == []


def test_release_runs_on_each_tree_before_it_is_deleted(tmp_path):
    seen = []

    def release(tree):
        seen.append((os.path.basename(os.path.dirname(tree)), os.path.isdir(tree)))

    trash = Trash(str(tmp_path / ".trash"), release=release)
    assert trash.discard(_tree(str(tmp_path)))
    assert trash.wait_empty(10)
    assert seen == [(".trash", True)] and os.listdir(trash.path) == []


def test_a_tree_that_cannot_be_released_stays_in_the_trash(tmp_path):
    def release(tree):
        raise OSError(16, "Device or resource busy")

    trash = Trash(str(tmp_path / ".trash"), release=release)
    assert trash.discard(_tree(str(tmp_path)))
    assert trash.wait_empty(10)
    [kept] = os.listdir(trash.path)  # never deleted through what may still be mounted in it
    assert os.path.isfile(os.path.join(trash.path, kept, "a", "b", "f"))
