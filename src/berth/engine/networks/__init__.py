"""Networks of the engine: see ``service`` (NetworkService), ``model`` (records, filters),
``settings`` (a container's NetworkSettings)."""

from berth.engine.networks.service import NetworkService

__all__ = ["NetworkService"]
