"""The dlt resources that write ``lead_attachments``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
from dlt.sources import DltResource

from sources.common import accounts
from sources.solarknock.attachments.model import COLUMNS, AttachmentsConfig
from sources.solarknock.attachments.sync import AttachmentSync
from sources.solarknock.client import SolarKnockClient
from sources.solarknock.settings import (
    ATTACHMENT_RETRIES_RESOURCE,
    ATTACHMENTS_TABLE,
    ORG_ID_COLUMN,
)


def attachment_resources(
    client: SolarKnockClient,
    leads: DltResource,
    config: AttachmentsConfig | None = None,
    *,
    max_attempts: int = 5,
    backoff_factor: float = 1.0,
    account: str = accounts.DEFAULT,
) -> list[DltResource]:
    """``lead_attachments`` (a transformer on ``leads``) and ``lead_attachment_retries``, for
    the org of ``client``'s key (``account``: the configured account running it)."""
    sync = AttachmentSync(
        client,
        config or AttachmentsConfig(),
        max_attempts=max_attempts,
        backoff_factor=backoff_factor,
        account=account,
    )

    def hints() -> dict[str, Any]:
        return {
            "write_disposition": {"disposition": "merge", "strategy": "delete-insert"},
            "primary_key": accounts.keyed(("lead_id", "file_id"), ORG_ID_COLUMN),
            "columns": {
                **{name: dict(column) for name, column in COLUMNS.items()},
                **accounts.columns(ORG_ID_COLUMN, accounts.COLUMN),
            },
        }

    def lead_attachments(page: Any) -> Iterator[dict[str, Any]]:
        yield from sync.for_leads(page)

    def lead_attachment_retries() -> Iterator[dict[str, Any]]:
        yield from sync.retry_failed()

    return [
        dlt.transformer(lead_attachments, data_from=leads, name=ATTACHMENTS_TABLE, **hints()),
        dlt.resource(
            lead_attachment_retries,
            name=ATTACHMENT_RETRIES_RESOURCE,
            table_name=ATTACHMENTS_TABLE,
            **hints(),
        ),
    ]
