"""The whole doorwatch configuration, section by section, as in DESIGN.md."""

from __future__ import annotations

import os
import re
from datetime import date, time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from doorwatch.adapters.mqtt.codecs import ControllerConfig
from doorwatch.adapters.onvif.config import CameraConfig
from doorwatch.config.base import (
    ConfigPath,
    Duration,
    Identifier,
    Model,
    TimeZoneName,
)
from doorwatch.rules.config import RuleConfig, Severity


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "site"


class SiteConfig(Model):
    """The site this daemon watches."""

    name: str = Field(min_length=1, description="Shown on the console and in notifications.")
    id: Identifier | None = Field(
        default=None, description="Used in MQTT topics; defaults to the name as a slug."
    )
    timezone: TimeZoneName = Field(
        default="UTC", description="IANA zone that schedules are written in."
    )

    @property
    def slug(self) -> str:
        """The id used in topics and client ids."""
        return self.id or _slug(self.name)


def _check_mqtt_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts", "tcp", "ssl"}:
        raise ValueError("use mqtt://host[:port] or mqtts://host[:port] (TLS)")
    if not parts.hostname:
        raise ValueError("the URL has no host; use mqtt://host[:port]")
    if parts.username or parts.password:
        raise ValueError("credentials do not belong in the URL; use username and password_file")
    _ = parts.port  # Raises ValueError for a port that is not a number.
    return url


MqttUrl = Annotated[str, AfterValidator(_check_mqtt_url)]


class MqttConfig(Model):
    """The site's MQTT broker, which door controllers publish to."""

    url: MqttUrl = Field(default="mqtt://127.0.0.1:1883")
    client_id: str | None = Field(
        default=None,
        max_length=128,
        description="Fixed client id for the persistent session; defaults to doorwatch-<site>.",
    )
    username: str | None = None
    password_file: ConfigPath | None = None
    ca_file: ConfigPath | None = Field(default=None, description="CA to verify the broker.")
    cert_file: ConfigPath | None = Field(default=None, description="Client certificate (mTLS).")
    key_file: ConfigPath | None = Field(default=None, description="Client key (mTLS).")
    # 30 s finds a dead TCP connection within 45 s (1.5 x keepalive) without chatter.
    keepalive: Duration = Field(default=30.0, ge=5, le=3600)
    # A week rides out a long outage of doorwatch while the broker queues for it.
    session_expiry: Duration = Field(default=7 * 86400.0, ge=60)
    # How many unacknowledged messages the broker may send at once; acks follow each batch
    # commit, so this is also the largest journal batch.
    receive_maximum: int = Field(default=100, ge=1, le=65535)
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    reconnect_max: Duration = Field(default=30.0, ge=1)
    protocol: Annotated[Literal["5", "3.1.1"], BeforeValidator(str)] = Field(
        default="5", description="MQTT version; 3.1.1 only for brokers that lack 5."
    )

    @property
    def host(self) -> str:
        """Broker host."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def tls(self) -> bool:
        """Whether the connection uses TLS."""
        return urlsplit(self.url).scheme in {"mqtts", "ssl"}

    @property
    def port(self) -> int:
        """Broker port, defaulting by scheme."""
        return urlsplit(self.url).port or (8883 if self.tls else 1883)

    @model_validator(mode="after")
    def _client_cert_needs_key(self) -> MqttConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together; set both or neither")
        if (self.cert_file or self.ca_file) and not self.tls:
            raise ValueError("ca_file/cert_file need a TLS URL; use mqtts://")
        return self


def _default_storage_path() -> Path:
    state = os.environ.get("STATE_DIRECTORY")
    return Path(state.split(":")[0] if state else "/var/lib/doorwatch") / "doorwatch.db"


class StorageConfig(Model):
    """Where the journal, state, alerts and audit trail live (one SQLite file)."""

    path: ConfigPath = Field(default_factory=_default_storage_path)
    events_days: int = Field(default=90, ge=1, description="Keep journaled events this long.")
    alerts_days: int = Field(default=365, ge=1, description="Keep resolved alerts this long.")


class DoorConfig(Model):
    """One door of the site."""

    id: Identifier
    name: str | None = None
    zone: str | None = None
    cameras: list[Identifier] = Field(default_factory=list)
    held_open_after: Duration | None = Field(default=None, gt=0)
    prealarm_after: Duration | None = Field(default=None, gt=0)
    # A contact-only door has no reader: forced-open cannot be told apart from a normal exit.
    access_controlled: bool | None = Field(
        default=None,
        description="Has a reader or exit button reporting grants/REX; guessed from the "
        "controllers when unset.",
    )

    @property
    def label(self) -> str:
        """Name for people."""
        return self.name or self.id

    @model_validator(mode="after")
    def _prealarm_before_alarm(self) -> DoorConfig:
        if (
            self.prealarm_after is not None
            and self.held_open_after is not None
            and self.prealarm_after >= self.held_open_after
        ):
            raise ValueError("prealarm_after must be shorter than held_open_after")
        return self


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {"daily": "mon-sun", "weekdays": "mon-fri", "weekends": "sat-sun"}


def parse_days(spec: str) -> frozenset[int]:
    """Parse ``mon-fri``, ``sat``, ``mon,wed,fri`` or ``daily`` into weekday numbers (mon=0)."""
    days: set[int] = set()
    for raw_part in _DAY_ALIASES.get(spec.strip().lower(), spec).split(","):
        part = raw_part.strip().lower()
        if "-" in part:
            first, last = (p.strip()[:3] for p in part.split("-", 1))
            if first not in _DAYS or last not in _DAYS:
                raise ValueError(f"{spec!r} is not a day range like mon-fri")
            start, end = _DAYS.index(first), _DAYS.index(last)
            span = range(start, end + 1) if start <= end else [*range(start, 7), *range(end + 1)]
            days.update(span)
        elif part[:3] in _DAYS:
            days.add(_DAYS.index(part[:3]))
        else:
            raise ValueError(f"{spec!r} is not a day (mon..sun), range (mon-fri) or list")
    return frozenset(days)


def parse_window(text: str) -> tuple[time, time]:
    """Parse ``07:00-16:30``; an end before the start runs past midnight."""
    try:
        first, last = text.split("-")
        start = time.fromisoformat(first.strip())
        end = time.fromisoformat(last.strip()) if last.strip() != "24:00" else time.max
    except ValueError:
        raise ValueError(f"{text!r} is not a window like 07:00-16:30") from None
    if start == end:
        raise ValueError(f"{text!r} is empty: start and end are equal")
    return start, end


def _check_weekly(weekly: dict[str, list[str]]) -> dict[str, list[str]]:
    for spec, windows in weekly.items():
        parse_days(spec)
        for window in windows:
            parse_window(window)
    return weekly


def _check_dates(days: list[str]) -> list[str]:
    for day in days:
        first, _, last = day.partition("..")
        try:
            start = date.fromisoformat(first.strip())
            end = date.fromisoformat(last.strip()) if last else start
        except ValueError:
            raise ValueError(
                f"{day!r} is not a date (2026-12-25) or range (2026-12-21..2027-01-01)"
            ) from None
        if end < start:
            raise ValueError(f"{day!r}: the range ends before it starts")
    return days


class ScheduleException(Model):
    """A one-off day with its own windows (an open Saturday), or closed when windows is empty."""

    date: Annotated[str, AfterValidator(lambda d: _check_dates([d])[0])]
    windows: list[str] = Field(default_factory=list)
    note: str | None = None

    @field_validator("windows")
    @classmethod
    def _windows_parse(cls, windows: list[str]) -> list[str]:
        for window in windows:
            parse_window(window)
        return windows


class ScheduleConfig(Model):
    """Weekly open windows in the site's time zone, with holidays and one-off exceptions."""

    weekly: Annotated[dict[str, list[str]], AfterValidator(_check_weekly)] = Field(
        description="Day spec (mon-fri, sat, daily) -> windows (07:00-16:30)."
    )
    holidays: Annotated[list[str], AfterValidator(_check_dates)] = Field(
        default_factory=list, description="Closed all day: dates or ranges (a..b), snow days too."
    )
    exceptions: list[ScheduleException] = Field(default_factory=list)


class WebhookConfig(Model):
    """A JSON webhook receiver (a SOC, a ticketing system)."""

    url: str = Field(pattern=r"^https?://")
    name: str | None = None
    secret_file: ConfigPath | None = Field(
        default=None, description="HMAC-SHA256 key for the X-Doorwatch-Signature header."
    )
    audiences: list[Identifier] | None = None
    min_severity: Severity = Severity.INFO
    timeout: Duration = 10.0


class AppriseTarget(Model):
    """A push target through Apprise: ntfy, Pushover, Telegram, email, SMS gateways..."""

    url: str | None = Field(default=None, description="An Apprise URL without secrets in it.")
    url_file: ConfigPath | None = Field(
        default=None, description="File holding an Apprise URL that carries a token."
    )
    audience: Identifier | None = None
    min_severity: Severity = Severity.MEDIUM
    attach_snapshot: bool = True

    @model_validator(mode="after")
    def _one_url(self) -> AppriseTarget:
        if (self.url is None) == (self.url_file is None):
            raise ValueError("set exactly one of url or url_file")
        return self


class MqttAlertsConfig(Model):
    """Publishing alerts on doorwatch/<site>/alerts/<id>."""

    enabled: bool = True
    min_severity: Severity = Severity.INFO


class AudienceConfig(Model):
    """A group of people told about alerts, and when they are on duty."""

    on_duty: Identifier | None = Field(
        default=None, description="Schedule when this audience is told (quiet hours outside)."
    )
    min_severity_off_duty: Severity | None = Field(
        default=Severity.CRITICAL,
        description="Off duty, still tell them about alerts this severe (None: never).",
    )


class RouteConfig(Model):
    """Which audiences hear of which alerts."""

    audiences: list[Identifier] = Field(min_length=1)
    rules: list[str] | None = None
    zones: list[str] | None = None
    min_severity: Severity = Severity.INFO


class EscalationStep(Model):
    """Unacknowledged after ``after`` -> tell ``to`` as well."""

    after: Duration = Field(gt=0)
    to: list[Identifier] = Field(min_length=1)


class NotifyConfig(Model):
    """How alerts reach people and systems."""

    webhooks: list[WebhookConfig] = Field(default_factory=list)
    apprise: list[AppriseTarget] = Field(default_factory=list)
    mqtt: MqttAlertsConfig = Field(default_factory=MqttAlertsConfig)
    audiences: dict[Identifier, AudienceConfig] = Field(default_factory=dict)
    routes: list[RouteConfig] = Field(default_factory=list)
    escalation: list[EscalationStep] = Field(default_factory=list)
    # Critical alerts nag until someone acknowledges them.
    remind_critical_every: Duration | None = Field(default=300.0)
    give_up_after: Duration = Field(default=24 * 3600.0, gt=0)


def _check_listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:  # noqa: PLR2004
        raise ValueError("not HOST:PORT; write e.g. 127.0.0.1:8080 or 0.0.0.0:8443")
    return value


class ConsoleConfig(Model):
    """The web console and JSON API."""

    enabled: bool = True
    listen: Annotated[str, BeforeValidator(str), AfterValidator(_check_listen)] = "127.0.0.1:8080"
    tls_cert_file: ConfigPath | None = None
    tls_key_file: ConfigPath | None = None
    session_idle: Duration = Field(default=30 * 60.0, gt=0)
    session_max: Duration = Field(default=12 * 3600.0, gt=0)
    login_attempts: int = Field(default=5, ge=1)
    lockout: Duration = Field(default=15 * 60.0, gt=0)

    @property
    def host(self) -> str:
        """Listen host."""
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        """Listen port."""
        return int(self.listen.rsplit(":", 1)[1])

    @model_validator(mode="after")
    def _tls_pair(self) -> ConsoleConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together; set both or neither")
        return self


class LoggingConfig(Model):
    """Log output."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: JSON when stderr is not a terminal (journald)."
    )


class Config(Model):
    """The whole configuration file."""

    site: SiteConfig
    mqtt: MqttConfig | None = None
    storage: StorageConfig = Field(default_factory=StorageConfig)
    doors: list[DoorConfig] = Field(default_factory=list)
    controllers: list[ControllerConfig] = Field(default_factory=list)
    cameras: list[CameraConfig] = Field(default_factory=list)
    schedules: dict[Identifier, ScheduleConfig] = Field(default_factory=dict)
    rules: list[RuleConfig] = Field(default_factory=list)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @cached_property
    def doors_by_id(self) -> dict[str, DoorConfig]:
        """The configured doors by id (the console looks doors up on every door change)."""
        return {door.id: door for door in self.doors}

    def door(self, door_id: str) -> DoorConfig | None:
        """Return the door with this id, if configured."""
        return self.doors_by_id.get(door_id)
