"""Fixtures for the storage tests; the helpers live in storage_helpers.py."""

from storage_helpers import (  # noqa: F401  (fixtures are found by name)
    dest, driver, no_leftover_mounts, sentinel, tar,
)
