"""Simulators of the plant devices: a deterministic plant model served over Modbus and OPC UA."""
