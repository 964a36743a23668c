"""What a service started by systemd speaks: the notify protocol (``notify.SystemdNotifier``: READY, STATUS,
WATCHDOG, ...) and journald's priority prefixes (``journal.JournalFormatter``, ``journal.error_prefix``).

Standard library only, at the bottom of the layers beside ``agent.model`` and ``agent.errors``: both services, the
agent (``agent.runtime``, ``agent.cli``) and the centre ingestor (``agent.center.cli``), use it.
"""
