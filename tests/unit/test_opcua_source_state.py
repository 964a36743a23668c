"""Pure parts of the OPC UA source: backoff bounds, error mapping at the asyncua boundary, results while down."""

from __future__ import annotations

import itertools

import pytest
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError

from agent.config.opcua import OpcuaDeviceConfig
from agent.errors import ConnectionLost, DeviceException, DeviceTimeout, SecurityError
from agent.model import Quality
from agent.sources.opcua.session import map_error
from agent.sources.opcua.source import RETRY_CAP_S, RETRY_INITIAL_S, Backoff, OpcuaSource, error_kind


def _ua(code: int) -> UaStatusCodeError:
    return UaStatusCodeError(code)  # type: ignore[no-untyped-call]  # unannotated in asyncua


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    b = Backoff(0.5, 2.0)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    b.reset()
    assert b.next() == 0.5


def test_retry_cap_keeps_recovery_within_ten_seconds() -> None:
    # worst case: the server comes back just after an attempt; the next one follows within the cap, and a
    # connect with its timeouts (discovery, session) must fit in the rest
    assert RETRY_INITIAL_S <= RETRY_CAP_S <= 4.0


@pytest.mark.parametrize(
    ("exc", "kind", "text"),
    [
        (
            _ua(StatusCodes.BadUserAccessDenied),
            SecurityError,
            "refused the connection: BadUserAccessDenied",
        ),
        (_ua(StatusCodes.BadCertificateUntrusted), SecurityError, "BadCertificateUntrusted"),
        (_ua(StatusCodes.BadTooManySessions), DeviceException, "answered BadTooManySessions"),
        (TimeoutError(), DeviceTimeout, "no answer from"),
        (ConnectionRefusedError(), ConnectionLost, "refused the TCP connection"),
        (OSError("unreachable"), ConnectionLost, "unreachable"),
    ],
)
def test_errors_are_mapped_once_with_the_device_first(exc: Exception, kind: type, text: str) -> None:
    mapped = map_error("kiln1", "opc.tcp://plc:4840", exc)
    assert isinstance(mapped, kind) and str(mapped).startswith("kiln1: ") and text in str(mapped)


def test_bugs_are_not_mapped() -> None:
    with pytest.raises(KeyError):
        map_error("kiln1", "opc.tcp://plc:4840", KeyError("x"))


def test_error_kinds() -> None:
    assert error_kind(SecurityError("x")) == "security"
    assert error_kind(DeviceTimeout("x")) == "timeout"
    assert error_kind(ConnectionLost("x")) == "connection"


def test_result_before_any_connection_flags_every_point() -> None:
    cfg = OpcuaDeviceConfig.model_validate(
        {
            "name": "kiln1",
            "endpoint": "opc.tcp://127.0.0.1:4840",
            "security": {"policy": "None", "mode": "None", "allow_none": True},
            "points": [{"name": n, "node_id": f"nsu=urn:x;s={n}", "unit": "t"} for n in ("a", "b")],
        }
    )
    ticks = itertools.count(100.0)
    source = OpcuaSource(cfg, clock=lambda: next(ticks))
    result = source.build_result(1000.0)
    assert result.device == "kiln1" and result.ts == 1000.0 and result.requests == 0
    assert [(s.point, s.quality, s.value, s.unit, s.reason) for s in result.samples] == [
        ("a", Quality.BAD, None, "t", "not connected yet"),
        ("b", Quality.BAD, None, "t", "not connected yet"),
    ]
    assert source.health()[0].state == "ok" and source.devices == ("kiln1",)
    other = OpcuaSource(cfg.model_copy(update={"interval_s": 2.0}))
    assert other.fingerprint != source.fingerprint and OpcuaSource(cfg).fingerprint == source.fingerprint
