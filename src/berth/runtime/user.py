"""Resolve ``Config.User`` and ``HostConfig.GroupAdd`` against the image's /etc/passwd and
/etc/group, with the rules and error texts of moby/sys/user (GetExecUser, GetAdditionalGroups).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from berth.errors import InvalidParameter
from berth.runtime.rootfs import secure_join

_MAX_ID = 2**31 - 1


@dataclass
class ExecUser:
    uid: int = 0
    gid: int = 0
    sgids: list[int] = field(default_factory=list)
    home: str = "/"


def _read_lines(path: str) -> list[list[str]] | None:
    """Colon-split non-empty lines; None when the file does not exist."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            rows.append(line.split(":"))
    return rows


def _field(row: list[str], i: int) -> str:
    return row[i] if i < len(row) else ""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _numeric(text: str) -> int | None:
    """The id if ``text`` is a number (moby's parseNumeric), else None."""
    if not text or not text.lstrip("-").isdigit():
        return None
    value = int(text)
    if value < 0 or value > _MAX_ID:
        raise InvalidParameter(f"uids and gids must be in range 0-{_MAX_ID}")
    return value


def parse_user_spec(spec: str, passwd: list[list[str]] | None,
                    group: list[list[str]] | None) -> ExecUser:
    """``name``, ``uid``, ``name:group`` or ``uid:gid`` to ids (pure, for tests)."""
    user_arg, _, group_arg = spec.partition(":")
    uid_arg = _numeric(user_arg)
    gid_arg = _numeric(group_arg)
    user = ExecUser()
    matched_name = ""
    match = None
    for row in passwd or []:
        name, uid = _field(row, 0), _int(_field(row, 2))
        if (user_arg == "" and uid == 0) or (uid_arg is not None and uid == uid_arg) \
                or (uid_arg is None and user_arg != "" and name == user_arg):
            match = row
            break
    if match is not None:
        matched_name = _field(match, 0)
        user.uid, user.gid = _int(_field(match, 2)), _int(_field(match, 3))
        user.home = _field(match, 5) or "/"
    elif user_arg != "":
        if uid_arg is None:
            raise InvalidParameter(
                f"unable to find user {user_arg}: no matching entries in passwd file")
        user.uid = uid_arg
    if group_arg != "" or matched_name:
        if group_arg == "":
            user.sgids = [_int(_field(row, 2)) for row in group or []
                          if matched_name in _field(row, 3).split(",")]
        else:
            found = next((row for row in group or []
                          if (gid_arg is not None and _int(_field(row, 2)) == gid_arg)
                          or (gid_arg is None and _field(row, 0) == group_arg)), None)
            if found is not None:
                user.gid = _int(_field(found, 2))
            elif gid_arg is None:
                raise InvalidParameter(
                    f"unable to find group {group_arg}: no matching entries in group file")
            else:
                user.gid = gid_arg
    return user


def additional_groups(names: list[str], group: list[list[str]] | None) -> list[int]:
    """GroupAdd entries (names or numbers) to gids, first match wins."""
    gids: list[int] = []
    for name in names:
        gid = _numeric(name)
        found = next((row for row in group or []
                      if _field(row, 0) == name or (gid is not None and _int(_field(row, 2)) == gid)),
                     None)
        if found is not None:
            gid = _int(_field(found, 2))
        elif gid is None:
            raise InvalidParameter(f"unable to find group {name}: no matching entries in group file")
        if gid not in gids:
            gids.append(gid)
    return gids


def resolve_user(rootfs: str, spec: str, group_add: list[str] | None = None) -> tuple[ExecUser, list[int]]:
    """The user and the full additionalGids list Docker gives the process:
    primary gid, then the user's supplementary groups, then GroupAdd."""
    passwd = _read_lines(secure_join(rootfs, "/etc/passwd"))
    group = _read_lines(secure_join(rootfs, "/etc/group"))
    user = parse_user_spec(spec or "", passwd, group)
    gids = [user.gid] + user.sgids
    if group_add:
        gids += additional_groups(group_add, group)
    return user, gids
