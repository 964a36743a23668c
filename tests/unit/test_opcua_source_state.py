"""Pure parts of the OPC UA source: backoff bounds, error mapping at the asyncua boundary, results while down."""

from __future__ import annotations

import itertools

import pytest
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError

from agent.config.opcua import OpcuaDeviceConfig
from agent.errors import ConnectionLost, DeviceException, DeviceTimeout, SecurityError
from agent.model import Quality
from agent.sources.opcua.errors import map_error
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


def test_values_go_stale_when_the_subscription_misses_its_keepalive() -> None:
    from types import SimpleNamespace

    from asyncua import ua

    from agent.sources.opcua.session import OpcuaSession
    from agent.sources.opcua.status import Reading

    cfg = OpcuaDeviceConfig.model_validate(
        {
            "name": "kiln1",
            "endpoint": "opc.tcp://127.0.0.1:4840",
            "security": {"policy": "None", "mode": "None", "allow_none": True},
            "interval_s": 1.0,
            "points": [{"name": "a", "node_id": "nsu=urn:x;s=a"}],
        }
    )
    mono = [50.0]
    source = OpcuaSource(cfg, monotonic=lambda: mono[0])
    session = OpcuaSession(source.plan)
    params = ua.CreateSubscriptionParameters()
    params.RequestedPublishingInterval = 1000.0
    params.RequestedMaxKeepAliveCount = ua.UInt32(3)  # keep-alive every 3 s
    session.subscription = SimpleNamespace(parameters=params, last_publish_at=50.0)  # type: ignore[assignment]  # a stand-in with the two fields read
    source._session = session
    source._latest[0] = Reading(7.5, Quality.GOOD, "", 49.0, 49.0)
    mono[0] = 53.9  # within keep-alive + one interval: the unchanged value is current
    assert source.build_result(1000.0).samples[0].quality is Quality.GOOD
    mono[0] = 54.5
    stale = source.build_result(1001.0).samples[0]
    assert (stale.quality, stale.value, stale.reason) == (Quality.STALE, None, "no publish response for 4.5 s")
    session.check_alive(54.5 + 6.0)  # 2 keep-alives + request timeout (4 s) without a word: the session is lost
    assert session.lost.is_set() and session.lost_reason.startswith("keep-alive lost")
    lost = source.build_result(1002.0).samples[0]
    assert lost.quality is Quality.BAD and lost.reason.startswith("connection lost: keep-alive lost")
