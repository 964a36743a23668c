"""What a commissioning fault most likely means, in one sentence a field technician can act on.

``hint(reason)`` takes a sample's reason or an error line from a poll (Modbus exception names, timeouts, lost
connections, OPC UA status names) and returns the likely cause and what to check, or None when there is nothing
better to say than the reason itself. Used by ``probe`` (and ``browse``) to print each hint once per device.
"""

from __future__ import annotations

_CONNECT = (
    "nothing accepts the connection: check host and port (502 for Modbus TCP, 4840 for OPC UA), "
    "the network cable and any firewall between the gateway and the device"
)
_NO_REPLY = (
    "no reply: check host and port (or the bus's serial port, baud rate and parity), the wiring "
    "(RS-485 A/B swapped, termination), and that unit_id is the device's Modbus address"
)
_GATEWAY = (
    "the gateway is reachable but the device behind it does not answer: check unit_id (the device's Modbus "
    "address), then the serial side of the gateway (baud rate, parity, A/B wiring)"
)
_GARBLED = (
    "replies arrive garbled: check baud rate, parity and stop bits on both ends, termination and shielding, "
    "and that no two devices on the line share a unit_id"
)
_CERTIFICATE = (
    "a certificate is not trusted: give the agent's client_cert to the server's administrator to trust, and pin "
    "the server's certificate in trust_dir with energy-agent opcua trust"
)

# (text found in the reason, hint), first match wins: specific names before general words.
_RULES: tuple[tuple[str, str], ...] = (
    (
        "ILLEGAL DATA ADDRESS",
        "the device has no register there: check the point's address and the profile's address_base (0 or 1), "
        "its kind (holding or input register), and that the profile matches this device's model and firmware",
    ),
    (
        "ILLEGAL FUNCTION",
        "the device cannot read that table: check the point's kind in the profile (holding_register or "
        "input_register, coil or discrete_input)",
    ),
    (
        "ILLEGAL DATA VALUE",
        "the device refuses a request this long: set max_registers_per_request (and max_gap) lower for this device",
    ),
    ("GATEWAY TARGET DEVICE FAILED", _GATEWAY),
    ("GATEWAY PATH UNAVAILABLE", _GATEWAY),
    (
        "SERVER DEVICE BUSY",
        "the device is busy: raise the bus's pause_ms or the device's interval_s",
    ),
    ("BadUserAccessDenied", "the server refused the user: check auth.username and the password file (first line)"),
    (
        "BadIdentityToken",
        "the server does not accept this kind of login: configure auth (anonymous, username or certificate) "
        "the way the server's user settings allow",
    ),
    ("BadSecurityChecksFailed", _CERTIFICATE),
    ("BadCertificate", _CERTIFICATE),
    ("does not trust this agent's certificate", _CERTIFICATE),
    ("not trusted", _CERTIFICATE),
    (
        "BadSecurityPolicyRejected",
        "the server does not offer this security: check security.policy and mode against the server's endpoints",
    ),
    (
        "BadNodeIdUnknown",
        "the server has no such node: check node_id (or browse_path and namespace_uri); "
        "energy-agent browse lists the server's nodes",
    ),
    (
        "is not on the server",
        "the server has no such namespace URI: copy it exactly from the server's namespace list (in the error, or "
        "energy-agent browse); the URI, not the index, is what stays stable",
    ),
    ("BadNoMatch", "no node at that browse path: check browse_path and namespace_uri (energy-agent browse)"),
    ("BadBrowseName", "no node at that browse path: check browse_path and namespace_uri (energy-agent browse)"),
    ("BadNotReadable", "the node is not readable for this user: ask the server's administrator for read access"),
    (
        "does not resolve",
        "the gateway cannot look up this host name: check its spelling in the site file, /etc/hosts and the "
        "gateway's DNS server (an IP address needs no DNS)",
    ),
    (
        "has not dialled in",
        "the DTU has not connected to the agent: check the server address and port set in the DTU (dtu_listener), "
        "that its registration packet equals the bus's registration, and its SIM, APN and signal",
    ),
    (
        "no such data item",
        "the meter does not have this DL/T 645 data identifier: remove the point or use a profile for this meter "
        "model (energy-agent reference dlt645 lists the identifiers)",
    ),
    (
        "reply from address",
        "another meter answered: check the device's address (the 12 digits on its nameplate) and that no two meters "
        "on the line share one",
    ),
    (
        "password wrong",
        "the meter refuses to be read without authorisation: some meters lock their RS-485 port; ask the utility",
    ),
    (
        "garbled bytes",
        "bytes arrive but no valid frame: check baud rate (DL/T 645 meters: often 2400, also 1200, 4800 or 9600) "
        "and parity (8E1 is their standard) against the meter's settings, and the A/B wiring",
    ),
    ("invalid BCD", "the reply's digits are not decimal: check the point's format against the meter's manual"),
    ("refused", _CONNECT),
    ("cannot connect", _CONNECT),
    ("no route", _CONNECT),
    ("unreachable", _CONNECT),
    ("timeout", _NO_REPLY),
    ("no answer", _NO_REPLY),
    ("CRC error", _GARBLED),
    ("garbage on the line", _GARBLED),
    ("wrong byte count", _GARBLED),
    ("reply from unit", _GARBLED),
    (
        "out of range",
        "the value is outside the point's range: check type, scale and order (probe --orders), or widen range",
    ),
    ("not a number", "the registers do not decode to a number: check type and order (probe --orders)"),
)


def hint(reason: str) -> str | None:
    """The likely cause of ``reason`` and what to check; None when no rule knows it."""
    folded = reason.casefold()
    for needle, text in _RULES:
        if needle.casefold() in folded:
            return text
    return None


def hints(reasons: list[str]) -> list[str]:
    """The distinct hints for ``reasons``, in the order their first reason came."""
    out: list[str] = []
    for reason in reasons:
        text = hint(reason)
        if text is not None and text not in out:
            out.append(text)
    return out
