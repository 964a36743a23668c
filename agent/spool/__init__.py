"""Durable store-and-forward: every MQTT message is written here before it is published and deleted only after
the broker's PUBACK. ``base`` holds the Spool protocol and its records; ``sqlite`` the SQLite WAL store."""

from agent.spool.base import KINDS, Kind, Spool, SpooledRecord, SpoolStats
from agent.spool.sqlite import SqliteSpool

__all__ = ["KINDS", "Kind", "Spool", "SpoolStats", "SpooledRecord", "SqliteSpool"]
