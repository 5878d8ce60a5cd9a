-- PostgreSQL twin of ../0002_run_connector_fields.sql: a run is judged by the input schema
-- it started with (spec FR-6). NULL for runs started before this migration.

ALTER TABLE runs ADD COLUMN connector_fields TEXT;
