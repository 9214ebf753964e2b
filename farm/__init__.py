"""farm: a high-volume alert and event processing farm in Keep's alert model."""

__version__ = "0.1.0"
