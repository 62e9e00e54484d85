-- SolarAssistant analytics views, schema `analytics`, names prefixed `solarassistant_`.
-- Applied by solarsync after every successful solarassistant load (CREATE OR REPLACE:
-- idempotent). The raw tables in schema `solarassistant` keep every poll; these views give the
-- current picture.
-- Accounts (docs/accounts.md): the raw tables keep a site shared between accounts once per
-- account (column account, first in every key: each account's rows equal what its token
-- sees, and each account polls the site itself). These views show a site ONCE, as its
-- primary account sees it (analytics.solarassistant_site_accounts: the first account by name
-- whose site list has it; for a site no account lists any more, the first that polled it),
-- so sums over sites count each site once; account names that account.

CREATE SCHEMA IF NOT EXISTS analytics;

-- analytics.solarassistant_site_accounts: one row per site: its primary account (whose rows
-- the other solarassistant_ views show), every account that sees or polled it (accounts,
-- comma-separated, by name) and how many (account_count).
CREATE OR REPLACE VIEW analytics.solarassistant_site_accounts AS
WITH seen AS (
    SELECT site_id, account, min(listed) AS listed
    FROM (
        SELECT id AS site_id, account, 0 AS listed FROM solarassistant.sites
        UNION ALL
        SELECT site_id, account, 1 AS listed FROM solarassistant.metric_polls
    ) AS every_row
    GROUP BY site_id, account
),
ranked AS (
    SELECT
        site_id,
        account,
        row_number() OVER (PARTITION BY site_id ORDER BY listed, account) AS rank
    FROM seen
)
SELECT
    r.site_id,
    r.account,
    (SELECT string_agg(o.account, ', ' ORDER BY o.account) FROM seen AS o
     WHERE o.site_id = r.site_id) AS accounts,
    (SELECT count(*) FROM seen AS o WHERE o.site_id = r.site_id) AS account_count
FROM ranked AS r
WHERE r.rank = 1;

-- analytics.solarassistant_latest_metrics: the newest value of every topic of every site
-- (from the last poll that returned it; an offline site keeps its last known values).
-- site_name: the site's name, or for a site no longer on the account (site_removed) the name
-- it had when last polled. site_last_ok_at: the site's last ok poll; is_current: the topic
-- was in it (false: the site no longer sends this topic, e.g. a removed battery);
-- seconds_behind_last_ok: how much older this value is than the site's last ok poll (0 when
-- current). is_total: a `total/` topic (the site's sum over its inverters/batteries: leave
-- it out when summing per-device topics such as `inverter_N/pv_power`, or use only it).
CREATE OR REPLACE VIEW analytics.solarassistant_latest_metrics AS
WITH latest AS (
    SELECT *
    FROM solarassistant.metrics
    QUALIFY row_number() OVER (PARTITION BY account, site_id, topic ORDER BY polled_at DESC) = 1
),
last_poll AS (
    SELECT account, site_id, site_name
    FROM solarassistant.metric_polls
    QUALIFY row_number() OVER (PARTITION BY account, site_id ORDER BY polled_at DESC) = 1
),
last_ok AS (
    SELECT account, site_id, max(polled_at) AS last_ok_at
    FROM solarassistant.metric_polls
    WHERE status = 'ok'
    GROUP BY account, site_id
)
SELECT
    m.site_id,
    coalesce(s.name, p.site_name) AS site_name,
    s.id IS NULL AS site_removed,
    m.topic,
    lower(m.topic) LIKE 'total/%' AS is_total,
    m.device,
    m."group",
    m.name,
    m.unit,
    m.value_number,
    m.value_text,
    m.value_type,
    m.polled_at,
    coalesce(o.last_ok_at, m.polled_at) AS site_last_ok_at,
    m.polled_at >= coalesce(o.last_ok_at, m.polled_at) AS is_current,
    CAST(
        greatest(epoch(coalesce(o.last_ok_at, m.polled_at)) - epoch(m.polled_at), 0) AS BIGINT
    ) AS seconds_behind_last_ok,
    m.account
FROM latest AS m
JOIN analytics.solarassistant_site_accounts AS a ON a.site_id = m.site_id AND a.account = m.account
LEFT JOIN solarassistant.sites AS s ON s.account = m.account AND s.id = m.site_id
LEFT JOIN last_poll AS p ON p.account = m.account AND p.site_id = m.site_id
LEFT JOIN last_ok AS o ON o.account = m.account AND o.site_id = m.site_id;

-- analytics.solarassistant_metrics: every reading (one row per site, topic and poll) with the
-- site's name and is_total (see above): the place for sums and series over time.
CREATE OR REPLACE VIEW analytics.solarassistant_metrics AS
WITH last_poll AS (
    SELECT account, site_id, site_name
    FROM solarassistant.metric_polls
    QUALIFY row_number() OVER (PARTITION BY account, site_id ORDER BY polled_at DESC) = 1
)
SELECT
    m.site_id,
    coalesce(s.name, p.site_name) AS site_name,
    m.topic,
    lower(m.topic) LIKE 'total/%' AS is_total,
    m.device,
    m."group",
    m.name,
    m.unit,
    m.value_number,
    m.value_text,
    m.value_type,
    m.polled_at,
    m.account
FROM solarassistant.metrics AS m
JOIN analytics.solarassistant_site_accounts AS a ON a.site_id = m.site_id AND a.account = m.account
LEFT JOIN solarassistant.sites AS s ON s.account = m.account AND s.id = m.site_id
LEFT JOIN last_poll AS p ON p.account = m.account AND p.site_id = m.site_id;

-- Energy. Topics in Wh, kWh or MWh (e.g. total/pv_energy, total/grid_energy_in) are
-- period-to-date counters that restart (weekly by default). Energy over an interval is the
-- difference of two consecutive readings of one site and topic (ordered by polled_at), in
-- kWh; a counter that went down was reset, and the interval counts the new value (the energy
-- since the reset; what came between the previous reading and the reset is not seen). Values
-- are DECIMAL (exact sums of the readings as sent, to 1 mWh); readings without a number, or
-- beyond 1e15 of their unit, are skipped.

-- analytics.solarassistant_energy_intervals: one row per site, energy topic and pair of
-- consecutive readings (polled_from, polled_to), the counters at both ends and the energy.
CREATE OR REPLACE VIEW analytics.solarassistant_energy_intervals AS
WITH readings AS (
    SELECT
        m.site_id,
        m.account,
        m.topic,
        m.polled_at,
        CAST(
            CAST(m.value_number AS DECIMAL(38, 6))
            * CASE lower(m.unit) WHEN 'wh' THEN 0.001 WHEN 'mwh' THEN 1000 ELSE 1 END
            AS DECIMAL(38, 9)
        ) AS counter_kwh
    FROM solarassistant.metrics AS m
    JOIN analytics.solarassistant_site_accounts AS a
        ON a.site_id = m.site_id AND a.account = m.account
    WHERE lower(m.unit) IN ('wh', 'kwh', 'mwh')
      AND m.value_number IS NOT NULL
      AND abs(m.value_number) < 1e15
),
steps AS (
    SELECT
        site_id,
        account,
        topic,
        lag(polled_at) OVER w AS polled_from,
        polled_at AS polled_to,
        lag(counter_kwh) OVER w AS counter_start_kwh,
        counter_kwh AS counter_end_kwh
    FROM readings
    WINDOW w AS (PARTITION BY site_id, topic ORDER BY polled_at)
)
SELECT
    site_id,
    account,
    topic,
    lower(topic) LIKE 'total/%' AS is_total,
    polled_from,
    polled_to,
    counter_start_kwh,
    counter_end_kwh,
    counter_end_kwh < counter_start_kwh AS is_reset,
    CASE
        WHEN counter_end_kwh < counter_start_kwh THEN counter_end_kwh
        ELSE counter_end_kwh - counter_start_kwh
    END AS energy_kwh
FROM steps
WHERE polled_from IS NOT NULL;

-- analytics.solarassistant_energy_daily: energy per site, topic and day. The day is that of
-- the interval's end reading in the site's time zone (`timezone`: the one configured for the
-- site in solarsync, see sources.solarassistant.timezone / site_timezones, as recorded by its
-- latest poll; 'UTC' when none is configured). intervals / resets: how many intervals (and
-- counter resets among them) the day's energy sums; first_polled_at / last_polled_at: the
-- readings the day spans (an interval that crosses midnight counts for the day it ends in).
CREATE OR REPLACE VIEW analytics.solarassistant_energy_daily AS
WITH last_poll AS (
    SELECT account, site_id, site_name, coalesce(timezone, 'UTC') AS timezone
    FROM solarassistant.metric_polls
    QUALIFY row_number() OVER (PARTITION BY account, site_id ORDER BY polled_at DESC) = 1
),
dated AS (
    SELECT
        i.site_id,
        i.account,
        coalesce(s.name, p.site_name) AS site_name,
        i.topic,
        i.is_total,
        CAST(timezone(coalesce(p.timezone, 'UTC'), i.polled_to) AS DATE) AS day,
        coalesce(p.timezone, 'UTC') AS timezone,
        i.polled_from,
        i.polled_to,
        i.is_reset,
        i.energy_kwh
    FROM analytics.solarassistant_energy_intervals AS i
    LEFT JOIN solarassistant.sites AS s ON s.account = i.account AND s.id = i.site_id
    LEFT JOIN last_poll AS p ON p.account = i.account AND p.site_id = i.site_id
)
SELECT
    site_id,
    account,
    site_name,
    topic,
    is_total,
    day,
    timezone,
    sum(energy_kwh) AS energy_kwh,
    count(*) AS intervals,
    count(*) FILTER (WHERE is_reset) AS resets,
    min(polled_from) AS first_polled_at,
    max(polled_to) AS last_polled_at
FROM dated
GROUP BY site_id, account, site_name, topic, is_total, day, timezone;

-- analytics.solarassistant_site_status: per site of the account, the outcome of its last poll
-- (ok / offline / error and why) and when it last answered.
CREATE OR REPLACE VIEW analytics.solarassistant_site_status AS
WITH last_poll AS (
    SELECT *
    FROM solarassistant.metric_polls
    QUALIFY row_number() OVER (PARTITION BY account, site_id ORDER BY polled_at DESC) = 1
),
last_ok AS (
    SELECT account, site_id, max(polled_at) AS last_ok_at
    FROM solarassistant.metric_polls
    WHERE status = 'ok'
    GROUP BY account, site_id
)
SELECT
    s.id AS site_id,
    s.name AS site_name,
    s.last_seen_at,
    p.polled_at AS last_polled_at,
    p.status AS last_status,
    p.reason AS last_reason,
    p.metric_count AS last_metric_count,
    o.last_ok_at,
    a.account,
    a.accounts
FROM solarassistant.sites AS s
JOIN analytics.solarassistant_site_accounts AS a ON a.site_id = s.id AND a.account = s.account
LEFT JOIN last_poll AS p ON p.account = s.account AND p.site_id = s.id
LEFT JOIN last_ok AS o ON o.account = s.account AND o.site_id = s.id;

-- analytics.solarassistant_site_members: who has access to which site, with the site's name
-- (as the site's primary account lists them).
CREATE OR REPLACE VIEW analytics.solarassistant_site_members AS
SELECT
    m.site_id,
    s.name AS site_name,
    m.user_id,
    m.email,
    m.first_name,
    m.last_name,
    m.role,
    m.account
FROM solarassistant.site_members AS m
JOIN analytics.solarassistant_site_accounts AS a ON a.site_id = m.site_id AND a.account = m.account
JOIN solarassistant.sites AS s ON s.account = m.account AND s.id = m.site_id;
