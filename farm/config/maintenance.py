"""The [maintenance] section: the file of maintenance windows. The windows themselves are read
and checked by farm/maintenance/ (the supervisor at start, every worker at start and whenever
the file changes); windows added with `farm maintenance add` live in Redis."""

from __future__ import annotations

from farm.config.setting import key, section, toml_file_of


@section("maintenance")
class MaintenanceSettings:
    rules: str = key("",
            "Maintenance windows file (TOML with [[window]] tables; see "
            "configs/maintenance/example.toml). Relative to the folder of this config file; "
            "empty means only the windows added with `farm maintenance add`. Workers re-read it "
            "within a second or so of a change; a file with problems stops start-up, and a "
            "change with problems is reported while the windows in force stay.",
            check=toml_file_of("window"))
    release_seconds: int = key(60,
            "How often the maintenance watcher gives the alerts held in status maintenance (by "
            "windows with recover_previous_status) their own status back once no window in "
            "force takes them; one supervisor of the farm does each round. 0 turns it off.",
            minimum=0, maximum=86_400)
