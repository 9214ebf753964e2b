"""The process that spawns, pins, watches, restarts and drains farm's workers and indexer."""
