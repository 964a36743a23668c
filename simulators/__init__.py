"""Simulators of the plant devices: a deterministic plant model served over Modbus and OPC UA.

plant.py          PlantModel: seeded cement plant, exact counter integrals, faults, ground truth (the oracle)
process.py        the process itself: every device's instantaneous values as pure functions of model time
groundtruth.py    JSON-lines ground truth writer and reader (``GroundTruth.load(path).totals(...)``)
image.py          register images built from device profiles; the independent encoder (wraps counters)
modbus_server.py  ModbusSimulator on pymodbus' server: tcp, rtu_over_tcp, rtu_pty; fault injection
faults.py         FaultPlan (request schedules, counter faults) and FaultStats (exact counts)
registry.py       function codes served in this process, for the suite's read-only check
layout.py         the whole plant's device -> profile and unit id, and a site file that polls it
__main__.py       ``python -m simulators modbus``
opcua_server.py   the same model over OPC UA (the OPC UA work's module)
"""
