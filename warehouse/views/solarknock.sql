-- SolarKnock analytics views, schema `analytics`.
-- Applied by solarsync after every successful solarknock load (CREATE OR REPLACE: idempotent).
-- The raw tables in schema `solarknock` keep every row, soft-deleted ones included
-- (deleted_at set), and keep nested lists as JSON columns; these views show what is live,
-- with the nested lists as typed DuckDB lists.

CREATE SCHEMA IF NOT EXISTS analytics;

-- analytics.knocks: live knock pins (deleted_at IS NULL); actions_taken as VARCHAR[].
CREATE OR REPLACE VIEW analytics.knocks AS
SELECT
    * EXCLUDE (_dlt_load_id)
      REPLACE (coalesce(CAST(actions_taken AS VARCHAR[]), []) AS actions_taken)
FROM solarknock.knocks
WHERE deleted_at IS NULL;

-- analytics.leads: live leads; actions_taken as VARCHAR[], attachment_count, without the
-- raw attachments JSON (see analytics.lead_attachments).
CREATE OR REPLACE VIEW analytics.leads AS
SELECT
    * EXCLUDE (_dlt_load_id, attachments)
      REPLACE (coalesce(CAST(actions_taken AS VARCHAR[]), []) AS actions_taken),
    coalesce(json_array_length(attachments), 0) AS attachment_count
FROM solarknock.leads
WHERE deleted_at IS NULL;

-- analytics.lead_attachments: one row per attachment of a live lead, as the lead lists it,
-- with where solarsync stored the file (blob_path, sha256, status) when it has.
CREATE OR REPLACE VIEW analytics.lead_attachments AS
WITH listed AS (
    SELECT l.id AS lead_id, unnest(from_json(l.attachments, '[{"id": "VARCHAR", "fileName": "VARCHAR", "mimeType": "VARCHAR", "size": "BIGINT", "uploadedAt": "TIMESTAMPTZ", "uploadedBy": "VARCHAR"}]')) AS a
    FROM solarknock.leads AS l
    WHERE l.deleted_at IS NULL
)
SELECT
    listed.lead_id,
    listed.a.id AS file_id,
    listed.a.fileName AS file_name,
    listed.a.mimeType AS mime_type,
    listed.a.size AS size,
    listed.a.uploadedAt AS uploaded_at,
    listed.a.uploadedBy AS uploaded_by,
    f.status,
    f.blob_path,
    f.sha256
FROM listed
LEFT JOIN solarknock.lead_attachments AS f
    ON f.lead_id = listed.lead_id AND f.file_id = listed.a.id;

-- analytics.rep_daily_activity: the leaderboard, one row per rep and day, with the rep's name;
-- knock_timestamps as TIMESTAMPTZ[].
CREATE OR REPLACE VIEW analytics.rep_daily_activity AS
SELECT
    s.date,
    s.user_id,
    u.name AS rep_name,
    s.* EXCLUDE (date, user_id, _dlt_load_id)
        REPLACE (CAST(s.knock_timestamps AS TIMESTAMPTZ[]) AS knock_timestamps)
FROM solarknock.daily_stats AS s
LEFT JOIN solarknock.users AS u ON u.id = s.user_id
WHERE s.deleted_at IS NULL;
