"""The one exception normalizers raise for events they cannot read."""


class BadEvent(ValueError):
    """The event cannot be normalized; the message says why."""
