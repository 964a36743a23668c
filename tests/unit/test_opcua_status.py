"""Status code -> quality with the status name kept; DataValue -> reading with timestamps; range checks."""

from __future__ import annotations

import datetime as dt

import pytest
from asyncua import ua
from asyncua.ua.status_codes import StatusCodes

from agent.model import Quality
from agent.sources.opcua.status import convert_value, quality_of, reading_of, status_name


@pytest.mark.parametrize(
    ("code", "quality", "name"),
    [
        (StatusCodes.Good, Quality.GOOD, "Good"),
        (StatusCodes.UncertainLastUsableValue, Quality.UNCERTAIN, "UncertainLastUsableValue"),
        (StatusCodes.UncertainSensorNotAccurate, Quality.UNCERTAIN, "UncertainSensorNotAccurate"),
        (StatusCodes.BadSensorFailure, Quality.BAD, "BadSensorFailure"),
        (StatusCodes.BadNodeIdUnknown, Quality.BAD, "BadNodeIdUnknown"),
        (StatusCodes.BadCommunicationError | 0x0400, Quality.BAD, "BadCommunicationError"),  # info bits ignored
        (StatusCodes.GoodClamped, Quality.GOOD, "GoodClamped"),
    ],
)
def test_status_maps_to_quality_keeping_the_name(code: int, quality: Quality, name: str) -> None:
    assert quality_of(code) is quality
    assert status_name(code) == name


def _dv(value: object, code: int = StatusCodes.Good, source: dt.datetime | None = None) -> ua.DataValue:
    return ua.DataValue(
        ua.Variant(value),
        StatusCode=ua.StatusCode(ua.UInt32(code)),
        SourceTimestamp=ua.DateTime.fromtimestamp(source.timestamp(), dt.UTC) if source else None,
    )


def test_bad_status_drops_the_value_and_names_the_status() -> None:
    r = reading_of(_dv(812.0, StatusCodes.BadSensorFailure))
    assert (r.value, r.quality, r.reason) == (None, Quality.BAD, "BadSensorFailure")


def test_uncertain_keeps_the_value() -> None:
    r = reading_of(_dv(3.5, StatusCodes.UncertainLastUsableValue))
    assert (r.value, r.quality, r.reason) == (3.5, Quality.UNCERTAIN, "UncertainLastUsableValue")


def test_source_timestamp_is_kept_as_unix_seconds() -> None:
    t = dt.datetime(2026, 1, 1, 8, 0, 1, 250000, tzinfo=dt.UTC)
    r = reading_of(_dv(1.0, source=t))
    assert r.source_ts == t.timestamp() and r.quality is Quality.GOOD and r.reason == ""


@pytest.mark.parametrize(
    ("value", "quality", "reason"),
    [
        (600.0, Quality.GOOD, ""),
        (600.5, Quality.UNCERTAIN, "out of range: 600.5 > 600.0"),
        (-1, Quality.UNCERTAIN, "out of range: -1 < 0.0"),
    ],
)
def test_plausible_range(value: float, quality: Quality, reason: str) -> None:
    r = reading_of(_dv(value), (0.0, 600.0))
    assert (r.value, r.quality, r.reason) == (value, quality, reason)


def test_values_that_are_not_numbers_are_bad() -> None:
    assert reading_of(_dv(float("nan"))).quality is Quality.BAD
    assert reading_of(_dv([1.0, 2.0])).reason == "unsupported type array"
    assert convert_value(ua.LocalizedText("running")) == ("running", "")
    assert convert_value(True) == (True, "")
