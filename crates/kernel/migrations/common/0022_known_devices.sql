-- Known-device tokens issued before this time (Unix seconds) no longer count: a password
-- change or signing out everywhere forgets every browser the account was known on.
ALTER TABLE accounts ADD COLUMN devices_valid_after BIGINT NOT NULL DEFAULT 0;
