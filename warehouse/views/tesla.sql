-- Tesla gateway analytics views, schema `analytics`, names prefixed `tesla_`.
-- Applied by solarsync after every successful tesla load (CREATE OR REPLACE: idempotent).
-- Columns are listed, in types every ODBC/JDBC BI tool reads; the source declares the ones
-- read here (sources/tesla/settings.py), so they exist whatever the firmware sends. Fields a
-- firmware adds land as columns of the raw tables (JSON when nested), not here.
--
-- The gateway's energy_exported / energy_imported are cumulative counters (Wh since
-- commissioning). Energy over an interval is the difference of two readings of one counter:
-- * a reading of 0 is a known glitch ("unknown", not a drop to zero): it is skipped, per
--   counter, and the interval runs from the previous non-zero reading to the next one;
-- * a counter that goes down was reset: that interval is dropped (its energy is unknown);
--   the next intervals count from the new value.
-- Readings are ordered by polled_at (solarsync's poll instant, UTC). Both ends of an interval
-- are dated by one clock: the meter's own (last_communication_time, the gateway's time of the
-- counter values) when it advanced from the start reading to the end reading; else (missing,
-- "never", frozen or set back) solarsync's (polled_at). So an interval never runs backwards,
-- however far the gateway's clock is from solarsync's. An interval counts for the day of its end.

CREATE SCHEMA IF NOT EXISTS analytics;

-- analytics.tesla_energy_intervals: one row per gateway, meter, direction ('exported' or
-- 'imported') and pair of consecutive usable readings, with the energy in between (Wh):
-- interval_start/interval_end are the readings' dates by one clock (see above; `clock` says
-- which: 'meter' or 'poll'), polled_from/polled_to the polls that read them.
CREATE OR REPLACE VIEW analytics.tesla_energy_intervals AS
WITH counters AS (
    SELECT gateway, meter, 'exported' AS direction, polled_at,
           last_communication_time AS meter_at, energy_exported AS counter_wh
    FROM tesla.meter_readings
    WHERE energy_exported > 0
    UNION ALL
    SELECT gateway, meter, 'imported' AS direction, polled_at,
           last_communication_time AS meter_at, energy_imported AS counter_wh
    FROM tesla.meter_readings
    WHERE energy_imported > 0
),
steps AS (
    SELECT
        gateway,
        meter,
        direction,
        lag(meter_at) OVER w AS meter_from,
        meter_at AS meter_to,
        lag(polled_at) OVER w AS polled_from,
        polled_at AS polled_to,
        lag(counter_wh) OVER w AS counter_start_wh,
        counter_wh AS counter_end_wh
    FROM counters
    WINDOW w AS (PARTITION BY gateway, meter, direction ORDER BY polled_at)
),
dated AS (
    SELECT *, coalesce(meter_to > meter_from, false) AS by_meter
    FROM steps
)
SELECT
    gateway,
    meter,
    direction,
    CASE WHEN by_meter THEN meter_from ELSE polled_from END AS interval_start,
    CASE WHEN by_meter THEN meter_to ELSE polled_to END AS interval_end,
    CASE WHEN by_meter THEN 'meter' ELSE 'poll' END AS clock,
    polled_from,
    polled_to,
    counter_start_wh,
    counter_end_wh,
    counter_end_wh - counter_start_wh AS energy_wh
FROM dated
WHERE counter_start_wh IS NOT NULL
  AND counter_end_wh >= counter_start_wh;

-- analytics.tesla_energy_daily: energy per gateway, meter and UTC day (an interval counts for
-- the day of its end), exported and imported, in Wh and kWh. `intervals`: the readings of the
-- day that end an interval (each once, whether one counter or both end an interval there);
-- `exported_intervals` / `imported_intervals`: the intervals of each counter.
CREATE OR REPLACE VIEW analytics.tesla_energy_daily AS
SELECT
    gateway,
    meter,
    CAST(timezone('UTC', interval_end) AS DATE) AS day,
    coalesce(sum(energy_wh) FILTER (WHERE direction = 'exported'), 0) AS exported_wh,
    coalesce(sum(energy_wh) FILTER (WHERE direction = 'imported'), 0) AS imported_wh,
    coalesce(sum(energy_wh) FILTER (WHERE direction = 'exported'), 0) / 1000 AS exported_kwh,
    coalesce(sum(energy_wh) FILTER (WHERE direction = 'imported'), 0) / 1000 AS imported_kwh,
    count(DISTINCT polled_to) AS intervals,
    count(*) FILTER (WHERE direction = 'exported') AS exported_intervals,
    count(*) FILTER (WHERE direction = 'imported') AS imported_intervals
FROM analytics.tesla_energy_intervals
GROUP BY ALL;

-- analytics.tesla_energy_daily_local: the same per day of the gateway's own time zone (the
-- latest site_info timezone it reported, recorded in gateway_status; UTC when the firmware has
-- no site_info).
CREATE OR REPLACE VIEW analytics.tesla_energy_daily_local AS
WITH zones AS (
    SELECT gateway, timezone
    FROM tesla.gateway_status
    WHERE timezone IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY gateway ORDER BY polled_at DESC) = 1
)
SELECT
    i.gateway,
    i.meter,
    CAST(timezone(coalesce(z.timezone, 'UTC'), i.interval_end) AS DATE) AS day,
    coalesce(z.timezone, 'UTC') AS timezone,
    coalesce(sum(i.energy_wh) FILTER (WHERE i.direction = 'exported'), 0) AS exported_wh,
    coalesce(sum(i.energy_wh) FILTER (WHERE i.direction = 'imported'), 0) AS imported_wh,
    coalesce(sum(i.energy_wh) FILTER (WHERE i.direction = 'exported'), 0) / 1000 AS exported_kwh,
    coalesce(sum(i.energy_wh) FILTER (WHERE i.direction = 'imported'), 0) / 1000 AS imported_kwh,
    count(DISTINCT i.polled_to) AS intervals,
    count(*) FILTER (WHERE i.direction = 'exported') AS exported_intervals,
    count(*) FILTER (WHERE i.direction = 'imported') AS imported_intervals
FROM analytics.tesla_energy_intervals AS i
LEFT JOIN zones AS z USING (gateway)
GROUP BY ALL;

-- analytics.tesla_gateway_states: the latest state of every gateway (gateway_state: ok,
-- stopped, unreachable, failed; error: why), when it was last polled, and what its
-- /api/status said (firmware version, uptime; NULL on firmware without it, e.g. Powerwall 3).
-- followers: the DINs of the gateways this one leads, comma-separated (the API sends a list;
-- NULL when it sends none).
CREATE OR REPLACE VIEW analytics.tesla_gateway_states AS
SELECT
    gateway,
    polled_at,
    gateway_state,
    error,
    unavailable_endpoints,
    timezone,
    version,
    git_hash,
    din,
    device_type,
    teg_type,
    sync_type,
    start_time,
    up_time_seconds,
    is_new,
    commission_count,
    leader,
    array_to_string(CAST(followers AS VARCHAR[]), ', ') AS followers,
    cellular_disabled
FROM tesla.gateway_status
QUALIFY row_number() OVER (PARTITION BY gateway ORDER BY polled_at DESC) = 1;
