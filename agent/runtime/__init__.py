"""The agent's process: the compile step that cross-checks a whole site, and the wiring of what it built.

    compile.py     compile_site(path) -> CompiledSite: load, per-device read plans, KPI cross-checks (exit 78)
    parts.py       builds sources, KPI engine, spool, MQTT sink from a compiled site: where the siblings meet
    agent.py       Agent: one TaskGroup of sources, sink, KPI timer, status, monitors and the systemd watchdog
    reload.py      plan_reload: on SIGHUP, which sources keep running, adopt the new config in place, stop or start
    webview.py     the running agent as the web page sees it (agent.web.view.AgentView)
    monitor.py     loop lag, poll jitter, poll-to-spool latency, liveness and the one-line status
    kpistate.py    the KPI engine's snapshot on disk, written atomically
    prometheus.py  /metrics exposition of the health snapshot

Sits above sources, kpi, spool, sinks and web (which never import each other) and below agent.cli.
"""
