"""Registry routes against a fake backend: push's progress stream and its old-style body
credentials, POST /auth, GET /distribution/{name}/json and GET /images/search (limit and
filter checks at the edge, a lenient X-Registry-Auth)."""

import base64
import json

import pytest

from route_helpers import Recorder, assert_implements, call

from berth.api.router import Router
from berth.api.routes import distribution
from berth.errors import InvalidParameter, NotFound, Unauthorized


class FakePushes(Recorder):
    def check_push(self, name, tag):
        self.record("check_push", name, tag)
        if "@" in name:
            raise InvalidParameter("cannot push a digest reference")

    def push(self, name, tag, auth, emit):
        self.record("push", name, tag, auth)
        emit({"status": f"The push refers to repository [{name}]"})
        if name == "missing":
            raise NotFound("An image does not exist locally with the tag: missing")
        emit({"status": "latest: digest: sha256:" + "b" * 64 + " size: 527"})
        emit({"progressDetail": {}, "aux": {"Tag": "latest", "Digest": "sha256:" + "b" * 64,
                                            "Size": 527}})


class FakeRegistry(Recorder):
    def login(self, auth):
        self.record("login", auth)
        if auth.password != "right":
            raise Unauthorized("login attempt to http://r/v2/ failed with status: 401 Unauthorized")
        return {"Status": "Login Succeeded"}

    def registry_data(self, name, auth):
        self.record("registry_data", name, auth)
        if name == "nothere":
            raise NotFound("manifest unknown: manifest unknown")
        return {"Descriptor": {"mediaType": "m", "digest": "sha256:" + "c" * 64, "size": 1},
                "Platforms": [{"architecture": "amd64", "os": "linux"}]}

    def search(self, term, limit, filters, auth):
        self.record("search", term, limit, filters, auth)
        return [{"star_count": 3, "is_official": True, "name": term, "is_automated": False,
                 "description": "d"}]


@pytest.fixture
def routes():
    pushes, registry = FakePushes(), FakeRegistry()
    router = Router()
    distribution.register(router, pushes, registry)
    return router, pushes, registry


def test_the_engine_and_the_fakes_implement_the_backends():
    from berth.engine.images.push import ImagePusher
    from berth.engine.images.registry import RegistryService
    assert_implements(ImagePusher, distribution.PushBackend)
    assert_implements(RegistryService, distribution.RegistryBackend)
    assert_implements(FakePushes, distribution.PushBackend)
    assert_implements(FakeRegistry, distribution.RegistryBackend)


def _auth(document):
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()


def test_push_streams_progress_and_the_aux_digest(routes):
    router, pushes, _ = routes
    reply = call(router, "POST", "/v1.47/images/127.0.0.1:5000/app/push?tag=latest",
                 headers=[("X-Registry-Auth", _auth({"username": "u", "password": "p"}))])
    assert reply.status == 200
    assert reply.lines[0] == {"status": "The push refers to repository [127.0.0.1:5000/app]"}
    assert reply.lines[-1]["aux"]["Size"] == 527
    assert pushes.calls[-1][1:3] == ("127.0.0.1:5000/app", "latest")
    assert pushes.calls[-1][3].username == "u"


def test_push_credentials_in_the_body_for_old_clients(routes):
    router, pushes, _ = routes
    call(router, "POST", "/v1.24/images/app/push", {"username": "old", "password": "p"})
    assert pushes.calls[-1][3].username == "old"


def test_push_missing_image_is_in_band_after_the_first_line(routes):
    router, _, _ = routes
    reply = call(router, "POST", "/images/missing/push?tag=latest")
    assert reply.status == 200
    assert reply.lines[-1]["error"] == "An image does not exist locally with the tag: missing"
    reply = call(router, "POST", "/images/app@sha256:" + "a" * 64 + "/push")
    assert (reply.status, reply.message) == (400, "cannot push a digest reference")


def test_auth_checks_credentials(routes):
    router, _, registry = routes
    reply = call(router, "POST", "/auth", {"username": "u", "password": "right",
                                           "serveraddress": "127.0.0.1:5000"})
    assert (reply.status, reply.json) == (200, {"Status": "Login Succeeded"})
    assert registry.calls[-1][1].server_address == "127.0.0.1:5000"
    reply = call(router, "POST", "/auth", {"username": "u", "password": "wrong"})
    assert reply.status == 401 and "failed with status: 401" in reply.message
    reply = call(router, "POST", "/auth", ["not", "an", "object"])
    assert reply.status == 400


def test_distribution_inspect(routes):
    router, _, registry = routes
    reply = call(router, "GET", "/distribution/127.0.0.1:5000/app:v1/json")
    assert reply.status == 200 and reply.json["Platforms"] == [{"architecture": "amd64", "os": "linux"}]
    assert registry.calls[-1][1] == "127.0.0.1:5000/app:v1"
    reply = call(router, "GET", "/distribution/nothere/json")
    assert (reply.status, reply.message) == (404, "manifest unknown: manifest unknown")


def test_search_limit_and_lenient_auth(routes):
    router, _, registry = routes
    reply = call(router, "GET", "/images/search?term=busybox&limit=5",
                 headers=[("X-Registry-Auth", "garbage")])
    assert reply.status == 200 and reply.json[0]["name"] == "busybox"
    assert registry.calls[-1][1:3] == ("busybox", 5)
    reply = call(router, "GET", "/images/search?term=busybox&limit=x")
    assert reply.status == 400 and reply.message.startswith("invalid limit specified")
    reply = call(router, "GET", "/images/search?term=b&filters=%7B%22stars%22%3A%7B%223%22%3Atrue%7D%7D")
    assert registry.calls[-1][3] == {"stars": ["3"]}
