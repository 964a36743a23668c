"""The energy-centre ingestor: MQTT (shared subscription, manual acks) -> InfluxDB. ``energy-center`` runs it.

    config.py      center.yaml models, read with agent.config's YAML loader (errors as file:line:col)
    consumer.py    paho 2.x MQTT 5 client: persistent session, $share subscriptions, receive maximum, manual ack
    ingestor.py    the pipeline: batch -> write with retries -> quarantine -> ack; liveness for the watchdog
    intake.py      one message in: size, decode + validate, topic check, limits -> lines and/or a dead letter
    limits.py      what one gateway may write: items per message, series per gateway, clock-skew window
    schema.py      wire message -> InfluxDB points (measurements, tags, fields, timestamps)
    lineproto.py   line protocol escaping, field types, precision
    influx.py      InfluxWriter protocol; V1Writer (/write), VictoriaWriter (/influx/write, /insert/<tenant>/...)
                   and V2Writer (influxdb-client)
    fleet.py       one ingestor per broker (``brokers:``), side by side in one process
    deadletter.py  quarantine file / topic
    gaps.py        per (gateway, boot) seq gap detection, shared across group members
    cli.py         run / validate / --version

Imports agent.model, agent.errors and agent.wire; config.py also agent.config's YAML loader and diagnostics (one
way to read and report config files), cli.py agent.config's refusal and agent.systemd's notifier. Never agent.cli
or agent.runtime (the agent's own process), which sit above it (tests/unit/test_import_graph.py).
"""
