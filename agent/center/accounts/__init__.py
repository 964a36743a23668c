"""Energy accounts of declared energy-using units: the account, entries, meter register, monthly report, upload.

    config.py        the optional ``accounts`` section of center.yaml (units, carriers, meters, products, receivers)
    coefficients.py  standard-coal and CO2 coefficients and levels from agent/data (snapshot kept per closed period)
    periods.py       15 minutes, day, month, year to date in the unit's time zone
    store.py         accounts.sqlite (WAL, transactions, versioned schema): one file to back up
    metered.py       counter readings from InfluxDB -> 15-minute quantities, coverage and gap causes
    account.py       per carrier and period: quantities, kgce (both electricity methods), CO2, totals, products,
                     quality; closing and restatements
    entries.py       manual entries: CSV import and single entries, positioned errors, all-or-nothing
    report.py        the monthly report: PDF (signable), CSV, XLSX with the same figures
    outbox.py        upload records, sending with backoff, acknowledgement, retention
    adapters/        wire formats per receiver (generic JSON; one module per province)
    service.py       the round ``energy-center run`` does every few seconds
    cli.py           ``energy-center report|entries|meters|outbox|accounts`` commands

Imports agent.center.config (InfluxDB settings), agent.errors and agent.config's YAML/diagnostics only through the
centre config; the factor tables are read from agent/data (not through agent.kpi: issue 16 layering).
"""
