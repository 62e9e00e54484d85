-- SolarKnock analytics views, schema `analytics`.
-- Applied by solarsync after every successful solarknock load (CREATE OR REPLACE: idempotent).
-- The raw tables in schema `solarknock` keep every row, soft-deleted ones included
-- (deleted_at set); these views show what is live and join the child tables back.

CREATE SCHEMA IF NOT EXISTS analytics;

-- analytics.knocks: live knock pins (deleted_at IS NULL), actions_taken as a list.
CREATE OR REPLACE VIEW analytics.knocks AS
SELECT
    k.* EXCLUDE (_dlt_load_id, _dlt_id),
    coalesce(a.actions_taken, []::VARCHAR[]) AS actions_taken
FROM solarknock.knocks AS k
LEFT JOIN (
    SELECT _dlt_parent_id, list(value ORDER BY _dlt_list_idx) AS actions_taken
    FROM solarknock.knocks__actions_taken
    GROUP BY _dlt_parent_id
) AS a ON a._dlt_parent_id = k._dlt_id
WHERE k.deleted_at IS NULL;

-- analytics.leads: live leads with their number of attachments.
CREATE OR REPLACE VIEW analytics.leads AS
SELECT
    l.* EXCLUDE (_dlt_load_id, _dlt_id),
    coalesce(f.attachment_count, 0) AS attachment_count
FROM solarknock.leads AS l
LEFT JOIN (
    SELECT _dlt_parent_id, count(*) AS attachment_count
    FROM solarknock.leads__attachments
    GROUP BY _dlt_parent_id
) AS f ON f._dlt_parent_id = l._dlt_id
WHERE l.deleted_at IS NULL;

-- analytics.lead_attachments: one row per attachment of a live lead (metadata only).
CREATE OR REPLACE VIEW analytics.lead_attachments AS
SELECT
    l.id AS lead_id,
    f.id AS file_id,
    f.file_name,
    f.mime_type,
    f.size,
    f.uploaded_at,
    f.uploaded_by
FROM solarknock.leads AS l
JOIN solarknock.leads__attachments AS f ON f._dlt_parent_id = l._dlt_id
WHERE l.deleted_at IS NULL;

-- analytics.rep_daily_activity: the leaderboard, one row per rep and day, with the rep's name.
CREATE OR REPLACE VIEW analytics.rep_daily_activity AS
SELECT
    s.date,
    s.user_id,
    u.name AS rep_name,
    s.* EXCLUDE (date, user_id, _dlt_load_id, _dlt_id)
FROM solarknock.daily_stats AS s
LEFT JOIN solarknock.users AS u ON u.id = s.user_id
WHERE s.deleted_at IS NULL;
