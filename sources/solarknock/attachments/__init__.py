"""Lead attachments: the files behind ``leads[].attachments``, copied into a blob store.

Table ``lead_attachments`` (key ``lead_id, file_id``; merge), one row per attachment a lead has
or had: the metadata (``file_name``, ``mime_type``, declared ``size``, ``uploaded_at``,
``uploaded_by``), the version of the lead it reflects (``lead_updated_at``), where the bytes are
(``blob_path``, ``sha256`` and ``bytes_stored`` of the stored bytes, ``downloaded_at``) and a
``status``: ``stored``; ``failed`` (``reason`` says why; retried on later runs); ``skipped``
(a configured limit: ``max_file_size``, ``allowed_mime_types``); ``removed`` (gone from its lead,
or the lead was deleted; an existing blob is kept unless ``purge_removed``); ``skipped_deleted``
(the lead was already deleted when the file was first seen: never downloaded, no blob).

How a run works:

* a transformer on the ``leads`` resource walks the attachments of the leads in the current
  window only; a second resource (``lead_attachment_retries``, same table) retries what failed
  on earlier runs, kept in dlt source state (``lead_attachments``: ids and metadata of failures
  only, committed with the load package like every checkpoint);
* the previous attachment set of those leads is read from the warehouse table (that is how a
  file that vanished from a lead is marked ``removed`` without keeping every lead in state);
* a file whose blob already exists with the declared size is not downloaded again; a changed
  size or a missing blob is fetched again;
* downloads stream (1 MiB reads) through the source's :class:`~sources.common.ApiClient`, so
  they share the key's rate limiter, retries and error mapping with the list reads; a bounded
  thread pool (``max_concurrency``) runs them; bytes land in a temporary object and are moved to
  ``<lead_id>/<file_id>`` only once complete and of the right size (see ``sources.common.
  blobstore``);
* 401/402/403 stop the source like any other call; 404 and exhausted 5xx/network retries mark
  the file ``failed`` and the run goes on.

Modules: ``model`` (columns, config spec, :class:`Attachment`, pure helpers), ``sync``
(:class:`AttachmentSync`: walking leads, downloads, blob writes, the retry set), ``runtime``
(source state, :func:`default_blob_root`), ``resources`` (:func:`attachment_resources`).
"""

from sources.solarknock.attachments.model import COLUMNS, Attachment, AttachmentsConfig
from sources.solarknock.attachments.resources import attachment_resources
from sources.solarknock.attachments.runtime import default_blob_root, default_blob_url
from sources.solarknock.attachments.sync import AttachmentSync

__all__ = [
    "COLUMNS",
    "Attachment",
    "AttachmentSync",
    "AttachmentsConfig",
    "attachment_resources",
    "default_blob_root",
    "default_blob_url",
]
