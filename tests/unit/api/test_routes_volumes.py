"""Volume routes against a fake backend: query parsing, version gates, body type errors."""

import pytest

from route_helpers import Recorder, assert_implements, call

from berth.api.router import Router
from berth.api.routes import volumes as volume_routes
from berth.errors import NotFound


class FakeVolumes(Recorder):
    def create(self, name=None, driver=None, driver_opts=None, labels=None):
        self.record("create", name, driver, driver_opts, labels)
        return {"Name": name or "generated", "Driver": driver or "local"}

    def get(self, name):
        if name != "v1":
            raise NotFound(f"get {name}: no such volume")
        return {"Name": name}

    def list_volumes(self, filters=None):
        self.record("list", filters)
        return [{"Name": "v1"}], []

    def remove(self, name, force=False):
        self.record("remove", name, force)

    def prune(self, filters=None):
        self.record("prune", filters)
        return {"VolumesDeleted": [], "SpaceReclaimed": 0}


@pytest.fixture
def routes():
    backend = FakeVolumes()
    router = Router()
    volume_routes.register(router, backend)
    return router, backend


def test_the_engine_and_the_fake_implement_the_backend():
    from berth.engine.volumes import VolumeService
    assert_implements(VolumeService, volume_routes.VolumeBackend)
    assert_implements(FakeVolumes, volume_routes.VolumeBackend)


def test_list_and_inspect(routes):
    router, backend = routes
    reply = call(router, "GET", '/v1.47/volumes?filters={"label":{"a=b":true}}')
    assert (reply.status, reply.content_type) == (200, "application/json")
    assert reply.body == b'{"Volumes":[{"Name":"v1"}],"Warnings":null}\n'
    assert backend.last == ("list", {"label": ["a=b"]})
    call(router, "GET", '/volumes?filters={"dangling":["true"]}')
    assert backend.last == ("list", {"dangling": ["true"]})
    reply = call(router, "GET", "/volumes/v1")
    assert (reply.status, reply.json) == (200, {"Name": "v1"})
    reply = call(router, "GET", "/volumes/v2")
    assert (reply.status, reply.message) == (404, "get v2: no such volume")
    reply = call(router, "GET", "/volumes?filters=nope")
    assert reply.status == 400 and reply.message.startswith("invalid JSON in filters parameter")


def test_create(routes):
    router, backend = routes
    reply = call(router, "POST", "/v1.47/volumes/create",
                 {"Name": "v1", "Driver": "", "DriverOpts": {}, "Labels": {"a": "b"}})
    assert reply.status == 201 and reply.json["Name"] == "v1"
    assert backend.last == ("create", "v1", None, {}, {"a": "b"})
    assert call(router, "POST", "/volumes/create").status == 201  # no body: all defaults
    assert backend.last == ("create", None, None, None, None)


@pytest.mark.parametrize("body, message", [
    ({"Name": 5}, "json: cannot unmarshal number into Go struct field CreateOptions.Name of type string"),
    ({"Driver": True}, "json: cannot unmarshal bool into Go struct field CreateOptions.Driver of type string"),
    ({"Labels": ["a"]}, "json: cannot unmarshal array into Go struct field CreateOptions.Labels "
                        "of type map[string]string"),
    ({"DriverOpts": {"a": 1}}, "json: cannot unmarshal object into Go struct field "
                               "CreateOptions.DriverOpts of type map[string]string"),
    ([1], "invalid JSON: expected a volume create object"),
])
def test_create_body_type_errors_are_400(routes, body, message):
    router, backend = routes
    reply = call(router, "POST", "/volumes/create", body)
    assert (reply.status, reply.message) == (400, message)
    assert backend.calls == []


def test_cluster_volume_spec_needs_a_swarm_from_1_42(routes):
    router, backend = routes
    reply = call(router, "POST", "/volumes/create", {"Name": "c", "ClusterVolumeSpec": {}})
    assert reply.status == 503 and "not a swarm manager" in reply.message
    assert call(router, "POST", "/v1.41/volumes/create",
                {"Name": "c", "ClusterVolumeSpec": {}}).status == 201


def test_remove_prune_update(routes):
    router, backend = routes
    reply = call(router, "DELETE", "/volumes/v1?force=1")
    assert (reply.status, reply.body) == (204, b"")
    assert backend.last == ("remove", "v1", True)
    call(router, "DELETE", "/volumes/v1")
    assert backend.last == ("remove", "v1", False)
    assert call(router, "POST", "/v1.47/volumes/prune").json == {"VolumesDeleted": [],
                                                                "SpaceReclaimed": 0}
    assert backend.last == ("prune", {})
    call(router, "POST", "/v1.41/volumes/prune")  # before 1.42 prune took every unused volume
    assert backend.last == ("prune", {"all": ["true"]})
    reply = call(router, "PUT", "/volumes/v1?version=1", {})
    assert (reply.status, reply.message) == (503, volume_routes.NO_SWARM_UPDATE)
