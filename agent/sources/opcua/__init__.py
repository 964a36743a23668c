"""OPC UA acquisition (issue 3).

Public API:
    OpcuaSource(config, base_dir)         a ``agent.sources.base.Source`` for one OPC UA device (one session)
    probe_opcua(loaded, device_name)      one Read of every point of a device, for ``energy-agent probe``

Modules: ``plan`` (config -> plan, namespace resolution), ``security`` (policies, trust, identity), ``pki``
(certificates and the trust list), ``session`` (one session: connect, resolve, read, subscribe), ``errors`` (asyncua
exceptions -> agent.errors, the one boundary), ``requests`` (Read / CreateSubscription / CreateMonitoredItems built
from the plan), ``status`` (status code -> quality), ``source`` (supervisor and per-interval results), ``browse``
(address-space walk for commissioning), ``probe``.
"""

from agent.sources.opcua.probe import probe_opcua
from agent.sources.opcua.source import OpcuaSource

__all__ = ["OpcuaSource", "probe_opcua"]
