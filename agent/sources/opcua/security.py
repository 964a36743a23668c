"""OPC UA security for one session: policies and modes, the server certificate checked against the trust list
(never trusted because it was presented), the client's application certificate and the user identity.

The password is read when a session is opened, from its file or environment variable, and never logged.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto import security_policies
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError
from cryptography import x509

from agent.config.opcua import SecurityMode, SecurityPolicy
from agent.errors import SecurityError
from agent.sources.opcua import pki
from agent.sources.opcua.plan import DevicePlan

POLICY_CLASS: dict[SecurityPolicy, type[security_policies.SecurityPolicy]] = {
    SecurityPolicy.NONE: security_policies.SecurityPolicyNone,
    SecurityPolicy.BASIC256SHA256: security_policies.SecurityPolicyBasic256Sha256,
    SecurityPolicy.AES128_SHA256_RSAOAEP: security_policies.SecurityPolicyAes128Sha256RsaOaep,
    SecurityPolicy.AES256_SHA256_RSAPSS: security_policies.SecurityPolicyAes256Sha256RsaPss,
}
MODE: dict[SecurityMode, ua.MessageSecurityMode] = {
    SecurityMode.NONE: ua.MessageSecurityMode.None_,
    SecurityMode.SIGN: ua.MessageSecurityMode.Sign,
    SecurityMode.SIGN_AND_ENCRYPT: ua.MessageSecurityMode.SignAndEncrypt,
}


def read_password(plan: DevicePlan) -> str:
    """The password from its file (first line) or environment variable. Never logged."""
    auth = plan.auth
    if auth.password_file is not None:
        try:
            text = auth.password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise SecurityError(f"{plan.device}: cannot read password file {auth.password_file}: {exc}") from None
        return text.splitlines()[0] if text else ""
    assert auth.password_env is not None
    value = os.environ.get(auth.password_env)
    if value is None:
        raise SecurityError(f"{plan.device}: environment variable {auth.password_env} (the password) is not set")
    return value


async def server_certificate(
    endpoint: str, policy: SecurityPolicy, mode: SecurityMode, timeout_s: float, device: str = ""
) -> bytes:
    """The certificate the server shows for (policy, mode), asked over an unsecured discovery channel.

    Nothing is trusted here: the caller checks the bytes against the trust list. ``device`` prefixes messages.
    """
    who = f"{device}: " if device else ""
    probe = Client(endpoint, timeout=timeout_s)
    endpoints = await asyncio.wait_for(probe.connect_and_get_server_endpoints(), timeout_s * 2)
    uri = POLICY_CLASS[policy].URI
    for ep in endpoints:
        if ep.SecurityPolicyUri == uri and ep.SecurityMode == MODE[mode]:
            if not ep.ServerCertificate:
                raise SecurityError(f"{who}{endpoint} offers {policy.value}/{mode.value} without a certificate")
            der: bytes = ep.ServerCertificate
            length = int.from_bytes(der[2:4], "big") + 4  # first certificate of a chain
            return der[:length]
    offered = sorted({f"{ep.SecurityPolicyUri.rsplit('#', 1)[-1]}/{ep.SecurityMode.name}" for ep in endpoints})
    raise SecurityError(f"{who}{endpoint} has no endpoint {policy.value}/{mode.value}; it offers {', '.join(offered)}")


async def configure_security(client: Client, plan: DevicePlan) -> None:
    """Secure channel pinned to a server certificate found in the trust list; SecurityError otherwise."""
    if not plan.secure:
        return
    assert plan.client_cert is not None and plan.client_key is not None and plan.trust_dir is not None
    der = await server_certificate(plan.endpoint, plan.policy, plan.mode, plan.timeout_s, plan.device)
    cert = x509.load_der_x509_certificate(der)
    decision = pki.check_trusted(cert, plan.trust_dir)
    if not decision.trusted:
        raise SecurityError(
            f"{plan.device}: server certificate of {plan.endpoint} is not trusted: {decision.why}; "
            f"it is {pki.describe(cert)}; check it and pin it with: energy-agent opcua trust {plan.endpoint} "
            f"--trust-dir {plan.trust_dir}"
        )
    try:
        own = pki.load_certificate(plan.client_cert)
    except (OSError, ValueError) as exc:
        raise SecurityError(f"{plan.device}: cannot load client certificate {plan.client_cert}: {exc}") from None
    client.application_uri = pki.application_uri_of(own) or client.application_uri
    pinned = der

    async def validate(server_cert: Any, _app: ua.ApplicationDescription) -> None:
        if pki.der_of(server_cert) != pinned:  # the session must be with the certificate we checked
            raise UaStatusCodeError(StatusCodes.BadCertificateUntrusted)  # type: ignore[no-untyped-call]  # unannotated in asyncua

    client.certificate_validator = validate
    try:
        await client.set_security(
            POLICY_CLASS[plan.policy],
            str(plan.client_cert),
            str(plan.client_key),
            server_certificate=der,
            mode=MODE[plan.mode],
        )
    except (OSError, ValueError) as exc:
        raise SecurityError(f"{plan.device}: cannot load client certificate or key: {exc}") from None


async def configure_auth(client: Client, plan: DevicePlan) -> None:
    """User identity: anonymous, user name with the password read now, or a user certificate."""
    auth = plan.auth
    if auth.kind == "username":
        assert auth.username is not None
        client.set_user(auth.username)
        client.set_password(read_password(plan))
    elif auth.kind == "certificate":
        assert auth.cert_file is not None and auth.key_file is not None
        try:
            await client.load_client_certificate(str(auth.cert_file))
            await client.load_private_key(auth.key_file)
        except (OSError, ValueError) as exc:
            raise SecurityError(f"{plan.device}: cannot load user certificate or key: {exc}") from None
