"""The energy-centre ingestor: MQTT (shared subscription, manual acks) -> InfluxDB. ``energy-center`` runs it.

    config.py      center.yaml models and loader (errors as file:line:col)
    consumer.py    paho 2.x MQTT 5 client: persistent session, $share subscriptions, receive maximum, manual ack
    ingestor.py    the pipeline: decode + validate -> batch -> write with retries -> quarantine -> ack
    schema.py      wire message -> InfluxDB points (measurements, tags, fields, timestamps)
    lineproto.py   line protocol escaping, field types, precision
    influx.py      InfluxWriter protocol; V1Writer (/write) and V2Writer (influxdb-client)
    deadletter.py  quarantine file / topic
    gaps.py        per (gateway, boot) seq gap detection, shared across group members
    cli.py         run / validate

Imports only agent.model, agent.errors and agent.wire from the rest of the package.
"""
