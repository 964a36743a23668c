"""DL/T 645-2007 / -1997 acquisition: read-only frames (frame.py), BCD values (values.py), one meter's poll
(device.py). Meters hang on the same buses as Modbus RTU devices; the bus source (agent.sources.modbus.source)
polls both kinds through one link, and the runtime (agent.runtime.parts) puts them together.
"""

from agent.sources.dlt645.device import Dlt645Poller, read_address

__all__ = ["Dlt645Poller", "read_address"]
