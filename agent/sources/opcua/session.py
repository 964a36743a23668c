"""One OPC UA session to one endpoint: security and trust, authentication, node resolution, reads and one
subscription. asyncua exceptions are mapped into ``agent.errors`` by ``errors.map_error`` (one boundary); the
requests themselves are built by ``requests`` from the plan.

Lifecycle: ``async with OpcuaSession(plan) as s`` connects (GetEndpoints over an unsecured discovery channel, trust
check of the server certificate against ``trust_dir``, secure channel pinned to that certificate, CreateSession,
ActivateSession, namespace URIs resolved to today's indexes, every node checked; see ``security``); leaving the
block closes the session with its subscription (one CloseSession) when the server is still reachable, so nothing is
left on the server; an unreachable server drops both after ``session_timeout_s``. The session never writes.
asyncua's own auto-reconnect is off: ``OpcuaSource`` supervises.
Concurrency: one task reads or consumes notifications; ``lost`` is set from asyncua's callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent, Subscription
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds

from agent.errors import ConnectionLost, SecurityError, SourceError
from agent.sources.opcua.errors import CHANNEL_REFUSED, map_error
from agent.sources.opcua.plan import BrowseRef, DevicePlan, NodeRef, node_id_for, relative_path_for
from agent.sources.opcua.requests import monitored_item_request, read_parameters, subscription_parameters
from agent.sources.opcua.security import configure_auth, configure_security
from agent.sources.opcua.status import status_name

_CHUNK = 500  # nodes per Read / CreateMonitoredItems request


@dataclass(frozen=True, slots=True)
class PointError:
    """A point this session cannot read: ``reason`` for its samples (a status name where there is one), ``message``
    for logs and PollResult.errors (device, point, node and endpoint named)."""

    reason: str
    message: str


class OpcuaSession:
    def __init__(self, plan: DevicePlan, state_file: Path | None = None) -> None:
        self.plan = plan
        self.state_file = state_file  # this device's session token (0600), to close an orphan after a crash
        self.client: Client | None = None
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self.resolved: dict[int, ua.NodeId] = {}
        self.point_errors: dict[int, PointError] = {}
        self.subscription: Subscription | None = None
        self.requests = 0

    def fail(self, exc: BaseException) -> SourceError:
        """``map_error`` for this session, naming the client certificate when the server does not trust it."""
        error = map_error(self.plan.device, self.plan.endpoint, exc)
        text = str(error)
        untrusted = "BadCertificateUntrusted" in text or CHANNEL_REFUSED in text
        if isinstance(error, SecurityError) and untrusted and self.plan.client_cert:
            return SecurityError(f"{error}: the server does not trust this agent's certificate {self.plan.client_cert}")
        return error

    def _answers(self, results: list[Any], asked: list[Any]) -> list[Any]:
        """A server's results for ``asked``, one each: a server answering another number broke the protocol, which
        is the device's failure (ConnectionLost), not a bug of ours."""
        if len(results) != len(asked):
            raise ConnectionLost(
                f"{self.plan.device}: {self.plan.endpoint} answered {len(results)} results for {len(asked)} nodes"
            )
        return results

    def _point_error(self, index: int, reason: str, detail: str) -> None:
        message = f"{self.plan.device}: point {self.plan.points[index].name}: {detail}"
        self.point_errors[index] = PointError(reason, message)

    def mark_lost(self, reason: str) -> None:
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()

    async def _on_connection_lost(self, exc: Exception) -> None:
        self.mark_lost(str(exc) or type(exc).__name__)

    def _client(self) -> Client:
        plan = self.plan
        client = Client(plan.endpoint, timeout=plan.timeout_s, watchdog_intervall=min(1.0, plan.interval_s))
        client.name = client.description = f"energy-agent {plan.device}"
        client.session_timeout = int(plan.session_timeout_s * 1000)
        client.session_state_path = self.state_file
        return client

    async def __aenter__(self) -> OpcuaSession:
        plan = self.plan
        if self.state_file is not None and self.state_file.exists():
            await self._close_orphan()
        client = self._client()
        client.connection_lost_callback = self._on_connection_lost
        try:
            await configure_security(client, plan)
            await configure_auth(client, plan)
            await asyncio.wait_for(client.connect(auto_reconnect=False), plan.timeout_s * 3)
            self.client = client
            await self._resolve()
        except BaseException as exc:
            await self._close(client)
            self.client = None
            if isinstance(exc, Exception):
                raise self.fail(exc) from exc
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        client, self.client = self.client, None
        if client is not None:
            await self._close(client)

    async def _close(self, client: Client) -> None:
        """Close the session with its subscription if the server still answers; never raise.

        CloseSession(DeleteSubscriptions=true) removes both in one request. A lost session gets a short try. When
        it fails, the session's token stays in ``state_file`` and the next connect closes that orphan first (the
        server would otherwise keep it, and its subscription, for ``session_timeout_s``).
        """
        self.subscription = None
        timeout = min(self.plan.timeout_s, 1.0) if self.lost.is_set() else self.plan.timeout_s
        closed = False
        try:
            await asyncio.wait_for(client.close_session(), timeout)
            closed = True
        except Exception:  # the server is gone or does not answer: nothing more to do now
            pass
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close_secure_channel(), min(timeout, 1.0))
        with contextlib.suppress(Exception):
            client.disconnect_socket()
        if closed and self.state_file is not None:
            self.state_file.unlink(missing_ok=True)

    async def _close_orphan(self) -> None:
        """ActivateSession on the token a lost session left behind (OPC UA Part 4 §6.7), then close it with its
        subscriptions. When the server no longer knows it, a fresh session is made and closed. Never raises; the
        token is kept while the server cannot be reached (asyncua drops it once older than the session timeout).
        """
        assert self.state_file is not None
        orphan = self._client()
        try:
            await configure_security(orphan, self.plan)
            await configure_auth(orphan, self.plan)
            await asyncio.wait_for(orphan.connect(auto_reconnect=False), self.plan.timeout_s * 3)
        except Exception:
            with contextlib.suppress(Exception):
                orphan.disconnect_socket()
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(orphan.close_session(), self.plan.timeout_s)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(orphan.close_secure_channel(), 1.0)
        with contextlib.suppress(Exception):
            orphan.disconnect_socket()
        self.state_file.unlink(missing_ok=True)

    async def _resolve(self) -> None:
        """Namespace URIs -> today's indexes, browse paths -> node ids, and every node checked to exist."""
        client = self.client
        assert client is not None
        plan = self.plan
        array: list[str] = await client.get_namespace_array()
        namespaces = {uri: i for i, uri in enumerate(array)}
        browse: list[tuple[int, BrowseRef]] = []
        unknown: dict[str, list[int]] = {}  # namespace URI the server does not have -> its points
        for i, point in enumerate(plan.points):
            address = point.address
            try:
                if isinstance(address, NodeRef):
                    self.resolved[i] = node_id_for(address, namespaces)
                else:
                    relative_path_for(address, namespaces)
                    browse.append((i, address))
            except KeyError as missing:
                unknown.setdefault(str(missing.args[0]), []).append(i)
        for uri, indexes in unknown.items():  # one message per namespace (logged once), not one per point
            names = [plan.points[i].name for i in indexes]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            listed = ", ".join(f"[{n}] {u}" for n, u in enumerate(array))
            detail = (
                f"namespace {uri} is not on {plan.endpoint} ({len(names)} point(s): {shown}); check namespace_uri "
                f"or nsu= against the server's namespaces: {listed}"
            )
            for i in indexes:
                self.point_errors[i] = PointError(f"namespace {uri} is not on the server", f"{plan.device}: {detail}")
        for start in range(0, len(browse), _CHUNK):
            chunk = browse[start : start + _CHUNK]
            paths = [relative_path_for(ref, namespaces) for _, ref in chunk]
            results = await client.translate_browsepaths(ua.NodeId.from_string(f"i={ObjectIds.ObjectsFolder}"), paths)
            self.requests += 1
            for (i, ref), result in zip(chunk, self._answers(results, chunk), strict=True):
                if result.StatusCode.is_good() and result.Targets:
                    target = result.Targets[0].TargetId
                    self.resolved[i] = ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType)
                else:
                    name = status_name(result.StatusCode.value)
                    self._point_error(i, name, f"browse path {ref.text()} not found on {plan.endpoint} ({name})")
        await self._check_nodes()

    async def _check_nodes(self) -> None:
        items = sorted(self.resolved.items())
        for start in range(0, len(items), _CHUNK):
            chunk = items[start : start + _CHUNK]
            values = await self._read([n for _, n in chunk], AttributeIds.NodeClass)
            for (i, node_id), dv in zip(chunk, self._answers(values, chunk), strict=True):
                point = self.plan.points[i]
                code = dv.StatusCode.value if dv.StatusCode is not None else 0
                if code & 0x80000000:
                    where = f"node {point.address.text()} ({node_id.to_string()})"
                    name = status_name(code)
                    self._point_error(i, name, f"{where} does not exist on {self.plan.endpoint} ({name})")
                elif dv.Value is not None and dv.Value.Value != ua.NodeClass.Variable:
                    self._point_error(i, "not a variable", f"node {point.address.text()} is not a variable")
        for i in self.point_errors:
            self.resolved.pop(i, None)

    async def _read(self, nodes: list[ua.NodeId], attribute: AttributeIds) -> list[ua.DataValue]:
        assert self.client is not None
        params = read_parameters(nodes, attribute)
        self.requests += 1
        result: list[ua.DataValue] = await asyncio.wait_for(self.client.uaclient.read(params), self.plan.timeout_s)
        return result

    async def read_values(self) -> dict[int, ua.DataValue]:
        """One polled read of every resolved point (in chunks). Raises SourceError."""
        items = sorted(self.resolved.items())
        out: dict[int, ua.DataValue] = {}
        try:
            for start in range(0, len(items), _CHUNK):
                chunk = items[start : start + _CHUNK]
                values = await self._read([n for _, n in chunk], AttributeIds.Value)
                out.update((i, dv) for (i, _), dv in zip(chunk, self._answers(values, chunk), strict=True))
        except Exception as exc:
            raise self.fail(exc) from exc
        return out

    @property
    def keepalive_s(self) -> float:
        """Longest silence between two publish responses of a healthy subscription, as the server revised it."""
        sub = self.subscription
        if sub is None:
            return max(self.plan.interval_s, 2.0)
        params = sub.parameters
        return max(
            float(params.RequestedPublishingInterval) * max(int(params.RequestedMaxKeepAliveCount), 1) / 1000.0,
            self.plan.interval_s,
        )

    def publish_silence_s(self, now_monotonic: float) -> float | None:
        """Seconds since the last publish response (data or keep-alive), or None before the first one."""
        sub = self.subscription
        if sub is None or sub.last_publish_at is None:
            return None
        return now_monotonic - float(sub.last_publish_at)

    async def subscribe(self) -> Subscription:
        """One subscription with a monitored item per resolved point. Item failures become point errors."""
        assert self.client is not None
        plan = self.plan
        try:
            sub = await self.client.create_subscription(
                subscription_parameters(plan), handler=None, queue_maxsize=max(1000, 4 * len(plan.points))
            )
            self.subscription = sub
            self.requests += 1
            items = sorted(self.resolved.items())
            for start in range(0, len(items), _CHUNK):
                chunk = items[start : start + _CHUNK]
                requests = [monitored_item_request(plan.points[i], i, node_id) for i, node_id in chunk]
                results = await sub.create_monitored_items(requests)
                self.requests += 1
                for (i, _), result in zip(chunk, self._answers(results, chunk), strict=True):
                    if isinstance(result, ua.StatusCode):
                        name = status_name(result.value)
                        detail = f"the server refused to monitor {plan.points[i].address.text()} ({name})"
                        self._point_error(i, name, detail)
        except Exception as exc:
            raise self.fail(exc) from exc
        return sub

    async def notifications(self, sub: Subscription) -> AsyncIterator[tuple[int, ua.DataValue]]:
        """(point index, DataValue) per data change until the subscription reports a bad status or ends."""
        async for event in sub:
            if isinstance(event, DataChangeEvent):
                handle = event.data.subscription_data.client_handle
                if handle is not None:
                    yield handle - 1, event.data.monitored_item.Value
            elif isinstance(event, StatusChangeEvent):
                status = event.notification.Status
                if status is not None and not status.is_good():
                    self.mark_lost(f"subscription {status_name(status.value)}")
                    return

    def check_alive(self, now_monotonic: float) -> None:
        """Mark the session lost when the transport dropped or no publish response (data or keep-alive) came
        for two keep-alive periods plus a request timeout."""
        client = self.client
        if client is not None and client.uaclient.state.name != "CONNECTED":
            self.mark_lost(f"client {client.uaclient.state.name.lower()}")
            return
        silent = self.publish_silence_s(now_monotonic)
        if silent is not None and silent > 2 * self.keepalive_s + self.plan.timeout_s:
            self.mark_lost(f"keep-alive lost: no publish response for {silent:.1f} s")
