"""The DuckDB destination (the default): a file BI tools open, published after every load.

- ``warehouse``: :class:`DuckDBWarehouse` (the seam's hooks) and :class:`DuckDBReader`;
- ``settings``: ``[destination.duckdb]`` (the file, memory, lock timeout, storage version);
- ``files``: where the working file, its lock and WAL live, and copying them;
- ``lock``: the warehouse lock (one process at a time uses the working file);
- ``publish``: the published copy (checkpoint, copy, atomic rename), adopting and converting
  earlier versions' warehouses;
- ``storage``: DuckDB storage versions (files DuckDB 1.4 LTS opens);
- ``catalog``: SQL that binds whatever name a reader's DuckDB gives the file;
- ``views``: the analytics views in a DuckDB file (also the lake's views file).
"""

from pipelines.destinations.duckdb.settings import DEFAULT_WAREHOUSE, DuckDBSettings, duckdb_path
from pipelines.destinations.duckdb.warehouse import DuckDBReader, DuckDBWarehouse

__all__ = ["DEFAULT_WAREHOUSE", "DuckDBReader", "DuckDBSettings", "DuckDBWarehouse", "duckdb_path"]
