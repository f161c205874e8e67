"""Alerts on MQTT: ``doorwatch/<site>/alerts/<alert id>`` at QoS 1."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from doorwatch.adapters.mqtt.client import MqttClient, MqttError
from doorwatch.config.models import MqttAlertsConfig
from doorwatch.notify.base import Delivery, DeliveryError, register_notifier
from doorwatch.notify.filters import severity_at_least


@register_notifier("mqtt")
class MqttAlertNotifier:
    """Publishes each transition; open alerts stay retained so dashboards see them at once."""

    kind: ClassVar[str]
    target = "mqtt"

    def __init__(self, config: MqttAlertsConfig, *, site: str, client: MqttClient) -> None:
        self.config = config
        self.prefix = f"doorwatch/{site}/alerts"
        self._client = client

    def wants(self, alert: dict[str, Any]) -> bool:
        """Severity floor."""
        return severity_at_least(alert, self.config.min_severity)

    async def send(self, delivery: Delivery) -> None:
        """Publish and wait for the broker's PUBACK; a resolved alert clears its retained copy."""
        topic = f"{self.prefix}/{delivery.alert_id}"
        body = orjson.dumps(delivery.payload)
        state = delivery.payload.get("alert", {}).get("state")
        try:
            if state == "resolved":
                await self._client.publish(topic, body, qos=1, retain=False)
                await self._client.publish(topic, b"", qos=1, retain=True)
            else:
                await self._client.publish(topic, body, qos=1, retain=True)
        except (MqttError, TimeoutError) as exc:
            raise DeliveryError(f"MQTT: {exc}") from None
