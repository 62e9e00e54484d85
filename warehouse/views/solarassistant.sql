-- SolarAssistant analytics views, schema `analytics`, names prefixed `solarassistant_`.
-- Applied by solarsync after every successful solarassistant load (CREATE OR REPLACE:
-- idempotent). The raw tables in schema `solarassistant` keep every poll; these views give the
-- current picture.

CREATE SCHEMA IF NOT EXISTS analytics;

-- analytics.solarassistant_latest_metrics: the newest value of every topic of every site
-- (from the last poll that returned it; an offline site keeps its last known values, and
-- polled_at says how old they are).
CREATE OR REPLACE VIEW analytics.solarassistant_latest_metrics AS
SELECT
    m.site_id,
    s.name AS site_name,
    m.topic,
    m.device,
    m."group",
    m.name,
    m.unit,
    m.value_number,
    m.value_text,
    m.value_type,
    m.polled_at
FROM solarassistant.metrics AS m
LEFT JOIN solarassistant.sites AS s ON s.id = m.site_id
QUALIFY row_number() OVER (PARTITION BY m.site_id, m.topic ORDER BY m.polled_at DESC) = 1;

-- analytics.solarassistant_site_status: per site of the account, the outcome of its last poll
-- (ok / offline / error and why) and when it last answered.
CREATE OR REPLACE VIEW analytics.solarassistant_site_status AS
WITH last_poll AS (
    SELECT *
    FROM solarassistant.metric_polls
    QUALIFY row_number() OVER (PARTITION BY site_id ORDER BY polled_at DESC) = 1
),
last_ok AS (
    SELECT site_id, max(polled_at) AS last_ok_at
    FROM solarassistant.metric_polls
    WHERE status = 'ok'
    GROUP BY site_id
)
SELECT
    s.id AS site_id,
    s.name AS site_name,
    s.last_seen_at,
    p.polled_at AS last_polled_at,
    p.status AS last_status,
    p.reason AS last_reason,
    p.metric_count AS last_metric_count,
    o.last_ok_at
FROM solarassistant.sites AS s
LEFT JOIN last_poll AS p ON p.site_id = s.id
LEFT JOIN last_ok AS o ON o.site_id = s.id;

-- analytics.solarassistant_site_members: who has access to which site, with the site's name.
CREATE OR REPLACE VIEW analytics.solarassistant_site_members AS
SELECT
    m.site_id,
    s.name AS site_name,
    m.user_id,
    m.email,
    m.first_name,
    m.last_name,
    m.role
FROM solarassistant.site_members AS m
JOIN solarassistant.sites AS s ON s.id = m.site_id;
