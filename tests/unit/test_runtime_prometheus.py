"""Prometheus text exposition over a real loopback HTTP request."""

from __future__ import annotations

import asyncio

from agent.runtime.prometheus import PrometheusServer, render


def test_render_escapes_labels_and_keeps_types() -> None:
    text = render([("energy_agent_device_up", "gauge", "1 when up", [({"device": 'kiln"1'}, 1.0)])])
    assert text == (
        "# HELP energy_agent_device_up 1 when up\n"
        "# TYPE energy_agent_device_up gauge\n"
        'energy_agent_device_up{device="kiln\\"1"} 1.0\n'
    )


async def _get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


async def test_scrape_serves_current_figures() -> None:
    value = {"n": 1.0}
    async with PrometheusServer("127.0.0.1", 0, lambda: [("x_total", "counter", "x", [({}, value["n"])])]) as srv:
        first = await _get(srv.port, "/metrics")
        value["n"] = 2.0
        second = await _get(srv.port, "/metrics")
        missing = await _get(srv.port, "/other")
    assert first.startswith(b"HTTP/1.0 200 OK") and first.endswith(b"x_total 1.0\n")
    assert second.endswith(b"x_total 2.0\n")
    assert missing.startswith(b"HTTP/1.0 404")
