-- A run is judged by the input schema it started with (spec FR-6): the actor's connector
-- fields are kept with the run when it starts, as JSON written by src/store/codec.rs.
-- NULL for runs started before this migration, which are judged by their actor's fields.

ALTER TABLE runs ADD COLUMN connector_fields TEXT;
