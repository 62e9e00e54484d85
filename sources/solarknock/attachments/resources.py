"""The dlt resources that write ``lead_attachments``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
from dlt.sources import DltResource

from sources.common.pii import AttachmentRules
from sources.solarknock.attachments.model import COLUMNS, AttachmentsConfig
from sources.solarknock.attachments.sync import AttachmentSync
from sources.solarknock.client import SolarKnockClient
from sources.solarknock.settings import ATTACHMENT_RETRIES_RESOURCE, ATTACHMENTS_TABLE


def attachment_resources(
    client: SolarKnockClient,
    leads: DltResource,
    config: AttachmentsConfig | None = None,
    *,
    max_attempts: int = 5,
    backoff_factor: float = 1.0,
    files: AttachmentRules | None = None,
) -> list[DltResource]:
    """``lead_attachments`` (a transformer on ``leads``) and ``lead_attachment_retries``.
    ``files``: which categories of file are downloaded (``[solarsync.pii.attachments]``)."""
    sync = AttachmentSync(
        client,
        config or AttachmentsConfig(),
        max_attempts=max_attempts,
        backoff_factor=backoff_factor,
        files=files,
    )

    def hints() -> dict[str, Any]:
        return {
            "write_disposition": {"disposition": "merge", "strategy": "delete-insert"},
            "primary_key": ["lead_id", "file_id"],
            "columns": {name: dict(column) for name, column in COLUMNS.items()},
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
