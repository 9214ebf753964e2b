"""The error the supervisor stops with; its own module so that every part of the supervisor
(and the CLI) can raise or catch it without importing the supervisor itself."""

from __future__ import annotations


class FarmError(Exception):
    """The farm cannot start or must stop; str() says why and what to do."""
