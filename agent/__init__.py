"""Plant energy edge agent.

Pipeline: sources -> samples -> kpi -> spool -> sinks. ``config`` compiles YAML into a checked plan before any
socket opens; ``runtime`` wires the pieces together; ``center`` is the energy-centre ingestor.
"""

__version__ = "0.1.0"
