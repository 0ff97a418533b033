"""Containers in the engine: their records (``records``), lifecycle (``service``), exec
processes, health checks, restart policies, operations and the daemon-start reconcile."""
