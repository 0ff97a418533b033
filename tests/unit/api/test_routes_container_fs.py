"""Container filesystem routes against fake backends: diff, export's tar stream, the
archive endpoints of `docker cp` (stat header, tar out, upload in) and commit."""

import pytest

from route_helpers import Recorder, assert_implements, call

from berth.api.router import Router
from berth.api.routes import container_fs
from berth.errors import InvalidParameter, NotFound


class Stat:
    def header_value(self):
        return "eyJuYW1lIjoiZiJ9"


class FakeFilesystem(Recorder):
    def __init__(self):
        super().__init__()
        self.extracted = b""
        self.export_closed = False

    def exists(self, ref):
        self.record("exists", ref)
        if ref == "nope":
            raise NotFound("No such container: nope")

    def changes(self, ref):
        self.record("changes", ref)
        return [{"Path": "/made", "Kind": 1}]

    def export(self, ref):
        self.record("export", ref)
        fs = self

        def chunks():
            try:
                yield b"exported-"
                yield b"tar"
            finally:
                fs.export_closed = True
        return chunks()

    def stat(self, ref, path):
        self.record("stat", ref, path)
        if path == "/missing":
            raise NotFound("Could not find the file /missing in container web")
        return Stat()

    def archive(self, ref, path):
        self.record("archive", ref, path)
        return Stat(), iter([b"one", b"two"])

    def extract(self, ref, path, stream, *, copy_uid_gid=False, no_overwrite_dir_non_dir=False):
        self.extracted = stream.read()
        self.record("extract", ref, path, copy_uid_gid, no_overwrite_dir_non_dir)
        if self.extracted == b"not a tar":
            raise InvalidParameter("unexpected EOF")


class FakeCommits(Recorder):
    async def commit(self, container, repo, tag, comment, author, changes, pause, config):
        self.record("commit", container, repo, tag, comment, author, changes, pause, config)
        return "sha256:" + "b" * 64


@pytest.fixture
def routes():
    fs, commits = FakeFilesystem(), FakeCommits()
    router = Router()
    container_fs.register(router, fs, commits)
    return router, fs, commits


def test_the_engine_and_the_fakes_implement_the_backends():
    from berth.engine.containers.filesystem import ContainerFilesystem
    from berth.engine.images.operations import ImageOperations
    from berth.storage.copypath import PathStat
    assert_implements(ContainerFilesystem, container_fs.FilesystemBackend)
    assert_implements(ImageOperations, container_fs.CommitBackend)
    assert_implements(PathStat, container_fs.PathStat)
    assert_implements(FakeFilesystem, container_fs.FilesystemBackend)
    assert_implements(FakeCommits, container_fs.CommitBackend)


def test_changes(routes):
    router, fs, _ = routes
    reply = call(router, "GET", "/containers/web/changes")
    assert (reply.status, reply.body) == (200, b'[{"Path":"/made","Kind":1}]\n')
    assert fs.last == ("changes", "web")


def test_export_streams_a_tar(routes):
    router, fs, _ = routes
    reply = call(router, "GET", "/containers/web/export")
    assert (reply.status, reply.content_type, reply.streamed) == (200, "application/x-tar", True)
    assert reply.body == b"exported-tar" and fs.export_closed


def test_archive_head_and_get(routes):
    router, fs, _ = routes
    reply = call(router, "HEAD", "/containers/web/archive?path=/etc/hosts")
    assert (reply.status, reply.body, reply.content_type) == (200, b"", "application/json")
    assert reply.headers == {"X-Docker-Container-Path-Stat": "eyJuYW1lIjoiZiJ9"}
    assert fs.last == ("stat", "web", "/etc/hosts")
    reply = call(router, "GET", "/containers/web/archive?path=/etc")
    assert (reply.status, reply.content_type, reply.body) == (200, "application/x-tar", b"onetwo")
    assert reply.headers == {"X-Docker-Container-Path-Stat": "eyJuYW1lIjoiZiJ9"}
    assert fs.last == ("archive", "web", "/etc")
    reply = call(router, "HEAD", "/containers/web/archive?path=/missing")
    assert (reply.status, reply.body) == (404, b"")  # HEAD: the status only


@pytest.mark.parametrize("method", ["HEAD", "GET", "PUT"])
def test_archive_needs_a_path(routes, method):
    router, fs, _ = routes
    reply = call(router, method, "/containers/web/archive")
    assert reply.status == 400
    if method != "HEAD":
        assert reply.message == "bad parameter: path cannot be empty"
    assert fs.calls == []


def test_put_archive_streams_the_upload(routes):
    router, fs, _ = routes
    reply = call(router, "PUT", "/containers/web/archive?path=/tmp", chunks=[b"tar-", b"bytes"])
    assert (reply.status, reply.body) == (200, b"")
    assert fs.extracted == b"tar-bytes"
    assert fs.calls == [("exists", "web"), ("extract", "web", "/tmp", False, False)]
    call(router, "PUT", "/containers/web/archive?path=/tmp&copyUIDGID=1&noOverwriteDirNonDir=true",
         data=b"t")
    assert fs.last == ("extract", "web", "/tmp", True, True)
    call(router, "PUT", "/containers/web/archive?path=/tmp&noOverwriteDirNonDir=0", data=b"t")
    assert fs.last == ("extract", "web", "/tmp", False, False)


def test_put_archive_errors(routes):
    router, fs, _ = routes
    reply = call(router, "PUT", "/containers/nope/archive?path=/tmp", data=b"tar")
    assert (reply.status, reply.message) == (404, "No such container: nope")
    assert [c[0] for c in fs.calls] == ["exists"]  # refused before the upload is read
    reply = call(router, "PUT", "/containers/web/archive?path=/tmp", data=b"not a tar")
    assert (reply.status, reply.message) == (400, "unexpected EOF")


def test_commit(routes):
    router, _, commits = routes
    reply = call(router, "POST", "/commit?container=web&repo=me/img&tag=v1&comment=msg&author=me"
                 "&changes=ENV+X%3D1&changes=CMD+sh", {"Env": ["A=1"]})
    assert (reply.status, reply.json) == (201, {"Id": "sha256:" + "b" * 64})
    assert commits.last == ("commit", "web", "me/img", "v1", "msg", "me", ["ENV X=1", "CMD sh"],
                            True, {"Env": ["A=1"]})
    call(router, "POST", "/commit?container=web&pause=0")
    assert commits.last == ("commit", "web", "", "", "", "", [], False, None)
    call(router, "POST", "/commit?container=web&pause=")
    assert commits.last[7] is False
    reply = call(router, "POST", "/commit?container=web", [1])
    assert (reply.status, reply.message) == (400, "invalid JSON: commit config must be an object")
