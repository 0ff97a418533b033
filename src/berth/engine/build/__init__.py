"""Builds: the engine's side of ``berth.builder`` (``service.BuildService``) and the
``BuildBackend`` it implements (``backend.EngineBuildBackend``)."""

from berth.engine.build.service import BuildService

__all__ = ["BuildService"]
