"""The OPC UA service requests a session sends, built from the plan: pure functions, no I/O.

``read_parameters`` (Read of one attribute of many nodes, both timestamps), ``subscription_parameters``
(CreateSubscription: publishing interval, keep-alive and lifetime counts) and ``monitored_item_request``
(CreateMonitoredItems: one item per point, its client handle the point index + 1, sampling, queue, deadband).
"""

from __future__ import annotations

import math

from asyncua import ua
from asyncua.ua.attribute_ids import AttributeIds

from agent.sources.opcua.plan import DevicePlan, PointPlan


def read_parameters(nodes: list[ua.NodeId], attribute: AttributeIds) -> ua.ReadParameters:
    params = ua.ReadParameters()
    params.TimestampsToReturn = ua.TimestampsToReturn.Both
    for node_id in nodes:
        rv = ua.ReadValueId()
        rv.NodeId = node_id
        rv.AttributeId = attribute
        params.NodesToRead.append(rv)
    return params


def subscription_parameters(plan: DevicePlan) -> ua.CreateSubscriptionParameters:
    interval_ms = plan.interval_s * 1000.0
    keepalive_s = max(plan.interval_s, 2.0)
    params = ua.CreateSubscriptionParameters()
    params.RequestedPublishingInterval = interval_ms
    params.RequestedMaxKeepAliveCount = max(1, math.ceil(keepalive_s / plan.interval_s))
    # the server deletes the subscription when nobody asks for it: after the session timeout, not before
    lifetime_s = max(plan.session_timeout_s, 3 * keepalive_s)
    params.RequestedLifetimeCount = max(3 * params.RequestedMaxKeepAliveCount, math.ceil(lifetime_s / plan.interval_s))
    params.MaxNotificationsPerPublish = 0
    params.PublishingEnabled = True
    params.Priority = 0
    return params


def monitored_item_request(point: PointPlan, index: int, node_id: ua.NodeId) -> ua.MonitoredItemCreateRequest:
    rv = ua.ReadValueId()
    rv.NodeId = node_id
    rv.AttributeId = AttributeIds.Value
    mparams = ua.MonitoringParameters()
    mparams.ClientHandle = index + 1
    mparams.SamplingInterval = point.sampling_interval_ms
    mparams.QueueSize = point.queue_size
    mparams.DiscardOldest = True
    if point.deadband is not None:
        kind, value = point.deadband
        f = ua.DataChangeFilter()
        f.Trigger = ua.DataChangeTrigger.StatusValue
        f.DeadbandType = ua.DeadbandType.Absolute if kind == "absolute" else ua.DeadbandType.Percent
        f.DeadbandValue = value
        mparams.Filter = f
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = rv
    request.MonitoringMode = ua.MonitoringMode.Reporting
    request.RequestedParameters = mparams
    return request
