-- The region of the account an alert is about (its materialized path), so that a district's
-- security administrators and auditors see their own district's alerts. NULL: an alert about
-- no account of a region (an address, a name no account has, the ledger), for province-wide
-- accounts only.
ALTER TABLE alerts ADD COLUMN region_path TEXT;
