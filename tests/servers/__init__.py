"""Real servers for tests: started on free loopback ports in temporary folders, stopped by PID.

Nothing here is mocked: ``mosquitto`` is Debian's broker, ``influxd`` Debian's InfluxDB 1.x,
``victoria-metrics`` Debian's VictoriaMetrics (for the InfluxDB v2 write API). Each helper skips the test with a
clear reason only when the binary is missing, which ``deploy/test.sh`` prevents by installing it.
"""
