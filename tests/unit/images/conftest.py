"""Fixtures for the image-store unit tests; the helpers live in images_unit_helpers.py."""

from images_unit_helpers import engine  # noqa: F401  (fixtures are found by name)
