"""Fuzzing the config loader: arbitrary YAML text, arbitrary nested data, damaged good configs.

``load_config`` (and so ``doorwatch check`` and ``doorwatch run``) either returns a Config or
raises :class:`~doorwatch.errors.ConfigError` whose message names the file; no other exception
escapes, no input takes long, and secrets named in the config never appear in the message.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doorwatch.config import load_config
from doorwatch.config.models import Config
from doorwatch.errors import ConfigError

FUZZ = settings(
    max_examples=120,
    deadline=timedelta(seconds=3),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SECRET = "Sup3r-s3cret-inline"

GOOD: dict[str, Any] = yaml.safe_load(
    textwrap.dedent("""
    site: {name: Lincoln High, timezone: America/Chicago}
    mqtt: {url: "mqtts://broker.local:8883", client_id: dw, username: doorwatch, password_file: mqtt.pass}
    storage: {path: /var/lib/doorwatch/doorwatch.db}
    doors:
      - {id: east-entrance, name: East entrance, zone: perimeter, cameras: [cam-east], held_open_after: 30s, prealarm_after: 20s}
      - {id: sro-office, name: SRO office, zone: admin}
    controllers:
      - {id: gen, codec: generic, topics: ["doors/+/events"], doors: {"405419896:1": east-entrance}}
      - {id: z2m, codec: zigbee2mqtt, topics: ["zigbee2mqtt/#"]}
      - id: map
        codec: mapping
        topics: ["panel/#"]
        rules: [{match: "panel/{device}/door", kinds: {"$payload": {"OPEN": door.opened}}}]
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
    """)
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("config-fuzz")
    (path / "mqtt.pass").write_text("x\n")
    (path / "cam.pass").write_text("y\n")
    return path


def load(folder: Path, text: str | bytes) -> Config | None:
    """Load one config text; only a Config or a ConfigError naming the file may come out."""
    path = folder / "doorwatch.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        return load_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert str(path) in message, message
        assert SECRET not in message
        return None


def test_the_good_config_loads(folder):
    """The base every mutation starts from is itself valid (else the mutations test little)."""
    assert load(folder, yaml.safe_dump(GOOD)) is not None


@FUZZ
@given(text=st.text(max_size=400))
def test_arbitrary_text(folder, text):
    """Any text at all is a config or a ConfigError."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return  # Lone surrogates cannot be written as UTF-8; the bytes test covers bad encodings.
    load(folder, text)


@FUZZ
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(folder, data):
    """Bytes that are not UTF-8 (or are) give a ConfigError, never a UnicodeDecodeError."""
    load(folder, data)


FRAGMENTS = [
    "site:",
    " name: x",
    "doors:",
    "  - id: a",
    "  - {id: b, held_open_after: ",
    "rules:",
    "  - {type: door_held_open}",
    "controllers:",
    "  - {id: c, codec: mapping, topics: ['#'], rules: [",
    "&a ",
    "*a",
    "<<: *a",
    "!!python/object:os.system",
    "!!binary aGk=",
    "? [a, b]\n: c",
    "---",
    "...",
    "%YAML 1.1",
    "'",
    '"',
    "\t",
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "#",
    "\n",
    "  ",
    "1e400",
    "0x10",
    "~",
    "yes",
    "2026-12-25",
    "2026-13-45",
    "30h",
    "-1s",
    f"password: {SECRET}",
]


@FUZZ
@given(parts=st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=8), max_size=40))
def test_yaml_shaped_text(folder, parts):
    """Text assembled from YAML syntax, config keys, tags, anchors and odd scalars."""
    load(folder, "".join(parts))


keys = st.sampled_from(
    ["site", "doors", "rules", "notify", "id", "type", "name", "codec", "topics", "password"]
) | st.text(max_size=10)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["30s", "-5m", "1e9h", "07:00-16:30", "mon-fri"])
)
nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)


@FUZZ
@given(data=st.dictionaries(keys, nested, max_size=6))
def test_arbitrary_nested_data(folder, data):
    """Any mapping of nested lists, mappings and scalars (dumped as YAML) is refused cleanly."""
    load(folder, yaml.safe_dump(data, allow_unicode=True))


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a nested structure."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


GOOD_PATHS = paths(GOOD)


@FUZZ
@given(
    path=st.sampled_from(GOOD_PATHS),
    value=nested | st.just(Ellipsis),
    extra=st.booleans(),
)
def test_good_config_with_one_value_replaced(folder, path, value, extra):
    """The contract example with one value anywhere replaced by arbitrary data (or removed,
    or given an unknown sibling key) is still a Config or a ConfigError, and the message
    never echoes a secret-looking value."""
    data = copy.deepcopy(GOOD)
    node = data
    for part in path[:-1]:
        node = node[part]
    if value is Ellipsis:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    if extra and isinstance(node, dict):
        node["password"] = SECRET
    load(folder, yaml.safe_dump(data, allow_unicode=True))


def alias_bomb(levels: int) -> str:
    """A 'billion laughs' made of YAML anchors and aliases: 9**levels leaves, a few lines."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    anchors = "\n".join("  " + line for line in lines)
    return f"site: {{name: x}}\nanchors:\n{anchors}\nbomb: *l{levels - 1}\n"


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    """Nine levels of nested aliases (387 million leaves if expanded): ``doorwatch check``
    answers within 8 s with exit 1 and no traceback, in a subprocess so a hang cannot take
    the test run with it."""
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(9))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "doorwatch", "check", "-c", str(path)],
            capture_output=True,
            timeout=8,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("doorwatch check did not finish within 8 s on a YAML alias bomb")
    assert result.returncode == 1
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("date", ["2026-02-30", "2026-13-01"])
def test_an_impossible_holiday_date_is_a_config_error(folder, date):
    """A mistyped holiday (``holidays: [2026-02-30]``, unquoted, so YAML reads a date) is a
    ConfigError naming the file, not a ValueError from the YAML library."""
    text = "site: {name: x}\nschedules:\n  s:\n    weekly: {mon: ['07:00-08:00']}\n"
    load(folder, text + f"    holidays: [{date}]\n")


@pytest.mark.parametrize("key", ["doors[0]", "["])
def test_an_unknown_key_with_a_bracket_is_a_config_error(folder, key):
    """A mistyped key like ``doors[0]:`` at the top level is reported, not a traceback."""
    load(folder, f"site: {{name: x}}\n'{key}': 1\n")


@pytest.mark.parametrize("levels", [3, 5])
def test_small_alias_fans_are_refused(folder, levels):
    """Modest alias fan-outs (up to 59,049 leaves) are refused as unknown keys, promptly."""
    started = time.perf_counter()
    load(folder, alias_bomb(levels))
    assert time.perf_counter() - started < 5
