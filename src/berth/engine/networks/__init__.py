"""Networks of the engine: see ``service`` (NetworkService), ``model`` (records, filters),
``settings`` (a container's NetworkSettings), ``records`` (what it needs of the container side).
The host side is ``berth.network.host``."""

from berth.engine.networks.service import NetworkService

__all__ = ["NetworkService"]
