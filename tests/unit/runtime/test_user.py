import pytest

from berth.errors import InvalidParameter
from berth.runtime.rootfs import secure_join
from berth.runtime.user import parse_user_spec, resolve_user

PASSWD = [r.split(":") for r in ["root:x:0:0:root:/root:/bin/sh", "app:x:1000:1000::/home/app:/bin/sh",
                                 "odd:x:1001:1001"]]
GROUP = [r.split(":") for r in ["root:x:0:", "wheel:x:10:app", "app:x:1000:", "staff:x:50:app,root"]]


def test_default_is_root_with_its_groups():
    u = parse_user_spec("", PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids, u.home) == (0, 0, [50], "/root")


def test_name_gives_uid_gid_and_supplementary_groups():
    u = parse_user_spec("app", PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids) == (1000, 1000, [10, 50])


def test_numeric_without_entry_is_allowed():
    u = parse_user_spec("4242:4343", PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids) == (4242, 4343, [])


def test_explicit_group_by_name_and_no_supplementary():
    u = parse_user_spec("app:wheel", PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids) == (1000, 10, [])


def test_short_passwd_line_is_tolerated():
    assert parse_user_spec("odd", PASSWD, GROUP).uid == 1001


def test_docker_error_texts():
    with pytest.raises(InvalidParameter, match="^unable to find user x: no matching entries in passwd file$"):
        parse_user_spec("x", PASSWD, GROUP)
    with pytest.raises(InvalidParameter, match="^unable to find group nope: no matching entries in group file$"):
        parse_user_spec("app:nope", PASSWD, GROUP)
    with pytest.raises(InvalidParameter, match="^unable to find user x: no matching entries in passwd file$"):
        parse_user_spec("x", None, None)


def test_resolve_from_rootfs_with_group_add(rootfs):
    user, gids = resolve_user(rootfs, "app", ["staff", "777", "daemon"])
    assert (user.uid, user.gid) == (1000, 1000)
    assert gids == [1000, 10, 50, 50, 777, 1]
    with pytest.raises(InvalidParameter, match="unable to find group missing"):
        resolve_user(rootfs, "", ["missing"])


def test_secure_join_keeps_symlinks_inside_root(tmp_path):
    root = tmp_path / "r"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").symlink_to("/etc/shadow")
    (root / "up").symlink_to("../../../..")
    assert secure_join(str(root), "/etc/passwd") == str(root / "etc" / "shadow")
    assert secure_join(str(root), "/up/etc/x") == str(root / "etc" / "x")
