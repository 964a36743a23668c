"""Publishers: ``mqtt`` (MqttSink, QoS 1 from the spool) and ``topics`` (topic names, checked levels)."""
