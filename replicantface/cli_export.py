"""Sub-commands for the training side: ``export`` and ``evaluate``."""

from __future__ import annotations


def register(sub) -> None:
    """Add the training-side sub-commands to the main parser's subparsers."""
