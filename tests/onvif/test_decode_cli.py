"""``doorwatch decode --format onvif`` as a user runs it: a subprocess reading stdin.

Messages are SYNTHETIC (built from the ONVIF spec tables).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from test_normalise import BILLION_LAUGHS, XXE, message, pull_response

DOOR = {"DoorToken": "Door_1"}


def decode(payload: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "doorwatch", "decode", "--format", "onvif", *args],
        input=payload,
        capture_output=True,
        timeout=60,
        check=False,
    )


def lines(result: subprocess.CompletedProcess[bytes]) -> list[dict]:
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def test_pull_messages_response_envelope():
    """A PullMessagesResponse envelope prints one JSON event per message, in order, with the
    source's own door reference as door when no config is given."""
    payload = pull_response(
        message("tns1:Door/State/DoorAlarm", DOOR, {"State": "DoorForcedOpen"}),
        message(
            "tns1:VideoSource/MotionAlarm//.", {"Source": "000"}, {"State": "1"}, op="Initialized"
        ),
        message(
            "tns1:Device/Trigger/DigitalInput",
            {"InputToken": "AlarmIn_1"},
            {"LogicalState": "active"},
        ),
    )
    result = decode(payload)
    assert result.returncode == 0, result.stderr
    events = lines(result)
    assert [e["kind"] for e in events] == ["door.forced", "camera.motion", "input.active"]
    assert events[0]["door"] == "Door_1"
    assert events[0]["reason"] == "DoorForcedOpen"
    assert events[0]["device_time"] == "2026-03-02T10:00:00.000Z"
    assert events[1]["replayed"] is True
    assert events[2]["door"] == "AlarmIn_1"
    assert all(e["source"] == "onvif" for e in events)


def test_bare_notification_message():
    """A bare wsnt:NotificationMessage decodes to its one event."""
    result = decode(
        message("tns1:AccessControl/Denied/Credential", {"AccessPointToken": "AP_1"},
                {"Reason": "CredentialExpired", "CredentialToken": "C-99887766"}, op=None).encode()
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (event,) = lines(result)
    assert event["kind"] == "access.denied"
    assert event["reason"] == "CredentialExpired"
    assert "99887766" not in json.dumps(event)


def test_config_maps_the_door_token_and_names_the_camera(tmp_path):
    """With -c, the first camera's id is the source and its inputs: map the DoorToken."""
    config = tmp_path / "doorwatch.yaml"
    config.write_text(
        textwrap.dedent(
            """
            site: {name: Test High, timezone: America/Chicago}
            doors: [{id: east-entrance, name: East entrance}]
            cameras:
              - {id: cam-east, host: 192.0.2.10, inputs: {Door_1: east-entrance}}
            """
        )
    )
    result = decode(message("tns1:Door/State/DoorPhysicalState", DOOR, {"State": "Open"}).encode(),
                    "-c", str(config))  # fmt: skip
    assert result.returncode == 0, result.stderr
    (event,) = lines(result)
    assert (event["kind"], event["door"], event["door_ref"]) == (
        "door.opened",
        "east-entrance",
        "Door_1",
    )
    assert event["source"] == event["camera"] == "cam-east"


def test_config_turns_a_mapped_input_into_a_door_contact_as_the_daemon_does(tmp_path):
    """A camera input wired to a door contact decodes to door.opened at that door, exactly
    what the daemon journals (not a bare input.active)."""
    config = tmp_path / "doorwatch.yaml"
    config.write_text(
        textwrap.dedent(
            """
            site: {name: Test High, timezone: America/Chicago}
            doors: [{id: gym-east, name: Gym east}]
            cameras:
              - {id: cam-gym, host: 192.0.2.11, inputs: {AlarmIn_1: gym-east}}
            """
        )
    )
    payload = message(
        "tns1:Device/Trigger/DigitalInput", {"InputToken": "AlarmIn_1"}, {"LogicalState": "1"}
    ).encode()
    result = decode(payload, "-c", str(config))
    assert result.returncode == 0, result.stderr
    (event,) = lines(result)
    assert (event["kind"], event["door"]) == ("door.opened", "gym-east")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"<wsnt:NotificationMessage><wsnt:Topic>", "malformed"),
        (BILLION_LAUGHS.encode(), "unsupported"),
        (XXE.encode(), "unsupported"),
        (b"<a>" * 200 + b"</a>" * 200, "too_deep"),
        (b"<a>" + b"x" * (5 * 1024 * 1024) + b"</a>", "larger than"),
        (b"\x00\x01\x02binary", "malformed"),
        (b"", "malformed"),
        (b"<html><body>nope</body></html>", "wrong_type"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line(payload, reason):
    """Malformed, hostile (entities, deep, huge) or foreign input: exit 2 and one line on
    stderr naming the reason, nothing on stdout, never a traceback."""
    result = decode(payload)
    assert result.returncode == 2
    assert result.stdout == b""
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert reason in err
