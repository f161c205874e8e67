"""``doorwatch check``: good configs pass; each broken one names file, line, key, value and fix."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from doorwatch.config import load_config
from doorwatch.errors import ConfigError

GOOD = """
site: {name: Lincoln High, timezone: America/Chicago}
mqtt: {url: "mqtts://broker.local:8883", client_id: doorwatch-lincoln, username: doorwatch, password_file: mqtt.pass}
storage: {path: /var/lib/doorwatch/doorwatch.db}
doors:
  - {id: east-entrance, name: East entrance, zone: perimeter, cameras: [cam-east], held_open_after: 30s, prealarm_after: 20s}
  - {id: sro-office, name: SRO office, zone: admin}
controllers:
  - id: gen
    codec: generic
    topics: ["doors/+/events"]
    doors: {"405419896:1": east-entrance}
cameras:
  - {id: cam-east, host: 192.0.2.10, port: 80, username: doorwatch, password_file: cam.pass,
     inputs: {"AlarmIn_1": east-entrance}}
schedules:
  school-hours:
    weekly: {mon-fri: ["07:00-16:30"], sat: ["08:00-12:00"]}
    holidays: ["2026-12-25"]
rules:
  - {type: door_held_open}
  - {type: door_forced_open, shunt: 10s}
  - {type: after_hours_access, doors: [sro-office], schedule: school-hours, severity: high}
  - {type: device_offline}
notify:
  webhooks: [{url: "https://soc.example/hook"}]
  apprise: [{url: "ntfys://ntfy.example/guards", audience: guards, min_severity: medium}]
console: {listen: 127.0.0.1:8080}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doorwatch.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    (tmp_path / "mqtt.pass").write_text("x\n")
    (tmp_path / "cam.pass").write_text("y\n")
    return path


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return str(caught.value).splitlines()


def test_the_contract_example_is_valid(tmp_path):
    """The config from DESIGN.md loads, with durations in seconds and relative secret paths
    resolved against the config's folder."""
    config = load_config(write(tmp_path, GOOD))
    assert config.doors[0].held_open_after == 30.0
    assert config.mqtt is not None
    assert config.mqtt.password_file == tmp_path.resolve() / "mqtt.pass"
    assert config.mqtt.port == 8883
    assert config.mqtt.tls
    assert config.site.slug == "lincoln-high"


def test_check_command_passes_a_good_config(tmp_path):
    """``doorwatch check`` exits 0 and summarises a good config."""
    result = subprocess.run(
        [sys.executable, "-m", "doorwatch", "check", "-c", str(write(tmp_path, GOOD))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ok (2 doors, 1 controllers, 1 cameras, 4 rules)" in result.stdout


BROKEN = [
    pytest.param(
        GOOD.replace("held_open_after: 30s", "held_open_after: 30 seconds"),
        "doorwatch.yaml:5: doors[0].held_open_after: not a duration (got '30 seconds'); "
        "fix: write a number of seconds or a string like 30s, 5m, 1h, 2d",
        id="bad-duration",
    ),
    pytest.param(
        GOOD.replace("zone: admin}", "zone: admin, camers: []}"),
        "doorwatch.yaml:6: doors[1].camers: unknown key; fix: did you mean 'cameras'?",
        id="typo-key",
    ),
    pytest.param(
        GOOD.replace("codec: generic", "codec: genric"),
        "doorwatch.yaml:8: controllers[0]: unknown codec 'genric'; fix: use ",
        id="unknown-codec",
    ),
    pytest.param(
        GOOD.replace("timezone: America/Chicago", "timezone: America/Chicgo"),
        "doorwatch.yaml:1: site.timezone: not an IANA time zone such as America/Chicago or "
        "Europe/Paris (got 'America/Chicgo')",
        id="bad-timezone",
    ),
    pytest.param(
        GOOD.replace("{type: door_forced_open, shunt: 10s}", "{type: door_forced_opn}"),
        "doorwatch.yaml:21: rules[1]: unknown rule type; use one of door_held_open",
        id="unknown-rule",
    ),
    pytest.param(
        GOOD.replace('{"405419896:1": east-entrance}', '{"405419896:1": east-entrence}'),
        "doorwatch.yaml:11: controllers[0].doors.405419896:1: no door 'east-entrence'; "
        "fix: did you mean 'east-entrance'?",
        id="dangling-door",
    ),
    pytest.param(
        GOOD.replace("schedule: school-hours", "schedule: school-hour"),
        "doorwatch.yaml:22: rules[2].schedule: no schedule 'school-hour'; fix: did you mean "
        "'school-hours'?",
        id="dangling-schedule",
    ),
    pytest.param(
        GOOD.replace('url: "mqtts://broker.local:8883"', 'url: "http://broker.local"'),
        "doorwatch.yaml:2: mqtt.url: use mqtt://host[:port] or mqtts://host[:port] (TLS) "
        "(got 'http://broker.local')",
        id="bad-url",
    ),
    pytest.param(
        GOOD.replace('mon-fri: ["07:00-16:30"]', 'mon-fry: ["07:00-16:30"]'),
        "doorwatch.yaml:17: schedules.school-hours.weekly: 'mon-fry' is not a day range like mon-fri",
        id="bad-day",
    ),
    pytest.param(
        GOOD.replace("prealarm_after: 20s", "prealarm_after: 40s"),
        "doorwatch.yaml:5: doors[0]: prealarm_after must be shorter than held_open_after",
        id="prealarm-after-alarm",
    ),
    pytest.param(
        GOOD.replace("cameras: [cam-east]", "cameras: [cam-west]"),
        "doorwatch.yaml:5: doors[0].cameras[0]: no camera 'cam-west'; fix: did you mean 'cam-east'?",
        id="dangling-camera",
    ),
    pytest.param(
        GOOD.replace("console: {listen: 127.0.0.1:8080}", "console: {listen: 8080}"),
        "doorwatch.yaml:27: console.listen: not HOST:PORT; write e.g. 127.0.0.1:8080 or "
        "0.0.0.0:8443 (got 8080)",
        id="bad-listen",
    ),
    pytest.param(
        GOOD.replace(
            "site: {name: Lincoln High, timezone: America/Chicago}", "site: {timezone: UTC}"
        ),
        "doorwatch.yaml:1: site.name: Field required; fix: add 'name'",
        id="missing-required",
    ),
    pytest.param(
        GOOD + "  - {id: gen, codec: generic, topics: [x]}\n".replace("  - ", "controllers2: "),
        "doorwatch.yaml:28: controllers2: unknown key; fix: did you mean 'controllers'?",
        id="unknown-section",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN)
def test_broken_config_error_names_file_line_key_and_fix(tmp_path, text, expected):
    """Each broken config is rejected with a line saying where, what and how to fix it."""
    errors = errors_of(tmp_path, text)
    assert any(expected in line for line in errors), errors
    assert all(line.startswith(str(tmp_path / "doorwatch.yaml")) for line in errors)


def test_every_problem_is_reported_at_once(tmp_path):
    """Several mistakes give several lines, in file order, not just the first one."""
    text = GOOD.replace("held_open_after: 30s", "held_open_after: soon").replace(
        "zone: admin}", "zone: admin, camers: []}"
    )
    errors = errors_of(tmp_path, text)
    assert len(errors) == 2
    assert ":5:" in errors[0]
    assert ":6:" in errors[1]


def test_yaml_syntax_error_names_the_line(tmp_path):
    """Broken YAML gives the line and a hint, not a traceback."""
    errors = errors_of(tmp_path, "site: {name: x\ndoors: [\n")
    assert len(errors) == 1
    assert "doorwatch.yaml:2: not valid YAML" in errors[0]
    assert "fix: check indentation and quoting" in errors[0]


def test_check_command_exits_1_with_every_error_and_no_traceback(tmp_path):
    """``doorwatch check`` prints the problems on stderr and exits 1."""
    text = GOOD.replace("codec: generic", "codec: genric")
    result = subprocess.run(
        [sys.executable, "-m", "doorwatch", "check", "-c", str(write(tmp_path, text))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "unknown codec 'genric'" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_reports_a_missing_secret_file(tmp_path):
    """A secret file that does not exist is found by check, naming its key path."""
    path = write(tmp_path, GOOD)
    (tmp_path / "cam.pass").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "doorwatch", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "cameras[0].password_file: secret file" in result.stderr
    assert "does not exist" in result.stderr


def test_secret_values_are_never_echoed(tmp_path):
    """A wrong-typed password-like value is not printed back in the error."""
    text = GOOD.replace("username: doorwatch,", "username: doorwatch, password: hunter2,")
    errors = errors_of(tmp_path, text)
    assert any("mqtt.password: unknown key" in e for e in errors)
    assert not any("hunter2" in e for e in errors)


def test_check_reports_a_missing_codec_key_file(tmp_path):
    """Files named by codec options (uhppoted's HMAC key) are checked like any secret."""
    uhppoted = GOOD.replace(
        "    codec: generic\n", "    codec: uhppoted\n    hmac_key_file: hmac.key\n"
    )
    assert uhppoted != GOOD
    path = write(tmp_path, uhppoted)
    result = subprocess.run(
        [sys.executable, "-m", "doorwatch", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "controllers[0].hmac_key_file: " in result.stderr
    assert result.stderr.count("hmac_key_file") == 1, result.stderr
    (tmp_path / "hmac.key").write_text("k3y\n")
    result = subprocess.run(
        [sys.executable, "-m", "doorwatch", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
