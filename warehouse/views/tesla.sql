-- Tesla gateway analytics views, schema `analytics`, names prefixed `tesla_`.
-- Applied by solarsync after every successful tesla load (CREATE OR REPLACE: idempotent).
--
-- The gateway's energy_exported / energy_imported are cumulative counters (Wh since
-- commissioning). Energy over an interval is the difference of two readings of one counter:
-- * a reading of 0 is a known glitch ("unknown", not a drop to zero): it is skipped, per
--   counter, and the interval runs from the previous non-zero reading to the next one;
-- * a counter that goes down was reset: that interval is dropped (its energy is unknown);
--   the next intervals count from the new value.
-- Readings are ordered by polled_at (solarsync's poll instant, UTC). A reading is dated by the
-- meter's own clock, last_communication_time, when it advanced since the meter's previous
-- reading (the gateway's time of the counter value); else (missing, "never", or frozen) by
-- polled_at. An interval counts for the day of its end reading.

CREATE SCHEMA IF NOT EXISTS analytics;

-- analytics.tesla_energy_intervals: one row per gateway, meter, direction ('exported' or
-- 'imported') and pair of consecutive usable readings, with the energy in between (Wh):
-- interval_start/interval_end are the readings' dates (see above), polled_from/polled_to the
-- polls that read them.
CREATE OR REPLACE VIEW analytics.tesla_energy_intervals AS
WITH readings AS (
    SELECT
        gateway,
        meter,
        polled_at,
        energy_exported,
        energy_imported,
        CASE
            WHEN last_communication_time > lag(last_communication_time) OVER m
                THEN last_communication_time
            ELSE polled_at
        END AS read_at
    FROM tesla.meter_readings
    WINDOW m AS (PARTITION BY gateway, meter ORDER BY polled_at)
),
counters AS (
    SELECT gateway, meter, 'exported' AS direction, polled_at, read_at,
           energy_exported AS counter_wh
    FROM readings
    WHERE energy_exported > 0
    UNION ALL
    SELECT gateway, meter, 'imported' AS direction, polled_at, read_at,
           energy_imported AS counter_wh
    FROM readings
    WHERE energy_imported > 0
),
steps AS (
    SELECT
        gateway,
        meter,
        direction,
        lag(read_at) OVER w AS interval_start,
        read_at AS interval_end,
        lag(polled_at) OVER w AS polled_from,
        polled_at AS polled_to,
        lag(counter_wh) OVER w AS counter_start_wh,
        counter_wh AS counter_end_wh
    FROM counters
    WINDOW w AS (PARTITION BY gateway, meter, direction ORDER BY polled_at)
)
SELECT
    gateway,
    meter,
    direction,
    interval_start,
    interval_end,
    polled_from,
    polled_to,
    counter_start_wh,
    counter_end_wh,
    counter_end_wh - counter_start_wh AS energy_wh
FROM steps
WHERE counter_start_wh IS NOT NULL
  AND counter_end_wh >= counter_start_wh;

-- analytics.tesla_energy_daily: energy per gateway, meter and UTC day (an interval counts for
-- the day its end reading was taken), exported and imported, in Wh and kWh.
CREATE OR REPLACE VIEW analytics.tesla_energy_daily AS
SELECT
    gateway,
    meter,
    CAST(timezone('UTC', interval_end) AS DATE) AS day,
    coalesce(sum(energy_wh) FILTER (WHERE direction = 'exported'), 0) AS exported_wh,
    coalesce(sum(energy_wh) FILTER (WHERE direction = 'imported'), 0) AS imported_wh,
    coalesce(sum(energy_wh) FILTER (WHERE direction = 'exported'), 0) / 1000 AS exported_kwh,
    coalesce(sum(energy_wh) FILTER (WHERE direction = 'imported'), 0) / 1000 AS imported_kwh,
    count(*) AS intervals
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
    count(*) AS intervals
FROM analytics.tesla_energy_intervals AS i
LEFT JOIN zones AS z USING (gateway)
GROUP BY ALL;

-- analytics.tesla_gateway_states: the latest state of every gateway (ok, stopped,
-- unreachable, failed), its firmware and when it was last polled.
CREATE OR REPLACE VIEW analytics.tesla_gateway_states AS
SELECT * EXCLUDE (_dlt_load_id, _dlt_id)
FROM tesla.gateway_status
QUALIFY row_number() OVER (PARTITION BY gateway ORDER BY polled_at DESC) = 1;
