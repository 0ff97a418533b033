"""Fixtures for the storage tests; the helpers live in storage_helpers.py."""

from storage_helpers import dest, driver, no_leftover_mounts, sentinel, tar

__all__ = ["dest", "driver", "no_leftover_mounts", "sentinel", "tar"]  # fixtures are found by name
