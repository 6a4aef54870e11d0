"""Commands of this group are registered here (filled in by the matching issue)."""

import click


def register(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
