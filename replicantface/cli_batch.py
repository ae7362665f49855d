"""Sub-commands for large runs: ``batch`` and ``validate``."""

from __future__ import annotations


def register(sub) -> None:
    """Add the batch sub-commands to the main parser's subparsers."""
