"""``solarsync demo``: the four sandbox APIs on loopback -> ``warehouse/demo.duckdb``.

- ``run``: the SolarKnock act (full sync, changes on the server, incremental sync, a query),
  then the other acts, then the report;
- ``acts``: HEAT, SolarAssistant and the Tesla gateway, an act each;
- ``show``: the narration on stdout.
"""

from pipelines.demo.run import run_demo

__all__ = ["run_demo"]
