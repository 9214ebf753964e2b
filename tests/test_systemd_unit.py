"""configs/systemd/farm.service: systemd accepts it, and docs/operations.md creates what it
expects (its user, folders, virtual environment and config)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from farm.config import load

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "configs" / "systemd" / "farm.service"
OPERATIONS = ROOT / "docs" / "operations.md"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
# The host paths the unit names; the verify test moves them under a temporary folder.
HOST_PATHS = ("/opt/farm", "/var/lib/farm", "/etc/farm")


def service_settings() -> dict[str, str]:
    settings = {}
    for line in UNIT.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            settings[key.strip()] = value.strip()
    return settings


def verify(unit: Path) -> tuple[int, list[str]]:
    """systemd-analyze verify's exit code, and its complaints about this unit (it reports
    unparsable settings on stderr but still exits 0)."""
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True,
                          text=True, timeout=120)
    return done.returncode, [line for line in done.stderr.splitlines() if unit.name in line]


def unit_under(tmp_path: Path) -> Path:
    """The unit with every host path moved under tmp_path, where each of them exists."""
    text = UNIT.read_text()
    for host_path in HOST_PATHS:
        text = text.replace(host_path, f"{tmp_path}{host_path}")
    settings = service_settings()
    farm_binary = Path(f"{tmp_path}{settings['ExecStart'].split()[0]}")
    farm_binary.parent.mkdir(parents=True)
    farm_binary.write_text("#!/bin/sh\nexit 0\n")
    farm_binary.chmod(0o755)
    Path(f"{tmp_path}{settings['WorkingDirectory']}").mkdir(parents=True)
    config = Path(f"{tmp_path}{settings['Environment'].partition('FARM_CONFIG=')[2]}")
    config.parent.mkdir(parents=True)
    config.write_text("")
    unit = tmp_path / "units" / UNIT.name
    unit.parent.mkdir()
    unit.write_text(text)
    return unit


@pytest.mark.skipif(SYSTEMD_ANALYZE is None,
                    reason="systemd-analyze is not installed (a host without systemd)")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    control = tmp_path / "control" / "farm-control.service"
    control.parent.mkdir()
    control.write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    code, problems = verify(control)
    if code != 0 or problems:
        pytest.skip(f"systemd-analyze cannot verify even a minimal unit here: {problems}")
    assert verify(unit_under(tmp_path)) == (0, [])


def test_unit_rejects_what_verify_should_catch(tmp_path):
    """The check above can fail: a unit whose binary is missing does not pass."""
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze is not installed (a host without systemd)")
    unit = unit_under(tmp_path)
    unit.write_text(unit.read_text().replace("/.venv/bin/farm", "/.venv/bin/no-such-farm"))
    code, problems = verify(unit)
    assert code != 0 or problems


def install_section() -> str:
    text = OPERATIONS.read_text()
    start = text.index("## Installing on a host")
    return text[start:text.index("\n## ", start + 1)]


def test_operations_doc_creates_what_the_unit_expects():
    settings = service_settings()
    section = install_section()
    venv = settings["ExecStart"].split()[0].removesuffix("/bin/farm")
    config = settings["Environment"].partition("FARM_CONFIG=")[2]
    assert re.search(rf"useradd .*--user-group .* {settings['User']}\n", section)
    assert settings["Group"] == settings["User"]
    assert re.search(rf"install -d -o {settings['User']} .* {settings['WorkingDirectory']} ",
                     section)
    assert re.search(rf"python3 -m venv {venv}\s", section)
    assert f"{venv}/bin/pip install .\n" in section
    assert re.search(rf"install .*configs/farm.toml {config}\n", section)
    assert f"install -m 0644 configs/systemd/farm.service /etc/systemd/system/{UNIT.name}" \
        in section


def test_unit_waits_longer_than_the_drain():
    grace = load(None, env={}).supervisor.grace_seconds
    assert int(service_settings()["TimeoutStopSec"]) > grace
