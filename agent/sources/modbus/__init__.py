"""Modbus acquisition: profile -> read plan (plan.py) -> requests over one link per connection (link.py, frames.py)
-> decoded samples (codec.py, device.py) on a wall-clock schedule (schedule.py), wrapped as sources (source.py).

Public API: ``build_modbus_sources``, ``ModbusSource``, ``build_read_plan``, ``ReadPlan``, ``compile_point``,
``decode_all_orders``, ``encode``.
"""

from agent.sources.modbus.codec import PointCodec, compile_point, decode_all_orders, encode
from agent.sources.modbus.plan import ReadPlan, ReadRequest, build_read_plan
from agent.sources.modbus.schedule import Clock, SystemClock
from agent.sources.modbus.source import ModbusSource, build_modbus_sources

__all__ = [
    "Clock",
    "ModbusSource",
    "PointCodec",
    "ReadPlan",
    "ReadRequest",
    "SystemClock",
    "build_modbus_sources",
    "build_read_plan",
    "compile_point",
    "decode_all_orders",
    "encode",
]
