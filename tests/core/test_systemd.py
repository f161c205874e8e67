"""The shipped systemd unit is hardened, and the example site config passes ``doorwatch check``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

UNIT = REPO / "systemd" / "doorwatch.service"


def test_unit_exposure_is_at_most_1_5():
    """`systemd-analyze security --offline=yes` rates the unit 1.5 or lower (we reach 1.0)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    result = subprocess.run(
        [analyze, "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for doorwatch\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 1.5


def test_unit_is_type_notify_with_watchdog_and_credentials():
    """The unit asks for the notify protocol, a watchdog, and passes secrets as credentials."""
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=30s",
        "Restart=on-failure",
        "StateDirectory=doorwatch",
        "ConfigurationDirectory=doorwatch",
        "ExecStart=/opt/doorwatch/venv/bin/doorwatch run -c ${CONFIGURATION_DIRECTORY}/doorwatch.yaml",
    ):
        assert line in text.splitlines()
    assert "LoadCredential=mqtt.pass:" in text
    # The allow-list comes before the deny-list, or the filter silently becomes a deny list.
    assert text.index("SystemCallFilter=@system-service") < text.index(
        "SystemCallFilter=~@privileged"
    )
    assert (
        "Environment=" not in text
        or "PASS" not in text.upper().split("ENVIRONMENT=")[1].split("\n")[0]
    )


def test_example_config_passes_check():
    """The example /etc/doorwatch/doorwatch.yaml is valid; credentials are noted, not failed."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "doorwatch",
            "check",
            "-c",
            str(REPO / "systemd" / "doorwatch.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ok (4 doors" in result.stdout
    assert "is read under systemd (LoadCredential=)" in result.stderr
