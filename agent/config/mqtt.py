"""MQTT section of the site file. Owned by the MQTT publishing work (issue 5)."""

from __future__ import annotations

from agent.config.base import StrictModel


class MqttConfig(StrictModel):
    """Placeholder until MQTT publishing lands."""
