"""Image routes against a fake backend: import/load progress streams over an upload, save's
tar stream, the list and inspect version gates (inspect's key order pinned per version),
history, tag, rmi, prune, df and the build-cache prune of an engine without a builder."""

import json

import pytest

from route_helpers import Recorder, assert_implements, call

from berth.api.router import Router
from berth.api.routes import images
from berth.errors import InvalidParameter, NotFound

IMAGE_ID = "sha256:" + "a" * 64


class Imported:
    id = IMAGE_ID


class FakeImages(Recorder):
    def __init__(self):
        super().__init__()
        self.uploaded = b""
        self.save_closed = False
        self.list_result = [{"Id": IMAGE_ID, "RepoTags": [], "RepoDigests": [], "Size": 5}]

    def check_import(self, repo, tag, changes):
        self.record("check_import", repo, tag, changes)
        if tag == "Bad":
            raise InvalidParameter("invalid tag format")
        return None

    def import_image(self, stream, repo, tag, changes, message, source="-"):
        self.uploaded = stream.read()
        self.record("import", repo, tag, changes, message, source)
        if self.uploaded == b"broken":
            raise InvalidParameter("archive/tar: invalid tar header")
        return Imported()

    def list_images(self, all_, filters, shared_size=False):
        self.record("list", all_, filters, shared_size)
        return [dict(image) for image in self.list_result]

    def inspect_image(self, ref):
        self.record("inspect", ref)
        if ref != "busybox":
            raise NotFound(f"No such image: {ref}")
        return engine_document(created="")

    def history(self, ref):
        self.record("history", ref)
        if ref == "broken":
            raise ValueError("too many non-empty layers in History section")
        return [{"Id": IMAGE_ID, "Size": 1}]

    def tag_image(self, ref, repo, tag):
        self.record("tag", ref, repo, tag)

    async def remove_image(self, ref, force, noprune):
        self.record("remove", ref, force, noprune)
        return [{"Untagged": ref}]

    async def prune(self, filters):
        self.record("prune", filters)
        return {"ImagesDeleted": None, "SpaceReclaimed": 0}

    def save(self, names):
        self.record("save", names)
        if "missing" in names:
            raise NotFound("reference does not exist")
        images_ = self

        def chunks():
            try:
                yield b"tar-part-1"
                yield b"tar-part-2"
            finally:
                images_.save_closed = True
        return chunks()

    def load(self, stream, emit, quiet):
        self.record("load", quiet)
        data = stream.read()
        self.uploaded = data
        if not quiet:
            emit({"status": "Loading layer", "progressDetail": {"current": 1048576,
                                                                "total": 3400000},
                  "id": "0123456789ab"})
        if data == b"broken":
            raise InvalidParameter("invalid archive: does not contain a manifest.json")
        emit({"stream": "Loaded image: busybox:latest\n"})



def engine_document(created="2024-01-01T00:00:00Z"):
    """An image inspect document in the shape the engine's views.inspect returns."""
    return {"Id": IMAGE_ID, "RepoTags": ["busybox:latest"], "RepoDigests": [], "Parent": "",
            "Comment": "", "Created": created, "DockerVersion": "", "Author": "",
            "Config": {"Cmd": ["sh"]}, "Architecture": "amd64", "Os": "linux", "Size": 42,
            "Container": "", "ContainerConfig": {"Cmd": None},
            "GraphDriver": {"Data": None, "Name": "vfs"},
            "RootFS": {"Type": "layers", "Layers": []},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}}


class FakePulls(Recorder):
    def check_pull(self, from_image, tag, platform):
        self.record("check_pull", from_image, tag, platform)
        if from_image == "UPPER":
            raise InvalidParameter("invalid reference format: repository name (UPPER) must be lowercase")

    def pull(self, from_image, tag, platform, auth, emit):
        self.record("pull", from_image, tag, platform, auth)
        if from_image == "missing":
            raise NotFound("pull access denied for missing, repository does not exist or may "
                           "require 'docker login': denied: requested access to the resource is denied")
        emit({"status": "Pulling from library/busybox", "id": tag})
        emit({"status": "Downloading", "progressDetail": {"current": 524288, "total": 1048576},
              "id": "0123456789ab"})
        if from_image == "broken":
            raise InvalidParameter("filesystem layer verification failed for digest sha256:ab")
        emit({"status": "Status: Downloaded newer image for busybox:latest"})


@pytest.fixture
def routes():
    backend = FakeImages()
    router = Router()
    images.register(router, backend, FakePulls())
    return router, backend


@pytest.fixture
def pull_routes():
    pulls = FakePulls()
    router = Router()
    images.register(router, FakeImages(), pulls)
    return router, pulls


def test_the_engine_and_the_fake_implement_the_backend():
    from berth.engine.images.operations import ImageOperations
    from berth.engine.images.service import Image
    assert_implements(ImageOperations, images.ImageBackend)
    assert_implements(Image, images.ImportedImage)
    assert_implements(FakeImages, images.ImageBackend)
    from berth.engine.images.pull import ImagePuller
    assert_implements(ImagePuller, images.PullBackend)
    assert_implements(FakePulls, images.PullBackend)


# -- pull ------------------------------------------------------------------------------------
def test_pull_streams_dockers_progress_with_the_rendered_bar(pull_routes):
    import base64
    router, pulls = pull_routes
    auth = base64.urlsafe_b64encode(b'{"username":"u","password":"p","serveraddress":"r"}')
    reply = call(router, "POST", "/v1.47/images/create?fromImage=busybox&tag=latest&platform=linux/amd64",
                 headers=[("X-Registry-Auth", auth.decode().rstrip("="))])
    assert reply.status == 200
    lines = reply.lines
    assert lines[0] == {"status": "Pulling from library/busybox", "id": "latest"}
    assert lines[1]["progressDetail"] == {"current": 524288, "total": 1048576}
    assert lines[1]["progress"].endswith("524.3kB/1.049MB")
    assert lines[-1] == {"status": "Status: Downloaded newer image for busybox:latest"}
    _, name, tag, platform, config = pulls.calls[-1]
    assert (name, tag, platform) == ("busybox", "latest", "linux/amd64")
    assert (config.username, config.password, config.server_address) == ("u", "p", "r")


def test_pull_errors_before_any_output_are_http_errors(pull_routes):
    router, pulls = pull_routes
    reply = call(router, "POST", "/images/create?fromImage=missing&tag=latest")
    assert reply.status == 404 and reply.message.startswith("pull access denied for missing")
    reply = call(router, "POST", "/images/create?fromImage=UPPER&tag=latest")
    assert reply.status == 400 and "must be lowercase" in reply.message
    assert [c[0] for c in pulls.calls] == ["check_pull", "pull", "check_pull"]
    reply = call(router, "POST", "/images/create?fromImage=busybox&tag=latest",
                 headers=[("X-Registry-Auth", "%%%not-base64")])
    assert reply.status == 400 and reply.message.startswith("invalid X-Registry-Auth header")


def test_pull_failure_after_output_is_the_error_line(pull_routes):
    router, _ = pull_routes
    reply = call(router, "POST", "/images/create?fromImage=broken&tag=latest")
    assert reply.status == 200
    assert reply.lines[-1] == {
        "errorDetail": {"message": "filesystem layer verification failed for digest sha256:ab"},
        "error": "filesystem layer verification failed for digest sha256:ab"}


def test_pull_platform_is_ignored_before_api_1_32(pull_routes):
    router, pulls = pull_routes
    call(router, "POST", "/v1.31/images/create?fromImage=busybox&tag=latest&platform=linux/arm64")
    assert pulls.calls[-1][3] == ""


# -- import ----------------------------------------------------------------------------------
def test_import_streams_the_upload_to_the_backend(routes):
    router, backend = routes
    reply = call(router, "POST", "/v1.47/images/create?fromSrc=-&repo=img&tag=v1"
                 "&changes=ENV+A%3D1&changes=CMD+sh&message=hello",
                 chunks=[b"layer-", b"bytes"])
    assert (reply.status, reply.content_type, reply.streamed) == (200, "application/json", True)
    assert reply.body == b'{"status":"' + IMAGE_ID.encode() + b'"}\r\n'
    assert backend.uploaded == b"layer-bytes"
    assert backend.calls == [("check_import", "img", "v1", ["ENV A=1", "CMD sh"]),
                             ("import", "img", "v1", ["ENV A=1", "CMD sh"], "hello", "-")]


def test_import_refusals_before_the_upload(routes):
    router, backend = routes
    reply = call(router, "POST", "/images/create?fromSrc=-&repo=img&tag=Bad", data=b"x")
    assert (reply.status, reply.message) == (400, "invalid tag format")
    assert [c[0] for c in backend.calls] == ["check_import"]
    reply = call(router, "POST", "/images/create?fromSrc=http://example/x.tar")
    assert (reply.status, reply.message) == (
        400, "importing from a URL is not supported; send the tar as the body")


def test_import_failure_after_the_200_is_the_error_line(routes):
    router, _ = routes
    reply = call(router, "POST", "/images/create?fromSrc=-", data=b"broken")
    assert reply.status == 200
    assert reply.lines == [{"errorDetail": {"message": "archive/tar: invalid tar header"},
                            "error": "archive/tar: invalid tar header"}]


# -- load ------------------------------------------------------------------------------------
def test_load_quiet_by_default(routes):
    router, backend = routes
    reply = call(router, "POST", "/images/load", data=b"tar")
    assert (reply.status, reply.content_type) == (200, "application/json")
    assert reply.body == b'{"stream":"Loaded image: busybox:latest\\n"}\r\n'
    assert backend.calls == [("load", True)] and backend.uploaded == b"tar"
    call(router, "POST", "/images/load?quiet=1", data=b"tar")
    assert backend.last == ("load", True)


def test_load_progress_gets_dockerds_progress_text(routes):
    router, backend = routes
    reply = call(router, "POST", "/images/load?quiet=0", chunks=[b"t", b"a", b"r"])
    assert backend.last == ("load", False) and backend.uploaded == b"tar"
    assert reply.chunks[0] == (
        b'{"status":"Loading layer","progressDetail":{"current":1048576,"total":3400000},'
        b'"progress":"[===============>                                   ]  1.049MB/3.4MB",'
        b'"id":"0123456789ab"}\r\n')
    assert reply.lines[1] == {"stream": "Loaded image: busybox:latest\n"}


def test_load_failure_is_the_last_line(routes):
    router, _ = routes
    reply = call(router, "POST", "/images/load?quiet=0", data=b"broken")
    assert reply.status == 200
    assert reply.lines[-1] == {"errorDetail": {"message": "invalid archive: does not contain a "
                                                          "manifest.json"},
                               "error": "invalid archive: does not contain a manifest.json"}
    assert len(reply.lines) == 2


# -- save --------------------------------------------------------------------------------------
def test_save_streams_a_tar(routes):
    router, backend = routes
    reply = call(router, "GET", "/images/get?names=busybox&names=alpine:3")
    assert (reply.status, reply.content_type, reply.streamed) == (200, "application/x-tar", True)
    assert reply.body == b"tar-part-1tar-part-2"
    assert backend.last == ("save", ["busybox", "alpine:3"]) and backend.save_closed
    reply = call(router, "GET", "/images/library/busybox:latest/get")
    assert backend.last == ("save", ["library/busybox:latest"])


def test_save_unknown_image_fails_before_the_200(routes):
    router, _ = routes
    reply = call(router, "GET", "/images/get?names=missing")
    assert (reply.status, reply.message) == (404, "reference does not exist")


# -- list ---------------------------------------------------------------------------------------
def test_list_arguments(routes):
    router, backend = routes
    reply = call(router, "GET", '/v1.47/images/json?all=1&shared-size=1&filters={"dangling":["true"]}')
    assert reply.status == 200
    assert reply.json == [{"Id": IMAGE_ID, "RepoTags": [], "RepoDigests": [], "Size": 5}]
    assert backend.last == ("list", True, {"dangling": ["true"]}, True)
    call(router, "GET", "/v1.41/images/json?shared-size=1")  # shared-size is 1.42+
    assert backend.last == ("list", False, {}, False)
    call(router, "GET", "/v1.24/images/json?filter=busy*")  # the old name filter, before 1.25
    assert backend.last == ("list", False, {"reference": ["busy*"]}, False)
    call(router, "GET", "/v1.25/images/json?filter=busy*")
    assert backend.last == ("list", False, {}, False)


def test_list_version_shapes(routes):
    router, _ = routes
    assert call(router, "GET", "/v1.44/images/json").json == [
        {"Id": IMAGE_ID, "RepoTags": [], "RepoDigests": [], "Size": 5}]
    assert call(router, "GET", "/v1.43/images/json").json == [
        {"Id": IMAGE_ID, "RepoTags": [], "RepoDigests": [], "Size": 5, "VirtualSize": 5}]
    assert call(router, "GET", "/v1.42/images/json").json == [
        {"Id": IMAGE_ID, "RepoTags": ["<none>:<none>"], "RepoDigests": ["<none>@<none>"],
         "Size": 5, "VirtualSize": 5}]


# -- inspect -------------------------------------------------------------------------------------
KEYS_147 = ["Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "DockerVersion",
            "Author", "Config", "Architecture", "Os", "Size", "GraphDriver", "RootFS", "Metadata"]
KEYS_144 = KEYS_147[:12] + ["Container", "ContainerConfig"] + KEYS_147[12:]
KEYS_143 = KEYS_147[:12] + ["VirtualSize", "Container", "ContainerConfig"] + KEYS_147[12:]


@pytest.mark.parametrize("version, keys", [("1.47", KEYS_147), ("1.45", KEYS_147),
                                           ("1.44", KEYS_144), ("1.43", KEYS_143),
                                           ("1.24", KEYS_143)])
def test_inspect_key_order_per_version(routes, version, keys):
    router, backend = routes
    reply = call(router, "GET", f"/v{version}/images/busybox/json")
    assert reply.status == 200 and backend.last == ("inspect", "busybox")
    assert list(json.loads(reply.body)) == keys
    document = reply.json
    if "VirtualSize" in keys:
        assert document["VirtualSize"] == document["Size"] == 42
    # an image without a creation time: "" from 1.44, Go's zero time before
    assert document["Created"] == ("" if version >= "1.44" else "0001-01-01T00:00:00Z")


def test_inspect_shaping_of_the_engines_document():
    """The engine's real document through the route's shaping, Variant/OsVersion included."""
    from berth.engine.images import views
    from berth.engine.images.service import Image

    class Service:
        driver_name = "overlay2"

        class layers:
            @staticmethod
            def lookup(chain_id):
                return None

        def size_of(self, image_id):
            return 7

        def tags_of(self, image_id):
            return ["docker.io/library/busybox:latest"]

    image = Image(IMAGE_ID, {"architecture": "arm64", "variant": "v8", "os": "linux",
                             "os.version": "1", "created": "2024-05-06T07:08:09.5Z",
                             "container": "c" * 64, "container_config": {"Cmd": ["sh"]},
                             "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers",
                                                                    "diff_ids": []}})
    document = views.inspect(Service(), image)
    assert document["Container"] == "c" * 64 and document["ContainerConfig"]["Cmd"] == ["sh"]
    with_variant = KEYS_147[:10] + ["Variant", "Os", "OsVersion"] + KEYS_147[11:]
    assert list(images.inspect_for_version(document, (1, 47))) == with_variant
    old = images.inspect_for_version(document, (1, 43))
    assert list(old) == with_variant[:14] + ["VirtualSize", "Container", "ContainerConfig"] + \
        with_variant[14:]
    assert old["Created"] == document["Created"] == "2024-05-06T07:08:09.5Z"
    assert old["VirtualSize"] == 7


def test_compose_v1_gets_container_config_at_any_version(routes):
    """docker-compose 1.29 negotiates 1.47 and then reads ContainerConfig on recreate."""
    router, _ = routes
    compose = [("User-Agent", "docker-compose/1.29.2 docker-py/5.0.3 Linux/6.1.0")]
    shaped = call(router, "GET", "/v1.47/images/busybox/json", headers=compose).json
    assert "ContainerConfig" in shaped and "Container" in shaped and "VirtualSize" not in shaped
    other = [("User-Agent", "docker/28.2.2 go/go1.24.3")]
    assert "ContainerConfig" not in call(router, "GET", "/v1.47/images/busybox/json",
                                         headers=other).json


def test_inspect_unknown_image(routes):
    router, _ = routes
    reply = call(router, "GET", "/images/nope/json")
    assert (reply.status, reply.message) == (404, "No such image: nope")


# -- history, tag, remove, prune, df ------------------------------------------------------------
def test_history(routes):
    router, backend = routes
    reply = call(router, "GET", "/images/localhost:5000/img:v1/history")
    assert reply.json == [{"Id": IMAGE_ID, "Size": 1}]
    assert backend.last == ("history", "localhost:5000/img:v1")
    call(router, "GET", "/v1.47/images/localhost%3A5000%2Fimg%3Av1/history")   # {name:path}, encoded
    assert backend.last == ("history", "localhost:5000/img:v1")
    reply = call(router, "GET", "/images/broken/history")
    assert (reply.status, reply.message) == (400, "too many non-empty layers in History section")


def test_tag_remove_prune(routes):
    router, backend = routes
    reply = call(router, "POST", "/images/busybox/tag?repo=me/box&tag=v2")
    assert (reply.status, reply.body) == (201, b"")
    assert backend.last == ("tag", "busybox", "me/box", "v2")
    call(router, "POST", "/images/busybox/tag")
    assert backend.last == ("tag", "busybox", "", "")
    reply = call(router, "DELETE", "/images/me/box:v2?force=1&noprune=true")
    assert reply.json == [{"Untagged": "me/box:v2"}]
    assert backend.last == ("remove", "me/box:v2", True, True)
    call(router, "DELETE", "/images/busybox")
    assert backend.last == ("remove", "busybox", False, False)
    reply = call(router, "POST", '/images/prune?filters={"dangling":{"false":true}}')
    assert reply.json == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    assert backend.last == ("prune", {"dangling": ["false"]})
