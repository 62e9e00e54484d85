-- HEAT analytics views, schema `analytics`, names prefixed `heat_`.
-- Applied by solarsync after every successful heat load (CREATE OR REPLACE: idempotent; the
-- views pick up columns added by API changes at the next run).
-- Raw tables are in schema `heat`; schedule_entries is scd2: _dlt_valid_from/_dlt_valid_to
-- are snapshot instants (a version is known from the snapshot that first showed it until the
-- first snapshot that no longer did; NULL = still shown).

CREATE SCHEMA IF NOT EXISTS analytics;

-- analytics.heat_sites: current state per site; in_latest_snapshot is false for a site the
-- last snapshot did not list (its rows are kept, with the last time it was seen).
CREATE OR REPLACE VIEW analytics.heat_sites AS
SELECT
    s.* EXCLUDE (_dlt_load_id, _dlt_id),
    s.last_seen_at = (SELECT max(snapshot_at) FROM heat.site_status_history) AS in_latest_snapshot
FROM heat.sites AS s;

-- analytics.heat_site_availability: per site, how many snapshots saw it and how often online.
CREATE OR REPLACE VIEW analytics.heat_site_availability AS
SELECT
    site_id,
    count(*) AS snapshots,
    count(*) FILTER (WHERE is_online) AS snapshots_online,
    round(100.0 * count(*) FILTER (WHERE is_online) / count(*), 1) AS online_pcnt,
    min(snapshot_at) AS first_snapshot_at,
    max(snapshot_at) AS last_snapshot_at
FROM heat.site_status_history
GROUP BY site_id;

-- analytics.heat_schedules_current: the schedule entries the latest snapshot of each site
-- showed (a site missing from later snapshots keeps its last known schedule).
CREATE OR REPLACE VIEW analytics.heat_schedules_current AS
SELECT
    e.site_id,
    s.site_name,
    e.* EXCLUDE (site_id, _dlt_valid_from, _dlt_valid_to, _dlt_load_id, _dlt_id),
    e._dlt_valid_from AS known_since
FROM heat.schedule_entries AS e
LEFT JOIN heat.sites AS s USING (site_id)
WHERE e._dlt_valid_to IS NULL;

-- analytics.heat_schedule_history: every version of every entry with when it was first and
-- last shown, and how it ended: 'active' (still shown), 'changed' (the same entry, i.e. same
-- site/asset/type/start_at, shows different values from known_until on) or 'removed' (the
-- entry was cleared or dropped from its schedule at known_until).
CREATE OR REPLACE VIEW analytics.heat_schedule_history AS
SELECT
    e.* EXCLUDE (_dlt_valid_from, _dlt_valid_to, _dlt_load_id, _dlt_id),
    e._dlt_valid_from AS known_from,
    e._dlt_valid_to AS known_until,
    CASE
        WHEN e._dlt_valid_to IS NULL THEN 'active'
        WHEN EXISTS (
            SELECT 1 FROM heat.schedule_entries AS n
            WHERE n.site_id = e.site_id AND n.asset = e.asset AND n.type = e.type
              AND n.start_at = e.start_at AND n._dlt_valid_from = e._dlt_valid_to
        ) THEN 'changed'
        ELSE 'removed'
    END AS ended_by
FROM heat.schedule_entries AS e;

-- analytics.heat_schedule_at(at_time [, as_of := ...]): the entries in force at at_time
-- (start_at <= at_time < end_at) as the snapshots known at as_of showed them (default: as
-- known at at_time itself). Example:
--   SELECT * FROM analytics.heat_schedule_at(TIMESTAMPTZ '2026-06-01 09:00:00+00')
--   WHERE site_id = '123e4567-e89b-12d3-a456-426614174000';
CREATE OR REPLACE MACRO analytics.heat_schedule_at(at_time, as_of := NULL) AS TABLE
SELECT
    e.* EXCLUDE (_dlt_valid_from, _dlt_valid_to, _dlt_load_id, _dlt_id),
    e._dlt_valid_from AS known_from,
    e._dlt_valid_to AS known_until
FROM heat.schedule_entries AS e
WHERE e.start_at <= at_time AND at_time < e.end_at
  AND e._dlt_valid_from <= coalesce(as_of, at_time)
  AND (e._dlt_valid_to IS NULL OR coalesce(as_of, at_time) < e._dlt_valid_to);

-- analytics.heat_assets_current: one row per site and asset kind with its latest readings;
-- in_latest_snapshot is false for an asset the last snapshot of its site did not show.
CREATE OR REPLACE VIEW analytics.heat_assets_current AS
SELECT
    a.* EXCLUDE (_dlt_load_id, _dlt_id),
    a.last_seen_at = s.last_seen_at AS in_latest_snapshot
FROM heat.assets AS a
LEFT JOIN heat.sites AS s USING (site_id);
