"""Publishers: ``mqtt`` (MqttSink: paho on the asyncio loop, QoS 1 from the spool), ``forward`` (window, cursors,
replay rate; the SpoolReader protocol the sink reads through), ``connect`` (backoff, TLS context, error wording)
and ``topics`` (topic names, checked levels)."""
