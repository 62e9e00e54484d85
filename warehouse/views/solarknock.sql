-- SolarKnock analytics views, schema `analytics`.
-- Applied by solarsync after every successful solarknock load (CREATE OR REPLACE: idempotent).
-- The raw tables in schema `solarknock` keep every row, soft-deleted ones included
-- (deleted_at set), every field the API sends (a field it adds lands as a new column there),
-- and nested values as JSON columns; these views show what is live, with the documented
-- fields listed one by one, in types every ODBC/JDBC BI tool reads (VARCHAR, BOOLEAN,
-- BIGINT, DOUBLE, DATE, TIMESTAMPTZ): a nested list is a bridge view with one row per element
-- (and a text column for display), a nested object whose fields the vendor does not document
-- is JSON text. The source declares every column listed here (sources/solarknock/settings.py),
-- so each exists, typed, before the API first sends a value. A value of another type than
-- the column's (text where a number is documented, an object where a number is) lands in a
-- raw variant column `<name>__v_<type>` and is NULL here, except where a view reads the
-- variant (savings_projection_json).
-- Accounts (docs/accounts.md): every view starts with org_id (the SolarKnock org of the key,
-- from GET /org) and account (the configured account: 'default' for [sources.solarknock]);
-- two orgs' record ids may be the same, so every key and join includes org_id.

CREATE SCHEMA IF NOT EXISTS analytics;

-- analytics.solarknock_orgs: one row per org synced (key org_id): its name, tier and the
-- account that reads it, to label the offices side by side.
CREATE OR REPLACE VIEW analytics.solarknock_orgs AS
SELECT
    CAST(org_id AS VARCHAR) AS org_id,
    CAST(account AS VARCHAR) AS account,
    CAST(name AS VARCHAR) AS org_name
FROM solarknock.org;

-- analytics.knocks: live knock pins (deleted_at IS NULL); actions_taken as text
-- ('door_knocked, proposal_given', for display and filters); one row per action in
-- analytics.knock_actions.
CREATE OR REPLACE VIEW analytics.knocks AS
SELECT
    org_id,
    account,
    id,
    user_id,
    lead_id,
    appointment_id,
    homeowner_name,
    address,
    lat,
    lng,
    status,
    disposition,
    notes,
    follow_up_date,
    county_fips,
    knock_date,
    array_to_string(coalesce(CAST(actions_taken AS VARCHAR[]), []), ', ') AS actions_taken,
    created_at,
    updated_at,
    deleted_at
FROM solarknock.knocks
WHERE deleted_at IS NULL;

-- analytics.knock_actions: one row per action taken at a live knock, in the knock's order
-- (key org_id, knock_id, position), with the rep and the day to group by.
CREATE OR REPLACE VIEW analytics.knock_actions AS
SELECT
    k.org_id,
    k.account,
    k.id AS knock_id,
    CAST(a.position AS BIGINT) AS position,
    a.action,
    k.user_id,
    k.knock_date
FROM solarknock.knocks AS k,
    unnest(CAST(k.actions_taken AS VARCHAR[])) WITH ORDINALITY AS a(action, position)
WHERE k.deleted_at IS NULL;

-- analytics.leads: live leads; actions_taken as text, attachment_count, without the raw
-- attachments JSON (see analytics.lead_attachments and analytics.lead_actions).
-- savings_projection: the vendor documents a "savings projection" without its shape. A number
-- (or a numeric string) is savings_projection (DOUBLE); an object or a list (e.g.
-- {"annual": 1450.5, "lifetime": 36262.5, "years": 25}, fields not documented) is
-- savings_projection_json, its JSON text (VARCHAR), and savings_projection is NULL then.
CREATE OR REPLACE VIEW analytics.leads AS
SELECT
    org_id,
    account,
    id,
    user_id,
    name,
    email,
    phone,
    address,
    monthly_bill,
    roof_type,
    interest_level,
    status,
    score,
    notes,
    system_size_kw,
    savings_projection,
    CAST(savings_projection__v_json AS VARCHAR) AS savings_projection_json,
    array_to_string(coalesce(CAST(actions_taken AS VARCHAR[]), []), ', ') AS actions_taken,
    created_at,
    updated_at,
    deleted_at,
    CAST(coalesce(json_array_length(attachments), 0) AS BIGINT) AS attachment_count
FROM solarknock.leads
WHERE deleted_at IS NULL;

-- analytics.lead_actions: one row per action of a live lead (key org_id, lead_id, position).
CREATE OR REPLACE VIEW analytics.lead_actions AS
SELECT
    l.org_id,
    l.account,
    l.id AS lead_id,
    CAST(a.position AS BIGINT) AS position,
    a.action,
    l.user_id
FROM solarknock.leads AS l,
    unnest(CAST(l.actions_taken AS VARCHAR[])) WITH ORDINALITY AS a(action, position)
WHERE l.deleted_at IS NULL;

-- analytics.lead_attachments: one row per attachment of a live lead, as the lead lists it,
-- with where solarsync stored the file (blob_path, sha256, status) when it has.
CREATE OR REPLACE VIEW analytics.lead_attachments AS
WITH listed AS (
    SELECT l.org_id, l.account, l.id AS lead_id, unnest(from_json(l.attachments, '[{"id": "VARCHAR", "fileName": "VARCHAR", "mimeType": "VARCHAR", "size": "BIGINT", "uploadedAt": "TIMESTAMPTZ", "uploadedBy": "VARCHAR"}]')) AS a
    FROM solarknock.leads AS l
    WHERE l.deleted_at IS NULL
)
SELECT
    listed.org_id,
    listed.account,
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
    ON f.org_id = listed.org_id AND f.lead_id = listed.lead_id AND f.file_id = listed.a.id;

-- analytics.rep_daily_activity: the leaderboard, one row per rep and day, with the rep's name
-- and the first and last knock of the day (each knock time: analytics.rep_daily_knock_times).
CREATE OR REPLACE VIEW analytics.rep_daily_activity AS
SELECT
    s.org_id,
    s.account,
    s.date,
    s.user_id,
    u.name AS rep_name,
    s.knock_count,
    s.leads,
    s.appointments_set,
    s.deals_closed,
    s.hours_worked,
    s.created_at,
    s.updated_at,
    s.deleted_at,
    k.first_knock_at,
    k.last_knock_at
FROM solarknock.daily_stats AS s
LEFT JOIN solarknock.users AS u ON u.org_id = s.org_id AND u.id = s.user_id
LEFT JOIN (
    SELECT d.org_id, d.user_id, d.date, min(t.knocked_at) AS first_knock_at, max(t.knocked_at) AS last_knock_at
    FROM solarknock.daily_stats AS d,
        unnest(CAST(d.knock_timestamps AS TIMESTAMPTZ[])) AS t(knocked_at)
    GROUP BY d.org_id, d.user_id, d.date
) AS k ON k.org_id = s.org_id AND k.user_id = s.user_id AND k.date = s.date
WHERE s.deleted_at IS NULL;

-- analytics.rep_daily_knock_times: one row per knock time of a rep's day on the leaderboard
-- (key org_id, user_id, date, position).
CREATE OR REPLACE VIEW analytics.rep_daily_knock_times AS
SELECT
    s.org_id,
    s.account,
    s.user_id,
    s.date,
    CAST(t.position AS BIGINT) AS position,
    t.knocked_at,
    u.name AS rep_name
FROM solarknock.daily_stats AS s
LEFT JOIN solarknock.users AS u ON u.org_id = s.org_id AND u.id = s.user_id,
    unnest(CAST(s.knock_timestamps AS TIMESTAMPTZ[])) WITH ORDINALITY AS t(knocked_at, position)
WHERE s.deleted_at IS NULL;
