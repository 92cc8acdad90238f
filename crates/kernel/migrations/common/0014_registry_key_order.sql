-- Lookups by key ask for the newest record first: with seq in the key index they read only
-- that key's rows. Without it SQLite's planner walks the whole registry in seq order.
DROP INDEX registry_records_key;
CREATE INDEX registry_records_key ON registry_records (registry_id, key_index, seq);
