"""Builds the router from every route group, each bound to the engine."""

from __future__ import annotations

from typing import Any

from berth.api.router import Router
from berth.api.routes import container_fs, containers, images, networks, system, volumes
from berth.api.routes import container_ops  # lifecycle (issue 5)

ROUTE_GROUPS = [system, images, containers, volumes, networks, container_fs, container_ops]


def build_router(engine: Any) -> Router:
    router = Router()
    for group in ROUTE_GROUPS:
        group.register(router, engine)
    return router
