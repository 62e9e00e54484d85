"""The Postgres destination (``--destination postgres``): see ``warehouse.py``.

- ``warehouse``: :class:`PostgresWarehouse`, the destination seam's hooks (connection, advisory
  lock, errors, reader),
- ``views``: publishing the analytics views (only what changed, short locks, grants kept),
- ``catalog``: what publishing reads from the catalog (columns, ACLs, dependent views, lock holders),
- ``config``: ``[destination.postgres]`` settings solarsync adds (``readers``, view locks).
"""

from pipelines.destinations.postgres.config import PostgresSettings
from pipelines.destinations.postgres.warehouse import (
    LOCK_NAMESPACE,
    PostgresReader,
    PostgresWarehouse,
    lock_key,
)

__all__ = ["LOCK_NAMESPACE", "PostgresReader", "PostgresSettings", "PostgresWarehouse", "lock_key"]
