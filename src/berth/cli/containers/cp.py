"""``cp``: copy between a container and the local filesystem through the archive API
(``HEAD``/``GET``/``PUT /containers/{id}/archive``), with docker's path rules (moby's
go-archive copy.go): a trailing ``/`` asserts a directory, ``dir/.`` copies a directory's
contents, and an archive's top entry is renamed to the destination's name when it does not
exist yet.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import tempfile
from typing import Any, BinaryIO, Iterator

from berth.cli.command import StatusError
from berth.units import human_size

GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_IRREGULAR = 1 << 19


class CopyError(StatusError):
    def __init__(self, message: str):
        super().__init__(message, 1)


# -- path helpers (go-archive) --------------------------------------------------------------------


def has_trailing_sep(path: str) -> bool:
    return path.endswith("/")


def specifies_current_dir(path: str) -> bool:
    return posixpath.basename(path) == "."


def asserts_directory(path: str) -> bool:
    return has_trailing_sep(path) or specifies_current_dir(path)


def go_clean(path: str) -> str:
    """Go's filepath.Clean."""
    if path == "":
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def go_base(path: str) -> str:
    """Go's filepath.Base: the last element, "." for empty, "/" for root."""
    if path == "":
        return "."
    path = path.rstrip("/")
    if path == "":
        return "/"
    return path.rsplit("/", 1)[-1]


def split_path_dir_entry(path: str) -> tuple[str, str]:
    cleaned = go_clean(path)
    if specifies_current_dir(path):
        cleaned += "/."
    return posixpath.dirname(cleaned) or ".", go_base(cleaned)


def preserve_trailing(cleaned: str, original: str) -> str:
    if not specifies_current_dir(cleaned) and specifies_current_dir(original):
        if not has_trailing_sep(cleaned):
            cleaned += "/"
        cleaned += "."
    if not has_trailing_sep(cleaned) and has_trailing_sep(original):
        cleaned += "/"
    return cleaned


def resolve_local_path(path: str) -> str:
    return preserve_trailing(os.path.abspath(path), path)


def split_cp_arg(arg: str) -> tuple[str, str]:
    """"container:path" -> (container, path); local paths (absolute, or ./x:y) stay local."""
    if arg.startswith("/"):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep or container.startswith("."):
        return "", arg
    return container, path


def rebase_name(name: str, old: str, new: str) -> str:
    """docker's RebaseArchiveEntries: the first occurrence of the old base is replaced."""
    if old == "/":
        old = ""
    return name.replace(old, new, 1)


# -- local side ------------------------------------------------------------------------------------


def _os_error(e: OSError) -> CopyError:
    what = e.filename if e.filename else ""
    reason = (e.strerror or str(e)).lower()
    return CopyError(f"lstat {what}: {reason}" if what else reason)


def destination_info(path: str) -> dict:
    """CopyInfoDestinationPath: follow symlinks; a missing path needs an existing parent."""
    original = path
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise _os_error(e) from None
    hops = 0
    while st is not None and os.path.islink(path):
        hops += 1
        if hops > 11:
            raise CopyError("too many symlinks in " + original)
        target = os.readlink(path)
        if not target.startswith("/"):
            target = os.path.join(split_path_dir_entry(path)[0], target)
        path = target
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
    if st is None:
        parent = split_path_dir_entry(path)[0]
        try:
            pst = os.stat(parent)
        except OSError as e:
            raise CopyError(f"stat {parent}: {(e.strerror or '').lower()}") from None
        if not os.path.isdir(parent) or not pst:
            raise CopyError("not a directory")
        return {"Path": path, "Exists": False, "IsDir": False}
    return {"Path": path, "Exists": True, "IsDir": os.path.isdir(path) and not os.path.islink(path)}


def validate_output_path(path: str) -> None:
    """docker's ValidateOutputPath."""
    directory = os.path.dirname(go_clean(path))
    if directory and directory != "." and not os.path.exists(directory):
        raise CopyError(f'invalid output path: directory "{directory}" does not exist')
    if os.path.exists(path) and not os.path.isdir(path):
        mode = os.stat(path).st_mode
        import stat as st

        if st.S_ISBLK(mode) or st.S_ISCHR(mode):
            raise CopyError("got a device")
        if not st.S_ISREG(mode):
            raise CopyError("got an irregular file")


def source_info(path: str, follow: bool) -> dict:
    """CopyInfoSourcePath with ResolveHostSourcePath."""
    rebase = ""
    try:
        if follow:
            resolved = os.path.realpath(path, strict=True)
            if specifies_current_dir(path) and not specifies_current_dir(resolved):
                resolved += "/."
            if has_trailing_sep(path) and not has_trailing_sep(resolved):
                resolved += "/"
            if go_base(path) != go_base(resolved):
                rebase = go_base(path)
        else:
            dir_part, base = os.path.split(path)
            resolved_dir = os.path.realpath(dir_part or ".", strict=True)
            resolved = resolved_dir.rstrip("/") + "/" + base if resolved_dir != "/" else "/" + base
            if has_trailing_sep(path) and go_base(path) != go_base(resolved):
                rebase = go_base(path)
        st = os.lstat(resolved)
    except OSError as e:
        raise CopyError(f"lstat {e.filename or path}: {(e.strerror or '').lower()}") from None
    import stat as stat_mod

    return {"Path": resolved, "Exists": True, "IsDir": stat_mod.S_ISDIR(st.st_mode), "RebaseName": rebase}


def tar_source(src: dict, old_base: str | None, new_base: str | None) -> BinaryIO:
    """TarResource (+ RebaseArchiveEntries): a temporary tar of the source, PAX format."""
    source_dir, source_base = split_path_dir_entry(src["Path"])
    rename_from = source_base
    rename_to = src.get("RebaseName") or source_base

    def rename(member: tarfile.TarInfo) -> tarfile.TarInfo:
        name = member.name
        if rename_to != rename_from:
            name = name.replace(rename_from, rename_to, 1) if name.startswith(rename_from) else name
        if old_base is not None and new_base is not None:
            name = rebase_name(name, old_base, new_base)
            if member.islnk():
                member.linkname = rebase_name(member.linkname, old_base, new_base)
        member.name = name
        return member

    out = tempfile.TemporaryFile()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        top = os.path.join(source_dir, source_base)
        if source_base == ".":
            tar.add(source_dir, arcname=".", recursive=True, filter=rename)
        else:
            tar.add(top, arcname=source_base, recursive=True, filter=rename)
    out.seek(0)
    return out  # type: ignore[return-value]


class _Untar(tarfile.TarFile):
    """Extraction without chown (docker's NoLchown)."""

    def chown(self, tarinfo: tarfile.TarInfo, targetpath: str, numeric_owner: bool) -> None:  # noqa: D401
        return


def untar(stream: BinaryIO, dest: str, renames: list[tuple[str, str]]) -> None:
    """Untar into ``dest`` (NoOverwriteDirNonDir, no path escapes), renaming entries
    (each (old base, new base) in turn, as docker chains RebaseArchiveEntries)."""
    dest_real = os.path.realpath(dest)
    with _Untar.open(fileobj=stream, mode="r|") as tar:  # type: ignore[attr-defined]
        for member in tar:
            for old_base, new_base in renames:
                member.name = rebase_name(member.name, old_base, new_base)
                if member.islnk():
                    member.linkname = rebase_name(member.linkname, old_base, new_base)
            name = member.name.lstrip("/")
            target = os.path.realpath(os.path.join(dest_real, name))
            if target != dest_real and not target.startswith(dest_real + "/"):
                raise CopyError(f"invalid archive: {member.name!r} is outside of {dest}")
            if os.path.lexists(target):
                is_dir = os.path.isdir(target) and not os.path.islink(target)
                if is_dir and not member.isdir():
                    raise CopyError(f'cannot overwrite directory "{target}" with non-directory "{member.name}"')
                if not is_dir and member.isdir():
                    raise CopyError(f'cannot overwrite non-directory "{target}" with directory "{member.name}"')
                if not member.isdir():
                    os.unlink(target)
            member.name = name
            tar.extract(member, dest_real, set_attrs=True, filter="fully_trusted")


# -- the command -------------------------------------------------------------------------------------


class _Counter:
    """Counts the bytes going through (docker's copyProgressPrinter)."""

    def __init__(self, raw: Any):
        self.raw = raw
        self.total = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n) if n is not None and n >= 0 else self.raw.read()
        self.total += len(data)
        return data

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        while True:
            data = self.read(size)
            if not data:
                return
            yield data


class _ResponseReader:
    """A streaming Response as a file object for tarfile's stream mode."""

    def __init__(self, resp: Any):
        self.resp = resp
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return self._buf + self.resp.read()
        while len(self._buf) < n:
            data = self.resp.read1(max(n - len(self._buf), 65536))
            if not data:
                break
            self._buf += data
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _is_dir_mode(mode: int) -> bool:
    return bool(mode & GO_MODE_DIR)


def copy_from_container(cli: Any, container: str, src_path: str, dst_path: str, follow: bool, quiet: bool) -> int:
    from berth.client.errors import ClientError

    if dst_path != "-":
        dst_path = resolve_local_path(dst_path)
        validate_output_path(dst_path)
    client = cli.client()
    rebase = ""
    if follow:
        try:
            stat = client.stat_container_path(container, src_path)
        except ClientError:
            stat = None
        if stat and stat.get("mode", 0) & GO_MODE_SYMLINK:
            target = stat.get("linkTarget", "")
            if not target.startswith("/"):
                target = posixpath.join(split_path_dir_entry(src_path)[0], target)
            resolved = target
            if specifies_current_dir(src_path) and not specifies_current_dir(resolved):
                resolved += "/."
            if has_trailing_sep(src_path) and not has_trailing_sep(resolved):
                resolved += "/"
            if go_base(src_path) != go_base(resolved):
                rebase = go_base(src_path)
            src_path = resolved
    resp, stat = client.get_archive(container, src_path)
    try:
        if dst_path == "-":
            from berth.cli.streams import binary

            out = binary(cli.out)
            for chunk in resp.iter_chunks():
                out.write(chunk)
            out.flush()
            return 0
        src_is_dir = _is_dir_mode(int(stat.get("mode", 0)))
        counter = _Counter(_ResponseReader(resp))
        dst = destination_info(dst_path)
        dst_dir, old, new = prepare_copy(src_path, src_is_dir, rebase, dst)
        renames = []
        if rebase:  # a followed link: its entries first take the link's name
            renames.append((split_path_dir_entry(src_path)[1], rebase))
        if old is not None and new is not None:
            renames.append((old, new))
        untar(counter, dst_dir, renames)  # type: ignore[arg-type]
    finally:
        resp.close()
    if not quiet:
        cli.err.write(f"Successfully copied {human_size(counter.total, 3)} to {dst_path}\n")
    return 0


def prepare_copy(src_path: str, src_is_dir: bool, rebase: str, dst: dict) -> tuple[str, str | None, str | None]:
    """PrepareArchiveCopy -> (directory to extract into, old base, new base)."""
    dst_dir, dst_base = split_path_dir_entry(dst["Path"])
    _, src_base = split_path_dir_entry(src_path)
    if rebase:
        src_base = rebase
    if dst["Exists"] and dst["IsDir"]:
        return dst["Path"], None, None
    if dst["Exists"] and src_is_dir:
        raise CopyError("cannot copy directory")
    if dst["Exists"] or src_is_dir:
        return dst_dir, src_base, dst_base
    if asserts_directory(dst["Path"]):
        raise CopyError("no such directory")
    return dst_dir, src_base, dst_base


def copy_to_container(cli: Any, container: str, src_path: str, dst_path: str, follow: bool, archive: bool, quiet: bool) -> int:
    from berth.client.errors import ClientError

    if src_path != "-":
        src_path = resolve_local_path(src_path)
    client = cli.client()
    dst = {"Path": dst_path, "Exists": False, "IsDir": False}
    stat: dict | None
    try:
        stat = client.stat_container_path(container, dst_path)
    except ClientError:
        stat = None
    if stat is not None and stat.get("mode", 0) & GO_MODE_SYMLINK:
        target = stat.get("linkTarget", "")
        if not target.startswith("/"):
            target = posixpath.join(split_path_dir_entry(dst_path)[0], target)
        dst["Path"] = target
        try:
            stat = client.stat_container_path(container, target)
        except ClientError:
            stat = None
    if stat is not None:
        mode = int(stat.get("mode", 0))
        reason = "got a device" if mode & GO_MODE_DEVICE else "got an irregular file" if mode & GO_MODE_IRREGULAR else ""
        if reason:
            raise CopyError(f'destination "{container}:{dst_path}" must be a directory or a regular file: {reason}')
        dst["Exists"], dst["IsDir"] = True, _is_dir_mode(mode)
    counter = None
    if src_path == "-":
        if not dst["IsDir"]:
            raise CopyError(f'destination "{container}:{dst_path}" must be a directory')
        stdin = getattr(cli.inp, "buffer", cli.inp)
        body: Any = _Counter(stdin).chunks()
        resolved = dst["Path"]
    else:
        src = source_info(src_path, follow)
        dst_dir, old, new = prepare_copy(src["Path"], src["IsDir"], src.get("RebaseName", ""), dst)
        archive_file = tar_source(src, old, new)
        counter = _Counter(archive_file)
        body = counter.chunks()
        resolved = dst_dir
    client.put_archive(container, resolved, body, copy_uid_gid=archive)
    if not quiet and counter is not None:
        cli.err.write(f"Successfully copied {human_size(counter.total, 3)} to {container}:{dst['Path']}\n")
    return 0


def run_copy(cli: Any, opts: Any, source: str, destination: str) -> int:
    from berth.cli.terminal import is_terminal

    if source == "":
        raise StatusError("source can not be empty", 1)
    if destination == "":
        raise StatusError("destination can not be empty", 1)
    quiet = opts.quiet if opts.changed("quiet") else not is_terminal(cli.out)
    src_container, src_path = split_cp_arg(source)
    dst_container, dst_path = split_cp_arg(destination)
    if src_container and dst_container:
        raise StatusError("copying between containers is not supported", 1)
    if src_container:
        return copy_from_container(cli, src_container, src_path, dst_path, opts.follow_link, quiet)
    if dst_container:
        return copy_to_container(cli, dst_container, src_path, dst_path, opts.follow_link, opts.archive, quiet)
    raise StatusError("must specify at least one container source", 1)

