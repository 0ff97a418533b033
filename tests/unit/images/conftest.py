"""Fixtures for the image-store unit tests; the helpers live in images_unit_helpers.py."""

from images_unit_helpers import engine

__all__ = ["engine"]  # fixtures are found by name
