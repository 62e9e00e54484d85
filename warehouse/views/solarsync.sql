-- solarsync's own analytics views: the run history (pipelines/history/), schema `analytics`.
-- Applied after every load of the history (CREATE OR REPLACE: idempotent). Raw tables are in
-- schema `solarsync` (dlt pipeline solarsync_history). Only BI-friendly types: VARCHAR,
-- BOOLEAN, BIGINT, DOUBLE, TIMESTAMPTZ.

CREATE SCHEMA IF NOT EXISTS analytics;

-- analytics.sync_runs: one row per run of a source's account (run, backfill, or one loaded
-- poll batch), failed runs included. account: the configured account ('default' for the
-- single-account configuration [sources.<source>]; docs/accounts.md). status 'ok' or
-- 'failed'; error_class/error_message (secrets redacted)
-- for a failed run; requests, rate_limited (429 answers) and retries of the run; warnings one
-- per line; rows_loaded = rows over all tables (per table: analytics.sync_run_tables); polls
-- and failed_polls for a poll batch (NULL otherwise).
CREATE OR REPLACE VIEW analytics.sync_runs AS
SELECT
    CAST(run_id AS VARCHAR) AS run_id,
    CAST(source AS VARCHAR) AS source,
    CAST(coalesce(account, 'default') AS VARCHAR) AS account,
    CAST(command AS VARCHAR) AS command,
    CAST(started_at AS TIMESTAMPTZ) AS started_at,
    CAST(finished_at AS TIMESTAMPTZ) AS finished_at,
    CAST(duration_s AS DOUBLE) AS duration_s,
    CAST(status AS VARCHAR) AS status,
    CAST(status = 'ok' AS BOOLEAN) AS ok,
    CAST(error_class AS VARCHAR) AS error_class,
    CAST(error_message AS VARCHAR) AS error_message,
    CAST(requests AS BIGINT) AS requests,
    CAST(rate_limited AS BIGINT) AS rate_limited,
    CAST(retries AS BIGINT) AS retries,
    CAST(warning_count AS BIGINT) AS warning_count,
    CAST(warnings AS VARCHAR) AS warnings,
    CAST(rows_loaded AS BIGINT) AS rows_loaded,
    CAST(polls AS BIGINT) AS polls,
    CAST(failed_polls AS BIGINT) AS failed_polls,
    CAST(destination AS VARCHAR) AS destination
FROM solarsync.sync_runs;

-- analytics.sync_run_tables: the bridge from a run to its tables: rows loaded, and (for
-- sources that track them) how many were new, updated or deleted (NULL: not tracked).
CREATE OR REPLACE VIEW analytics.sync_run_tables AS
SELECT
    CAST(run_id AS VARCHAR) AS run_id,
    CAST(table_name AS VARCHAR) AS table_name,
    CAST("rows" AS BIGINT) AS "rows",
    CAST(new AS BIGINT) AS new,
    CAST(updated AS BIGINT) AS updated,
    CAST(deleted AS BIGINT) AS deleted
FROM solarsync.sync_run_tables;
