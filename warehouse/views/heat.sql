-- HEAT analytics views, schema `analytics`, names prefixed `heat_`.
-- Applied by solarsync after every successful heat load (CREATE OR REPLACE: idempotent).
-- The views list the documented fields, in types every ODBC/JDBC BI tool reads; the source
-- declares each of them (sources/heat/settings.py), so they exist before the API first sends a
-- value (a site without a battery still has soc, NULL). A field the API adds (HEAT adds fields
-- without a version bump, nested ones too) lands as a new column of the raw table (JSON when
-- nested) and is not in these views until it is documented and listed here.
-- Raw tables are in schema `heat`; schedule_entries is scd2: _dlt_valid_from/_dlt_valid_to
-- are snapshot instants (a version is known from the snapshot that first showed it until the
-- first snapshot that no longer did; NULL = still shown).

-- Accounts (docs/accounts.md): the raw tables keep a site once per account that sees it
-- (column account, first in every key: each account's rows equal what its key sees). These
-- views show a site ONCE: as its primary account sees it (analytics.heat_site_accounts: the
-- account whose last snapshot listed it most recently; on a tie, the first by name), with
-- account = that account and accounts = every account that sees the site.

CREATE SCHEMA IF NOT EXISTS analytics;

-- analytics.heat_site_accounts: one row per site: its primary account (whose rows the other
-- heat_ views show), every account that sees it (accounts, comma-separated, by name) and
-- how many (account_count).
CREATE OR REPLACE VIEW analytics.heat_site_accounts AS
WITH ranked AS (
    SELECT
        site_id,
        account,
        row_number() OVER (
            PARTITION BY site_id ORDER BY last_seen_at DESC NULLS LAST, account
        ) AS rank
    FROM heat.sites
)
SELECT
    r.site_id,
    r.account,
    (SELECT string_agg(o.account, ', ' ORDER BY o.account) FROM heat.sites AS o
     WHERE o.site_id = r.site_id) AS accounts,
    (SELECT count(*) FROM heat.sites AS o WHERE o.site_id = r.site_id) AS account_count
FROM ranked AS r
WHERE r.rank = 1;

-- analytics.heat_sites: current state per site; in_latest_snapshot is false for a site the
-- last snapshot did not list (its rows are kept, with the last time it was seen). Snapshots are
-- heat.snapshots (one row each, also those that listed no site) plus, for snapshots loaded
-- before that table existed, the instants of heat.site_status_history.
CREATE OR REPLACE VIEW analytics.heat_sites AS
SELECT
    s.site_id,
    s.site_name,
    s.is_online,
    s.reported_at,
    s.last_seen_at,
    s.last_seen_at = (
        SELECT max(snapshot_at) FROM (
            SELECT account, snapshot_at FROM heat.snapshots
            UNION SELECT account, snapshot_at FROM heat.site_status_history
        ) AS known
        WHERE known.account = s.account
    ) AS in_latest_snapshot,
    p.account,
    p.accounts
FROM heat.sites AS s
JOIN analytics.heat_site_accounts AS p ON p.site_id = s.site_id AND p.account = s.account;

-- analytics.heat_site_availability: per site, the snapshots taken since the first one that
-- listed it (snapshots), split into the three states: listed and online (snapshots_online),
-- listed but not online (snapshots_offline), not listed: hidden from or removed from the
-- list (snapshots_missing). online_pcnt = snapshots_online / snapshots, so a missing snapshot
-- counts as not available. Snapshots before a site was first listed do not count.
CREATE OR REPLACE VIEW analytics.heat_site_availability AS
WITH known_snapshots AS (
    SELECT account, snapshot_at FROM heat.snapshots
    UNION
    SELECT account, snapshot_at FROM heat.site_status_history
),
listed AS (
    SELECT
        h.account,
        h.site_id,
        count(*) AS snapshots_listed,
        count(*) FILTER (WHERE h.is_online) AS snapshots_online,
        min(h.snapshot_at) AS first_snapshot_at,
        max(h.snapshot_at) AS last_snapshot_at
    FROM heat.site_status_history AS h
    JOIN analytics.heat_site_accounts AS p ON p.site_id = h.site_id AND p.account = h.account
    GROUP BY h.account, h.site_id
),
counted AS (
    SELECT
        l.*,
        (
            SELECT count(*) FROM known_snapshots AS k
            WHERE k.account = l.account AND k.snapshot_at >= l.first_snapshot_at
        ) AS snapshots
    FROM listed AS l
)
SELECT
    c.site_id,
    s.site_name,
    c.snapshots,
    c.snapshots_online,
    c.snapshots_listed - c.snapshots_online AS snapshots_offline,
    c.snapshots - c.snapshots_listed AS snapshots_missing,
    round(100.0 * c.snapshots_online / c.snapshots, 1) AS online_pcnt,
    c.first_snapshot_at,
    c.last_snapshot_at,
    c.account
FROM counted AS c
LEFT JOIN heat.sites AS s ON s.account = c.account AND s.site_id = c.site_id;

-- analytics.heat_schedules_current: the schedule entries the latest snapshot of each site
-- showed (a site missing from later snapshots keeps its last known schedule).
CREATE OR REPLACE VIEW analytics.heat_schedules_current AS
SELECT
    e.site_id,
    s.site_name,
    e.asset,
    e.type,
    e.start_at,
    e.end_at,
    e.value,
    e._dlt_valid_from AS known_since,
    e.account
FROM heat.schedule_entries AS e
JOIN analytics.heat_site_accounts AS p ON p.site_id = e.site_id AND p.account = e.account
LEFT JOIN heat.sites AS s ON s.account = e.account AND s.site_id = e.site_id
WHERE e._dlt_valid_to IS NULL;

-- analytics.heat_schedule_history: every version of every entry with when it was first and
-- last shown, and how it ended: 'active' (still shown), 'changed' (the same entry, i.e. same
-- site/asset/type/start_at, shows different values from known_until on) or 'removed' (the
-- entry was cleared or dropped from its schedule at known_until).
CREATE OR REPLACE VIEW analytics.heat_schedule_history AS
SELECT
    e.site_id,
    s.site_name,
    e.asset,
    e.type,
    e.start_at,
    e.end_at,
    e.value,
    e._dlt_valid_from AS known_from,
    e._dlt_valid_to AS known_until,
    CASE
        WHEN e._dlt_valid_to IS NULL THEN 'active'
        WHEN EXISTS (
            SELECT 1 FROM heat.schedule_entries AS n
            WHERE n.account = e.account
              AND n.site_id = e.site_id AND n.asset = e.asset AND n.type = e.type
              AND n.start_at = e.start_at AND n._dlt_valid_from = e._dlt_valid_to
        ) THEN 'changed'
        ELSE 'removed'
    END AS ended_by,
    e.account
FROM heat.schedule_entries AS e
JOIN analytics.heat_site_accounts AS p ON p.site_id = e.site_id AND p.account = e.account
LEFT JOIN heat.sites AS s ON s.account = e.account AND s.site_id = e.site_id;

-- analytics.heat_schedule_at(at_time [, as_of := ...]): the entries in force at at_time
-- (start_at <= at_time < end_at) as the snapshots known at as_of showed them (default: as
-- known at at_time itself). Example:
--   SELECT * FROM analytics.heat_schedule_at(TIMESTAMPTZ '2026-06-01 09:00:00+00')
--   WHERE site_id = '123e4567-e89b-12d3-a456-426614174000';
CREATE OR REPLACE MACRO analytics.heat_schedule_at(at_time, as_of := NULL) AS TABLE
SELECT
    e.site_id,
    e.asset,
    e.type,
    e.start_at,
    e.end_at,
    e.value,
    e._dlt_valid_from AS known_from,
    e._dlt_valid_to AS known_until,
    e.account
FROM heat.schedule_entries AS e
JOIN analytics.heat_site_accounts AS p ON p.site_id = e.site_id AND p.account = e.account
WHERE e.start_at <= at_time AND at_time < e.end_at
  AND e._dlt_valid_from <= coalesce(as_of, at_time)
  AND (e._dlt_valid_to IS NULL OR coalesce(as_of, at_time) < e._dlt_valid_to);

-- analytics.heat_assets_current: one row per site and asset kind with its latest readings;
-- in_latest_snapshot is false for an asset the last snapshot of its site did not show.
-- available_storage_capacity_kwh and soc (state of charge, %) are documented for BESS assets
-- only (NULL for the others).
CREATE OR REPLACE VIEW analytics.heat_assets_current AS
SELECT
    a.site_id,
    a.asset_kind,
    a.asset_id,
    a.asset_type,
    a.last_seen_at,
    a.rated_power_upper_limit_kw,
    a.rated_power_lower_limit_kw,
    a.active_power_kw,
    a.available_storage_capacity_kwh,
    a.soc,
    a.last_seen_at = s.last_seen_at AS in_latest_snapshot,
    a.account
FROM heat.assets AS a
JOIN analytics.heat_site_accounts AS p ON p.site_id = a.site_id AND p.account = a.account
LEFT JOIN heat.sites AS s ON s.account = a.account AND s.site_id = a.site_id;
