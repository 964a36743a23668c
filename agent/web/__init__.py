"""The agent's local, read-only web page for technicians (``web:`` in the site file; off by default).

``live`` holds what the page shows beyond the agent's own health (last polls, KPI trends, recent log warnings),
``view`` turns it into the frames pushed to browsers, ``server`` serves them with aiohttp, ``auth`` keeps password
hashes and sessions, ``actions`` runs probe/plan/validate as child processes, ``mask`` hides secrets of the site
file, ``static/`` holds the page (plain HTML, CSS and JavaScript; no build step, nothing from a CDN).

Layering: imports model, errors and config (and aiohttp); the runtime starts it and implements ``view.AgentView``.
Nothing here writes to a device or changes the configuration.
"""
