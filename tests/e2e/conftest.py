"""Fixtures the CLI end-to-end modules share (defined beside the CLI helpers)."""

from test_cli_common import names

__all__ = ["names"]
