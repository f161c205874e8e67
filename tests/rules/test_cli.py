"""``doorwatch replay`` and ``doorwatch check`` as subprocesses, the way CI and people run them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
site: {name: Lincoln High, timezone: America/Chicago}
storage: {path: /nonexistent/never-opened.db}
doors:
  - {id: gym-east, name: Gym east, zone: athletics, held_open_after: 30s, prealarm_after: 20s}
  - {id: main, name: Main entrance, zone: perimeter}
  - {id: sro-office, name: SRO office, zone: admin}
schedules:
  school-hours:
    weekly: {mon-fri: ["07:00-16:30"], sat: ["08:00-12:00"]}
    holidays: ["2026-12-25"]
rules:
  - {type: door_held_open}
  - {type: after_hours_access, doors: [sro-office], schedule: school-hours, severity: high}
"""

# Monday 2026-01-05. 22:00 UTC is 16:00 in Chicago (school hours); 03:00 UTC on the 6th is
# 21:00 on the 5th (after hours).
LOG = """
{"kind": "door.opened", "door": "gym-east", "received_at": "2026-01-05T22:00:00Z"}
{"kind": "door.closed", "door": "gym-east", "received_at": "2026-01-05T22:00:45Z"}

{"kind": "access.granted", "door": "sro-office", "holder": "Pat", "received_at": "2026-01-05T22:05:00Z"}
{"kind": "access.granted", "door": "sro-office", "holder": "Pat", "received_at": "2026-01-06T03:00:00Z", "dedupe_key": "uhppoted:1:70"}
{"kind": "access.granted", "door": "sro-office", "holder": "Pat", "received_at": "2026-01-06T03:00:01Z", "dedupe_key": "uhppoted:1:70"}
{"kind": "door.opened", "door": "main", "received_at": "2026-01-06T03:10:00Z", "source": "uhppote"}
{"kind": "door.opened", "door": "sro-office", "received_at": "2026-01-06T03:10:00Z", "replayed": true}
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doorwatch", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=60,
    )


@pytest.fixture
def files(tmp_path):
    (tmp_path / "doorwatch.yaml").write_text(CONFIG)
    (tmp_path / "events.jsonl").write_text(LOG.lstrip())
    return tmp_path


def test_replay_prints_one_transition_per_line(files):
    """The pre-alarm, escalation and resolve of the gym door, one after-hours grant (its
    duplicate dropped), and the main door's alarm, which only fires in the run-on hour; the
    replayed opening never alarms."""
    result = run("replay", "events.jsonl", "-c", "doorwatch.yaml", cwd=files)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [
        (line["time"], line["action"], line["rule"], line["severity"], line["door"])
        for line in lines
    ] == [
        ("2026-01-05T22:00:20.000Z", "raised", "door_held_open", "low", "gym-east"),
        ("2026-01-05T22:00:30.000Z", "escalated", "door_held_open", "high", "gym-east"),
        ("2026-01-05T22:00:45.000Z", "resolved", "door_held_open", "high", "gym-east"),
        ("2026-01-06T03:00:00.000Z", "raised", "after_hours_access", "high", "sro-office"),
        ("2026-01-06T03:10:30.000Z", "raised", "door_held_open", "high", "main"),
    ]
    first = lines[0]
    assert first["alert_id"] == lines[1]["alert_id"] == lines[2]["alert_id"]
    assert first["title"] == "Door held open: Gym east (pre-alarm)"
    assert first["zone"] == "athletics"
    assert first["camera"] is None
    assert first["occurrences"] == 1


def test_replay_run_on_is_configurable(files):
    """With --run-on 10s the main door's alarm (due 30 s after the last event) never fires."""
    result = run("replay", "events.jsonl", "-c", "doorwatch.yaml", "--run-on", "10s", cwd=files)
    assert result.returncode == 0, result.stderr
    assert [json.loads(x)["door"] for x in result.stdout.splitlines()][-1] == "sro-office"


def test_replay_reads_stdin(files):
    """FILE '-' reads the log from stdin."""
    result = subprocess.run(
        [sys.executable, "-m", "doorwatch", "replay", "-", "-c", "doorwatch.yaml"],
        input='{"kind": "door.opened", "door": "main", "received_at": "2026-01-05T22:00:00Z"}\n',
        capture_output=True,
        text=True,
        check=False,
        cwd=files,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["action"] == "raised"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "line 3: not JSON"),
        ("[1, 2]", "line 3: expected a JSON object, got list"),
        ('{"kind": "door.opened"}', "line 3: missing 'received_at'"),
        ('{"received_at": "2026-01-05T22:00:00Z"}', "line 3: missing 'kind'"),
        (
            '{"kind": "door.teleported", "received_at": "2026-01-05T22:00:00Z"}',
            "line 3: unknown kind",
        ),
        ('{"kind": "door.opened", "received_at": "yesterday"}', "line 3: bad timestamp"),
        (
            '{"kind": "door.opened", "received_at": "2026-01-05T22:00:00Z", "color": "red"}',
            "line 3: unknown field 'color'",
        ),
        (
            '{"kind": "door.opened", "received_at": "2026-01-05T22:00:00Z", "door": 7}',
            "line 3: field 'door' must be a string",
        ),
        (
            '{"kind": "door.opened", "received_at": "2026-01-05T22:00:00Z", "replayed": "yes"}',
            "line 3: field 'replayed' must be true or false",
        ),
    ],
)
def test_replay_refuses_bad_lines_with_the_line_number(files, line, reason):
    """A bad line stops the replay before anything is printed: exit 2, one line naming it."""
    good = '{"kind": "door.opened", "door": "main", "received_at": "2026-01-05T22:00:00Z"}'
    (files / "bad.jsonl").write_text(f"{good}\n\n{line}\n{good}\n")
    result = run("replay", "bad.jsonl", "-c", "doorwatch.yaml", cwd=files)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert reason in result.stderr
    assert "Traceback" not in result.stderr


def test_replay_refuses_an_empty_log_and_a_bad_config(files):
    """No events is an input error (2); a broken config is a config error (1)."""
    (files / "empty.jsonl").write_text("\n")
    assert run("replay", "empty.jsonl", "-c", "doorwatch.yaml", cwd=files).returncode == 2
    (files / "bad.yaml").write_text(CONFIG.replace("schedule: school-hours", "schedule: nope"))
    result = run("replay", "events.jsonl", "-c", "bad.yaml", cwd=files)
    assert result.returncode == 1
    assert "rules[1].schedule" in result.stderr


def write_rule(folder: Path, name: str, body: str) -> None:
    (folder / "rules.d").mkdir(exist_ok=True)
    (folder / "rules.d" / name).write_text(textwrap.dedent(body).lstrip())


def check(folder: Path, rule_entry: str) -> subprocess.CompletedProcess[str]:
    (folder / "custom.yaml").write_text(CONFIG + f"  - {rule_entry}\n")
    return run("check", "-c", "custom.yaml", cwd=folder)


@pytest.mark.parametrize(
    ("filename", "body", "entry", "expected"),
    [
        (
            "syntax.py",
            "def setup(rule)\n    pass\n",
            "{module: rules.d/syntax.py}",
            ["rules[2].module:", "syntax.py:1:", "(SyntaxError)", "fix: correct the Python"],
        ),
        (
            "nosetup.py",
            "def set_up(rule):\n    pass\n",
            "{module: rules.d/nosetup.py}",
            ["rules[2].module:", "nosetup.py defines no setup(rule) function", "fix: add"],
        ),
        (
            "crash.py",
            "import json\nSETTINGS = json.loads('{')\n\ndef setup(rule):\n    pass\n",
            "{module: rules.d/crash.py}",
            ["rules[2].module: importing", "raised JSONDecodeError", "fix: fix the module"],
        ),
        (
            "badsetup.py",
            "def setup(rule):\n    rule.subscribe(print, 'door.teleported')\n",
            "{module: rules.d/badsetup.py}",
            ["rules[2].module: setup(rule) of 'badsetup' raised ValueError", "door.teleported"],
        ),
        (
            None,
            None,
            "{module: rules.d/missing.py}",
            ["rules[2].module: no such file", "missing.py"],
        ),
        (
            None,
            None,
            "{module: acme_rules.lockdown}",
            ["rules[2].module: no module named 'acme_rules.lockdown'"],
        ),
        (
            "tailgate.py",
            (REPO / "docs/examples/tailgating.py").read_text(),
            "{module: rules.d/tailgate.py, options: {window: 5 minutes}}",
            ["rules[2].options.window:"],
        ),
    ],
)
def test_check_rejects_broken_custom_rules_naming_the_key_path(
    files, filename, body, entry, expected
):
    """`doorwatch check` loads custom rule modules and sets them up: a syntax error, a missing
    setup(), an import-time crash, a failing setup(), a missing file or module and bad options
    all fail there (exit 1) with the config file, the key path and a fix."""
    if filename is not None:
        write_rule(files, filename, body)
    result = check(files, entry)
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("custom.yaml: rules[2]")
    for fragment in expected:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_check_accepts_a_good_custom_rule(files):
    """The worked example passes `doorwatch check`."""
    write_rule(files, "tailgating.py", (REPO / "docs/examples/tailgating.py").read_text())
    result = check(files, "{module: rules.d/tailgating.py, options: {window: 20s}}")
    assert result.returncode == 0, result.stderr
    assert "3 rules" in result.stdout
