"""Network routes against a fake backend: filters, the pre-1.28 list, body checks."""

import pytest

from route_helpers import Recorder, assert_implements, call

from berth.api.router import Router
from berth.api.routes import networks as network_routes
from berth.errors import NotFound

NID = "n" * 64


class FakeNetworks(Recorder):
    async def list_networks(self, filters=None):
        self.record("list", filters)
        return [{"Id": NID, "Name": "bridge"}]

    async def inspect(self, ref, verbose=False, scope=""):
        self.record("inspect", ref, verbose, scope)
        if ref not in ("bridge", NID):
            raise NotFound(f"network {ref} not found")
        return {"Id": NID, "Name": "bridge", "Containers": {}}

    async def create(self, body, check_duplicate=True):
        self.record("create", body, check_duplicate)
        return {"Id": NID, "Warning": ""}

    async def remove(self, ref):
        self.record("remove", ref)

    async def prune(self, filters=None):
        self.record("prune", filters)
        return {"NetworksDeleted": None}

    async def connect(self, ref, container_ref, endpoint_config):
        self.record("connect", ref, container_ref, endpoint_config)

    async def disconnect(self, ref, container_ref, force=False):
        self.record("disconnect", ref, container_ref, force)


@pytest.fixture
def routes():
    backend = FakeNetworks()
    router = Router()
    network_routes.register(router, backend)
    return router, backend


def test_the_engine_and_the_fake_implement_the_backend():
    from berth.engine.networks import NetworkService
    assert_implements(NetworkService, network_routes.NetworkBackend)
    assert_implements(FakeNetworks, network_routes.NetworkBackend)


def test_list(routes):
    router, backend = routes
    reply = call(router, "GET", '/v1.47/networks?filters={"driver":{"bridge":true}}')
    assert (reply.status, reply.body) == (200, b'[{"Id":"' + NID.encode() + b'","Name":"bridge"}]\n')
    assert backend.calls == [("list", {"driver": ["bridge"]})]


def test_list_before_1_28_shows_each_networks_containers(routes):
    router, backend = routes
    reply = call(router, "GET", "/v1.27/networks")
    assert reply.json == [{"Id": NID, "Name": "bridge", "Containers": {}}]
    assert backend.calls == [("list", {}), ("inspect", NID, False, "")]


def test_inspect(routes):
    router, backend = routes
    assert call(router, "GET", "/networks/bridge").json["Name"] == "bridge"
    assert backend.last == ("inspect", "bridge", False, "")
    call(router, "GET", "/networks/bridge?verbose=true&scope=local")
    assert backend.last == ("inspect", "bridge", True, "local")
    reply = call(router, "GET", "/networks/nope")
    assert (reply.status, reply.message) == (404, "network nope not found")


def test_create_remove_prune(routes):
    router, backend = routes
    body = {"Name": "n1", "Driver": "bridge", "Labels": {"a": "b"}}
    reply = call(router, "POST", "/networks/create", body)
    assert (reply.status, reply.json) == (201, {"Id": NID, "Warning": ""})
    assert backend.last == ("create", body, True)
    call(router, "POST", "/networks/create")
    assert backend.last == ("create", {}, True)
    reply = call(router, "POST", "/networks/create", ["n1"])
    assert (reply.status, reply.message) == (400, "invalid JSON: expected a network create object")
    assert call(router, "DELETE", "/networks/n1").status == 204
    assert backend.last == ("remove", "n1")
    assert call(router, "POST", '/networks/prune?filters={"until":["1h"]}').json == \
        {"NetworksDeleted": None}
    assert backend.last == ("prune", {"until": ["1h"]})


def test_check_duplicate_decides_before_1_44_only(routes):
    router, backend = routes
    for version, body, check in (("1.43", {"Name": "n"}, False),
                                 ("1.43", {"Name": "n", "CheckDuplicate": False}, False),
                                 ("1.41", {"Name": "n", "CheckDuplicate": True}, True),
                                 ("1.44", {"Name": "n", "CheckDuplicate": False}, True),
                                 ("1.47", {"Name": "n"}, True)):
        assert call(router, "POST", f"/v{version}/networks/create", body).status == 201
        assert backend.last == ("create", body, check), version


def test_percent_encoded_names_are_decoded(routes):
    router, backend = routes
    call(router, "GET", "/v1.47/networks/test%2001")
    assert backend.last == ("inspect", "test 01", False, "")
    assert call(router, "DELETE", "/networks/test%2001").status == 204
    assert backend.last == ("remove", "test 01")
    call(router, "POST", "/networks/a%2Bb%25c/connect", {"Container": "c%201"})
    assert backend.last == ("connect", "a+b%c", "c%201", None)   # bodies stay as sent


def test_connect_and_disconnect(routes):
    router, backend = routes
    config = {"Aliases": ["web"]}
    reply = call(router, "POST", "/networks/n1/connect", {"Container": "c1", "EndpointConfig": config})
    assert (reply.status, reply.body) == (200, b"")
    assert backend.last == ("connect", "n1", "c1", config)
    call(router, "POST", "/networks/n1/connect", {"Container": "c1"})
    assert backend.last == ("connect", "n1", "c1", None)
    assert call(router, "POST", "/networks/n1/disconnect", {"Container": "c1", "Force": True}).status == 200
    assert backend.last == ("disconnect", "n1", "c1", True)
    call(router, "POST", "/networks/n1/disconnect", {"Container": "c1"})
    assert backend.last == ("disconnect", "n1", "c1", False)


@pytest.mark.parametrize("path, body, message", [
    ("connect", {}, "container is required"),
    ("connect", {"Container": 5}, "container is required"),
    ("connect", {"Container": "c1", "EndpointConfig": []},
     "invalid JSON: EndpointConfig must be an object"),
    ("connect", "c1", "invalid JSON: expected a network connect object"),
    ("disconnect", {"Container": ""}, "container is required"),
    ("disconnect", [1], "invalid JSON: expected a network disconnect object"),
])
def test_connect_body_errors_are_400(routes, path, body, message):
    router, backend = routes
    reply = call(router, "POST", f"/networks/n1/{path}", body)
    assert (reply.status, reply.message) == (400, message)
    assert backend.calls == []
