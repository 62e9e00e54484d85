"""A warehouse of the single-account release gets its accounts in place (docs/accounts.md,
"Upgrading a warehouse").

Before accounts, a source's rows carried no ``account`` column (SolarKnock's no ``org_id``)
and their keys did not include one. The first run of any account of the source after the
upgrade, holding the dataset's load lock and before extracting anything, adds the columns to
every table of the source where they are missing and fills them where they are NULL:
``account`` = ``default`` (those rows came from ``[sources.<source>]``, which stays the account
``default`` with the same dlt pipeline, state and checkpoints) and the source's own account id
(SolarKnock: the id of the one row of its ``org`` table, the org of that key). The next merge
finds those rows under the new keys: nothing is read from the API again, nothing doubled.

Idempotent (only NULLs are filled, in one transaction per table on SQL destinations); once
done, the pipeline's local state records it and later runs skip the check.
"""

from __future__ import annotations

import logging
from typing import Any

from pipelines.destinations import Warehouse
from pipelines.registry import SourceSpec
from sources.common.accounts import COLUMN, DEFAULT

logger = logging.getLogger("solarsync")

#: the pipeline's local state key, and the value recorded once the source's tables are done
STATE_KEY = "solarsync_accounts"
VERSION = 1


def upgrade(pipeline: Any, spec: SourceSpec, warehouse: Warehouse) -> int:
    """Fill the account columns of the rows an earlier release loaded into ``spec``'s
    dataset; returns how many rows were filled. Call holding the warehouse for writing."""
    if not spec.accounts or _done(pipeline):
        return 0
    values = {COLUMN: DEFAULT}
    if spec.account_id:
        values[spec.account_id] = legacy_account_id(pipeline, spec, warehouse)
    filled = 0
    for table in spec.all_tables():
        count = warehouse.fill_columns(pipeline, table, values)
        if count:
            logger.warning(
                "%s.%s: %d row(s) loaded before accounts now belong to the account %r%s (one time)",
                spec.name,
                table,
                count,
                DEFAULT,
                f" ({spec.account_id} {values[spec.account_id]})" if spec.account_id else "",
            )
            filled += count
    pipeline.set_local_state_val(STATE_KEY, VERSION)
    return filled


def legacy_account_id(pipeline: Any, spec: SourceSpec, warehouse: Warehouse) -> str:
    """The account id of the rows an earlier release loaded: the value in the one row of the
    registry's ``legacy_account_id`` table that has no account yet (SolarKnock: ``org.id``);
    the account name ``default`` when that table is missing, empty or ambiguous (the source
    itself stamps the account name where the API does not name the account: a SolarKnock
    server without /org)."""
    if spec.legacy_account_id is None:
        return DEFAULT
    table, column = spec.legacy_account_id
    values = warehouse.legacy_values(pipeline, table, column, COLUMN)
    return values[0] if len(values) == 1 else DEFAULT


def _done(pipeline: Any) -> bool:
    try:
        return pipeline.get_local_state_val(STATE_KEY) == VERSION
    except (KeyError, Exception):
        return False


__all__ = ["STATE_KEY", "VERSION", "legacy_account_id", "upgrade"]
