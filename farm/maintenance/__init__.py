"""Maintenance windows (Keep's, before deduplication): alerts a window takes while it is active
are dropped, or kept as `suppressed` / `maintenance`.

    window.py   one window: its keys, when it is active, which alerts it takes
    cron.py     the recurrence of a recurring window
    sources.py  where windows come from: the `[maintenance] rules` file and the Redis hash
    screen.py   what the pipeline runs once per batch
    report.py   what `farm maintenance list|add|end` (farm/cli.py) shows and does

The `[maintenance]` section is declared in farm/config/maintenance.py.
"""
