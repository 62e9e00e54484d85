"""The Delta lake destination (``--destination filesystem``): see ``warehouse.py``.

- ``warehouse``: :class:`LakeWarehouse`, the destination seam's hooks and configuration,
- ``delta``: dlt's filesystem destination with merge jobs matching the DuckDB warehouse,
- ``publish``: the DuckDB file of views over the current Parquet files,
- ``maintenance``: compaction and vacuum (``solarsync lake optimize``).
"""

from pipelines.lake.warehouse import LakeWarehouse

__all__ = ["LakeWarehouse"]
