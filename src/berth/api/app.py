"""Builds the router: the one place that binds each route group to the parts of the engine
it declares (each ``routes/<area>.py`` names its backend as Protocols, as moby's
``router/<area>/backend.go``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from berth.api.router import Router
from berth.api.routes import (build, container_fs, container_ops, containers, distribution,
                              images, networks, system, volumes)

if TYPE_CHECKING:
    from berth.engine.engine import Engine


def build_router(engine: "Engine") -> Router:
    router = Router()
    system.register(router, engine, engine.usage)
    images.register(router, engine.image_ops, engine.pulls)
    distribution.register(router, engine.pushes, engine.registry)
    containers.register(router, engine.containers, engine.execs, engine.container_views,
                        engine.networks)
    volumes.register(router, engine.volumes)
    networks.register(router, engine.networks)
    container_fs.register(router, engine.container_fs, engine.image_ops)
    container_ops.register(router, engine.container_ops)
    build.register(router, engine.builds)
    return router
