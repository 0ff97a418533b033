"""Berth: a Docker-compatible container engine (berthd) and client (berth)."""

__version__ = "0.1.0"

# The Engine API range berthd serves and the berth client speaks.
API_VERSION = "1.47"
MIN_API_VERSION = "1.24"
