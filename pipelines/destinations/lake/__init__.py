"""The Delta lake destination (``--destination filesystem``): see ``warehouse.py``.

- ``warehouse``: :class:`LakeWarehouse`, the destination seam's hooks,
- ``settings``: ``[solarsync.lake]``,
- ``bucket``: local or remote buckets, credentials kept secret, errors of a bucket,
- ``delta``: dlt's filesystem destination with merge jobs matching the DuckDB warehouse,
- ``tableviews``: a Delta table's current files as a DuckDB ``SELECT``,
- ``publish``: the DuckDB file of views over the current Parquet files (a script on S3),
- ``maintenance``: compaction and vacuum (``solarsync lake optimize``).
"""

from pipelines.destinations.lake.warehouse import LakeWarehouse

__all__ = ["LakeWarehouse"]
