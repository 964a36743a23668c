"""The asyncua boundary: whatever asyncua raises for a server's answer is the device's failure, whatever type it has
(AssertionError, struct.error, NotEnoughData, ValueError, ...); the same types raised in our own code are bugs."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from asyncua.common.utils import Buffer
from asyncua.ua import ua_binary

from agent.config.opcua import OpcuaDeviceConfig
from agent.errors import ConnectionLost
from agent.sources.opcua.errors import map_error
from agent.sources.opcua.plan import compile_device
from agent.sources.opcua.session import OpcuaSession


def _raised(call: object) -> BaseException:
    assert callable(call)
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("nothing raised")


def test_a_value_error_raised_inside_asyncua_on_a_bad_message_is_the_devices_failure() -> None:
    exc = _raised(lambda: ua_binary.nodeid_from_binary(Buffer(b"\x09\x00")))  # no NodeId encoding 9
    assert isinstance(exc, ValueError)
    mapped = map_error("kiln1", "opc.tcp://plc:4840", exc)
    assert isinstance(mapped, ConnectionLost)
    assert str(mapped) == (
        "kiln1: opc.tcp://plc:4840: the OPC UA client failed on the server's answer "
        "(ValueError: 9 is not a valid NodeIdType)"
    )


@pytest.mark.parametrize("exc", [AssertionError("invariant"), struct.error("unpack"), ValueError("x"), KeyError("x")])
def test_the_same_types_raised_in_our_code_are_bugs_and_propagate(exc: Exception) -> None:
    def ours() -> None:
        raise exc

    raised = _raised(ours)
    with pytest.raises(type(exc)):
        map_error("kiln1", "opc.tcp://plc:4840", raised)


def test_a_server_answering_another_number_of_results_breaks_the_session_not_the_agent() -> None:
    cfg = OpcuaDeviceConfig.model_validate(
        {
            "name": "kiln1",
            "endpoint": "opc.tcp://127.0.0.1:4840",
            "security": {"policy": "None", "mode": "None", "allow_none": True},
            "points": [{"name": "a", "node_id": "nsu=urn:x;s=a"}],
        }
    )
    session = OpcuaSession(compile_device(cfg, Path(".")))
    assert session._answers([1, 2], ["n1", "n2"]) == [1, 2]
    with pytest.raises(ConnectionLost, match=r"^kiln1: opc.tcp://127.0.0.1:4840 answered 1 results for 2 nodes$"):
        session._answers([1], ["n1", "n2"])
